//! The single writer of the store: takes jobs from every stream, waits a short window for
//! more, writes them all in one transaction, commits once, then answers every job. One disk
//! flush serves many acknowledgements.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::mpsc;

use super::{Durability, Job, LOG, SNAPSHOTS, STREAMS, StoreError, StoreOptions, Write};

/// Jobs that may wait for the committer before senders meet backpressure.
const QUEUE: usize = 4096;

/// Commit timings, drained by the metrics.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Commits done.
    pub commits: AtomicU64,
    /// Sum of commit durations in nanoseconds.
    pub nanos: AtomicU64,
    pending: std::sync::Mutex<Vec<f64>>,
}

impl CommitStats {
    /// Commit durations (seconds) recorded since the last call.
    pub fn drain(&self) -> Vec<f64> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, seconds: f64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a scrape drains it; without scrapes the oldest figures are dropped.
        if pending.len() < 100_000 {
            pending.push(seconds);
        }
    }
}

/// Starts the committer thread; returns the job queue.
pub(super) fn start(
    db: Arc<Database>,
    path: PathBuf,
    options: StoreOptions,
    log_bytes: Arc<AtomicI64>,
    stats: Arc<CommitStats>,
) -> (mpsc::Sender<Job>, std::thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("koopstream-committer".into())
        .spawn(move || run(db, path, options, receiver, log_bytes, stats))
        .expect("the committer thread starts");
    (sender, thread)
}

fn classify(path: &Path, error: impl std::fmt::Display) -> StoreError {
    let detail = error.to_string();
    // ENOSPC shows up as an I/O error whose text names the condition.
    if detail.contains("No space left") || detail.contains("os error 28") {
        StoreError::Full { path: path.to_owned() }
    } else {
        StoreError::Write { path: path.to_owned(), detail }
    }
}

fn run(
    db: Arc<Database>,
    path: PathBuf,
    options: StoreOptions,
    mut receiver: mpsc::Receiver<Job>,
    log_bytes: Arc<AtomicI64>,
    stats: Arc<CommitStats>,
) {
    let mut last_flush = Instant::now();
    let mut unflushed = false;
    loop {
        let first = if unflushed {
            // Periodic durability: flush when the interval ends even if no job comes.
            let wait = options.flush_interval.saturating_sub(last_flush.elapsed());
            match receive_within(&mut receiver, wait) {
                Received::Job(job) => job,
                Received::Timeout => {
                    flush(&db, &path);
                    unflushed = false;
                    last_flush = Instant::now();
                    continue;
                }
                Received::Closed => break,
            }
        } else {
            match receiver.blocking_recv() {
                Some(job) => job,
                None => break,
            }
        };
        let mut jobs = vec![first];
        let window_end = Instant::now() + options.group_commit;
        loop {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < window_end => {
                    std::thread::sleep(Duration::from_micros(50))
                }
                Err(_) => break,
            }
        }
        let immediate = match options.durability {
            Durability::Periodic => last_flush.elapsed() >= options.flush_interval,
            _ => true,
        };
        let started = Instant::now();
        let result = commit(&db, &path, &jobs, immediate, &log_bytes);
        stats.record(started.elapsed().as_secs_f64());
        if immediate {
            last_flush = Instant::now();
            unflushed = false;
        } else {
            unflushed = true;
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, jobs = jobs.len(), "group commit failed");
        }
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
    if unflushed {
        flush(&db, &path);
    }
}

enum Received {
    Job(Job),
    Timeout,
    Closed,
}

fn receive_within(receiver: &mut mpsc::Receiver<Job>, wait: Duration) -> Received {
    let deadline = Instant::now() + wait;
    loop {
        match receiver.try_recv() {
            Ok(job) => return Received::Job(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return Received::Closed,
            Err(mpsc::error::TryRecvError::Empty) if Instant::now() >= deadline => return Received::Timeout,
            Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

/// An empty durable commit: makes every earlier non-durable commit durable.
fn flush(db: &Database, path: &Path) {
    let result = db.begin_write().map_err(|e| classify(path, e)).and_then(|mut write| {
        write.set_durability(redb::Durability::Immediate).map_err(|e| classify(path, e))?;
        write.commit().map_err(|e| classify(path, e))
    });
    if let Err(e) = result {
        tracing::error!(error = %e, "periodic flush failed");
    }
}

fn commit(db: &Database, path: &Path, jobs: &[Job], immediate: bool, log_bytes: &AtomicI64) -> Result<(), StoreError> {
    let mut write = db.begin_write().map_err(|e| classify(path, e))?;
    let durability = if immediate { redb::Durability::Immediate } else { redb::Durability::None };
    write.set_durability(durability).map_err(|e| classify(path, e))?;
    let mut delta = 0i64;
    for job in jobs {
        for w in &job.writes {
            delta += apply_writes(&write, w).map_err(|e| classify(path, e))?;
        }
    }
    write.commit().map_err(|e| classify(path, e))?;
    log_bytes.fetch_add(delta, Ordering::Relaxed);
    Ok(())
}

/// Applies one write inside a transaction; returns the change in log bytes.
pub(crate) fn apply_writes(write: &WriteTransaction, change: &Write) -> Result<i64, redb::Error> {
    let mut streams = write.open_table(STREAMS)?;
    let mut log = write.open_table(LOG)?;
    let mut snapshots = write.open_table(SNAPSHOTS)?;
    Ok(match change {
        Write::PutStream { id, definition } => {
            streams.insert(id.as_str(), definition.as_slice())?;
            0
        }
        Write::DeleteStream { id } => {
            streams.remove(id.as_str())?;
            snapshots.remove(id.as_str())?;
            -truncate_log(&mut log, id, u64::MAX)?
        }
        Write::Append { id, index, entry } => {
            log.insert((id.as_str(), *index), entry.as_slice())?;
            entry.len() as i64
        }
        Write::Snapshot { id, version, bytes } => {
            // A stream deleted meanwhile, or a newer snapshot already stored, wins.
            if streams.get(id.as_str())?.is_none() {
                return Ok(0);
            }
            let stored_version = snapshots.get(id.as_str())?.and_then(|v| super::codec::snapshot_version(v.value()));
            if stored_version.is_some_and(|v| v >= *version) {
                return Ok(0);
            }
            snapshots.insert(id.as_str(), bytes.as_slice())?;
            -truncate_log(&mut log, id, *version)?
        }
    })
}

/// Removes a stream's log entries up to `last` (inclusive); returns the bytes removed.
fn truncate_log(
    log: &mut redb::Table<'_, (&'static str, u64), &'static [u8]>,
    id: &str,
    last: u64,
) -> Result<i64, redb::Error> {
    let mut removed = 0i64;
    let mut keys = Vec::new();
    for entry in log.range((id, 0)..=(id, last))? {
        let (key, value) = entry?;
        removed += value.value().len() as i64;
        keys.push(key.value().1);
    }
    for index in keys {
        log.remove((id, index))?;
    }
    Ok(removed)
}
