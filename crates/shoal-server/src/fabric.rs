//! The fabric transport (port 3001): request/answer messages between members over TCP. One
//! outbound connection per peer carries this node's requests, pipelined and matched to their
//! answers by id; inbound connections carry other nodes' requests, each handled on its own
//! task (at most `INBOUND_IN_FLIGHT_MAX` per connection) and answered on the same socket.
//!
//! Bounded everywhere: frames (`shoal_cluster::fabric::FRAME_MAX_BYTES`), queued frames per
//! connection, requests in flight, and every request has a deadline. A broken connection
//! fails its pending requests at once and is reopened by the next request. What a request
//! means is `ownership`'s business; this module only moves bytes.

use crate::cluster::ClusterShell;
use crate::state::NodeState;
use parking_lot::Mutex;
use shoal_base::NodeId;
use shoal_cluster::fabric::{self, FabricMessage};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, warn};

/// Frames queued per connection before senders wait.
const QUEUE_FRAMES_MAX: usize = 1024;
/// Requests of one inbound connection handled at once.
const INBOUND_IN_FLIGHT_MAX: usize = 256;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FabricFailure {
    /// The node is not a live peer (no address known).
    Unknown,
    /// Connecting or sending failed, or the connection broke before the answer.
    Broken,
    /// No answer before the deadline.
    Timeout,
}

struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<FabricMessage>>>,
    dead: AtomicBool,
}

/// This node's side of the fabric.
pub struct Fabric {
    me: NodeId,
    cluster: Arc<ClusterShell>,
    next_id: AtomicU64,
    conns: Mutex<HashMap<NodeId, Arc<Conn>>>,
    /// Requests sent and answers received, for statistics.
    pub requests_sent: AtomicU64,
    pub requests_failed: AtomicU64,
}

impl Fabric {
    pub fn new(me: NodeId, cluster: Arc<ClusterShell>) -> Fabric {
        Fabric {
            me,
            cluster,
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            requests_sent: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
        }
    }

    /// Sends `msg` to `to` and waits (at most `deadline`) for its answer.
    pub async fn request(
        &self,
        to: NodeId,
        msg: &FabricMessage,
        deadline: Duration,
    ) -> Result<FabricMessage, FabricFailure> {
        self.requests_sent.fetch_add(1, Relaxed);
        let r = tokio::time::timeout(deadline, self.request_inner(to, msg)).await;
        if r.is_err() {
            // No answer in time: the connection may be stuck on a peer that vanished; the next
            // request opens a fresh one.
            // Requests already in flight on it keep waiting for their own answers.
            if let Some(c) = self.conns.lock().remove(&to) {
                c.dead.store(true, Relaxed);
            }
        }
        let r = r.unwrap_or(Err(FabricFailure::Timeout));
        if r.is_err() {
            self.requests_failed.fetch_add(1, Relaxed);
        }
        r
    }

    async fn request_inner(
        &self,
        to: NodeId,
        msg: &FabricMessage,
    ) -> Result<FabricMessage, FabricFailure> {
        let conn = self.conn(to).await?;
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut frame = Vec::new();
        fabric::encode(id, msg, &mut frame);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        if conn.tx.send(frame).await.is_err() {
            conn.pending.lock().remove(&id);
            return Err(FabricFailure::Broken);
        }
        // Dropping the sender (connection broke) fails the wait at once.
        let answer = rx.await.map_err(|_| FabricFailure::Broken);
        if answer.is_err() {
            conn.pending.lock().remove(&id);
        }
        answer
    }

    async fn conn(&self, to: NodeId) -> Result<Arc<Conn>, FabricFailure> {
        if let Some(c) = self.conns.lock().get(&to) {
            if !c.dead.load(Relaxed) {
                return Ok(c.clone());
            }
        }
        let addr = self
            .cluster
            .fabric_address(to)
            .ok_or(FabricFailure::Unknown)?;
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => return Err(FabricFailure::Broken),
        };
        let _ = stream.set_nodelay(true);
        let (rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE_FRAMES_MAX);
        let conn = Arc::new(Conn {
            tx,
            pending: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
        });
        let mut hello = Vec::new();
        fabric::encode(0, &FabricMessage::Hello { node: self.me }, &mut hello);
        let writer_conn = conn.clone();
        tokio::spawn(async move {
            if wr.write_all(&hello).await.is_ok() {
                while let Some(frame) = rx.recv().await {
                    if wr.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            }
            fail(&writer_conn);
        });
        let reader_conn = conn.clone();
        tokio::spawn(async move {
            let mut rd = rd;
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                match read_frame(&mut rd, &mut buf).await {
                    Ok(Some((id, msg))) if msg.is_answer() => {
                        let waiter = reader_conn.pending.lock().remove(&id);
                        if let Some(w) = waiter {
                            let _ = w.send(msg);
                        }
                    }
                    Ok(Some(_)) => {
                        debug!(target: "shoal::fabric", %addr, "a request on an outbound connection; closing it");
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(target: "shoal::fabric", %addr, "closing fabric connection: {e}");
                        break;
                    }
                }
            }
            fail(&reader_conn);
        });
        self.conns.lock().insert(to, conn.clone());
        Ok(conn)
    }
}

/// Marks a connection dead and fails everything waiting on it.
fn fail(conn: &Conn) {
    conn.dead.store(true, Relaxed);
    conn.pending.lock().clear();
}

/// Reads one whole frame; `Ok(None)` on a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<(u64, FabricMessage)>, String> {
    loop {
        match fabric::frame_len(buf) {
            Ok(Some(n)) if buf.len() >= n => {
                let decoded = fabric::decode(&buf[..n]).map_err(|e| e.to_string());
                buf.drain(..n);
                return decoded.map(Some);
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = rd.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("connection closed inside a frame".into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Binds the fabric port.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the fabric port {addr}: {e}"))
}

/// Accepts other nodes' connections and answers their requests until shutdown.
pub async fn run(
    listener: TcpListener,
    state: Arc<NodeState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(inbound(stream, peer, state.clone()));
                }
                Err(e) => {
                    warn!(target: "shoal::fabric", "fabric accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn inbound(stream: TcpStream, peer: SocketAddr, state: Arc<NodeState>) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::with_capacity(64 * 1024);
    let from = match read_frame(&mut rd, &mut buf).await {
        Ok(Some((_, FabricMessage::Hello { node }))) => node,
        other => {
            debug!(target: "shoal::fabric", %peer, "fabric connection without a hello: {other:?}");
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE_FRAMES_MAX);
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let permits = Arc::new(Semaphore::new(INBOUND_IN_FLIGHT_MAX));
    loop {
        let (id, msg) = match read_frame(&mut rd, &mut buf).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                warn!(target: "shoal::fabric", %peer, node = %from, "closing fabric connection: {e}");
                return;
            }
        };
        if msg.is_answer() || matches!(msg, FabricMessage::Hello { .. }) {
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let state = state.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let answer = crate::ownership::handle_fabric(&state, from, msg).await;
            let mut frame = Vec::new();
            fabric::encode(id, &answer, &mut frame);
            let _ = tx.send(frame).await;
            drop(permit);
        });
    }
}
