//! Bit operations on blob bins: the op payloads of op types 12 (BITS_READ) and 13
//! (BITS_MODIFY), msgpack-encoded as `[op_code, args...]`.
//!
//! A blob is a string of bits, most significant bit of byte 0 first. Bit ops address a range
//! `[offset, offset + size)` of bits, byte ops (resize, insert, remove) a range of bytes; a
//! negative offset counts back from the end of the blob. Modify ops: 0 resize, 1 insert,
//! 2 remove, 3 set, 4 or, 5 xor, 6 and, 7 not, 8 lshift, 9 rshift, 10 add, 11 subtract,
//! 12 set_int; read ops: 50 get, 51 count, 52 lscan, 53 rscan, 54 get_int.
//!
//! Errors follow the server: a malformed payload, an argument out of its bounds, a flag an op
//! does not take or a byte op past the end answers PARAMETER (4); a bit op whose range leaves
//! the blob, or an integer overflow with the FAIL action, answers OP_NOT_APPLICABLE (26)
//! (modify ops under the NO_FAIL policy flag leave the bin unchanged instead); a bin of
//! another type answers BIN_TYPE (12); CREATE_ONLY on an existing bin answers BIN_EXISTS (6);
//! an op that cannot create a bin (all but insert and resize, or any under UPDATE_ONLY) on a
//! missing bin answers BIN_NOT_FOUND (17).
//!
//! Invariants: the range checks run before any bit is touched, so no op indexes outside the
//! blob; nothing here panics on any payload or stored value; a blob never grows to
//! [`BLOB_SIZE_MAX_BYTES`] or beyond. This module never touches the index or a lock: it maps
//! (current bin value, payload) to (new value, result), like `cdt::apply`.
//!
//! Aerospike counterpart: `as/src/base/particle_blob.c` (`as_bin_bits_packed_read`,
//! `as_bin_bits_packed_modify`).

#[cfg(test)]
mod tests;

use crate::error::DataError;
use crate::msgpack::{Head, Reader};
use shoal_base::constants::PROTO_BODY_MAX_BYTES;
use shoal_proto::particle;

/// A blob may not reach this size through bit ops (the server's PROTO_SIZE_MAX); offsets and
/// sizes in bytes are bounded by it, in bits by eight times it.
pub const BLOB_SIZE_MAX_BYTES: u64 = PROTO_BODY_MAX_BYTES;
const BITS_MAX: u64 = BLOB_SIZE_MAX_BYTES * 8;

/// Op codes.
mod code {
    pub const RESIZE: u64 = 0;
    pub const INSERT: u64 = 1;
    pub const REMOVE: u64 = 2;
    pub const SET: u64 = 3;
    pub const OR: u64 = 4;
    pub const XOR: u64 = 5;
    pub const AND: u64 = 6;
    pub const NOT: u64 = 7;
    pub const LSHIFT: u64 = 8;
    pub const RSHIFT: u64 = 9;
    pub const ADD: u64 = 10;
    pub const SUBTRACT: u64 = 11;
    pub const SET_INT: u64 = 12;
    pub const GET: u64 = 50;
    pub const COUNT: u64 = 51;
    pub const LSCAN: u64 = 52;
    pub const RSCAN: u64 = 53;
    pub const GET_INT: u64 = 54;
}

/// Policy write flags (`BitWriteFlags`).
mod flag {
    pub const CREATE_ONLY: u64 = 1;
    pub const UPDATE_ONLY: u64 = 2;
    pub const NO_FAIL: u64 = 4;
    pub const PARTIAL: u64 = 8;
}

/// Resize flags (`BitResizeFlags`).
mod resize {
    pub const FROM_FRONT: u64 = 1;
    pub const GROW_ONLY: u64 = 2;
    pub const SHRINK_ONLY: u64 = 4;
}

/// Integer subflags: signedness and the overflow action of add and subtract.
mod int {
    pub const SIGNED: u64 = 1;
    pub const SATURATE: u64 = 2;
    pub const WRAP: u64 = 4;
}

/// What a bit op did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitsOutcome {
    /// `None`: the bin is unchanged. `Some(bytes)`: the bin's new BLOB value.
    pub new_value: Option<Vec<u8>>,
    /// The value returned to the client for this op, as (particle type, bytes), if any.
    pub result: Option<(u8, Vec<u8>)>,
}

/// How one argument is read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// A byte offset, stored in bits.
    ByteOffset,
    /// A bit offset.
    Offset,
    /// A byte size of at least 1, stored in bits.
    ByteSize,
    /// A byte size that may be 0, stored in bits.
    ByteSizeOrZero,
    /// A bit size of at least 1.
    Size,
    /// A bit size from 1 to 64.
    IntSize,
    /// A particle-tagged byte string covering `size` bits (or setting it when 0).
    Buf,
    /// The policy write flags.
    Flags,
    /// A shift distance in bits.
    Shift,
    /// An integer operand (any msgpack integer, taken as 64 bits).
    Value,
    /// The bit value a scan looks for.
    Bool,
    ResizeFlags,
    ArithmeticFlags,
    GetIntFlags,
}

/// An op's argument list and the policy flags it accepts.
struct Def {
    allowed_flags: u64,
    min_args: usize,
    args: &'static [Arg],
}

fn def(code_: u64, modify: bool) -> Option<Def> {
    use flag::{CREATE_ONLY, NO_FAIL, PARTIAL, UPDATE_ONLY};
    use Arg::*;
    const RANGE: u64 = UPDATE_ONLY | NO_FAIL | PARTIAL;
    const INTEGER: u64 = UPDATE_ONLY | NO_FAIL;
    const CREATE: u64 = CREATE_ONLY | UPDATE_ONLY | NO_FAIL;
    let d = |allowed_flags: u64, min_args: usize, args: &'static [Arg]| {
        Some(Def {
            allowed_flags,
            min_args,
            args,
        })
    };
    match (modify, code_) {
        (true, code::RESIZE) => d(CREATE, 1, &[ByteSizeOrZero, Flags, ResizeFlags]),
        (true, code::INSERT) => d(CREATE, 2, &[ByteOffset, Buf, Flags]),
        (true, code::REMOVE) => d(
            UPDATE_ONLY | NO_FAIL | PARTIAL,
            2,
            &[ByteOffset, ByteSize, Flags],
        ),
        (true, code::SET | code::OR | code::XOR | code::AND) => {
            d(RANGE, 3, &[Offset, Size, Buf, Flags])
        }
        (true, code::NOT) => d(RANGE, 2, &[Offset, Size, Flags]),
        (true, code::LSHIFT | code::RSHIFT) => d(RANGE, 3, &[Offset, Size, Shift, Flags]),
        (true, code::ADD | code::SUBTRACT) => d(
            INTEGER,
            3,
            &[Offset, IntSize, Value, Flags, ArithmeticFlags],
        ),
        (true, code::SET_INT) => d(INTEGER, 3, &[Offset, IntSize, Value, Flags]),
        (false, code::GET | code::COUNT) => d(0, 2, &[Offset, Size]),
        (false, code::LSCAN | code::RSCAN) => d(0, 3, &[Offset, Size, Bool]),
        (false, code::GET_INT) => d(0, 2, &[Offset, IntSize, GetIntFlags]),
        _ => None,
    }
}

/// A parsed op. Offsets and sizes are in bits.
#[derive(Debug, Default)]
struct Op<'a> {
    code: u64,
    offset: i64,
    size: u64,
    buf: &'a [u8],
    value: u64,
    flags: u64,
    subflags: u64,
}

fn bad(what: &'static str) -> DataError {
    DataError::Parameter(what)
}

/// msgpack_get_int64: any integer that fits 64 signed bits.
fn read_i64(r: &mut Reader<'_>) -> Result<i64, DataError> {
    match r.head() {
        Ok(Head::Int(i)) => i64::try_from(i).map_err(|_| bad("bit op integer out of range")),
        _ => Err(bad("bit op argument must be an integer")),
    }
}

/// msgpack_get_uint64: any integer, a negative one taken as its 64-bit two's complement.
fn read_u64(r: &mut Reader<'_>) -> Result<u64, DataError> {
    match r.head() {
        Ok(Head::Int(i)) => match (u64::try_from(i), i64::try_from(i)) {
            (Ok(u), _) => Ok(u),
            (_, Ok(s)) => Ok(s as u64),
            _ => Err(bad("bit op integer out of range")),
        },
        _ => Err(bad("bit op argument must be an integer")),
    }
}

fn parse(payload: &[u8], modify: bool) -> Result<Op<'_>, DataError> {
    let mut r = Reader::new(payload);
    let n = r
        .array_len()
        .map_err(|_| bad("bit op payload must be a msgpack array"))?;
    if n == 0 {
        return Err(bad("bit op payload is empty"));
    }
    let code_ = read_u64(&mut r)?;
    let def = def(code_, modify).ok_or(bad("unknown bit op code for this op type"))?;
    let n_args = n - 1;
    if n_args < def.min_args || n_args > def.args.len() {
        return Err(bad("wrong number of bit op arguments"));
    }
    let mut op = Op {
        code: code_,
        ..Op::default()
    };
    for arg in def.args.iter().take(n_args) {
        parse_arg(&mut r, *arg, &def, &mut op)?;
    }
    Ok(op)
}

fn parse_arg<'a>(
    r: &mut Reader<'a>,
    arg: Arg,
    def: &Def,
    op: &mut Op<'a>,
) -> Result<(), DataError> {
    match arg {
        Arg::ByteOffset => {
            let o = read_i64(r)?;
            if o.unsigned_abs() > BLOB_SIZE_MAX_BYTES {
                return Err(bad("bit op byte offset too large"));
            }
            op.offset = o * 8;
        }
        Arg::Offset => {
            let o = read_i64(r)?;
            if o.unsigned_abs() > BITS_MAX {
                return Err(bad("bit op offset too large"));
            }
            op.offset = o;
        }
        Arg::ByteSize | Arg::ByteSizeOrZero => {
            let s = read_u64(r)?;
            if s == 0 && arg == Arg::ByteSize {
                return Err(bad("bit op size may not be 0"));
            }
            if s > BLOB_SIZE_MAX_BYTES {
                return Err(bad("bit op byte size too large"));
            }
            op.size = s * 8;
        }
        Arg::Size => {
            let s = read_u64(r)?;
            if s == 0 {
                return Err(bad("bit op size may not be 0"));
            }
            if s > BITS_MAX {
                return Err(bad("bit op size too large"));
            }
            op.size = s;
        }
        Arg::IntSize => {
            let s = read_u64(r)?;
            if s == 0 || s > 64 {
                return Err(bad("bit op integer size must be 1 to 64"));
            }
            op.size = s;
        }
        Arg::Buf => {
            let data = match r.head() {
                Ok(Head::Str(d) | Head::Bin(d)) => d,
                _ => return Err(bad("bit op value must be a blob")),
            };
            // The first byte is the particle tag, which the server ignores.
            let bytes = match data.split_first() {
                Some((_, rest)) if !rest.is_empty() => rest,
                _ => return Err(bad("bit op value is empty")),
            };
            let bits = u64::try_from(bytes.len())
                .unwrap_or(u64::MAX)
                .saturating_mul(8);
            if op.size == 0 {
                op.size = bits;
            } else if bits < op.size {
                return Err(bad("bit op value shorter than its size"));
            }
            op.buf = bytes;
        }
        Arg::Flags => {
            let f = read_u64(r)?;
            if f & !def.allowed_flags != 0 {
                return Err(bad("bit op flags not allowed for this op"));
            }
            if f & flag::CREATE_ONLY != 0 && f & flag::UPDATE_ONLY != 0 {
                return Err(bad("bit op flags create-only and update-only together"));
            }
            op.flags = f;
        }
        Arg::Shift => {
            let v = read_u64(r)?;
            if v > BITS_MAX {
                return Err(bad("bit op shift too large"));
            }
            op.value = v;
        }
        Arg::Value => op.value = read_u64(r)?,
        Arg::Bool => {
            op.value = match r.head() {
                Ok(Head::Bool(b)) => u64::from(b),
                _ => return Err(bad("bit scan value must be a boolean")),
            }
        }
        Arg::ResizeFlags => {
            let f = read_u64(r)?;
            let all = resize::FROM_FRONT | resize::GROW_ONLY | resize::SHRINK_ONLY;
            if f & !all != 0
                || f & (resize::GROW_ONLY | resize::SHRINK_ONLY)
                    == resize::GROW_ONLY | resize::SHRINK_ONLY
            {
                return Err(bad("bad resize flags"));
            }
            op.subflags = f;
        }
        Arg::ArithmeticFlags => {
            let f = read_u64(r)?;
            let all = int::SIGNED | int::SATURATE | int::WRAP;
            if f & !all != 0 || f & (int::SATURATE | int::WRAP) == int::SATURATE | int::WRAP {
                return Err(bad("bad overflow action"));
            }
            op.subflags = f;
        }
        Arg::GetIntFlags => {
            let f = read_u64(r)?;
            if f & !int::SIGNED != 0 {
                return Err(bad("bad get-int flags"));
            }
            op.subflags = f;
        }
    }
    Ok(())
}

/// Applies one bit op to a bin's current value (`None` when the bin does not exist).
/// `modify` is true for op type BITS_MODIFY, false for BITS_READ.
pub fn apply(
    modify: bool,
    bin: Option<(u8, &[u8])>,
    payload: &[u8],
) -> Result<BitsOutcome, DataError> {
    let mut op = parse(payload, modify)?;
    let no_fail = op.flags & flag::NO_FAIL != 0;
    // A failure the NO_FAIL flag turns into "leave the bin as it is".
    let soft = |e: DataError| {
        if no_fail {
            Ok(BitsOutcome::default())
        } else {
            Err(e)
        }
    };
    let old: &[u8] = match bin {
        Some((t, bytes)) => {
            if modify && op.flags & flag::CREATE_ONLY != 0 {
                return soft(DataError::BinExists);
            }
            if t != particle::BLOB {
                return Err(DataError::BinType);
            }
            bytes
        }
        None if !modify => return Ok(BitsOutcome::default()),
        None => {
            let creates = matches!(op.code, code::INSERT | code::RESIZE);
            if !creates || op.flags & flag::UPDATE_ONLY != 0 {
                return soft(DataError::BinNotFound);
            }
            if op.offset < 0 {
                return Err(bad("negative offset on a missing bin"));
            }
            &[]
        }
    };
    let old_bits = u64::try_from(old.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    if op.offset < 0 {
        if op.offset.unsigned_abs() > old_bits {
            return Err(bad("negative offset before the start of the blob"));
        }
        op.offset += i64::try_from(old_bits).map_err(|_| bad("blob too large"))?;
    }
    // Non-negative from here on.
    let offset = op.offset.unsigned_abs();
    // The size limit is checked before anything is allocated, and NO_FAIL never hides it.
    let grown = match op.code {
        code::RESIZE => op.size / 8,
        code::INSERT => (offset / 8)
            .max(u64::try_from(old.len()).unwrap_or(u64::MAX))
            .saturating_add(u64::try_from(op.buf.len()).unwrap_or(u64::MAX)),
        _ => 0,
    };
    if grown >= BLOB_SIZE_MAX_BYTES {
        return Err(bad("blob would grow too large"));
    }
    let new_value = match op.code {
        code::RESIZE => resize_op(&op, old),
        code::INSERT => insert_op(&op, offset, old),
        code::REMOVE => remove_op(&op, offset, old),
        code::SET | code::OR | code::XOR | code::AND | code::NOT | code::LSHIFT | code::RSHIFT => {
            range_op(&op, offset, old)
        }
        code::ADD | code::SUBTRACT | code::SET_INT => integer_op(&op, offset, old),
        _ => return read_op(&op, offset, old),
    };
    match new_value {
        Ok(new_value) => Ok(BitsOutcome {
            new_value,
            result: None,
        }),
        Err(e) => soft(e),
    }
}

fn to_usize(n: u64) -> Result<usize, DataError> {
    usize::try_from(n).map_err(|_| bad("bit op size too large"))
}

fn resize_op(op: &Op<'_>, old: &[u8]) -> Result<Option<Vec<u8>>, DataError> {
    let new_len = to_usize(op.size / 8)?;
    let from_front = op.subflags & resize::FROM_FRONT != 0;
    if new_len < old.len() {
        if op.subflags & resize::GROW_ONLY != 0 {
            return Err(bad("resize would shrink with grow-only"));
        }
        let cut = old.len() - new_len;
        let kept = if from_front {
            &old[cut..]
        } else {
            &old[..new_len]
        };
        Ok(Some(kept.to_vec()))
    } else if new_len > old.len() {
        if op.subflags & resize::SHRINK_ONLY != 0 {
            return Err(bad("resize would grow with shrink-only"));
        }
        let mut v = Vec::with_capacity(new_len);
        if from_front {
            v.resize(new_len - old.len(), 0);
            v.extend_from_slice(old);
        } else {
            v.extend_from_slice(old);
            v.resize(new_len, 0);
        }
        Ok(Some(v))
    } else {
        // Already that size: nothing to write (and a missing bin stays missing).
        Ok(None)
    }
}

fn insert_op(op: &Op<'_>, offset: u64, old: &[u8]) -> Result<Option<Vec<u8>>, DataError> {
    let at = to_usize(offset / 8)?;
    let mut v = Vec::with_capacity(at.max(old.len()).saturating_add(op.buf.len()));
    if at >= old.len() {
        v.extend_from_slice(old);
        v.resize(at, 0);
        v.extend_from_slice(op.buf);
    } else {
        v.extend_from_slice(&old[..at]);
        v.extend_from_slice(op.buf);
        v.extend_from_slice(&old[at..]);
    }
    Ok(Some(v))
}

fn remove_op(op: &Op<'_>, offset: u64, old: &[u8]) -> Result<Option<Vec<u8>>, DataError> {
    let at = to_usize(offset / 8)?;
    if at >= old.len() {
        return Err(bad("remove starts past the end of the blob"));
    }
    let n = to_usize(op.size / 8)?;
    let end = match at.checked_add(n) {
        Some(end) if end <= old.len() => end,
        _ if op.flags & flag::PARTIAL != 0 => old.len(),
        _ => {
            return Err(bad(
                "remove extends past the end of the blob without partial",
            ))
        }
    };
    let mut v = Vec::with_capacity(old.len() - (end - at));
    v.extend_from_slice(&old[..at]);
    v.extend_from_slice(&old[end..]);
    Ok(Some(v))
}

/// Checks that `[offset, offset + size)` starts inside the blob and, unless `partial`, ends
/// inside it; returns the size clipped to the blob.
fn check_range(offset: u64, size: u64, old_bits: u64, partial: bool) -> Result<u64, DataError> {
    if offset / 8 >= old_bits / 8 {
        return Err(DataError::OpNotApplicable(
            "bit range starts past the end of the blob",
        ));
    }
    if offset.saturating_add(size) > old_bits {
        if !partial {
            return Err(DataError::OpNotApplicable(
                "bit range extends past the end of the blob",
            ));
        }
        return Ok(old_bits - offset);
    }
    Ok(size)
}

fn bit(b: &[u8], i: u64) -> bool {
    usize::try_from(i / 8)
        .ok()
        .and_then(|ix| b.get(ix))
        .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
}

fn put_bit(b: &mut [u8], i: u64, on: bool) {
    if let Some(byte) = usize::try_from(i / 8).ok().and_then(|ix| b.get_mut(ix)) {
        let m = 0x80u8 >> (i % 8);
        if on {
            *byte |= m;
        } else {
            *byte &= !m;
        }
    }
}

fn range_op(op: &Op<'_>, offset: u64, old: &[u8]) -> Result<Option<Vec<u8>>, DataError> {
    let old_bits = u64::try_from(old.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    let size = check_range(offset, op.size, old_bits, op.flags & flag::PARTIAL != 0)?;
    let mut v = old.to_vec();
    match op.code {
        code::LSHIFT | code::RSHIFT => {
            // Bits move inside the range only: `old` still holds the unshifted range.
            let n = op.value;
            for i in 0..size {
                let from = if op.code == code::LSHIFT {
                    i.checked_add(n).filter(|&j| j < size)
                } else {
                    i.checked_sub(n)
                };
                let on = from.is_some_and(|j| bit(old, offset + j));
                put_bit(&mut v, offset + i, on);
            }
        }
        _ => {
            for i in 0..size {
                let cur = bit(old, offset + i);
                let arg = bit(op.buf, i);
                let on = match op.code {
                    code::SET => arg,
                    code::OR => cur | arg,
                    code::XOR => cur ^ arg,
                    code::AND => cur & arg,
                    _ => !cur,
                };
                put_bit(&mut v, offset + i, on);
            }
        }
    }
    Ok(Some(v))
}

/// The unsigned integer held by `size` (1..=64) bits at `offset`.
fn load(b: &[u8], offset: u64, size: u64) -> u64 {
    (0..size).fold(0u64, |acc, i| (acc << 1) | u64::from(bit(b, offset + i)))
}

fn store(b: &mut [u8], offset: u64, size: u64, value: u64) {
    for i in 0..size {
        put_bit(b, offset + i, (value >> (size - 1 - i)) & 1 != 0);
    }
}

/// Sign-extends the low `bits` (1..=64) bits of `v`.
fn signed(v: u64, bits: u64) -> i64 {
    let leading = 64 - bits;
    ((v << leading) as i64) >> leading
}

/// The server's signed overflow rule: operands of one sign whose sum has the other sign
/// overflowed (a zero sum does not count).
fn signed_overflow(bits: u64, saturate: bool, load: u64, value: u64, sum: u64) -> Option<u64> {
    let mask = u64::MAX >> (64 - bits);
    let (s_sum, s_load, s_value) = (signed(sum, bits), signed(load, bits), signed(value, bits));
    if s_load < 0 && s_value < 0 && s_sum > 0 {
        // The most negative value.
        saturate.then_some(1u64 << (bits - 1))
    } else if s_load > 0 && s_value > 0 && s_sum < 0 {
        // The most positive value.
        saturate.then_some(mask >> 1)
    } else {
        Some(sum)
    }
}

fn integer_op(op: &Op<'_>, offset: u64, old: &[u8]) -> Result<Option<Vec<u8>>, DataError> {
    let old_bits = u64::try_from(old.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    let size = check_range(offset, op.size, old_bits, false)?;
    let mask = u64::MAX >> (64 - size);
    let value = op.value & mask;
    let is_signed = op.subflags & int::SIGNED != 0;
    let wrap = op.subflags & int::WRAP != 0;
    let saturate = op.subflags & int::SATURATE != 0;
    let current = load(old, offset, size);
    let overflow = DataError::OpNotApplicable("bit integer overflow");
    let result = match op.code {
        code::ADD => {
            let sum = current.wrapping_add(value) & mask;
            if wrap {
                sum
            } else if is_signed {
                signed_overflow(size, saturate, current, value, sum).ok_or(overflow)?
            } else if sum < current {
                if saturate {
                    mask
                } else {
                    return Err(overflow);
                }
            } else {
                sum
            }
        }
        code::SUBTRACT => {
            let diff = current.wrapping_sub(value) & mask;
            if wrap {
                diff
            } else if is_signed {
                signed_overflow(size, saturate, current, value.wrapping_neg(), diff)
                    .ok_or(overflow)?
            } else if diff > current {
                if saturate {
                    0
                } else {
                    return Err(overflow);
                }
            } else {
                diff
            }
        }
        _ => value,
    };
    let mut v = old.to_vec();
    store(&mut v, offset, size, result);
    Ok(Some(v))
}

fn integer_result(i: i64) -> BitsOutcome {
    BitsOutcome {
        new_value: None,
        result: Some((particle::INTEGER, i.to_be_bytes().to_vec())),
    }
}

fn read_op(op: &Op<'_>, offset: u64, old: &[u8]) -> Result<BitsOutcome, DataError> {
    let old_bits = u64::try_from(old.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    let size = check_range(offset, op.size, old_bits, false)?;
    let want = op.value == 1;
    Ok(match op.code {
        code::GET => {
            let mut out = vec![0u8; to_usize(size.div_ceil(8))?];
            for i in 0..size {
                put_bit(&mut out, i, bit(old, offset + i));
            }
            BitsOutcome {
                new_value: None,
                result: Some((particle::BLOB, out)),
            }
        }
        code::COUNT => {
            let n = (0..size).filter(|&i| bit(old, offset + i)).count();
            integer_result(i64::try_from(n).unwrap_or(i64::MAX))
        }
        code::LSCAN => {
            let at = (0..size).find(|&i| bit(old, offset + i) == want);
            integer_result(at.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1))
        }
        code::RSCAN => {
            let at = (0..size).rev().find(|&i| bit(old, offset + i) == want);
            integer_result(at.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1))
        }
        _ => {
            let v = load(old, offset, size);
            if op.subflags & int::SIGNED != 0 {
                integer_result(signed(v, size))
            } else {
                integer_result(v as i64)
            }
        }
    })
}
