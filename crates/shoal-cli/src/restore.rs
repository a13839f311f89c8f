//! `shoal restore`: a backup file back into a namespace, after its checksum and every
//! record in it have been verified. Aerospike counterpart: asrestore.
//!
//! This module owns the two passes (verify the whole file, then write), the write
//! policies (create-only, replace, generation) and the counts of written, skipped and
//! failed records. It must never write anything from a file that fails verification, and
//! never count a refused write as written: a record the policy keeps out is "skipped", a
//! record the server failed is "failed", and any failure makes the exit status non-zero.

use crate::backupfile::{self, BackupRecord, Header, BLOCK_HEADER_BYTES, TAG_BLOCK, TAG_END};
use crate::bench::stats::format_count;
use crate::common::{connect, ServerArgs};
use aerospike::{
    Bin, Client, Expiration, GenerationPolicy, Key, RecordExistsAction, ResultCode, WritePolicy,
    CITRUSLEAF_EPOCH_UNIX_SECS,
};
use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Most concurrent writers.
const PARALLEL_MAX: usize = 256;
/// Records queued per writer.
const QUEUE_PER_WRITER: usize = 256;
/// First error messages kept for the report.
const ERRORS_SHOWN: usize = 5;

/// What to do with a record that already exists on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestorePolicy {
    /// Write only records that do not exist; existing ones are skipped.
    CreateOnly,
    /// Write every record, replacing what the server has.
    Replace,
    /// Write a record when the server has none or an older generation (like asrestore's
    /// default); a stored record at the same or a newer generation is skipped.
    Generation,
}

/// Options of `shoal restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Backup file to restore.
    #[arg(long)]
    pub file: PathBuf,
    /// Restore into this namespace instead of the one backed up.
    #[arg(long)]
    pub namespace: Option<String>,
    /// What to do with records that already exist.
    #[arg(long, value_enum, default_value_t = RestorePolicy::Generation)]
    pub policy: RestorePolicy,
    /// Concurrent writes.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
}

/// Reads a backup file block by block, checking its structure.
struct FileReader {
    input: BufReader<File>,
    /// Bytes before the trailer's CRC.
    covered: u64,
    pos: u64,
}

enum Item {
    Block(Vec<BackupRecord>),
    End(u64),
}

impl FileReader {
    fn open(path: &Path) -> Result<(FileReader, Header)> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        ensure!(
            len >= backupfile::TRAILER_BYTES as u64 + 8,
            "{} is too short to be a backup file",
            path.display()
        );
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut head = Vec::new();
        (&mut input).take(64 * 1024).read_to_end(&mut head)?;
        let (header, header_len) = backupfile::decode_header(&head)?;
        // Re-open to read from the start after the header, without seeking a BufReader.
        let file = File::open(path)?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        std::io::copy(
            &mut (&mut input).take(header_len as u64),
            &mut std::io::sink(),
        )?;
        Ok((
            FileReader {
                input,
                covered: len - 4,
                pos: header_len as u64,
            },
            header,
        ))
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<()> {
        ensure!(
            self.pos + buf.len() as u64 <= self.covered,
            "truncated or corrupt: a block runs past the end of the file at byte {}",
            self.pos
        );
        self.input.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn next(&mut self) -> Result<Item> {
        let mut tag = [0u8; 1];
        self.exact(&mut tag)?;
        match tag[0] {
            TAG_BLOCK => {
                let mut h = [0u8; BLOCK_HEADER_BYTES];
                self.exact(&mut h)?;
                let (partition, records, len) = backupfile::decode_block_header(&h)?;
                let mut body = vec![0u8; len as usize];
                self.exact(&mut body)?;
                backupfile::decode_block_body(&body, records)
                    .with_context(|| format!("block of partition {partition}"))
                    .map(Item::Block)
            }
            TAG_END => {
                let mut n = [0u8; 8];
                self.exact(&mut n)?;
                ensure!(
                    self.pos == self.covered,
                    "{} bytes after the trailer",
                    self.covered - self.pos
                );
                Ok(Item::End(u64::from_be_bytes(n)))
            }
            other => bail!(
                "corrupt: unknown block tag {other} at byte {}",
                self.pos - 1
            ),
        }
    }
}

/// Pass one: the CRC over the whole file, and every block decoded. Returns the header and
/// the record count.
pub fn verify(path: &Path) -> Result<(Header, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    ensure!(
        len >= 4,
        "{} is too short to be a backup file",
        path.display()
    );
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len - 4;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..n])?;
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 4];
    file.read_exact(&mut stored)?;
    let (computed, stored) = (crc.finalize(), u32::from_be_bytes(stored));
    ensure!(
        computed == stored,
        "{}: checksum mismatch (file says crc32 {stored:08x}, contents give {computed:08x}); the file is corrupt or incomplete, nothing was written",
        path.display()
    );
    let (mut reader, header) = FileReader::open(path)?;
    let mut records = 0u64;
    loop {
        match reader.next()? {
            Item::Block(b) => records += b.len() as u64,
            Item::End(n) => {
                ensure!(
                    n == records,
                    "the trailer counts {n} records but the blocks hold {records}"
                );
                return Ok((header, records));
            }
        }
    }
}

/// Counts of the write pass.
#[derive(Default)]
struct Counts {
    written: AtomicU64,
    skipped_existing: AtomicU64,
    skipped_expired: AtomicU64,
    failed: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

pub fn main(server: &ServerArgs, args: RestoreArgs) -> Result<()> {
    ensure!(
        (1..=PARALLEL_MAX).contains(&args.parallel),
        "--parallel must be between 1 and {PARALLEL_MAX}"
    );
    let (header, total) = verify(&args.file)?;
    let namespace = args.namespace.clone().unwrap_or(header.namespace.clone());
    eprintln!(
        "{}: verified, {} records of {}{}; restoring into namespace {namespace} ({:?})",
        args.file.display(),
        format_count(total),
        header.namespace,
        if header.set.is_empty() {
            String::new()
        } else {
            format!("/{}", header.set)
        },
        args.policy
    );
    let started = Instant::now();
    let counts = Arc::new(Counts::default());
    crate::common::runtime()?.block_on(write_all(
        server,
        &args,
        &namespace,
        total,
        counts.clone(),
    ))?;
    let elapsed = started.elapsed();
    let c = &counts;
    let (w, se, sx, f) = (
        c.written.load(Ordering::Relaxed),
        c.skipped_existing.load(Ordering::Relaxed),
        c.skipped_expired.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
    );
    println!(
        "restored {}: {} written, {} skipped (policy), {} skipped (expired), {} failed",
        format_count(total),
        format_count(w),
        format_count(se),
        format_count(sx),
        format_count(f)
    );
    println!(
        "  {:.2} s, {} records/s",
        elapsed.as_secs_f64(),
        format_count((total as f64 / elapsed.as_secs_f64().max(1e-9)) as u64)
    );
    if f > 0 {
        if let Ok(errors) = c.errors.lock() {
            for e in errors.iter() {
                eprintln!("  error: {e}");
            }
        }
        bail!("{f} record(s) failed to restore");
    }
    Ok(())
}

async fn write_all(
    server: &ServerArgs,
    args: &RestoreArgs,
    namespace: &str,
    total: u64,
    counts: Arc<Counts>,
) -> Result<()> {
    let client = Arc::new(connect(&server.addr(), args.parallel).await?);
    let bar = progress_bar(total);
    let mut senders = Vec::with_capacity(args.parallel);
    let mut tasks = Vec::with_capacity(args.parallel);
    for _ in 0..args.parallel {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<BackupRecord>(QUEUE_PER_WRITER);
        senders.push(tx);
        let (client, counts, bar) = (client.clone(), counts.clone(), bar.clone());
        let (namespace, policy) = (namespace.to_string(), args.policy);
        tasks.push(tokio::spawn(async move {
            while let Some(rec) = rx.recv().await {
                write_one(&client, &namespace, policy, rec, &counts).await;
                bar.inc(1);
            }
        }));
    }
    // The file is read on a blocking thread and dealt out round-robin.
    let path = args.file.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        let (mut reader, _) = FileReader::open(&path)?;
        let mut i = 0usize;
        loop {
            match reader.next()? {
                Item::Block(records) => {
                    for rec in records {
                        let tx = &senders[i % senders.len()];
                        i += 1;
                        if tx.blocking_send(rec).is_err() {
                            bail!("a restore writer stopped");
                        }
                    }
                }
                Item::End(_) => return Ok(()),
            }
        }
    });
    let read = reader
        .await
        .map_err(|e| anyhow!("the restore reader died: {e}"))?;
    for t in tasks {
        t.await.map_err(|e| anyhow!("a restore writer died: {e}"))?;
    }
    bar.finish_and_clear();
    let _ = client.close().await;
    read
}

/// Seconds since the citrusleaf epoch (2010-01-01), Aerospike's clock for void-times.
fn now_citrusleaf() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(CITRUSLEAF_EPOCH_UNIX_SECS)
}

/// The write policy for one record: the policy's exists action and generation check, the
/// record's remaining TTL, and the user key sent when the backup has it. None when the
/// record has expired since the backup.
fn write_policy(policy: RestorePolicy, rec: &BackupRecord, now_cl: u64) -> Option<WritePolicy> {
    let expiration = match rec.void_time {
        0 => Expiration::Never,
        vt => {
            let left = u64::from(vt).checked_sub(now_cl).filter(|l| *l > 0)?;
            Expiration::Seconds(u32::try_from(left).unwrap_or(u32::MAX))
        }
    };
    let mut wp = WritePolicy {
        expiration,
        send_key: rec.user_key.is_some(),
        ..WritePolicy::default()
    };
    match policy {
        RestorePolicy::CreateOnly => wp.record_exists_action = RecordExistsAction::CreateOnly,
        RestorePolicy::Replace => wp.record_exists_action = RecordExistsAction::Replace,
        RestorePolicy::Generation => {
            wp.record_exists_action = RecordExistsAction::Replace;
            wp.generation_policy = GenerationPolicy::ExpectGenGreater;
            wp.generation = rec.generation;
        }
    }
    Some(wp)
}

async fn write_one(
    client: &Client,
    namespace: &str,
    policy: RestorePolicy,
    rec: BackupRecord,
    counts: &Counts,
) {
    let Some(wp) = write_policy(policy, &rec, now_citrusleaf()) else {
        counts.skipped_expired.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let key = Key::with_digest(namespace, rec.set.as_str(), rec.user_key, rec.digest);
    let bins: Vec<Bin> = rec
        .bins
        .into_iter()
        .map(|(name, value)| Bin::new(name, value))
        .collect();
    match client.put(&wp, &key, &bins).await {
        Ok(()) => {
            counts.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(e)
            if matches!(
                e.server_result_code(),
                Some(ResultCode::KeyExistsError) | Some(ResultCode::GenerationError)
            ) =>
        {
            counts.skipped_existing.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut errors) = counts.errors.lock() {
                if errors.len() < ERRORS_SHOWN {
                    errors.push(format!("digest {}: {e}", crate::common::hex(&key.digest())));
                }
            }
        }
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "restore {bar:30} {pos}/{len} records  ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(void_time: u32) -> BackupRecord {
        BackupRecord {
            digest: [0; 20],
            set: "s".into(),
            user_key: None,
            generation: 4,
            void_time,
            bins: vec![],
        }
    }

    #[test]
    fn policies_map_to_aerospike_flags() {
        let wp = write_policy(RestorePolicy::Generation, &rec(0), 1000).expect("policy");
        assert_eq!(wp.generation_policy, GenerationPolicy::ExpectGenGreater);
        assert_eq!(wp.generation, 4);
        assert_eq!(wp.expiration, Expiration::Never);
        let wp = write_policy(RestorePolicy::CreateOnly, &rec(1100), 1000).expect("policy");
        assert_eq!(wp.record_exists_action, RecordExistsAction::CreateOnly);
        assert_eq!(wp.expiration, Expiration::Seconds(100));
        assert!(write_policy(RestorePolicy::Replace, &rec(1000), 1000).is_none());
        assert!(write_policy(RestorePolicy::Replace, &rec(900), 1000).is_none());
    }
}
