//! One client connection: reads proto frames one after another (so pipelined requests work),
//! dispatches each by message type, and writes the reply before reading the next request.
//!
//! A framing error (bad version, unknown type, oversized length) closes the connection with a
//! log line; any error inside a well-framed message is answered with a result code and the
//! connection stays usable. Idle connections are closed after `client-idle-timeout`.
//! Aerospike counterpart: `as/src/base/service.c`, `proto.c`.

use crate::state::NodeState;
use crate::{info, service};
use shoal_base::constants::{INFLATED_MAX_BYTES, INFO_REQUEST_MAX_BYTES, PROTO_BODY_MAX_BYTES};
use shoal_proto::frame::{self, MessageType, ProtoHeader, HEADER_LEN};
use shoal_proto::msg::MsgWriter;
use shoal_proto::{compress, ResultCode};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, warn};

/// Request buffers larger than this are released after use instead of kept for the next one.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

struct ConnectionGuard<'a>(&'a NodeState);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.stats.client_connections.fetch_sub(1, Relaxed);
        self.0.stats.client_connections_closed.fetch_add(1, Relaxed);
    }
}

/// Serves one accepted connection until the client closes it, it idles out, it breaks the
/// framing, or the node shuts down.
pub async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<NodeState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open = state.stats.client_connections.fetch_add(1, Relaxed) + 1;
    state.stats.client_connections_opened.fetch_add(1, Relaxed);
    let _guard = ConnectionGuard(&state);
    let max = state.max_client_connections.load(Relaxed);
    if open > max {
        state.stats.client_connections_refused.fetch_add(1, Relaxed);
        warn!(target: "shoal::service", %peer, open, max, "refusing connection: max-client-connections reached");
        return;
    }
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let mut body: Vec<u8> = Vec::new();
    let mut out = MsgWriter::new();
    loop {
        let idle = Duration::from_secs(state.client_idle_timeout_s.load(Relaxed));
        let mut hdr = [0u8; HEADER_LEN];
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read_exact(&mut hdr)) => r,
            _ = shutdown.changed() => return,
        };
        match read {
            Err(_) => {
                state.stats.client_connections_reaped.fetch_add(1, Relaxed);
                debug!(target: "shoal::service", %peer, "closing idle connection");
                return;
            }
            Ok(Err(_)) => return, // client closed
            Ok(Ok(_)) => {}
        }
        let header = match ProtoHeader::decode(hdr, PROTO_BODY_MAX_BYTES) {
            Ok(h) => h,
            Err(e) => {
                state.stats.proto_errors.fetch_add(1, Relaxed);
                warn!(target: "shoal::service", %peer, "closing connection: {e}");
                return;
            }
        };
        if header.message_type == MessageType::Info && header.body_len > INFO_REQUEST_MAX_BYTES {
            state.stats.proto_errors.fetch_add(1, Relaxed);
            warn!(target: "shoal::service", %peer, len = header.body_len, "closing connection: info request too long");
            return;
        }
        body.clear();
        // Grows only as bytes actually arrive, so a lying length cannot make us allocate it.
        let got =
            tokio::time::timeout(idle, (&mut rd).take(header.body_len).read_to_end(&mut body))
                .await;
        match got {
            Ok(Ok(n)) if n as u64 == header.body_len => {}
            _ => {
                debug!(target: "shoal::service", %peer, "connection closed mid-request");
                return;
            }
        }
        let result = dispatch(
            &state,
            header.message_type,
            &body,
            local,
            &mut out,
            &mut wr,
            peer,
        )
        .await;
        out.clear();
        if body.capacity() > KEEP_BUFFER_BYTES {
            body = Vec::new();
        }
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close) => return,
            Err(e) => {
                debug!(target: "shoal::service", %peer, "write failed: {e}");
                return;
            }
        }
    }
}

/// Whether the connection goes on after a request.
pub enum Flow {
    Continue,
    Close,
}

async fn dispatch<W: tokio::io::AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    message_type: MessageType,
    body: &[u8],
    local: Option<SocketAddr>,
    out: &mut MsgWriter,
    wr: &mut W,
    peer: SocketAddr,
) -> std::io::Result<Flow> {
    match message_type {
        MessageType::Info => {
            state.stats.info_requests.fetch_add(1, Relaxed);
            let started = std::time::Instant::now();
            let buf = out.buf_mut();
            let at = frame::begin_frame(buf);
            info::handle(state, body, local, buf);
            frame::finish_frame(buf, at, MessageType::Info);
            state
                .latency(crate::state::OpKind::Info)
                .record(started.elapsed());
            wr.write_all(out.bytes()).await?;
        }
        MessageType::Admin => {
            // Security is not enabled: clients with credentials treat 52 as "no login needed".
            let buf = out.buf_mut();
            let at = frame::begin_frame(buf);
            let mut reply = [0u8; 16];
            reply[1] = ResultCode::SecurityNotEnabled.code();
            buf.extend_from_slice(&reply);
            frame::finish_frame(buf, at, MessageType::Admin);
            wr.write_all(out.bytes()).await?;
        }
        MessageType::AsMsg => service::handle(state, body, out, wr).await?,
        MessageType::Compressed => {
            state.stats.compressed_requests.fetch_add(1, Relaxed);
            let inner = match compress::inflate(body, INFLATED_MAX_BYTES) {
                Ok(b) => b,
                Err(e) => {
                    state.stats.proto_errors.fetch_add(1, Relaxed);
                    warn!(target: "shoal::service", %peer, "closing connection: bad compressed message: {e}");
                    return Ok(Flow::Close);
                }
            };
            let inner_header = inner
                .get(..HEADER_LEN)
                .and_then(|h| <[u8; HEADER_LEN]>::try_from(h).ok())
                .and_then(|h| ProtoHeader::decode(h, PROTO_BODY_MAX_BYTES).ok());
            match inner_header {
                Some(h)
                    if h.message_type == MessageType::AsMsg
                        && h.body_len == (inner.len() - HEADER_LEN) as u64 =>
                {
                    service::handle(state, &inner[HEADER_LEN..], out, wr).await?
                }
                _ => {
                    state.stats.proto_errors.fetch_add(1, Relaxed);
                    warn!(target: "shoal::service", %peer, "closing connection: compressed message does not hold one as_msg");
                    return Ok(Flow::Close);
                }
            }
        }
    }
    if out.len() > KEEP_BUFFER_BYTES {
        *out = MsgWriter::new();
    }
    Ok(Flow::Continue)
}
