//! Dispatch of as_msg requests: batch (info1 BATCH), scan/query (no DIGEST field), or a
//! single-record command; streaming of multi-record replies in bounded groups ending with a
//! LAST record. In a cluster, a single-record command for a partition this node does not
//! serve is proxied to its working master, a write is replicated to the other owners before
//! it is answered, and scans mark partitions this node does not hold complete as unavailable.
//! Aerospike counterpart: `as/src/base/thr_tsvc.c`, `batch.c`, `query/query.c`, `proxy.c`.

use crate::ownership::{NsOwnership, Routes};
use crate::state::NodeState;
use crate::state::OpKind;
use shoal_base::constants::{BATCH_ROWS_MAX, PARTITIONS, STREAM_FLUSH_BYTES};
use shoal_base::NodeId;
use shoal_base::{Digest, PartitionId};
use shoal_cluster::fabric::FabricMessage;
use shoal_data::expression::Filter;
use shoal_data::scan::{scan_chunk, BinSelection, ScanSpec, SetFilter};
use shoal_data::transaction::{execute, write_error, Kind, RecordRequest};
use shoal_data::{DataError, Namespace};
use shoal_proto::batch::BatchIndex;
use shoal_proto::msg::{info1, info2, info3, op, Fields, Msg, MsgHeader, MsgWriter};
use shoal_proto::{DecodeError, ResultCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::debug;

/// How long a proxied request may wait for the working master.
const PROXY_TIMEOUT: Duration = Duration::from_secs(2);

/// Handles one as_msg body from a client and writes the whole reply.
pub async fn handle<W: AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    body: &[u8],
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    handle_inner(state, body, out, wr, 0).await
}

/// Handles a client message another node proxied here (`hops` nodes so far): executed
/// locally, proxied once more at most, or refused with PARTITION_UNAVAILABLE.
pub async fn handle_proxied<W: AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    body: &[u8],
    hops: u8,
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    handle_inner(state, body, out, wr, hops).await
}

/// Most nodes a request passes through (a leaving node, then a new owner, then the master).
const PROXY_HOPS_MAX: u8 = 2;

async fn handle_inner<W: AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    body: &[u8],
    out: &mut MsgWriter,
    wr: &mut W,
    hops: u8,
) -> std::io::Result<()> {
    let msg = match Msg::decode(body) {
        Ok(m) => m,
        Err(e) => {
            state.stats.proto_errors.fetch_add(1, Relaxed);
            debug!(target: "shoal::service", "malformed as_msg: {e}");
            out.simple_reply(ResultCode::Parameter.code(), 0, 0);
            return wr.write_all(out.bytes()).await;
        }
    };
    let started = Instant::now();
    if msg.header.info1 & info1::BATCH != 0 {
        let r = batch(state, &msg, out, wr).await;
        state.latency(OpKind::Batch).record(started.elapsed());
        r
    } else if msg.fields.digest.is_none() {
        let r = scan(state, &msg, body, out, wr).await;
        state.latency(OpKind::Scan).record(started.elapsed());
        r
    } else {
        let (kind, proxy_reply) = single(state, &msg, body, out, hops).await;
        // Timed before the socket write, like Aerospike's own transaction histograms.
        state.latency(kind).record(started.elapsed());
        match proxy_reply {
            Some(bytes) => wr.write_all(&bytes).await,
            None => wr.write_all(out.bytes()).await,
        }
    }
}

/// The ownership of `ns` (same order as the database's namespaces).
fn ownership_of<'s>(state: &'s NodeState, ns: &Arc<Namespace>) -> Option<&'s NsOwnership> {
    state
        .ownership
        .namespaces
        .iter()
        .find(|o| Arc::ptr_eq(&o.ns, ns))
}

/// Where a record command for `pid` runs.
enum Route {
    Local,
    Proxy(NodeId),
    Unavailable,
}

fn route(state: &NodeState, routes: &Routes, pid: PartitionId, write: bool, hops: u8) -> Route {
    if state.ownership.waiting() {
        debug!(target: "shoal::route", pid = pid.0, "unavailable: waiting to join the cluster");
        return Route::Unavailable;
    }
    // A node handing its partitions away sends everything to the cluster it is leaving.
    if let Some(to) = state.ownership.leaving_master(pid) {
        return if hops < PROXY_HOPS_MAX {
            Route::Proxy(to)
        } else {
            Route::Unavailable
        };
    }
    if routes.alone {
        return Route::Local;
    }
    // A leaving node is out of sync by design once the others went on without it; until it
    // forwards (a few ms later) it keeps serving what it holds complete.
    if !state.cluster.in_sync() && !state.cluster.is_leaving() {
        // Possibly stale (just resumed from a pause, or cut off): let the client retry on
        // the node its refreshed map names.
        debug!(target: "shoal::route", pid = pid.0, "unavailable: not in sync with the cluster");
        return Route::Unavailable;
    }
    match routes.master(pid) {
        Some(m) if m == state.node_id => Route::Local,
        // A replica holding a complete copy serves reads (the client's replica policy).
        _ if !write && routes.complete.get(pid.0) => Route::Local,
        Some(m) if hops < PROXY_HOPS_MAX => Route::Proxy(m),
        m => {
            debug!(target: "shoal::route", pid = pid.0, master = ?m, hops, "unavailable: not the master");
            Route::Unavailable
        }
    }
}

/// Runs a single-record command; returns its kind and, when it was proxied, the reply frame
/// the working master sent (otherwise the reply is in `out`).
async fn single(
    state: &Arc<NodeState>,
    msg: &Msg<'_>,
    body: &[u8],
    out: &mut MsgWriter,
    hops: u8,
) -> (OpKind, Option<Vec<u8>>) {
    let mut kind = OpKind::Read;
    let req = record_request(
        msg.fields.digest,
        msg.header.info1,
        msg.header.info2,
        msg.header.info3,
        msg.header.generation,
        msg.header.record_ttl,
        &msg.fields,
        msg.ops,
        None,
    );
    let target = match (&req, namespace(state, msg.fields.namespace)) {
        (Ok(req), Ok(ns)) => ownership_of(state, ns).map(|own| (req, ns, own)),
        _ => None,
    };
    if let Some((req, ns, own)) = target {
        let write = req.info2 & info2::WRITE != 0;
        let routes = own.routes();
        match route(state, &routes, req.digest.partition(), write, hops) {
            Route::Local => {
                out.open_frame();
                kind = op_kind(req);
                let code = execute(ns, req, out, 0);
                out.close_frame();
                if write
                    && code == ResultCode::Ok
                    && !routes.alone
                    && req.info3 & info3::COMMIT_MASTER != 0
                {
                    crate::ownership::replicate_in_background(
                        state,
                        &own.ns.name,
                        routes.clone(),
                        req.digest,
                    );
                } else if write && code == ResultCode::Ok && !routes.alone {
                    if let Err(code) =
                        crate::ownership::replicate(state, own, &routes, &req.digest).await
                    {
                        // Applied here but not confirmed by every owner: the client must not
                        // count it as acknowledged (it may or may not survive).
                        out.clear();
                        out.simple_reply(code.code(), 0, 0);
                    }
                }
                return (kind, None);
            }
            Route::Proxy(to) => {
                own.proxied_requests.fetch_add(1, Relaxed);
                let msg = FabricMessage::Proxy {
                    hops,
                    body: body.to_vec(),
                };
                let code = match state.fabric.request(to, &msg, PROXY_TIMEOUT).await {
                    Ok(FabricMessage::Reply { bytes }) => return (op_kind(req), Some(bytes)),
                    Ok(_) => ResultCode::ServerError,
                    Err(_) => ResultCode::Timeout,
                };
                out.clear();
                out.simple_reply(code.code(), 0, 0);
                return (op_kind(req), None);
            }
            Route::Unavailable => {
                out.clear();
                out.simple_reply(ResultCode::PartitionUnavailable.code(), 0, 0);
                return (op_kind(req), None);
            }
        }
    }
    out.open_frame();
    match record_request(
        msg.fields.digest,
        msg.header.info1,
        msg.header.info2,
        msg.header.info3,
        msg.header.generation,
        msg.header.record_ttl,
        &msg.fields,
        msg.ops,
        None,
    ) {
        Ok(req) => match namespace(state, msg.fields.namespace) {
            Ok(ns) => {
                kind = op_kind(&req);
                execute(ns, &req, out, 0);
            }
            Err(e) => write_error(out, &e, 0),
        },
        Err(e) => write_error(out, &e, 0),
    }
    out.close_frame();
    (kind, None)
}

fn op_kind(req: &RecordRequest<'_>) -> OpKind {
    match req.kind() {
        Some(Kind::Write) => OpKind::Write,
        Some(Kind::Delete) => OpKind::Delete,
        Some(Kind::Udf) => OpKind::Udf,
        Some(Kind::Read) | None => OpKind::Read,
    }
}

fn namespace<'s>(
    state: &'s NodeState,
    name: Option<&[u8]>,
) -> Result<&'s Arc<Namespace>, DataError> {
    name.and_then(|n| state.db.namespace(n))
        .ok_or(DataError::NamespaceNotFound)
}

#[allow(clippy::too_many_arguments)]
fn record_request<'a>(
    digest: Option<&[u8]>,
    i1: u8,
    i2: u8,
    i3: u8,
    generation: u32,
    record_ttl: u32,
    fields: &Fields<'a>,
    ops: shoal_proto::msg::Ops<'a>,
    parent_filter: Option<&'a [u8]>,
) -> Result<RecordRequest<'a>, DataError> {
    let digest = digest
        .and_then(Digest::from_slice)
        .ok_or(DataError::Parameter("digest must be 20 bytes"))?;
    Ok(RecordRequest {
        info1: i1,
        info2: i2,
        info3: i3,
        generation,
        record_ttl,
        digest,
        set: fields.set,
        key: fields.key,
        ops,
        filter: fields.filter_exp.or(parent_filter),
        is_udf: fields.udf_filename.is_some() || fields.udf_function.is_some(),
    })
}

async fn flush_if_full<W: AsyncWrite + Unpin>(
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    if out.len() >= STREAM_FLUSH_BYTES {
        out.close_frame();
        wr.write_all(out.bytes()).await?;
        out.clear();
    }
    Ok(())
}

async fn finish_stream<W: AsyncWrite + Unpin>(
    out: &mut MsgWriter,
    wr: &mut W,
    result: ResultCode,
) -> std::io::Result<()> {
    out.begin_record(&MsgHeader {
        info3: info3::LAST,
        result_code: result.code(),
        ..MsgHeader::default()
    });
    out.close_frame();
    wr.write_all(out.bytes()).await?;
    out.clear();
    Ok(())
}

async fn batch<W: AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    msg: &Msg<'_>,
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    state.stats.batch_index_initiate.fetch_add(1, Relaxed);
    let Some(data) = msg.fields.batch_index.or(msg.fields.batch_index_with_set) else {
        state.stats.batch_index_error.fetch_add(1, Relaxed);
        return finish_stream(out, wr, ResultCode::Parameter).await;
    };
    let index = match BatchIndex::decode(data, BATCH_ROWS_MAX) {
        Ok(i) => i,
        Err(e) => {
            state.stats.batch_index_error.fetch_add(1, Relaxed);
            debug!(target: "shoal::batch", "rejecting batch: {e}");
            let code = match e {
                DecodeError::TooLong { .. } => ResultCode::BatchMaxRequests,
                _ => ResultCode::Parameter,
            };
            return finish_stream(out, wr, code).await;
        }
    };
    let parent_filter = msg.fields.filter_exp;
    let mut last_ns: Option<(&[u8], Option<&Arc<Namespace>>)> = None;
    // The routes of the namespace the rows are in, read once per namespace, not per row.
    let mut cached: Option<(&NsOwnership, Arc<Routes>)> = None;
    for row in index.rows() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                state.stats.batch_index_error.fetch_add(1, Relaxed);
                debug!(target: "shoal::batch", "malformed batch row: {e}");
                return finish_stream(out, wr, ResultCode::Parameter).await;
            }
        };
        let ns_name = row.fields.namespace.unwrap_or_default();
        let ns = match last_ns {
            Some((name, ns)) if name == ns_name => ns,
            _ => {
                let ns = state.db.namespace(ns_name);
                last_ns = Some((ns_name, ns));
                ns
            }
        };
        out.open_frame();
        match (
            ns,
            record_request(
                Some(row.digest),
                row.info1,
                row.info2,
                row.info3,
                row.generation,
                row.record_ttl,
                &row.fields,
                row.ops,
                parent_filter,
            ),
        ) {
            (Some(ns), Ok(req)) => {
                let write = req.info2 & info2::WRITE != 0;
                if cached.as_ref().is_none_or(|(o, _)| !Arc::ptr_eq(&o.ns, ns)) {
                    cached = ownership_of(state, ns).map(|o| (o, o.routes()));
                }
                let local = cached.as_ref().is_none_or(|(_, r)| {
                    matches!(
                        route(state, r, req.digest.partition(), write, PROXY_HOPS_MAX),
                        Route::Local
                    )
                });
                let at = out.len();
                // Clients send each row to the node their map names; while the map changes, a
                // row for a partition served elsewhere is refused so the client retries it
                // after refreshing.
                let mut refused = !local;
                let mut code = if local {
                    execute(ns, &req, out, row.index)
                } else {
                    ResultCode::PartitionUnavailable
                };
                if local && write && code == ResultCode::Ok {
                    if let Some((own, routes)) = cached.as_ref().filter(|(_, r)| !r.alone) {
                        if req.info3 & info3::COMMIT_MASTER != 0 {
                            crate::ownership::replicate_in_background(
                                state,
                                &own.ns.name,
                                routes.clone(),
                                req.digest,
                            );
                        } else if let Err(c) =
                            crate::ownership::replicate(state, own, routes, &req.digest).await
                        {
                            code = c;
                            refused = true;
                        }
                    }
                }
                if refused {
                    out.truncate(at);
                    out.begin_record(&MsgHeader {
                        result_code: code.code(),
                        transaction_ttl: row.index,
                        ..MsgHeader::default()
                    });
                }
                if code == ResultCode::Ok {
                    if req.info2 & info2::WRITE != 0 {
                        ns.stats.batch_sub_write_success.fetch_add(1, Relaxed);
                    } else {
                        ns.stats.batch_sub_read_success.fetch_add(1, Relaxed);
                    }
                }
            }
            (None, _) => write_error(out, &DataError::NamespaceNotFound, row.index),
            (_, Err(e)) => write_error(out, &e, row.index),
        }
        flush_if_full(out, wr).await?;
    }
    state.stats.batch_index_complete.fetch_add(1, Relaxed);
    finish_stream(out, wr, ResultCode::Ok).await
}

/// The partitions a scan asked for, each with an optional resume digest.
fn scan_partitions(fields: &Fields<'_>) -> Result<Vec<(PartitionId, Option<Digest>)>, DataError> {
    let mut seen = vec![false; PARTITIONS];
    let mut list = Vec::new();
    let mut add = |pid: u16, after: Option<Digest>| -> Result<(), DataError> {
        let i = usize::from(pid);
        if i >= PARTITIONS || seen[i] {
            return Err(DataError::Parameter("bad or repeated partition id"));
        }
        seen[i] = true;
        list.push((PartitionId(pid), after));
        Ok(())
    };
    if let Some(p) = fields.pid_array {
        if p.len() % 2 != 0 || p.len() / 2 > PARTITIONS {
            return Err(DataError::Parameter("partition id array"));
        }
        for c in p.chunks_exact(2) {
            add(u16::from_le_bytes([c[0], c[1]]), None)?;
        }
    }
    if let Some(d) = fields.digest_array {
        if d.len() % 20 != 0 || d.len() / 20 > PARTITIONS {
            return Err(DataError::Parameter("digest array"));
        }
        for c in d.chunks_exact(20) {
            let digest = Digest::from_slice(c).ok_or(DataError::Parameter("digest"))?;
            add(digest.partition().0, Some(digest))?;
        }
    }
    if fields.pid_array.is_none() && fields.digest_array.is_none() {
        for p in 0..PARTITIONS as u16 {
            add(p, None)?;
        }
    }
    Ok(list)
}

#[allow(clippy::too_many_arguments)]
async fn background_ops<W: AsyncWrite + Unpin>(
    state: &NodeState,
    ns: &Arc<Namespace>,
    msg: &Msg<'_>,
    body: &[u8],
    sets: SetFilter,
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    // Validate everything the job will use before answering "started".
    if let Err(e) = msg.fields.filter_exp.map(Filter::parse).transpose() {
        return finish_stream(out, wr, e.result_code()).await;
    }
    if msg.ops.is_empty() {
        return finish_stream(out, wr, ResultCode::Parameter).await;
    }
    let trid = Fields::uint(msg.fields.trid).unwrap_or(0);
    let set_name = msg
        .fields
        .set
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    if let Some(st) = state.arc() {
        crate::jobs::start_background_ops(st, ns.clone(), body.to_vec(), trid, sets, set_name);
    }
    finish_stream(out, wr, ResultCode::Ok).await
}

async fn scan<W: AsyncWrite + Unpin>(
    state: &Arc<NodeState>,
    msg: &Msg<'_>,
    body: &[u8],
    out: &mut MsgWriter,
    wr: &mut W,
) -> std::io::Result<()> {
    state.stats.scans_started.fetch_add(1, Relaxed);
    let ns = match namespace(state, msg.fields.namespace) {
        Ok(ns) => ns,
        Err(e) => return finish_stream(out, wr, e.result_code()).await,
    };
    let f = &msg.fields;
    let refusal =
        if f.index_range.is_some() || f.index_name.is_some() || f.index_expression.is_some() {
            Some(DataError::IndexNotFound)
        } else if f.udf_op.is_some() || f.udf_filename.is_some() {
            Some(DataError::Udf("UDF module not found"))
        } else {
            None
        };
    if let Some(e) = refusal {
        ns.stats.scan_basic_error.fetch_add(1, Relaxed);
        return finish_stream(out, wr, e.result_code()).await;
    }
    let partitions = match scan_partitions(f) {
        Ok(p) => p,
        Err(e) => {
            ns.stats.scan_basic_error.fetch_add(1, Relaxed);
            return finish_stream(out, wr, e.result_code()).await;
        }
    };
    let filter = match f.set {
        Some(s) if !s.is_empty() => match ns.set_id(s) {
            Some(id) => SetFilter::Set(id),
            None => SetFilter::Nothing,
        },
        _ => SetFilter::All,
    };
    let names: Vec<&[u8]> = msg
        .ops
        .iter()
        .filter(|o| o.op_type == op::READ && !o.name.is_empty())
        .map(|o| o.name)
        .collect();
    let bins = if msg.header.info1 & info1::NOBINDATA != 0 {
        BinSelection::None
    } else if names.is_empty() {
        BinSelection::All
    } else {
        BinSelection::Named(&names)
    };
    if msg.header.info2 & info2::WRITE != 0 {
        return background_ops(state, ns, msg, body, filter, out, wr).await;
    }
    let exp = match f.filter_exp.map(Filter::parse).transpose() {
        Ok(e) => e,
        Err(e) => {
            ns.stats.scan_basic_error.fetch_add(1, Relaxed);
            return finish_stream(out, wr, e.result_code()).await;
        }
    };
    let spec = ScanSpec {
        sets: filter,
        bins,
        filter: exp.as_ref(),
    };
    let mut remaining = match Fields::uint(f.max_records) {
        Some(0) | None => u64::MAX,
        Some(n) => n,
    };
    let routes = ownership_of(state, ns).map(|o| o.routes());
    'partitions: for (pid, mut after) in partitions {
        if let Some(r) = routes
            .as_ref()
            .filter(|r| !r.alone || state.ownership.waiting())
        {
            if !r.complete.get(pid.0) || state.ownership.waiting() || !state.cluster.in_sync() {
                // Not held complete here: a partition-done marker with 11 makes the client
                // retry it on the node its refreshed map names.
                out.open_frame();
                out.begin_record(&MsgHeader {
                    info3: info3::PARTITION_DONE,
                    result_code: ResultCode::PartitionUnavailable.code(),
                    generation: u32::from(pid.0),
                    ..MsgHeader::default()
                });
                flush_if_full(out, wr).await?;
                continue;
            }
        }
        loop {
            if remaining == 0 {
                break 'partitions;
            }
            out.open_frame();
            let chunk = scan_chunk(ns, pid, after, &spec, remaining, STREAM_FLUSH_BYTES, out);
            remaining -= chunk.records.min(remaining);
            flush_if_full(out, wr).await?;
            if chunk.done {
                break;
            }
            after = chunk.position;
        }
    }
    ns.stats.scan_basic_complete.fetch_add(1, Relaxed);
    finish_stream(out, wr, ResultCode::Ok).await
}
