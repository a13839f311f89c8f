//! Batch-index rows (field 41): `u32 row count`, `u8 parent flags`, then rows of
//! `u32 index`, 20-byte digest, `u8 row flags`, and unless the row repeats the previous one:
//! info1, [info2 info3], [info4], [u16 generation], [u32 ttl], `u16 n_fields`, `u16 n_ops`,
//! fields, ops. Row flags 0x00 is the old read-only format (info1 then counts).

use crate::msg::{Fields, Ops};
use crate::DecodeError;

/// Parent flag: report an error for every failing key and go on.
pub const PARENT_RESPOND_ALL_KEYS: u8 = 0x04;

const ROW_REPEAT: u8 = 0x01;
const ROW_HAS_INFO: u8 = 0x02;
const ROW_HAS_GENERATION: u8 = 0x04;
const ROW_HAS_TTL: u8 = 0x08;
const ROW_HAS_INFO4: u8 = 0x10;

/// One decoded batch row; repeated rows carry the previous full row's details.
#[derive(Debug, Clone, Copy)]
pub struct BatchRow<'a> {
    /// Row index, echoed as `transaction_ttl` in the reply.
    pub index: u32,
    /// Record digest.
    pub digest: &'a [u8],
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub info4: u8,
    /// Expected generation (only meaningful with the generation bits in info2).
    pub generation: u32,
    /// TTL for writes, read-touch percent for reads.
    pub record_ttl: u32,
    /// Namespace, set and any per-row fields (key, filter, UDF).
    pub fields: Fields<'a>,
    /// The row's ops.
    pub ops: Ops<'a>,
}

/// A decoded batch-index field: its row count and parent flags, and an iterator over rows.
#[derive(Debug, Clone, Copy)]
pub struct BatchIndex<'a> {
    /// Number of rows declared.
    pub count: u32,
    /// Parent flags.
    pub flags: u8,
    rows: &'a [u8],
}

impl<'a> BatchIndex<'a> {
    /// Decodes the field header; rows are decoded lazily by [`BatchIndex::rows`].
    pub fn decode(data: &'a [u8], rows_max: u32) -> Result<BatchIndex<'a>, DecodeError> {
        let h = data
            .get(..5)
            .ok_or(DecodeError::Truncated("batch header"))?;
        let count = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if count == 0 {
            return Err(DecodeError::Malformed("batch with no rows"));
        }
        if count > rows_max {
            return Err(DecodeError::TooLong {
                what: "batch rows",
                len: u64::from(count),
                max: u64::from(rows_max),
            });
        }
        Ok(BatchIndex {
            count,
            flags: h[4],
            rows: &data[5..],
        })
    }

    /// Iterates the rows; stops at the first malformed row with an error.
    pub fn rows(&self) -> BatchRows<'a> {
        BatchRows {
            bytes: self.rows,
            left: self.count,
            prev: None,
        }
    }
}

/// Iterator over batch rows.
pub struct BatchRows<'a> {
    bytes: &'a [u8],
    left: u32,
    prev: Option<BatchRow<'a>>,
}

impl<'a> Iterator for BatchRows<'a> {
    type Item = Result<BatchRow<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.decode_row();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

impl<'a> BatchRows<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn decode_row(&mut self) -> Result<BatchRow<'a>, DecodeError> {
        let h = self.take(25, "batch row")?;
        let index = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let digest = &h[4..24];
        let flags = h[24];
        if flags & ROW_REPEAT != 0 {
            let prev = self
                .prev
                .ok_or(DecodeError::Malformed("first batch row repeats"))?;
            let mut row = prev;
            row.index = index;
            row.digest = digest;
            // A key belongs to one record only; a repeated row never inherits it.
            row.fields.key = None;
            return Ok(row);
        }
        let info1 = self.take(1, "batch row info1")?[0];
        let (mut info2, mut info3, mut info4) = (0, 0, 0);
        if flags & ROW_HAS_INFO != 0 {
            let b = self.take(2, "batch row info2/3")?;
            info2 = b[0];
            info3 = b[1];
        }
        if flags & ROW_HAS_INFO4 != 0 {
            info4 = self.take(1, "batch row info4")?[0];
        }
        let mut generation = 0u32;
        if flags & ROW_HAS_GENERATION != 0 {
            let b = self.take(2, "batch row generation")?;
            generation = u32::from(u16::from_be_bytes([b[0], b[1]]));
        }
        let mut record_ttl = 0u32;
        if flags & ROW_HAS_TTL != 0 {
            let b = self.take(4, "batch row ttl")?;
            record_ttl = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        let c = self.take(4, "batch row counts")?;
        let n_fields = u16::from_be_bytes([c[0], c[1]]);
        let n_ops = u16::from_be_bytes([c[2], c[3]]);
        let (fields, used) = Fields::decode(self.bytes, n_fields)?;
        self.bytes = &self.bytes[used..];
        let (ops, used) = Ops::decode(self.bytes, n_ops)?;
        self.bytes = &self.bytes[used..];
        if fields.namespace.is_none() {
            return Err(DecodeError::Malformed("batch row without a namespace"));
        }
        let row = BatchRow {
            index,
            digest,
            info1,
            info2,
            info3,
            info4,
            generation,
            record_ttl,
            fields,
            ops,
        };
        self.prev = Some(row);
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u32, digest: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut b = index.to_be_bytes().to_vec();
        b.extend_from_slice(&[digest; 20]);
        b.push(flags);
        b.extend_from_slice(rest);
        b
    }

    fn ns_field() -> Vec<u8> {
        let mut b = vec![0, 0, 0, 5, 0];
        b.extend_from_slice(b"test");
        b.extend_from_slice(&[0, 0, 0, 1, 1]); // empty set
        b
    }

    #[test]
    fn decodes_new_and_repeat_rows() {
        let mut data = 3u32.to_be_bytes().to_vec();
        data.push(0x08);
        let mut r0 = vec![0x03, 0, 2, 0, 0]; // info1, n_fields 2, n_ops 0
        r0.extend_from_slice(&ns_field());
        data.extend(row(0, 1, 0x00, &r0));
        data.extend(row(1, 2, ROW_REPEAT, &[]));
        let mut r2 = vec![0x00, 0x81, 0x00]; // info1, info2, info3
        r2.extend_from_slice(&[0, 9]); // generation
        r2.extend_from_slice(&[0, 0, 0, 60]); // ttl
        r2.extend_from_slice(&[0, 2, 0, 0]);
        r2.extend_from_slice(&ns_field());
        data.extend(row(
            2,
            3,
            ROW_HAS_INFO | ROW_HAS_GENERATION | ROW_HAS_TTL,
            &r2,
        ));
        let b = BatchIndex::decode(&data, 100).expect("header");
        let rows: Vec<_> = b.rows().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].index, 1);
        assert_eq!(rows[1].digest, &[2u8; 20]);
        assert_eq!(rows[1].info1, 0x03);
        assert_eq!(rows[2].info2, 0x81);
        assert_eq!(rows[2].generation, 9);
        assert_eq!(rows[2].record_ttl, 60);
        assert_eq!(rows[2].fields.namespace, Some(&b"test"[..]));
    }

    #[test]
    fn rejects_bad_batches() {
        assert!(BatchIndex::decode(&[0, 0, 0, 0, 0], 10).is_err());
        assert!(BatchIndex::decode(&[0, 0, 0, 20, 0], 10).is_err());
        let mut data = 1u32.to_be_bytes().to_vec();
        data.push(0);
        data.extend(row(0, 1, ROW_REPEAT, &[]));
        let b = BatchIndex::decode(&data, 10).expect("header");
        assert!(b.rows().next().expect("one").is_err());
        let mut data = 2u32.to_be_bytes().to_vec();
        data.push(0);
        let b = BatchIndex::decode(&data, 10).expect("header");
        assert!(b.rows().next().expect("one").is_err());
    }
}
