//! `shoal backup`: a namespace or one set to a file, partition-parallel, resumable, with a
//! trailing CRC32 (format in `backupfile`, drawn in `docs/design/backup-format.md`).
//! Aerospike counterpart: asbackup.
//!
//! This module owns the scan plan (N tasks, each taking the next partition and scanning it
//! whole with the official client's partition query), the single writer that appends one
//! block per finished partition, and the progress side file. It must never write a block
//! for a partition whose scan did not finish (a failed partition is scanned again from
//! scratch, so a resumed or retried backup holds each record once), never write to the
//! server, and never leave a finished-looking file behind a failure: the trailer is written
//! only after every partition's block. Each record is read atomically by the server, so a
//! backup taken during writes is consistent per record (not across records).

use crate::backupfile::{self, progress, BackupRecord, Header, PARTITIONS};
use crate::bench::stats::{format_bytes, format_count};
use crate::common::{connect, ServerArgs};
use aerospike::{Bins, Client, PartitionFilter, QueryPolicy, Statement};
use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Most concurrent partition scans.
const PARALLEL_MAX: usize = 256;
/// Attempts at one partition's scan before the backup fails.
const PARTITION_ATTEMPTS: u32 = 3;

/// Options of `shoal backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Namespace to back up.
    #[arg(long)]
    pub namespace: String,
    /// Only this set (default: the whole namespace).
    #[arg(long)]
    pub set: Option<String>,
    /// Backup file to write; its progress goes to `<file>.progress` until it is complete.
    #[arg(long)]
    pub file: PathBuf,
    /// Partitions scanned at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Continue an interrupted backup of the same namespace and set into the same file.
    #[arg(long)]
    pub resume: bool,
}

/// `<file>.progress`.
pub fn progress_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".progress");
    PathBuf::from(p)
}

/// One finished partition, on its way to the writer.
struct Block {
    partition: u16,
    records: u32,
    body: Vec<u8>,
}

/// The open backup file and what has gone into it.
struct Output {
    file: BufWriter<File>,
    progress: File,
    crc: crc32fast::Hasher,
    offset: u64,
    records: u64,
}

impl Output {
    /// Appends a block, flushes it, then records the partition as finished.
    fn append(&mut self, b: &Block) -> Result<()> {
        let bytes = backupfile::encode_block(b.partition, b.records, &b.body)?;
        self.file.write_all(&bytes)?;
        self.file.flush()?;
        self.crc.update(&bytes);
        self.offset += bytes.len() as u64;
        self.records += u64::from(b.records);
        self.progress
            .write_all(progress::line(b.partition, self.offset, self.records).as_bytes())?;
        Ok(())
    }

    /// The trailer, then fsync: the file is complete.
    fn finish(mut self) -> Result<u32> {
        let prefix = backupfile::encode_trailer_prefix(self.records);
        self.crc.update(&prefix);
        let crc = self.crc.finalize();
        self.file.write_all(&prefix)?;
        self.file.write_all(&crc.to_be_bytes())?;
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(crc)
    }
}

/// A new backup: the header is written and the progress file started. Refuses to overwrite
/// a file or to start over an interrupted backup.
fn create(path: &Path, header: &Header) -> Result<(Output, Vec<u16>)> {
    let side = progress_path(path);
    if side.exists() {
        bail!(
            "{} exists: a backup to {} was interrupted; continue it with --resume, or remove both files",
            side.display(),
            path.display()
        );
    }
    if path.exists() {
        bail!(
            "{} already exists; remove it or choose another --file",
            path.display()
        );
    }
    let bytes = backupfile::encode_header(header)?;
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&bytes)?;
    let mut progress =
        File::create(&side).with_context(|| format!("creating {}", side.display()))?;
    progress.write_all(progress::first_line(header).as_bytes())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes);
    Ok((
        Output {
            file: BufWriter::with_capacity(1 << 20, file),
            progress,
            crc,
            offset: bytes.len() as u64,
            records: 0,
        },
        Vec::new(),
    ))
}

/// An interrupted backup: the file is cut back to the end of its last finished partition
/// (dropping a half-written block), and the CRC recomputed over what stays.
fn reopen(path: &Path, namespace: &str, set: &str) -> Result<(Output, Vec<u16>)> {
    let side = progress_path(path);
    let text = std::fs::read_to_string(&side).with_context(|| {
        format!(
            "--resume: reading {} (is there an interrupted backup?)",
            side.display()
        )
    })?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("--resume: opening {}", path.display()))?;
    let mut head = Vec::new();
    (&mut file).take(64 * 1024).read_to_end(&mut head)?;
    let (header, header_len) = backupfile::decode_header(&head)?;
    ensure!(
        header.namespace == namespace && header.set == set,
        "--resume: {} is a backup of namespace `{}` set `{}`, not `{namespace}` `{set}`",
        path.display(),
        header.namespace,
        header.set
    );
    let p = progress::parse(&text, &header)?;
    let (end, records) = p.end.unwrap_or((header_len as u64, 0));
    let len = file.metadata()?.len();
    ensure!(
        end >= header_len as u64 && end <= len,
        "--resume: the progress file says {end} bytes are done but {} has {len}",
        path.display()
    );
    file.set_len(end)?;
    file.seek(SeekFrom::Start(0))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = end;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..n])?;
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    file.seek(SeekFrom::Start(end))?;
    let progress = OpenOptions::new().append(true).open(&side)?;
    Ok((
        Output {
            file: BufWriter::with_capacity(1 << 20, file),
            progress,
            crc,
            offset: end,
            records,
        },
        p.finished,
    ))
}

pub fn main(server: &ServerArgs, args: BackupArgs) -> Result<()> {
    ensure!(
        (1..=PARALLEL_MAX).contains(&args.parallel),
        "--parallel must be between 1 and {PARALLEL_MAX}"
    );
    let set = args.set.clone().unwrap_or_default();
    let header = Header {
        namespace: args.namespace.clone(),
        set: set.clone(),
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let (output, finished) = if args.resume {
        reopen(&args.file, &args.namespace, &set)?
    } else {
        create(&args.file, &header)?
    };
    let resumed_records = output.records;
    let started = Instant::now();
    let rt = crate::common::runtime()?;
    let (output, scanned) = rt.block_on(run(server, &args, &set, output, &finished))?;
    let crc = output.finish()?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(progress_path(&args.file));
    let size = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let what = if set.is_empty() {
        format!("namespace {}", args.namespace)
    } else {
        format!("{}/{set}", args.namespace)
    };
    println!(
        "backed up {what}: {} records ({} in this run{}) to {} ({}), crc32 {crc:08x}",
        format_count(resumed_records + scanned),
        format_count(scanned),
        if args.resume {
            format!(", {} partitions were already done", finished.len())
        } else {
            String::new()
        },
        args.file.display(),
        format_bytes(size),
    );
    println!(
        "  {:.2} s, {} records/s",
        elapsed.as_secs_f64(),
        format_count((scanned as f64 / elapsed.as_secs_f64().max(1e-9)) as u64)
    );
    Ok(())
}

/// Scans every unfinished partition and appends its block; returns the output and the
/// records scanned in this run.
async fn run(
    server: &ServerArgs,
    args: &BackupArgs,
    set: &str,
    output: Output,
    finished: &[u16],
) -> Result<(Output, u64)> {
    let client = Arc::new(connect(&server.addr(), args.parallel).await?);
    let mut done = vec![false; usize::from(PARTITIONS)];
    for p in finished {
        done[usize::from(*p)] = true;
    }
    let todo: Arc<Vec<u16>> =
        Arc::new((0..PARTITIONS).filter(|p| !done[usize::from(*p)]).collect());
    let bar = progress_bar(u64::from(PARTITIONS), finished.len() as u64);
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let scanned = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Block>(args.parallel * 2);

    // The one writer, on its own thread: file writes block.
    let writer_bar = bar.clone();
    let writer = std::thread::spawn(move || -> Result<Output> {
        let mut out = output;
        while let Some(block) = rx.blocking_recv() {
            out.append(&block)?;
            writer_bar.inc(1);
        }
        Ok(out)
    });

    let mut tasks = Vec::with_capacity(args.parallel);
    for _ in 0..args.parallel {
        let (client, todo, next, stop, scanned, tx, bar) = (
            client.clone(),
            todo.clone(),
            next.clone(),
            stop.clone(),
            scanned.clone(),
            tx.clone(),
            bar.clone(),
        );
        let (namespace, set) = (args.namespace.clone(), set.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&partition) = todo.get(i) else {
                    return Ok(());
                };
                let block = match scan_partition(&client, &namespace, &set, partition).await {
                    Ok(b) => b,
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                };
                let n = scanned.fetch_add(u64::from(block.records), Ordering::Relaxed)
                    + u64::from(block.records);
                bar.set_message(format!("{} records", format_count(n)));
                if tx.send(block).await.is_err() {
                    // The writer stopped: its error is the one to report.
                    return Ok(());
                }
            }
        }));
    }
    drop(tx);
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(anyhow!("a backup task died: {e}"))),
        }
    }
    let written = writer
        .join()
        .map_err(|_| anyhow!("the backup writer thread panicked"))?;
    bar.finish_and_clear();
    let _ = client.close().await;
    if let Some(e) = failure {
        return Err(
            e.context("backup interrupted; finished partitions are kept, continue with --resume")
        );
    }
    let out = written.context("writing the backup file; continue with --resume")?;
    Ok((out, scanned.load(Ordering::Relaxed)))
}

/// What one partition's scan has gathered so far.
#[derive(Default)]
struct Gathered {
    body: Vec<u8>,
    records: u32,
    error: Option<String>,
}

/// One partition, scanned whole, encoded as a block body; retried from scratch on failure.
async fn scan_partition(
    client: &Client,
    namespace: &str,
    set: &str,
    partition: u16,
) -> Result<Block> {
    let mut last = None;
    for _ in 0..PARTITION_ATTEMPTS {
        match scan_once(client, namespace, set, partition).await {
            Ok(b) => return Ok(b),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow!("no attempt made"))
        .context(format!(
            "scanning partition {partition} ({PARTITION_ATTEMPTS} attempts)"
        )))
}

async fn scan_once(client: &Client, namespace: &str, set: &str, partition: u16) -> Result<Block> {
    let gathered = Arc::new(Mutex::new(Gathered::default()));
    let sink = gathered.clone();
    let statement = Statement::new(namespace, set, Bins::All);
    let policy = QueryPolicy::default();
    let mut handle = client
        .query_foreach(
            &policy,
            PartitionFilter::by_range(usize::from(partition), 1),
            statement,
            move |result| {
                let sink = sink.clone();
                async move {
                    let Ok(mut g) = sink.lock() else {
                        return false;
                    };
                    let outcome = result.map_err(|e| anyhow!("{e}")).and_then(|record| {
                        let key = record
                            .key
                            .as_ref()
                            .ok_or_else(|| anyhow!("a scanned record came without its key"))?;
                        let rec = BackupRecord {
                            digest: key.digest(),
                            set: key.set_name().to_string(),
                            user_key: key.user_key().cloned(),
                            generation: record.generation,
                            void_time: record.expiration(),
                            bins: record.bins.into_iter().collect(),
                        };
                        backupfile::encode_record(&mut g.body, &rec)
                    });
                    match outcome {
                        Ok(()) => {
                            g.records += 1;
                            true
                        }
                        Err(e) => {
                            g.error.get_or_insert(format!("{e:#}"));
                            false
                        }
                    }
                }
            },
        )
        .await
        .map_err(|e| anyhow!("starting the scan: {e}"))?;
    handle.wait().await.map_err(|e| anyhow!("{e}"))?;
    let mut g = gathered
        .lock()
        .map_err(|_| anyhow!("a scan callback panicked"))?;
    if let Some(e) = g.error.take() {
        bail!(e);
    }
    Ok(Block {
        partition,
        records: g.records,
        body: std::mem::take(&mut g.body),
    })
}

fn progress_bar(len: u64, pos: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "backup {bar:30} {pos}/{len} partitions  {msg}  ({elapsed}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len).with_style(style);
    bar.set_position(pos);
    bar
}
