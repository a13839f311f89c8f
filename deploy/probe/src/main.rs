//! `shoal-probe URL`: the HEALTHCHECK of shoal's images, which have no shell and no curl.
//! Sends one `GET` (HTTP/1.0, so the server closes the connection) and exits 0 when the status
//! is 2xx, 1 otherwise (Docker's "unhealthy"), printing the first line of the answer.
//!
//! It speaks only `http://HOST[:PORT]/PATH`; a probe never needs TLS or redirects.
//! Default URL: `http://127.0.0.1:9145/health/ready`, the node's readiness endpoint.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Connect, write and read each get this long; Docker's own probe timeout bounds the total.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Enough of the answer for the status line and a short body.
const ANSWER_MAX_BYTES: u64 = 4096;
const DEFAULT_URL: &str = "http://127.0.0.1:9145/health/ready";

fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    match probe(&url) {
        Ok(line) => {
            println!("{url}: {line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, not `{url}`"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("no host in `{url}`"));
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// The status line when the answer is 2xx; an error naming what failed otherwise.
fn probe(url: &str) -> Result<String, String> {
    let (authority, path) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolving {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("setting timeouts: {e}"))?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(ANSWER_MAX_BYTES)
        .read_to_end(&mut answer)
        .map_err(|e| format!("reading: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or("").trim().to_string();
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code.len() == 3 && code.starts_with('2') {
        Ok(status_line)
    } else if status_line.is_empty() {
        Err("empty answer".to_string())
    } else {
        Err(status_line)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9145/health/ready").unwrap(),
            ("127.0.0.1:9145".into(), "/health/ready".into())
        );
        assert_eq!(
            split_url("http://web").unwrap(),
            ("web:80".into(), "/".into())
        );
        assert_eq!(
            split_url("http://[::1]:8080/x").unwrap(),
            ("[::1]:8080".into(), "/x".into())
        );
        assert!(split_url("https://x/").is_err());
        assert!(split_url("http:///x").is_err());
    }

    fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            s.write_all(answer.as_bytes()).unwrap();
        });
        format!("http://127.0.0.1:{port}/health/ready")
    }

    #[test]
    fn two_hundred_is_healthy_anything_else_is_not() {
        let url = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nready\n");
        assert_eq!(probe(&url).unwrap(), "HTTP/1.1 200 OK");
        let url = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\nno namespaces\n");
        assert!(probe(&url).is_err());
        let url = serve_once("");
        assert!(probe(&url).is_err());
    }
}
