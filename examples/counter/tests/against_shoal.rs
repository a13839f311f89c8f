//! The counter against a real node in this process (no docker): every `GET /` adds exactly one,
//! the page names the answering host and the owning node, `/health` answers 200, and startup
//! waits for a database that comes up later.

#![allow(clippy::unwrap_used)] // tests may panic on unexpected errors

use shoal_testkit::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the app on an ephemeral port and returns its address.
async fn serve(app: counter::App) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, counter::router(app)).await });
    addr
}

/// One HTTP/1.0 GET: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn count_of(page: &str) -> i64 {
    let start = page.find("count=").unwrap() + "count=".len();
    let digits: String = page[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_get_adds_one_and_names_the_owner() {
    let server = TestServer::start();
    let client = counter::connect_with_retry(&server.host_port(), Duration::from_secs(10))
        .await
        .unwrap();
    let node_name = client.nodes()[0].name().to_string();
    let app = counter::App::new(client, "test".to_string());
    let hostname = app.hostname().to_string();
    let addr = serve(app).await;

    let (status, body) = http_get(addr, "/health").await;
    assert_eq!(status, 200, "{body}");

    for expected in 1..=5 {
        let (status, page) = http_get(addr, "/").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(count_of(&page), expected, "{page}");
        assert!(page.contains(&format!("db={node_name}")), "{page}");
        assert!(page.contains(&hostname), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_retries_until_the_database_listens() {
    // Nothing listens on `port` for the first 600 ms; then a forwarder to a fresh node does.
    let port = shoal_testkit::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let connecting = tokio::spawn({
        let addr = addr.clone();
        async move { counter::connect_with_retry(&addr, Duration::from_secs(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!connecting.is_finished());

    let server = TestServer::start();
    let upstream = server.addr();
    let listener = TcpListener::bind(&addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let client = connecting.await.unwrap().unwrap();
    assert!(client.is_connected());
}
