//! The as_msg message: a 22-byte header, then fields (`u32 size`, `u8 type`, data), then ops
//! (`u32 size`, `u8 op`, `u8 particle type`, `u8 flags`, `u8 name length`, name, value).
//!
//! Decoding borrows from the request buffer and allocates nothing; fields are located by type
//! into [`Fields`], ops are validated once and then iterated. [`MsgWriter`] builds replies.

use crate::frame::{self, MessageType};
use crate::DecodeError;

/// Length of the as_msg header.
pub const MSG_HEADER_LEN: usize = 22;
/// Length of a field header (size + type).
pub const FIELD_HEADER_LEN: usize = 5;
/// Length of an op header (size + op + particle + flags + name length).
pub const OP_HEADER_LEN: usize = 8;

/// info1 bits.
pub mod info1 {
    pub const READ: u8 = 0x01;
    pub const GET_ALL: u8 = 0x02;
    pub const SHORT_QUERY: u8 = 0x04;
    pub const BATCH: u8 = 0x08;
    pub const XDR: u8 = 0x10;
    pub const NOBINDATA: u8 = 0x20;
    pub const READ_MODE_AP_ALL: u8 = 0x40;
    pub const COMPRESS_RESPONSE: u8 = 0x80;
}

/// info2 bits.
pub mod info2 {
    pub const WRITE: u8 = 0x01;
    pub const DELETE: u8 = 0x02;
    pub const GENERATION: u8 = 0x04;
    pub const GENERATION_GT: u8 = 0x08;
    pub const DURABLE_DELETE: u8 = 0x10;
    pub const CREATE_ONLY: u8 = 0x20;
    pub const RELAX_AP_LONG_QUERY: u8 = 0x40;
    pub const RESPOND_ALL_OPS: u8 = 0x80;
}

/// info3 bits.
pub mod info3 {
    pub const LAST: u8 = 0x01;
    pub const COMMIT_MASTER: u8 = 0x02;
    pub const PARTITION_DONE: u8 = 0x04;
    pub const UPDATE_ONLY: u8 = 0x08;
    pub const CREATE_OR_REPLACE: u8 = 0x10;
    pub const REPLACE_ONLY: u8 = 0x20;
}

/// Field type ids.
pub mod field {
    pub const NAMESPACE: u8 = 0;
    pub const SET: u8 = 1;
    pub const KEY: u8 = 2;
    pub const RECORD_VERSION: u8 = 3;
    pub const DIGEST: u8 = 4;
    pub const MRT_ID: u8 = 5;
    pub const MRT_DEADLINE: u8 = 6;
    pub const TRID: u8 = 7;
    pub const SOCKET_TIMEOUT: u8 = 9;
    pub const RECS_PER_SEC: u8 = 10;
    pub const PID_ARRAY: u8 = 11;
    pub const DIGEST_ARRAY: u8 = 12;
    pub const MAX_RECORDS: u8 = 13;
    pub const BVAL_ARRAY: u8 = 15;
    pub const INDEX_NAME: u8 = 21;
    pub const INDEX_RANGE: u8 = 22;
    pub const INDEX_CONTEXT: u8 = 23;
    pub const INDEX_EXPRESSION: u8 = 24;
    pub const INDEX_TYPE: u8 = 26;
    pub const UDF_FILENAME: u8 = 30;
    pub const UDF_FUNCTION: u8 = 31;
    pub const UDF_ARGLIST: u8 = 32;
    pub const UDF_OP: u8 = 33;
    pub const QUERY_BINLIST: u8 = 40;
    pub const BATCH_INDEX: u8 = 41;
    pub const BATCH_INDEX_WITH_SET: u8 = 42;
    pub const FILTER_EXP: u8 = 43;
}

/// Op type ids.
pub mod op {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const CDT_READ: u8 = 3;
    pub const CDT_MODIFY: u8 = 4;
    pub const INCR: u8 = 5;
    pub const EXP_READ: u8 = 7;
    pub const EXP_MODIFY: u8 = 8;
    pub const APPEND: u8 = 9;
    pub const PREPEND: u8 = 10;
    pub const TOUCH: u8 = 11;
    pub const BITS_READ: u8 = 12;
    pub const BITS_MODIFY: u8 = 13;
    pub const DELETE_ALL: u8 = 14;
    pub const HLL_READ: u8 = 15;
    pub const HLL_MODIFY: u8 = 16;
}

/// The 22-byte as_msg header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgHeader {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub info4: u8,
    pub result_code: u8,
    pub generation: u32,
    pub record_ttl: u32,
    pub transaction_ttl: u32,
    pub n_fields: u16,
    pub n_ops: u16,
}

impl MsgHeader {
    /// Decodes the header from the first 22 bytes of `b` (header_sz must be 22).
    pub fn decode(b: &[u8]) -> Result<MsgHeader, DecodeError> {
        let h = b
            .get(..MSG_HEADER_LEN)
            .ok_or(DecodeError::Truncated("as_msg header"))?;
        if usize::from(h[0]) != MSG_HEADER_LEN {
            return Err(DecodeError::Malformed("as_msg header size"));
        }
        Ok(MsgHeader {
            info1: h[1],
            info2: h[2],
            info3: h[3],
            info4: h[4],
            result_code: h[5],
            generation: be32(&h[6..10]),
            record_ttl: be32(&h[10..14]),
            transaction_ttl: be32(&h[14..18]),
            n_fields: u16::from_be_bytes([h[18], h[19]]),
            n_ops: u16::from_be_bytes([h[20], h[21]]),
        })
    }

    /// The encoded header.
    pub fn to_bytes(&self) -> [u8; MSG_HEADER_LEN] {
        let mut b = [0u8; MSG_HEADER_LEN];
        b[0] = MSG_HEADER_LEN as u8;
        b[1..6].copy_from_slice(&[
            self.info1,
            self.info2,
            self.info3,
            self.info4,
            self.result_code,
        ]);
        b[6..10].copy_from_slice(&self.generation.to_be_bytes());
        b[10..14].copy_from_slice(&self.record_ttl.to_be_bytes());
        b[14..18].copy_from_slice(&self.transaction_ttl.to_be_bytes());
        b[18..20].copy_from_slice(&self.n_fields.to_be_bytes());
        b[20..22].copy_from_slice(&self.n_ops.to_be_bytes());
        b
    }

    /// Appends the encoded header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The fields of a message, located by type. Unknown field types are skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub namespace: Option<&'a [u8]>,
    pub set: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub digest: Option<&'a [u8]>,
    pub trid: Option<&'a [u8]>,
    pub socket_timeout: Option<&'a [u8]>,
    pub recs_per_sec: Option<&'a [u8]>,
    pub pid_array: Option<&'a [u8]>,
    pub digest_array: Option<&'a [u8]>,
    pub max_records: Option<&'a [u8]>,
    pub bval_array: Option<&'a [u8]>,
    pub index_name: Option<&'a [u8]>,
    pub index_range: Option<&'a [u8]>,
    pub index_expression: Option<&'a [u8]>,
    pub udf_filename: Option<&'a [u8]>,
    pub udf_function: Option<&'a [u8]>,
    pub udf_arglist: Option<&'a [u8]>,
    pub udf_op: Option<&'a [u8]>,
    pub batch_index: Option<&'a [u8]>,
    pub batch_index_with_set: Option<&'a [u8]>,
    pub filter_exp: Option<&'a [u8]>,
    pub mrt_id: Option<&'a [u8]>,
    pub record_version: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Reads `n` fields from the start of `b`; returns them and the number of bytes used.
    pub fn decode(b: &'a [u8], n: u16) -> Result<(Fields<'a>, usize), DecodeError> {
        let mut f = Fields::default();
        let mut at = 0usize;
        for _ in 0..n {
            let hdr = b
                .get(at..at + FIELD_HEADER_LEN)
                .ok_or(DecodeError::Truncated("field header"))?;
            let size = be32(&hdr[..4]) as usize;
            if size == 0 {
                return Err(DecodeError::Malformed("field size 0"));
            }
            let data_len = size - 1;
            let start = at + FIELD_HEADER_LEN;
            let data = b
                .get(
                    start
                        ..start
                            .checked_add(data_len)
                            .ok_or(DecodeError::Malformed("field size"))?,
                )
                .ok_or(DecodeError::Truncated("field data"))?;
            f.set_field(hdr[4], data);
            at = start + data_len;
        }
        Ok((f, at))
    }

    fn set_field(&mut self, t: u8, data: &'a [u8]) {
        let slot = match t {
            field::NAMESPACE => &mut self.namespace,
            field::SET => &mut self.set,
            field::KEY => &mut self.key,
            field::DIGEST => &mut self.digest,
            field::TRID => &mut self.trid,
            field::SOCKET_TIMEOUT => &mut self.socket_timeout,
            field::RECS_PER_SEC => &mut self.recs_per_sec,
            field::PID_ARRAY => &mut self.pid_array,
            field::DIGEST_ARRAY => &mut self.digest_array,
            field::MAX_RECORDS => &mut self.max_records,
            field::BVAL_ARRAY => &mut self.bval_array,
            field::INDEX_NAME => &mut self.index_name,
            field::INDEX_RANGE => &mut self.index_range,
            field::INDEX_EXPRESSION => &mut self.index_expression,
            field::UDF_FILENAME => &mut self.udf_filename,
            field::UDF_FUNCTION => &mut self.udf_function,
            field::UDF_ARGLIST => &mut self.udf_arglist,
            field::UDF_OP => &mut self.udf_op,
            field::BATCH_INDEX => &mut self.batch_index,
            field::BATCH_INDEX_WITH_SET => &mut self.batch_index_with_set,
            field::FILTER_EXP => &mut self.filter_exp,
            field::MRT_ID => &mut self.mrt_id,
            field::RECORD_VERSION => &mut self.record_version,
            _ => return,
        };
        *slot = Some(data);
    }

    /// Decodes a big-endian unsigned field of 1..=8 bytes.
    pub fn uint(data: Option<&[u8]>) -> Option<u64> {
        let d = data?;
        if d.is_empty() || d.len() > 8 {
            return None;
        }
        Some(d.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

/// One op, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op<'a> {
    pub op_type: u8,
    pub particle_type: u8,
    pub flags: u8,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A validated sequence of ops.
#[derive(Debug, Clone, Copy)]
pub struct Ops<'a> {
    bytes: &'a [u8],
    count: u16,
}

impl<'a> Ops<'a> {
    /// Validates `n` ops at the start of `b`; returns them and the bytes used.
    pub fn decode(b: &'a [u8], n: u16) -> Result<(Ops<'a>, usize), DecodeError> {
        let mut at = 0usize;
        for _ in 0..n {
            let (_, used) = decode_op(&b[at..])?;
            at += used;
        }
        Ok((
            Ops {
                bytes: &b[..at],
                count: n,
            },
            at,
        ))
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True when there are no ops.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the ops in order.
    pub fn iter(&self) -> OpIter<'a> {
        OpIter {
            bytes: self.bytes,
            left: self.count,
        }
    }
}

/// Iterator over validated ops.
pub struct OpIter<'a> {
    bytes: &'a [u8],
    left: u16,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Op<'a>;
    fn next(&mut self) -> Option<Op<'a>> {
        if self.left == 0 {
            return None;
        }
        // Already validated by Ops::decode; a failure here would mean a bug, so stop cleanly.
        let (op, used) = decode_op(self.bytes).ok()?;
        self.bytes = &self.bytes[used..];
        self.left -= 1;
        Some(op)
    }
}

fn decode_op(b: &[u8]) -> Result<(Op<'_>, usize), DecodeError> {
    let hdr = b
        .get(..OP_HEADER_LEN)
        .ok_or(DecodeError::Truncated("op header"))?;
    let size = be32(&hdr[..4]) as usize;
    let name_len = usize::from(hdr[7]);
    if size < 4 + name_len {
        return Err(DecodeError::Malformed("op size smaller than its name"));
    }
    let total = size
        .checked_add(4)
        .ok_or(DecodeError::Malformed("op size"))?;
    let body = b.get(..total).ok_or(DecodeError::Truncated("op"))?;
    Ok((
        Op {
            op_type: hdr[4],
            particle_type: hdr[5],
            flags: hdr[6],
            name: &body[OP_HEADER_LEN..OP_HEADER_LEN + name_len],
            value: &body[OP_HEADER_LEN + name_len..],
        },
        total,
    ))
}

/// A decoded as_msg request.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub header: MsgHeader,
    pub fields: Fields<'a>,
    pub ops: Ops<'a>,
}

impl<'a> Msg<'a> {
    /// Decodes a whole as_msg body (everything after the proto header). Bytes left over after
    /// the declared ops are an error.
    pub fn decode(body: &'a [u8]) -> Result<Msg<'a>, DecodeError> {
        let (msg, used) = Msg::decode_prefix(body)?;
        if used != body.len() {
            return Err(DecodeError::Malformed("bytes after the last op"));
        }
        Ok(msg)
    }

    /// Decodes one as_msg from the start of `b` (multi-record streams concatenate them) and
    /// returns it with the number of bytes it spans.
    pub fn decode_prefix(b: &'a [u8]) -> Result<(Msg<'a>, usize), DecodeError> {
        let header = MsgHeader::decode(b)?;
        let rest = &b[MSG_HEADER_LEN..];
        let (fields, f_used) = Fields::decode(rest, header.n_fields)?;
        let (ops, o_used) = Ops::decode(&rest[f_used..], header.n_ops)?;
        Ok((
            Msg {
                header,
                fields,
                ops,
            },
            MSG_HEADER_LEN + f_used + o_used,
        ))
    }
}

/// Builds reply messages into a byte buffer. A reply is one proto frame holding one or more
/// as_msg records (several for batch and scan streams).
#[derive(Debug, Default)]
pub struct MsgWriter {
    buf: Vec<u8>,
    frame_at: Option<usize>,
}

impl MsgWriter {
    /// A writer with a reusable buffer.
    pub fn new() -> MsgWriter {
        MsgWriter::default()
    }

    /// Starts a proto frame (type 3) if none is open.
    pub fn open_frame(&mut self) {
        if self.frame_at.is_none() {
            self.frame_at = Some(frame::begin_frame(&mut self.buf));
        }
    }

    /// Closes the open frame, patching its length.
    pub fn close_frame(&mut self) {
        if let Some(at) = self.frame_at.take() {
            frame::finish_frame(&mut self.buf, at, MessageType::AsMsg);
        }
    }

    /// Appends one as_msg header (opening a frame if needed). Fields and ops follow via
    /// [`MsgWriter::field`] and [`MsgWriter::op`]; the counts must match what follows.
    pub fn header(&mut self, h: &MsgHeader) {
        self.open_frame();
        h.encode_into(&mut self.buf);
    }

    /// Appends a record header and returns its offset, so counts and metadata known only
    /// later can be set with [`MsgWriter::patch_header`].
    pub fn begin_record(&mut self, h: &MsgHeader) -> usize {
        self.open_frame();
        let at = self.buf.len();
        h.encode_into(&mut self.buf);
        at
    }

    /// Rewrites the record header at `at` (an offset from [`MsgWriter::begin_record`]).
    pub fn patch_header(&mut self, at: usize, h: &MsgHeader) {
        if let Some(dst) = self.buf.get_mut(at..at + MSG_HEADER_LEN) {
            dst.copy_from_slice(&h.to_bytes());
        }
    }

    /// Drops everything written after offset `at` (used to replace a half-written record by
    /// an error record).
    pub fn truncate(&mut self, at: usize) {
        self.buf.truncate(at);
    }

    /// Appends a field.
    pub fn field(&mut self, field_type: u8, data: &[u8]) {
        self.buf
            .extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
        self.buf.push(field_type);
        self.buf.extend_from_slice(data);
    }

    /// Appends a field whose data is a particle type byte then `data` (the KEY field).
    pub fn key_field(&mut self, particle_type: u8, data: &[u8]) {
        self.buf
            .extend_from_slice(&((data.len() + 2) as u32).to_be_bytes());
        self.buf.push(field::KEY);
        self.buf.push(particle_type);
        self.buf.extend_from_slice(data);
    }

    /// Appends an op carrying a value.
    pub fn op(&mut self, op_type: u8, particle_type: u8, name: &[u8], value: &[u8]) {
        let size = 4 + name.len() + value.len();
        self.buf.extend_from_slice(&(size as u32).to_be_bytes());
        self.buf
            .extend_from_slice(&[op_type, particle_type, 0, name.len() as u8]);
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(value);
    }

    /// Appends a simple one-record reply with no fields and no ops, as its own frame.
    pub fn simple_reply(&mut self, result_code: u8, generation: u32, void_time: u32) {
        self.header(&MsgHeader {
            result_code,
            generation,
            record_ttl: void_time,
            ..MsgHeader::default()
        });
        self.close_frame();
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far (frames must be closed first).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frame_at = None;
    }

    /// Direct access for code that patches counts after writing.
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET request from the protocol notes, §6.3.
    fn get_request() -> Vec<u8> {
        let mut b = vec![
            0x16, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 3, 0, 0,
        ];
        b.extend_from_slice(&[0, 0, 0, 5, 0]);
        b.extend_from_slice(b"test");
        b.extend_from_slice(&[0, 0, 0, 5, 1]);
        b.extend_from_slice(b"demo");
        b.extend_from_slice(&[0, 0, 0, 0x15, 4]);
        b.extend_from_slice(&[0xb7; 20]);
        b
    }

    #[test]
    fn decodes_a_get() {
        let b = get_request();
        let m = Msg::decode(&b).expect("valid");
        assert_eq!(m.header.info1, info1::READ | info1::GET_ALL);
        assert_eq!(m.header.transaction_ttl, 1000);
        assert_eq!(m.fields.namespace, Some(&b"test"[..]));
        assert_eq!(m.fields.set, Some(&b"demo"[..]));
        assert_eq!(m.fields.digest.map(<[u8]>::len), Some(20));
        assert!(m.ops.is_empty());
    }

    #[test]
    fn rejects_overruns() {
        let mut b = get_request();
        b.truncate(b.len() - 1);
        assert!(Msg::decode(&b).is_err());
        let mut b = get_request();
        b[21] = 1; // claims one op that is not there
        assert!(Msg::decode(&b).is_err());
        let mut b = get_request();
        b.push(0); // trailing garbage
        assert!(Msg::decode(&b).is_err());
        let mut b = get_request();
        b[0] = 20;
        assert!(Msg::decode(&b).is_err());
    }

    #[test]
    fn ops_round_trip_through_the_writer() {
        let mut w = MsgWriter::new();
        w.header(&MsgHeader {
            n_ops: 2,
            n_fields: 1,
            ..MsgHeader::default()
        });
        w.field(field::NAMESPACE, b"test");
        w.op(
            op::WRITE,
            crate::particle::INTEGER,
            b"a",
            &7i64.to_be_bytes(),
        );
        w.op(op::READ, 0, b"bb", b"");
        w.close_frame();
        let bytes = w.bytes();
        assert_eq!(bytes[0], 2);
        assert_eq!(bytes[1], 3);
        let m = Msg::decode(&bytes[8..]).expect("valid");
        let ops: Vec<Op<'_>> = m.ops.iter().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].name, b"a");
        assert_eq!(ops[0].value, 7i64.to_be_bytes());
        assert_eq!(ops[1].name, b"bb");
        assert!(ops[1].value.is_empty());
    }
}
