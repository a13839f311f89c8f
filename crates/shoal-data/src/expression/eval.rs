//! Evaluating a parsed expression against one record, with the official server's three-valued
//! logic (`as/src/base/exp.c`, `eval_*`): anything that cannot be computed — a missing bin, a
//! bin of another type than the expression asks for, an integer division by zero, a key that
//! was not stored — is "unknown". Unknown propagates through comparisons and arithmetic;
//! `and` is false if any argument is false, `or` true if any is true, `not unknown` stays
//! unknown, and a filter whose result is unknown does not match.
//!
//! Integer arithmetic wraps (the server does plain C int64 arithmetic); shifts take their
//! count modulo 64 as x86-64 does.

use super::parse::{BinOp, Call, CallArg, CmpOp, Meta, Node, Ty, UnOp, VarOp};
use super::RecordView;
use crate::msgpack::{self, write, Value};
use crate::record::Record;
use shoal_base::CITRUSLEAF_EPOCH_UNIX_S;
use shoal_proto::particle;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Unk,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Str, Blob, Hll, Geo (JSON text) and List/Map (msgpack).
    Bytes(Ty, Cow<'a, [u8]>),
}

pub struct Evaluator<'v, 'a> {
    view: &'v RecordView<'a>,
    vars: Vec<Val<'a>>,
}

impl<'v, 'a> Evaluator<'v, 'a> {
    pub fn new(view: &'v RecordView<'a>, slots: usize) -> Self {
        Evaluator {
            view,
            vars: vec![Val::Unk; slots],
        }
    }

    fn record(&self) -> Option<&'a Record> {
        self.view.record
    }

    pub fn eval(&mut self, node: &'a Node) -> Val<'a> {
        match node {
            Node::Unknown => Val::Unk,
            Node::Nil => Val::Nil,
            Node::Bool(b) => Val::Bool(*b),
            Node::Int(i) => Val::Int(*i),
            Node::Float(f) => Val::Float(*f),
            Node::Bytes(ty, b) => Val::Bytes(*ty, Cow::Borrowed(b)),
            Node::Cmp(op, l, r) => {
                let l = self.eval(l);
                if l == Val::Unk {
                    return Val::Unk;
                }
                let r = self.eval(r);
                if r == Val::Unk {
                    return Val::Unk;
                }
                compare(*op, &l, &r)
            }
            Node::Regex(re, s) => match self.eval(s) {
                Val::Bytes(Ty::Str, s) => {
                    // The server matches a C string: the subject ends at its first NUL.
                    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    Val::Bool(re.is_match(&s[..end]))
                }
                _ => Val::Unk,
            },
            Node::InList(v, l) => {
                let v = self.eval(v);
                if v == Val::Unk {
                    return Val::Unk;
                }
                let Val::Bytes(Ty::List, list) = self.eval(l) else {
                    return Val::Unk;
                };
                let mut packed = Vec::new();
                if !pack(&mut packed, &v) {
                    return Val::Unk;
                }
                let (Ok(needle), Ok(Value::List(list))) =
                    (decode_canonical(&packed), decode_canonical(&list))
                else {
                    return Val::Unk;
                };
                Val::Bool(
                    list.items
                        .iter()
                        .any(|i| msgpack::compare(&needle, i) == Ordering::Equal),
                )
            }
            Node::And(items) => {
                let mut unknown = false;
                for i in items {
                    match self.eval(i) {
                        Val::Bool(false) => return Val::Bool(false),
                        Val::Bool(true) => {}
                        _ => unknown = true,
                    }
                }
                if unknown {
                    Val::Unk
                } else {
                    Val::Bool(true)
                }
            }
            Node::Or(items) => {
                let mut unknown = false;
                for i in items {
                    match self.eval(i) {
                        Val::Bool(true) => return Val::Bool(true),
                        Val::Bool(false) => {}
                        _ => unknown = true,
                    }
                }
                if unknown {
                    Val::Unk
                } else {
                    Val::Bool(false)
                }
            }
            Node::Not(e) => match self.eval(e) {
                Val::Bool(b) => Val::Bool(!b),
                _ => Val::Unk,
            },
            Node::Exclusive(items) => {
                // Exactly one argument true; evaluated in order as the server does.
                let mut seen_true = false;
                for i in items {
                    match self.eval(i) {
                        Val::Bool(true) if seen_true => return Val::Bool(false),
                        Val::Bool(true) => seen_true = true,
                        Val::Bool(false) => {}
                        _ => return Val::Unk,
                    }
                }
                Val::Bool(seen_true)
            }
            Node::Vargs(op, items) => self.vargs(*op, items),
            Node::Unary(op, e) => unary(*op, self.eval(e)),
            Node::Binary(op, a, b) => {
                let a = self.eval(a);
                if a == Val::Unk {
                    return Val::Unk;
                }
                let b = self.eval(b);
                binary(*op, a, b)
            }
            Node::DigestModulo(m) => {
                if self.record().is_none() {
                    return Val::Unk;
                }
                let d = &self.view.digest.0;
                let v = u32::from_le_bytes([d[16], d[17], d[18], d[19]]);
                Val::Int(i64::from(v) % m)
            }
            Node::Meta(m) => self.meta(*m),
            Node::Key(ty) => {
                let Some((t, k)) = self.record().and_then(Record::key) else {
                    return Val::Unk;
                };
                match (t, ty) {
                    (particle::INTEGER, Ty::Int) => match <[u8; 8]>::try_from(k) {
                        Ok(b) => Val::Int(i64::from_be_bytes(b)),
                        Err(_) => Val::Unk,
                    },
                    (particle::STRING, Ty::Str) | (particle::BLOB, Ty::Blob) => {
                        Val::Bytes(*ty, Cow::Borrowed(k))
                    }
                    _ => Val::Unk,
                }
            }
            Node::Bin(name, ty) => match self.record().and_then(|r| r.bin(name)) {
                Some(b) => particle_to_val(b.particle_type, b.value, *ty),
                None => Val::Unk,
            },
            Node::BinType(name) => match self.record() {
                Some(r) => Val::Int(r.bin(name).map_or(0, |b| i64::from(b.particle_type))),
                None => Val::Unk,
            },
            Node::MapEntries(e, values) => match self.eval(e) {
                Val::Bytes(Ty::Map, m) => map_entries(&m, *values),
                _ => Val::Unk,
            },
            Node::Cond(cases, default) => {
                for (c, v) in cases {
                    match self.eval(c) {
                        Val::Bool(true) => return self.eval(v),
                        Val::Bool(false) => {}
                        _ => return Val::Unk,
                    }
                }
                self.eval(default)
            }
            Node::Let(defs, body) => {
                for (slot, e) in defs {
                    let v = self.eval(e);
                    if let Some(s) = self.vars.get_mut(*slot) {
                        *s = v;
                    }
                }
                self.eval(body)
            }
            Node::Var(slot) => self.vars.get(*slot).cloned().unwrap_or(Val::Unk),
            Node::Call(call) => self.call(call),
        }
    }

    fn vargs(&mut self, op: VarOp, items: &'a [Node]) -> Val<'a> {
        let mut it = items.iter();
        let Some(first) = it.next() else {
            return Val::Unk;
        };
        let acc = self.eval(first);
        if acc == Val::Unk {
            return Val::Unk;
        }
        let mut rest = Vec::with_capacity(items.len().saturating_sub(1));
        for i in it {
            let v = self.eval(i);
            if v == Val::Unk {
                return Val::Unk;
            }
            rest.push(v);
        }
        match acc {
            Val::Int(a) => {
                let mut nums = Vec::with_capacity(rest.len());
                for v in rest {
                    let Val::Int(x) = v else { return Val::Unk };
                    nums.push(x);
                }
                int_vargs(op, a, &nums)
            }
            Val::Float(a) => {
                let mut nums = Vec::with_capacity(rest.len());
                for v in rest {
                    let Val::Float(x) = v else { return Val::Unk };
                    nums.push(x);
                }
                float_vargs(op, a, &nums)
            }
            _ => Val::Unk,
        }
    }

    fn meta(&self, m: Meta) -> Val<'a> {
        let Some(r) = self.record() else {
            return Val::Unk;
        };
        let now_ms = self.view.now_cl_ms;
        let size = || i64::try_from(r.memory_bytes()).unwrap_or(i64::MAX);
        match m {
            // This server keeps every namespace in memory: nothing is on a device.
            Meta::DeviceSize => Val::Int(0),
            Meta::MemorySize | Meta::RecordSize => Val::Int(size()),
            Meta::LastUpdate => Val::Int(
                (CITRUSLEAF_EPOCH_UNIX_S * 1000)
                    .saturating_add(r.lut_ms)
                    .saturating_mul(1_000_000) as i64,
            ),
            Meta::SinceUpdate => Val::Int(now_ms.saturating_sub(r.lut_ms) as i64),
            Meta::VoidTime => {
                if r.void_time == 0 {
                    Val::Int(-1)
                } else {
                    Val::Int(
                        ((CITRUSLEAF_EPOCH_UNIX_S + u64::from(r.void_time)) * 1_000_000_000) as i64,
                    )
                }
            }
            Meta::Ttl => {
                if r.void_time == 0 {
                    Val::Int(-1)
                } else {
                    let now_s = u32::try_from(now_ms / 1000).unwrap_or(u32::MAX);
                    // A record past its void time that is still around reports 1, not 0.
                    Val::Int(i64::from(r.void_time.saturating_sub(now_s).max(1)))
                }
            }
            Meta::SetName => Val::Bytes(Ty::Str, Cow::Borrowed(self.view.set_name.as_bytes())),
            Meta::KeyExists => Val::Bool(r.key().is_some()),
            Meta::IsTombstone => Val::Bool(false),
        }
    }

    fn call(&mut self, call: &'a Call) -> Val<'a> {
        let (pt, bin) = match self.eval(&call.bin) {
            Val::Bytes(Ty::List, b) => (particle::LIST, b),
            Val::Bytes(Ty::Map, b) => (particle::MAP, b),
            _ => return Val::Unk,
        };
        let mut payload = Vec::new();
        let n = call.args.len() + 1;
        if let Some(ctx) = &call.ctx {
            write::array_header(&mut payload, 3);
            write::int(&mut payload, 0xff);
            payload.extend_from_slice(ctx);
        }
        write::array_header(&mut payload, n);
        write::int(&mut payload, call.op);
        for a in &call.args {
            match a {
                CallArg::Raw(raw) => payload.extend_from_slice(raw),
                CallArg::Exp(e) => {
                    let v = self.eval(e);
                    if !pack(&mut payload, &v) {
                        return Val::Unk;
                    }
                }
            }
        }
        let Ok(outcome) = crate::cdt::apply(call.modify, Some((pt, &bin)), &payload) else {
            return Val::Unk;
        };
        let result = if call.modify {
            match outcome.new_value {
                None => Some((pt, bin.into_owned())),
                Some(v) => v,
            }
        } else {
            outcome.result
        };
        match result {
            None => Val::Unk,
            Some((t, bytes)) => match particle_to_val(t, &bytes, call.ty) {
                Val::Bytes(ty, b) => Val::Bytes(ty, Cow::Owned(b.into_owned())),
                Val::Unk if call.ty == Ty::Nil && t == particle::NULL => Val::Nil,
                Val::Unk => Val::Unk,
                Val::Nil => Val::Nil,
                Val::Bool(b) => Val::Bool(b),
                Val::Int(i) => Val::Int(i),
                Val::Float(f) => Val::Float(f),
            },
        }
    }
}

/// Converts a stored or returned particle to a value of type `want`; another type is unknown.
fn particle_to_val(pt: u8, value: &[u8], want: Ty) -> Val<'_> {
    let bytes = |ty| Val::Bytes(ty, Cow::Borrowed(value));
    match (pt, want) {
        (particle::INTEGER, Ty::Int) => match <[u8; 8]>::try_from(value) {
            Ok(b) => Val::Int(i64::from_be_bytes(b)),
            Err(_) => Val::Unk,
        },
        (particle::FLOAT, Ty::Float) => match <[u8; 8]>::try_from(value) {
            Ok(b) => Val::Float(f64::from_bits(u64::from_be_bytes(b))),
            Err(_) => Val::Unk,
        },
        (particle::BOOL, Ty::Bool) => match value {
            [b] => Val::Bool(*b != 0),
            _ => Val::Unk,
        },
        (particle::STRING, Ty::Str) => bytes(Ty::Str),
        (particle::BLOB, Ty::Blob) => bytes(Ty::Blob),
        (particle::HLL, Ty::Hll) => bytes(Ty::Hll),
        (particle::LIST, Ty::List) => bytes(Ty::List),
        (particle::MAP, Ty::Map) => bytes(Ty::Map),
        (particle::GEOJSON, Ty::Geo) => {
            // Particle: u8 flags, u16 cell count, 8-byte cells, then the JSON text.
            let Some(cells) = value.get(1..3) else {
                return Val::Unk;
            };
            let n = usize::from(u16::from_be_bytes([cells[0], cells[1]]));
            match value.get(3 + 8 * n..) {
                Some(json) => Val::Bytes(Ty::Geo, Cow::Borrowed(json)),
                None => Val::Unk,
            }
        }
        _ => Val::Unk,
    }
}

/// Appends `v` in the msgpack form CDT ops take; false for unknown.
fn pack(out: &mut Vec<u8>, v: &Val<'_>) -> bool {
    match v {
        Val::Unk => return false,
        Val::Nil => write::nil(out),
        Val::Bool(b) => write::boolean(out, *b),
        Val::Int(i) => write::int(out, *i),
        Val::Float(f) => write::float(out, *f),
        Val::Bytes(ty, b) => match ty {
            Ty::Str => write::tagged_str(out, particle::STRING, b),
            Ty::Blob => write::tagged_str(out, particle::BLOB, b),
            Ty::Hll => write::tagged_str(out, particle::HLL, b),
            Ty::Geo => write::tagged_str(out, particle::GEOJSON, b),
            _ => out.extend_from_slice(b),
        },
    }
    true
}

fn map_entries<'a>(map: &[u8], values: bool) -> Val<'a> {
    let Ok(Value::Map(_)) = msgpack::decode(map) else {
        return Val::Unk;
    };
    // Re-read the raw entries (in stored order) so the elements keep their exact bytes.
    let mut r = msgpack::Reader::new(map);
    let Ok(msgpack::Head::Map(mut n)) = r.head() else {
        return Val::Unk;
    };
    if n > 0 && r.is_ext_next() {
        if r.skip().and_then(|_| r.skip()).is_err() {
            return Val::Unk;
        }
        n -= 1;
    }
    let mut items = Vec::new();
    for _ in 0..n {
        let (Ok(k), Ok(v)) = (r.element(), r.element()) else {
            return Val::Unk;
        };
        items.push(if values { v } else { k });
    }
    let mut out = Vec::new();
    write::array_header(&mut out, items.len());
    for i in items {
        out.extend_from_slice(i);
    }
    Val::Bytes(Ty::List, Cow::Owned(out))
}

/// Decodes a list or map value with every map's pairs in key order: expressions compare maps
/// by their contents, whatever order they were stored in.
fn decode_canonical(bytes: &[u8]) -> Result<Value, msgpack::DecodeError> {
    let mut v = msgpack::decode(bytes)?;
    v.sort_map_keys();
    Ok(v)
}

fn ordering_matches(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
    }
}

fn compare<'a>(op: CmpOp, l: &Val<'_>, r: &Val<'_>) -> Val<'a> {
    match (l, r) {
        (Val::Nil, Val::Nil) => Val::Bool(ordering_matches(op, Ordering::Equal)),
        (Val::Bool(a), Val::Bool(b)) => Val::Bool(ordering_matches(op, a.cmp(b))),
        (Val::Int(a), Val::Int(b)) => Val::Bool(ordering_matches(op, a.cmp(b))),
        (Val::Float(a), Val::Float(b)) => Val::Bool(match op {
            // IEEE semantics, as C compares doubles (NaN is unequal to everything).
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }),
        (Val::Bytes(ta, a), Val::Bytes(tb, b)) if ta == tb => match ta {
            Ty::List | Ty::Map => match (decode_canonical(a), decode_canonical(b)) {
                (Ok(x), Ok(y)) => Val::Bool(ordering_matches(op, msgpack::compare(&x, &y))),
                _ => Val::Unk,
            },
            Ty::Str | Ty::Blob => Val::Bool(ordering_matches(op, a.as_ref().cmp(b.as_ref()))),
            _ => Val::Unk,
        },
        _ => Val::Unk,
    }
}

fn int_vargs<'a>(op: VarOp, first: i64, rest: &[i64]) -> Val<'a> {
    let mut acc = first;
    match op {
        VarOp::Sub if rest.is_empty() => return Val::Int(acc.wrapping_neg()),
        VarOp::Div => {
            // One argument: its reciprocal; more: the first divided by the product of the rest.
            let (num, den) = if rest.is_empty() {
                (1, first)
            } else {
                (first, rest.iter().fold(1i64, |p, x| p.wrapping_mul(*x)))
            };
            return if den == 0 {
                Val::Unk
            } else {
                Val::Int(num.wrapping_div(den))
            };
        }
        _ => {}
    }
    for &x in rest {
        acc = match op {
            VarOp::Add => acc.wrapping_add(x),
            VarOp::Sub => acc.wrapping_sub(x),
            VarOp::Mul => acc.wrapping_mul(x),
            VarOp::Min => acc.min(x),
            VarOp::Max => acc.max(x),
            VarOp::IntAnd => acc & x,
            VarOp::IntOr => acc | x,
            VarOp::IntXor => acc ^ x,
            VarOp::Div => acc,
        };
    }
    Val::Int(acc)
}

fn float_vargs<'a>(op: VarOp, first: f64, rest: &[f64]) -> Val<'a> {
    let mut acc = first;
    match op {
        VarOp::Sub if rest.is_empty() => return Val::Float(0.0 - acc),
        VarOp::Div => {
            let (num, den) = if rest.is_empty() {
                (1.0, first)
            } else {
                (first, rest.iter().product::<f64>())
            };
            return Val::Float(num / den);
        }
        _ => {}
    }
    for &x in rest {
        acc = match op {
            VarOp::Add => acc + x,
            VarOp::Sub => acc - x,
            VarOp::Mul => acc * x,
            VarOp::Min if acc > x => x,
            VarOp::Max if acc < x => x,
            _ => acc,
        };
    }
    Val::Float(acc)
}

fn unary<'a>(op: UnOp, v: Val<'_>) -> Val<'a> {
    match (op, v) {
        (UnOp::Abs, Val::Int(i)) => Val::Int(i.wrapping_abs()),
        (UnOp::Abs, Val::Float(f)) => Val::Float(f.abs()),
        (UnOp::Floor, Val::Float(f)) => Val::Float(f.floor()),
        (UnOp::Ceil, Val::Float(f)) => Val::Float(f.ceil()),
        (UnOp::ToInt, Val::Float(f)) => Val::Int(f as i64),
        (UnOp::ToFloat, Val::Int(i)) => Val::Float(i as f64),
        (UnOp::IntNot, Val::Int(i)) => Val::Int(!i),
        (UnOp::IntCount, Val::Int(i)) => Val::Int(i64::from(i.count_ones())),
        _ => Val::Unk,
    }
}

fn binary<'a>(op: BinOp, a: Val<'_>, b: Val<'_>) -> Val<'a> {
    match (op, a, b) {
        (BinOp::Pow, Val::Float(x), Val::Float(y)) => Val::Float(x.powf(y)),
        (BinOp::Log, Val::Float(x), Val::Float(y)) => Val::Float(x.ln() / y.ln()),
        (BinOp::Mod, Val::Int(_), Val::Int(0)) => Val::Unk,
        (BinOp::Mod, Val::Int(x), Val::Int(y)) => Val::Int(x.wrapping_rem(y)),
        (BinOp::Lshift, Val::Int(x), Val::Int(s)) => Val::Int(x.wrapping_shl(s as u32)),
        (BinOp::Rshift, Val::Int(x), Val::Int(s)) => {
            Val::Int((x as u64).wrapping_shr(s as u32) as i64)
        }
        (BinOp::ArShift, Val::Int(x), Val::Int(s)) => Val::Int(x.wrapping_shr(s as u32)),
        (BinOp::Lscan, Val::Int(x), Val::Bool(set)) => {
            // Index of the first matching bit from the most significant end; -1 if none.
            let x = if set { x } else { !x };
            match x.leading_zeros() {
                64 => Val::Int(-1),
                n => Val::Int(i64::from(n)),
            }
        }
        (BinOp::Rscan, Val::Int(x), Val::Bool(set)) => {
            // Index (from the most significant end) of the last matching bit; -1 if none.
            let x = if set { x } else { !x };
            Val::Int(63 - i64::from(x.trailing_zeros()))
        }
        _ => Val::Unk,
    }
}
