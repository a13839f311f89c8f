//! The workload's arithmetic: which key an operation touches, whether it reads or updates, and
//! the bytes it writes.
//!
//! This module owns the random choices and the value bytes. It must never do I/O or read a
//! clock, so a seed gives the same sequence of operations on every run and every target.

/// SplitMix64: tiny, fast, and good enough to spread keys uniformly; one per task, seeded from
/// the run's seed and the task's index.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for any n we use).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// What one operation of the measured phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read(u64),
    Update(u64),
}

/// Picks the next operation: a key uniform over `0..keys`, a read with probability
/// `reads_pct` percent.
pub fn next_op(rng: &mut Rng, keys: u64, reads_pct: u8) -> Op {
    let key = rng.below(keys);
    if rng.below(100) < u64::from(reads_pct) {
        Op::Read(key)
    } else {
        Op::Update(key)
    }
}

/// The value a task writes: printable ASCII (so it is valid as a string bin too), with a
/// stamp at the front that changes on every write so that no two writes of a key are alike.
#[derive(Debug, Clone)]
pub struct ValueBytes {
    bytes: Vec<u8>,
    writes: u64,
    task: u64,
}

impl ValueBytes {
    pub fn new(size: usize, task: u64) -> ValueBytes {
        let bytes = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        ValueBytes {
            bytes,
            writes: 0,
            task,
        }
    }

    /// The bytes for the next write: the first (up to) 16 bytes are the hex digits of
    /// `task << 40 | write number`.
    pub fn next(&mut self) -> &[u8] {
        self.writes += 1;
        let stamp = (self.task << 40) | (self.writes & ((1 << 40) - 1));
        let width = self.bytes.len().min(16);
        for (i, b) in self.bytes[..width].iter_mut().enumerate() {
            let shift = 4 * (15 - i);
            *b = b"0123456789abcdef"[((stamp >> shift) & 0xF) as usize];
        }
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_range_and_the_mix_follows_the_percentage() {
        let mut rng = Rng::new(1, 0);
        let mut reads = 0;
        for _ in 0..100_000 {
            match next_op(&mut rng, 1000, 95) {
                Op::Read(k) => {
                    assert!(k < 1000);
                    reads += 1;
                }
                Op::Update(k) => assert!(k < 1000),
            }
        }
        assert!((94_000..96_000).contains(&reads), "reads {reads}");
        let mut all_reads = Rng::new(1, 0);
        assert!((0..1000).all(|_| matches!(next_op(&mut all_reads, 10, 100), Op::Read(_))));
        let mut no_reads = Rng::new(1, 0);
        assert!((0..1000).all(|_| matches!(next_op(&mut no_reads, 10, 0), Op::Update(_))));
    }

    #[test]
    fn the_same_seed_gives_the_same_operations() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let mut c = Rng::new(7, 4);
        let sa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn values_have_the_size_asked_and_change_on_every_write() {
        let mut v = ValueBytes::new(100, 2);
        let first = v.next().to_vec();
        let second = v.next().to_vec();
        assert_eq!(first.len(), 100);
        assert_ne!(first, second);
        assert!(first.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(&first[..16], b"0000020000000001");
        let mut tiny = ValueBytes::new(3, 0);
        assert_eq!(tiny.next(), b"000");
    }
}
