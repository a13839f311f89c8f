//! Single-record transactions on the local node: read, write, delete, touch and operate,
//! with Aerospike's semantics for record-exists actions, generation checks, TTLs, send-key and
//! respond-all-ops. Each call appends exactly one as_msg record (the reply) to a
//! [`MsgWriter`]; the caller frames it (single reply or a row of a batch stream).
//!
//! Locking: one partition lock per transaction, held only while the record is read or
//! replaced; nothing here awaits or does I/O. Aerospike counterpart: `as/src/transaction/
//! read.c`, `write.c`, `delete.c`, `rw_utils.c`.

use crate::bits;
use crate::cdt;
use crate::error::DataError;
use crate::expression::{Filter, RecordView};
use crate::namespace::Namespace;
use crate::record::{Record, WorkBin};
use shoal_base::constants::{BINS_PER_RECORD_MAX, BIN_NAME_LEN_MAX_BYTES};
use shoal_base::Digest;
use shoal_proto::msg::{info1, info2, info3, op, MsgHeader, MsgWriter, Ops};
use shoal_proto::{particle, ResultCode};
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;

/// TTL sentinel: never expire.
pub const TTL_NEVER: u32 = 0xFFFF_FFFF;
/// TTL sentinel: keep the record's current expiry.
pub const TTL_DONT_UPDATE: u32 = 0xFFFF_FFFE;

/// One record command, from a single-record message or a batch row.
#[derive(Debug, Clone, Copy)]
pub struct RecordRequest<'a> {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    /// Expected generation for the generation policies.
    pub generation: u32,
    /// TTL for writes; read-touch percent for reads (ignored).
    pub record_ttl: u32,
    pub digest: Digest,
    /// Set name as sent (may be empty or absent).
    pub set: Option<&'a [u8]>,
    /// KEY field: particle type byte then key bytes.
    pub key: Option<&'a [u8]>,
    pub ops: Ops<'a>,
    /// Packed filter expression (field 43, or the batch parent's), if any.
    pub filter: Option<&'a [u8]>,
    /// UDF fields were sent.
    pub is_udf: bool,
}

/// Which kind of transaction a request is, for counters and dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Delete,
    Udf,
}

impl RecordRequest<'_> {
    /// Classifies the request the way the official server dispatches it.
    pub fn kind(&self) -> Option<Kind> {
        if self.is_udf {
            Some(Kind::Udf)
        } else if self.info2 & info2::WRITE != 0 {
            if self.info2 & info2::DELETE != 0 {
                Some(Kind::Delete)
            } else {
                Some(Kind::Write)
            }
        } else if self.info1 & info1::READ != 0 {
            Some(Kind::Read)
        } else {
            None
        }
    }
}

/// Runs `req` against `ns` and appends the reply record to `out` with `transaction_ttl`
/// (0 for single replies, the row index in batches). Returns the result code sent.
pub fn execute(
    ns: &Namespace,
    req: &RecordRequest<'_>,
    out: &mut MsgWriter,
    transaction_ttl: u32,
) -> ResultCode {
    out.open_frame();
    let start = out.len();
    let kind = req.kind();
    let result = match kind {
        Some(Kind::Udf) => Err(DataError::Udf("UDF module not found")),
        Some(Kind::Read) => read(ns, req, out, transaction_ttl),
        Some(Kind::Write) => write(ns, req, out, transaction_ttl),
        Some(Kind::Delete) => delete(ns, req, out, transaction_ttl),
        None => Err(DataError::Parameter("neither read nor write")),
    };
    let s = &ns.stats;
    match result {
        Ok(()) => {
            match kind {
                Some(Kind::Read) => s.client_read_success.fetch_add(1, Relaxed),
                Some(Kind::Delete) => s.client_delete_success.fetch_add(1, Relaxed),
                _ => s.client_write_success.fetch_add(1, Relaxed),
            };
            ResultCode::Ok
        }
        Err(e) => {
            match (&e, kind) {
                (DataError::NotFound, Some(Kind::Read)) => &s.client_read_not_found,
                (DataError::NotFound, Some(Kind::Delete)) => &s.client_delete_not_found,
                (_, Some(Kind::Read)) => &s.client_read_error,
                (_, Some(Kind::Delete)) => &s.client_delete_error,
                (_, Some(Kind::Udf)) => &s.client_udf_error,
                _ => &s.client_write_error,
            }
            .fetch_add(1, Relaxed);
            match e {
                DataError::Generation => s.fail_generation.fetch_add(1, Relaxed),
                DataError::RecordTooBig { .. } => s.fail_record_too_big.fetch_add(1, Relaxed),
                DataError::StopWrites => s.stop_writes_count.fetch_add(1, Relaxed),
                _ => 0,
            };
            out.truncate(start);
            write_error(out, &e, transaction_ttl);
            e.result_code()
        }
    }
}

/// Appends an error reply record. UDF failures carry a `FAILURE` string bin, as clients expect.
pub fn write_error(out: &mut MsgWriter, e: &DataError, transaction_ttl: u32) {
    let code = e.result_code();
    let is_udf = matches!(e, DataError::Udf(_));
    out.begin_record(&MsgHeader {
        result_code: code.code(),
        transaction_ttl,
        n_ops: u16::from(is_udf),
        ..MsgHeader::default()
    });
    if let DataError::Udf(msg) = e {
        out.op(op::READ, particle::STRING, b"FAILURE", msg.as_bytes());
    }
}

/// Parses the request's filter expression, if it has one.
fn parse_filter(req: &RecordRequest<'_>) -> Result<Option<Filter>, DataError> {
    req.filter.map(Filter::parse).transpose()
}

/// Applies a filter to an existing record: false means FILTERED_OUT. A filter never blocks a
/// command on a record that does not exist.
fn check_filter(
    ns: &Namespace,
    filter: Option<&Filter>,
    digest: &Digest,
    record: Option<&Record>,
) -> Result<(), DataError> {
    let (Some(f), Some(r)) = (filter, record) else {
        return Ok(());
    };
    let view = RecordView {
        record: Some(r),
        digest,
        set_name: ns.set_entry(r.set_id).map_or("", |s| s.name.as_str()),
        now_cl_ms: ns.clock.now_cl_ms(),
    };
    if f.matches(&view)? {
        Ok(())
    } else {
        Err(DataError::FilteredOut)
    }
}

fn check_key<'a>(req: &RecordRequest<'a>) -> Result<Option<(u8, &'a [u8])>, DataError> {
    let Some(k) = req.key else { return Ok(None) };
    let (&t, bytes) = k
        .split_first()
        .ok_or(DataError::Parameter("empty key field"))?;
    if !particle::is_key_type(t) || (t == particle::INTEGER && bytes.len() != 8) {
        return Err(DataError::Parameter("bad key type"));
    }
    let d = Digest::compute(req.set.unwrap_or(&[]), t, bytes);
    if d != req.digest {
        return Err(DataError::KeyMismatch);
    }
    Ok(Some((t, bytes)))
}

fn read(
    ns: &Namespace,
    req: &RecordRequest<'_>,
    out: &mut MsgWriter,
    transaction_ttl: u32,
) -> Result<(), DataError> {
    check_key(req)?;
    // Validate ops before touching the index so a bad request never half-answers.
    for o in req.ops.iter() {
        if o.name.len() > BIN_NAME_LEN_MAX_BYTES {
            return Err(DataError::BinName);
        }
        match o.op_type {
            op::READ | op::CDT_READ => {}
            op::BITS_READ => check_bits_op(o.name, o.particle_type)?,
            op::HLL_READ | op::EXP_READ => {
                return Err(DataError::Unsupported("HLL and expression reads"))
            }
            _ => return Err(DataError::Parameter("write op in a read")),
        }
    }
    let filter = parse_filter(req)?;
    let now_s = ns.clock.now_cl_s();
    let part = ns.index.partition_of(&req.digest).read();
    let rec = part
        .get(&req.digest)
        .filter(|r| !ns.is_doomed(r, now_s))
        .ok_or(DataError::NotFound)?;
    // A device record is read with one device read, under the partition's read lock.
    let rec = ns.load(&req.digest, rec)?;
    let rec = rec.as_ref();
    check_filter(ns, filter.as_ref(), &req.digest, Some(rec))?;
    let mut h = MsgHeader {
        generation: u32::from(rec.generation),
        record_ttl: rec.void_time,
        transaction_ttl,
        ..MsgHeader::default()
    };
    let at = out.begin_record(&h);
    let mut n_ops = 0usize;
    let respond_all = req.info2 & info2::RESPOND_ALL_OPS != 0;
    if req.info1 & info1::NOBINDATA != 0 {
        // Header only.
    } else if req.info1 & info1::GET_ALL != 0 || req.ops.is_empty() {
        for b in rec.bins() {
            out.op(op::READ, b.particle_type, b.name, b.value);
            n_ops += 1;
        }
    } else {
        for o in req.ops.iter() {
            if o.name.is_empty() {
                for b in rec.bins() {
                    out.op(op::READ, b.particle_type, b.name, b.value);
                    n_ops += 1;
                }
            } else if o.op_type == op::CDT_READ || o.op_type == op::BITS_READ {
                let bin = rec.bin(o.name).map(|b| (b.particle_type, b.value));
                // Under respond-all-ops a read with no result answers a nil, so the client's
                // results stay positional (as on the write path).
                let result = if o.op_type == op::CDT_READ {
                    cdt::apply(false, bin, o.value)?.result
                } else {
                    bits::apply(false, bin, o.value)?.result
                };
                n_ops += answer_op(out, o.op_type, o.name, result, respond_all);
            } else if let Some(b) = rec.bin(o.name) {
                out.op(op::READ, b.particle_type, b.name, b.value);
                n_ops += 1;
            } else if respond_all {
                // With respond-all-ops every op gets an answer, a missing bin a nil.
                out.op(op::READ, particle::NULL, o.name, &[]);
                n_ops += 1;
            }
        }
    }
    h.n_ops = u16::try_from(n_ops).map_err(|_| DataError::Parameter("too many bins"))?;
    out.patch_header(at, &h);
    Ok(())
}

fn delete(
    ns: &Namespace,
    req: &RecordRequest<'_>,
    out: &mut MsgWriter,
    transaction_ttl: u32,
) -> Result<(), DataError> {
    check_key(req)?;
    let filter = parse_filter(req)?;
    let now_s = ns.clock.now_cl_s();
    let mut part = ns.index.partition_of(&req.digest).write();
    let live = part
        .get(&req.digest)
        .map(|r| !ns.is_doomed(r, now_s))
        .unwrap_or(false);
    if !live {
        return Err(DataError::NotFound);
    }
    let mut ticket = None;
    if let Some(r) = part.get(&req.digest) {
        check_generation(req, r)?;
        if filter.is_some() {
            let loaded = ns.load(&req.digest, r)?;
            check_filter(ns, filter.as_ref(), &req.digest, Some(loaded.as_ref()))?;
        }
        if ns.storage().is_some() {
            // Durable delete: a tombstone on flash keeps older copies from coming back.
            let lut_ms = ns.next_lut_ms(r.set_id, ns.clock.now_cl_ms());
            ticket = ns.persist_delete(&req.digest, r, lut_ms)?;
        }
    }
    if let Some(old) = part.remove(&req.digest) {
        ns.account_remove(&old);
    }
    drop(part);
    ns.commit(ticket)?;
    out.begin_record(&MsgHeader {
        transaction_ttl,
        ..MsgHeader::default()
    });
    Ok(())
}

fn check_generation(req: &RecordRequest<'_>, r: &Record) -> Result<(), DataError> {
    let have = u32::from(r.generation);
    if req.info2 & info2::GENERATION != 0 && req.generation != have {
        return Err(DataError::Generation);
    }
    if req.info2 & info2::GENERATION_GT != 0 && req.generation <= have {
        return Err(DataError::Generation);
    }
    Ok(())
}

/// The next generation: 16 bits, wrapping from 0xFFFF to 1 (0 means "no record").
pub(crate) fn next_generation(g: u16) -> u16 {
    if g == u16::MAX {
        1
    } else {
        g + 1
    }
}

/// Checks every op of a write before anything changes.
fn validate_write_ops(ops: &Ops<'_>) -> Result<(), DataError> {
    if ops.len() > BINS_PER_RECORD_MAX {
        return Err(DataError::Parameter("too many ops"));
    }
    for o in ops.iter() {
        if o.name.len() > BIN_NAME_LEN_MAX_BYTES {
            return Err(DataError::BinName);
        }
        match o.op_type {
            op::WRITE => {
                if o.name.is_empty() {
                    return Err(DataError::BinName);
                }
                if o.particle_type != particle::NULL
                    && !particle::is_valid_value(o.particle_type, o.value)
                {
                    return Err(DataError::Parameter("bad value for its particle type"));
                }
            }
            op::INCR => {
                if o.name.is_empty() {
                    return Err(DataError::BinName);
                }
                if !matches!(o.particle_type, particle::INTEGER | particle::FLOAT)
                    || o.value.len() != 8
                {
                    return Err(DataError::Parameter("increment by a non-number"));
                }
            }
            op::APPEND | op::PREPEND => {
                if o.name.is_empty() {
                    return Err(DataError::BinName);
                }
                if !matches!(o.particle_type, particle::STRING | particle::BLOB) {
                    return Err(DataError::Parameter("append of a non-string"));
                }
            }
            op::READ | op::TOUCH | op::DELETE_ALL => {}
            op::CDT_READ | op::CDT_MODIFY => {
                if o.name.is_empty() {
                    return Err(DataError::BinName);
                }
            }
            op::BITS_READ | op::BITS_MODIFY => check_bits_op(o.name, o.particle_type)?,
            op::HLL_READ | op::HLL_MODIFY | op::EXP_READ | op::EXP_MODIFY => {
                return Err(DataError::Unsupported("HLL and expression ops"))
            }
            _ => return Err(DataError::Parameter("unknown op type")),
        }
    }
    Ok(())
}

/// A bit op names its bin and carries its msgpack payload as a BLOB particle (the server
/// answers BIN_TYPE for any other particle type).
fn check_bits_op(name: &[u8], particle_type: u8) -> Result<(), DataError> {
    if name.is_empty() {
        return Err(DataError::BinName);
    }
    if particle_type != particle::BLOB {
        return Err(DataError::BinType);
    }
    Ok(())
}

/// Writes the reply op of a CDT or bit op: its result, or with respond-all-ops a nil when it
/// has none. Returns the number of reply ops written.
fn answer_op(
    out: &mut MsgWriter,
    op_type: u8,
    name: &[u8],
    result: Option<(u8, Vec<u8>)>,
    respond_all: bool,
) -> usize {
    match result {
        Some((t, v)) => out.op(op_type, t, name, &v),
        None if respond_all => out.op(op_type, particle::NULL, name, &[]),
        None => return 0,
    }
    1
}

/// Computes the void-time for a write from the request TTL.
fn void_time_for(
    ns: &Namespace,
    ttl: u32,
    now_s: u32,
    existing: Option<&Record>,
) -> Result<u32, DataError> {
    let default_ttl = ns.settings.default_ttl_s.load(Relaxed);
    let from_ttl = |t: u32| if t == 0 { 0 } else { now_s.saturating_add(t) };
    let v = match ttl {
        0 => from_ttl(default_ttl),
        TTL_NEVER => 0,
        TTL_DONT_UPDATE => match existing {
            Some(r) => r.void_time,
            None => from_ttl(default_ttl),
        },
        t if t <= ns.settings.max_ttl_s.load(Relaxed) => from_ttl(t),
        _ => return Err(DataError::Parameter("ttl above max-ttl")),
    };
    if v != 0
        && ns.settings.nsup_period_s.load(Relaxed) == 0
        && !ns.settings.allow_ttl_without_nsup.load(Relaxed)
    {
        return Err(DataError::Forbidden("TTL without nsup"));
    }
    Ok(v)
}

fn find_bin(bins: &[WorkBin<'_>], name: &[u8]) -> Option<usize> {
    bins.iter().position(|b| b.name == name)
}

fn put_bin<'a>(
    bins: &mut Vec<WorkBin<'a>>,
    name: &'a [u8],
    particle_type: u8,
    value: Cow<'a, [u8]>,
) {
    match find_bin(bins, name) {
        Some(i) => {
            bins[i].particle_type = particle_type;
            bins[i].value = value;
        }
        None => bins.push(WorkBin {
            name,
            particle_type,
            value,
        }),
    }
}

fn write(
    ns: &Namespace,
    req: &RecordRequest<'_>,
    out: &mut MsgWriter,
    transaction_ttl: u32,
) -> Result<(), DataError> {
    let key = check_key(req)?;
    let filter = parse_filter(req)?;
    validate_write_ops(&req.ops)?;
    if ns.at_stop_writes() {
        return Err(DataError::StopWrites);
    }
    let req_set_id = match req.set {
        Some(s) if !s.is_empty() => Some(
            ns.set_id_or_create(s)
                .ok_or(DataError::Parameter("bad set name or too many sets"))?,
        ),
        _ => None,
    };
    let respond_all = req.info2 & info2::RESPOND_ALL_OPS != 0;
    let now_s = ns.clock.now_cl_s();
    let now_ms = ns.clock.now_cl_ms();
    let mut part = ns.index.partition_of(&req.digest).write();
    let raw = part.get(&req.digest);
    let lut_floor = ns.lut_floor(&req.digest, raw);
    let loaded = match raw.filter(|r| !ns.is_doomed(r, now_s)) {
        Some(r) => Some(ns.load(&req.digest, r)?),
        None => None,
    };
    let existing = loaded.as_deref();
    let exists = existing.is_some();

    if req.info2 & info2::CREATE_ONLY != 0 && exists {
        return Err(DataError::RecordExists);
    }
    if req.info3 & (info3::UPDATE_ONLY | info3::REPLACE_ONLY) != 0 && !exists {
        return Err(DataError::NotFound);
    }
    if let Some(r) = existing {
        check_generation(req, r)?;
    }
    check_filter(ns, filter.as_ref(), &req.digest, existing)?;
    let replace = req.info3 & (info3::CREATE_OR_REPLACE | info3::REPLACE_ONLY) != 0;
    let mut bins: Vec<WorkBin<'_>> = match existing {
        Some(r) if !replace => r.work_bins(),
        _ => Vec::new(),
    };

    let mut h = MsgHeader {
        transaction_ttl,
        ..MsgHeader::default()
    };
    let at = out.begin_record(&h);
    let mut n_ops = 0usize;

    for o in req.ops.iter() {
        match o.op_type {
            op::WRITE => {
                if o.particle_type == particle::NULL {
                    if let Some(i) = find_bin(&bins, o.name) {
                        bins.remove(i);
                    }
                } else {
                    put_bin(&mut bins, o.name, o.particle_type, Cow::Borrowed(o.value));
                }
                if respond_all {
                    out.op(o.op_type, particle::NULL, o.name, &[]);
                    n_ops += 1;
                }
            }
            op::INCR => {
                let new: [u8; 8] = match find_bin(&bins, o.name) {
                    None => o
                        .value
                        .try_into()
                        .map_err(|_| DataError::Parameter("incr size"))?,
                    Some(i) => {
                        let b = &bins[i];
                        if b.particle_type != o.particle_type || b.value.len() != 8 {
                            return Err(DataError::BinType);
                        }
                        let old: [u8; 8] =
                            b.value[..].try_into().map_err(|_| DataError::BinType)?;
                        let add: [u8; 8] = o
                            .value
                            .try_into()
                            .map_err(|_| DataError::Parameter("incr size"))?;
                        if o.particle_type == particle::INTEGER {
                            i64::from_be_bytes(old)
                                .wrapping_add(i64::from_be_bytes(add))
                                .to_be_bytes()
                        } else {
                            (f64::from_be_bytes(old) + f64::from_be_bytes(add)).to_be_bytes()
                        }
                    }
                };
                put_bin(&mut bins, o.name, o.particle_type, Cow::Owned(new.to_vec()));
                if respond_all {
                    out.op(o.op_type, particle::NULL, o.name, &[]);
                    n_ops += 1;
                }
            }
            op::APPEND | op::PREPEND => {
                let value = match find_bin(&bins, o.name) {
                    None => Cow::Borrowed(o.value),
                    Some(i) => {
                        let b = &bins[i];
                        if b.particle_type != o.particle_type {
                            return Err(DataError::BinType);
                        }
                        let mut v = Vec::with_capacity(b.value.len() + o.value.len());
                        if o.op_type == op::APPEND {
                            v.extend_from_slice(&b.value);
                            v.extend_from_slice(o.value);
                        } else {
                            v.extend_from_slice(o.value);
                            v.extend_from_slice(&b.value);
                        }
                        Cow::Owned(v)
                    }
                };
                put_bin(&mut bins, o.name, o.particle_type, value);
                if respond_all {
                    out.op(o.op_type, particle::NULL, o.name, &[]);
                    n_ops += 1;
                }
            }
            // A touch only bumps the generation and resets the TTL, which every write does.
            op::TOUCH => {}
            op::DELETE_ALL => {
                bins.clear();
                if respond_all {
                    out.op(o.op_type, particle::NULL, o.name, &[]);
                    n_ops += 1;
                }
            }
            op::CDT_READ | op::CDT_MODIFY => {
                let bin =
                    find_bin(&bins, o.name).map(|i| (bins[i].particle_type, &bins[i].value[..]));
                let outcome = cdt::apply(o.op_type == op::CDT_MODIFY, bin, o.value)?;
                match outcome.new_value {
                    None => {}
                    Some(None) => {
                        if let Some(i) = find_bin(&bins, o.name) {
                            bins.remove(i);
                        }
                    }
                    Some(Some((t, v))) => put_bin(&mut bins, o.name, t, Cow::Owned(v)),
                }
                n_ops += answer_op(out, o.op_type, o.name, outcome.result, respond_all);
            }
            op::BITS_READ | op::BITS_MODIFY => {
                let bin =
                    find_bin(&bins, o.name).map(|i| (bins[i].particle_type, &bins[i].value[..]));
                let outcome = bits::apply(o.op_type == op::BITS_MODIFY, bin, o.value)?;
                if let Some(v) = outcome.new_value {
                    put_bin(&mut bins, o.name, particle::BLOB, Cow::Owned(v));
                }
                n_ops += answer_op(out, o.op_type, o.name, outcome.result, respond_all);
            }
            op::READ => {
                if o.name.is_empty() {
                    let header_only =
                        req.info1 & info1::NOBINDATA != 0 && req.info1 & info1::GET_ALL == 0;
                    if !header_only {
                        for b in &bins {
                            out.op(op::READ, b.particle_type, b.name, &b.value);
                            n_ops += 1;
                        }
                    } else if respond_all {
                        // A header read answers one nameless nil, so results stay positional.
                        out.op(op::READ, particle::NULL, &[], &[]);
                        n_ops += 1;
                    }
                } else if let Some(i) = find_bin(&bins, o.name) {
                    let b = &bins[i];
                    out.op(op::READ, b.particle_type, b.name, &b.value);
                    n_ops += 1;
                } else if respond_all {
                    out.op(op::READ, particle::NULL, o.name, &[]);
                    n_ops += 1;
                }
            }
            _ => return Err(DataError::Parameter("unknown op type")),
        }
    }
    if bins.len() > BINS_PER_RECORD_MAX {
        return Err(DataError::Parameter("too many bins"));
    }

    if bins.is_empty() {
        // A write that leaves no bins deletes the record; on a record that does not exist
        // there is nothing to delete.
        if !exists {
            return Err(DataError::NotFound);
        }
        drop(bins);
        drop(loaded);
        let mut ticket = None;
        if let (Some(r), Some(_)) = (part.get(&req.digest), ns.storage()) {
            let lut_ms = ns.next_lut_ms(r.set_id, now_ms).max(lut_floor);
            ticket = ns.persist_delete(&req.digest, r, lut_ms)?;
        }
        if let Some(old) = part.remove(&req.digest) {
            ns.account_remove(&old);
        }
        drop(part);
        ns.commit(ticket)?;
        h.n_ops = u16::try_from(n_ops).map_err(|_| DataError::Parameter("too many ops"))?;
        out.patch_header(at, &h);
        return Ok(());
    }
    let stored_key = key.or_else(|| existing.and_then(|r| r.key()));
    let flat = Record::flat_size(stored_key, &bins) as u64;
    let max = ns.settings.max_record_size_bytes.load(Relaxed);
    if flat > max {
        return Err(DataError::RecordTooBig { size: flat, max });
    }
    let void_time = void_time_for(ns, req.record_ttl, now_s, existing)?;
    let generation = existing.map_or(1, |r| next_generation(r.generation));
    let set_id = req_set_id.or(existing.map(|r| r.set_id)).unwrap_or(0);
    let lut_ms = ns.next_lut_ms(set_id, now_ms).max(lut_floor);
    let mut new = Record::build(generation, set_id, void_time, lut_ms, stored_key, &bins);
    drop(bins);
    drop(loaded);
    let mut ticket = None;
    if ns.storage().is_some() {
        let (stored, t) = ns.persist_write(&req.digest, &new, part.get(&req.digest))?;
        new = stored;
        ticket = t;
    }
    ns.account_insert(&new);
    if let Some(old) = part.insert(req.digest, new) {
        ns.account_remove(&old);
    }
    drop(part);
    // Under commit-to-device the write is acknowledged only once durable; the partition lock
    // is already released so other writers can join the same sync.
    ns.commit(ticket)?;
    h.generation = u32::from(generation);
    h.record_ttl = void_time;
    h.n_ops = u16::try_from(n_ops).map_err(|_| DataError::Parameter("too many ops"))?;
    out.patch_header(at, &h);
    Ok(())
}
