//! CDT (collection data type) operations on list and map bins: the op payloads of op types 3
//! (CDT_READ) and 4 (CDT_MODIFY), msgpack-encoded as `[op_code, args...]`, optionally wrapped
//! in a context `[0xff, [ctx_type, ctx_value, ...], [op_code, args...]]`.
//!
//! This module owns list and map semantics (ordering, return types, write flags, contexts).
//! It never touches the index or a lock: it maps (current bin value, payload) to (new value,
//! result). Aerospike counterpart: `as/src/base/cdt.c`, `particle_list.c`, `particle_map.c`.
//!
//! Layout: `crate::msgpack` (value model, codec and value order, shared with expressions),
//! `args` (op arguments),
//! `select` (selections and return types), `list` and `map` (the ops), `context` (nested
//! targets). Invariants: a bin an op does not change is never re-encoded, so untouched bins
//! stay byte-exact; nothing here panics on any payload or stored value.

mod args;
mod context;
mod list;
mod map;
mod select;

#[cfg(test)]
mod tests;

use crate::error::DataError;
#[cfg(test)]
use crate::msgpack::order;
use crate::msgpack::{self, tag, List, Map, Reader, Value};
use args::Args;
use context::Kind;
use shoal_proto::particle;

/// Most elements an op may pad a list up to (an insert or set far past the end).
pub(crate) const ELEMENTS_MAX: usize = 1 << 20;

/// Op code of the context wrapper.
const CONTEXT_EVAL: i64 = 0xff;
/// Op code of select-by-path (server 7+), not supported here.
const SELECT_BY_PATH: i64 = 0xfe;

/// What a CDT op did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdtOutcome {
    /// `None`: the bin is unchanged. `Some(None)`: the bin is removed. `Some(Some((particle
    /// type, bytes)))`: the bin's new value (LIST or MAP, msgpack).
    pub new_value: Option<Option<(u8, Vec<u8>)>>,
    /// The value returned to the client for this op, as (particle type, bytes), if any.
    pub result: Option<(u8, Vec<u8>)>,
}

/// A parsed CDT op payload.
struct Request {
    levels: Vec<context::Level>,
    code: u8,
    args: Args,
}

fn parse_op(items: Vec<Value>) -> Result<(u8, Args), DataError> {
    let mut it = items.into_iter();
    let code = match it.next() {
        Some(Value::Int(c)) => {
            u8::try_from(c).map_err(|_| DataError::Parameter("bad CDT op code"))?
        }
        _ => return Err(DataError::Parameter("CDT op code missing")),
    };
    Ok((code, Args(it.collect())))
}

fn parse(payload: &[u8]) -> Result<Request, DataError> {
    let bad = |_| DataError::Parameter("CDT payload is not valid msgpack");
    let mut r = Reader::new(payload);
    let n = r.array_len().map_err(bad)?;
    if n > r.remaining() {
        return Err(DataError::Parameter("CDT payload truncated"));
    }
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(r.value().map_err(bad)?);
    }
    if !r.is_empty() {
        return Err(DataError::Parameter("trailing bytes after CDT payload"));
    }
    match items.first() {
        Some(Value::Int(CONTEXT_EVAL)) => {
            let mut it = items.into_iter().skip(1);
            let (ctx, op) = match (it.next(), it.next(), it.next()) {
                (Some(Value::List(ctx)), Some(Value::List(op)), None) => (ctx, op),
                _ => return Err(DataError::Parameter("malformed CDT context payload")),
            };
            let levels = context::parse(ctx.items)?;
            let (code, args) = parse_op(op.items)?;
            Ok(Request { levels, code, args })
        }
        Some(Value::Int(SELECT_BY_PATH)) => Err(DataError::Unsupported("CDT select by path")),
        _ => {
            let (code, args) = parse_op(items)?;
            Ok(Request {
                levels: Vec::new(),
                code,
                args,
            })
        }
    }
}

/// Converts an op result to the particle the client receives (None: no result bin).
fn to_particle(v: Value) -> Option<(u8, Vec<u8>)> {
    match v {
        Value::Nil | Value::Ext { .. } => None,
        Value::Bool(b) => Some((particle::BOOL, vec![u8::from(b)])),
        Value::Int(i) => Some((particle::INTEGER, i.to_be_bytes().to_vec())),
        Value::Uint(u) => Some((particle::INTEGER, u.to_be_bytes().to_vec())),
        Value::Float(f) => Some((particle::FLOAT, f.to_be_bytes().to_vec())),
        Value::Bytes { data, .. } => match data.split_first() {
            None => Some((particle::STRING, Vec::new())),
            Some((&tag::GEOJSON, json)) => {
                // GeoJSON particle: flags 0, no cells, then the JSON text.
                let mut out = vec![0u8, 0, 0];
                out.extend_from_slice(json);
                Some((particle::GEOJSON, out))
            }
            Some((&t, rest)) => Some((t, rest.to_vec())),
        },
        v @ Value::List(_) => Some((particle::LIST, v.to_bytes())),
        v @ Value::Map(_) => Some((particle::MAP, v.to_bytes())),
    }
}

fn empty_container(kind: Kind, flags: u8) -> Value {
    match kind {
        Kind::List => Value::List(List {
            flags,
            items: Vec::new(),
        }),
        Kind::Map => Value::Map(Map {
            flags,
            entries: Vec::new(),
        }),
    }
}

fn particle_of(kind: Kind) -> u8 {
    match kind {
        Kind::List => particle::LIST,
        Kind::Map => particle::MAP,
    }
}

/// Applies one CDT op to a bin's current value (`None` when the bin does not exist).
/// `modify` is true for op type CDT_MODIFY, false for CDT_READ.
pub fn apply(
    modify: bool,
    bin: Option<(u8, &[u8])>,
    payload: &[u8],
) -> Result<CdtOutcome, DataError> {
    let req = parse(payload)?;
    let op_kind = if list::is_list_op(req.code) {
        Kind::List
    } else if map::is_map_op(req.code) {
        Kind::Map
    } else {
        return Err(DataError::Parameter("unknown CDT op code"));
    };
    let op_modifies = match op_kind {
        Kind::List => list::is_modify(req.code),
        Kind::Map => map::is_modify(req.code),
    };
    if op_modifies && !modify {
        return Err(DataError::Parameter("CDT modify op sent as a read"));
    }
    // The bin's container kind: the first context level's, or the op's.
    let top_kind = match req.levels.first() {
        Some(level) => level.kind()?,
        None => op_kind,
    };
    let mut created = false;
    let mut root = match bin {
        Some((t, bytes)) => {
            if t != particle_of(top_kind) {
                return Err(DataError::BinType);
            }
            msgpack::decode(bytes)
                .map_err(|_| DataError::Parameter("stored CDT value is corrupt"))?
        }
        None if !op_modifies => return Ok(CdtOutcome::default()),
        None if req.levels.is_empty() => {
            let flags = match op_kind {
                Kind::List => list::create_flags(req.code, &req.args)?,
                Kind::Map => map::create_flags(req.code, &req.args)?,
            };
            match flags {
                Some(flags) => {
                    created = true;
                    empty_container(op_kind, flags)
                }
                None => return Ok(CdtOutcome::default()),
            }
        }
        None => {
            if !req.levels.iter().any(context::Level::creates) {
                return Err(DataError::OpNotApplicable(
                    "bin missing and no create context",
                ));
            }
            created = true;
            empty_container(top_kind, 0)
        }
    };
    if !matches!(
        (&root, top_kind),
        (Value::List(_), Kind::List) | (Value::Map(_), Kind::Map)
    ) {
        return Err(DataError::BinType);
    }
    let before = if op_modifies && !created {
        Some(root.clone())
    } else {
        None
    };
    let target = context::dig(&mut root, &req.levels, op_kind, op_modifies)?;
    let result = match (target, op_kind) {
        (Value::List(l), Kind::List) => list::apply(l, req.code, &req.args)?,
        (Value::Map(m), Kind::Map) => map::apply(m, req.code, &req.args)?,
        _ if req.levels.is_empty() => return Err(DataError::BinType),
        _ => {
            return Err(DataError::OpNotApplicable(
                "CDT op on the wrong collection type",
            ))
        }
    };
    let changed = op_modifies && (created || before.as_ref() != Some(&root));
    let new_value = if changed {
        Some(Some((particle_of(top_kind), root.to_bytes())))
    } else {
        None
    };
    Ok(CdtOutcome {
        new_value,
        result: result.and_then(to_particle),
    })
}
