//! The embedded store: one redb file under the data directory holding the stream
//! definitions, an append-only log of applied batches per stream, and periodic snapshots of
//! each stream's exact state. All writes go through one committer thread that groups the
//! writes of every stream into one transaction (group commit).

pub mod codec;
mod committer;
pub mod definition;
pub mod recovery;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use committer::CommitStats;

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "koopstream.redb";
/// Version of the store's layout; a store written by a newer layout is refused.
pub const FORMAT_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
pub(crate) const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");
pub(crate) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");

/// When an acknowledged batch is on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Every acknowledgement waits for its group commit to reach the disk (fsync).
    #[default]
    PerAck,
    /// Acknowledgements wait for the commit but not for the disk; the disk is flushed every
    /// `flush_interval_ms`. A crash of the process or machine may lose that much.
    Periodic,
    /// No store at all: everything is lost on exit (tests, benchmarks).
    Memory,
}

/// A store that cannot be used. Every message names the file and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or is damaged.
    #[error(
        "cannot open the store {path}: {detail}. If the file is damaged, move it aside and restore a backup; koopstream will not overwrite it"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Another process holds the store's lock: the file is in use, not damaged.
    #[error(
        "the store {path} is in use by another process (it holds the file's lock); stop that koopstream, or give this one another data directory (--data-dir). The file was not touched"
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer koopstream.
    #[error(
        "the store {path} has format version {found}, but this build supports up to {FORMAT_VERSION}; run a newer koopstream (the file is left untouched)"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// A record cannot be decoded.
    #[error(
        "the store {path} holds a damaged record ({what}): {detail}. Move the file aside and restore a backup; nothing was discarded"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which record.
        what: String,
        /// Why.
        detail: String,
    },
    /// The disk is full.
    #[error("the disk holding {path} is full; free space (nothing was acknowledged that is not stored)")]
    Full {
        /// The file.
        path: PathBuf,
    },
    /// Another write failure.
    #[error("cannot write the store {path}: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The committer stopped.
    #[error("the store is closed")]
    Closed,
}

use domain::definition::StreamDefinition;
use domain::error::DomainError;
pub use domain::journal::Write;
use domain::journal::{Commit, Journal, LogEntry, StreamState};

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        DomainError::storage(matches!(error, StoreError::Full { .. }), error)
    }
}

pub(crate) struct Job {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Store options.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Durability level (not `Memory`).
    pub durability: Durability,
    /// How long the committer waits for more writes before committing.
    pub group_commit: Duration,
    /// Disk flush interval with `Periodic`.
    pub flush_interval: Duration,
}

/// The open store.
pub struct Store {
    path: PathBuf,
    db: Mutex<Option<Arc<Database>>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bytes held by the logs of all streams.
    pub log_bytes: Arc<AtomicI64>,
    stats: Arc<CommitStats>,
}

fn check_format(db: &impl ReadableDatabase, path: &Path) -> Result<(), StoreError> {
    let read = db.begin_read().map_err(|e| open_error(path, e))?;
    let found = match read.open_table(META) {
        Ok(meta) => meta.get("format").map_err(|e| open_error(path, e))?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(open_error(path, e)),
    };
    match found {
        Some(v) if v > FORMAT_VERSION => Err(StoreError::NewerFormat { path: path.to_owned(), found: v }),
        None => Err(open_error(path, "it is not a koopstream store (no format version)")),
        Some(_) => Ok(()),
    }
}

fn open_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Open { path: path.to_owned(), detail: error.to_string() }
}

/// An error opening the database: a held lock is its own case, since the advice for a
/// damaged file (move it aside) would be wrong for a healthy one in use.
fn database_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.to_owned() },
        other => open_error(path, other),
    }
}

impl Store {
    /// Opens (or creates) the store in `data_dir` and starts its committer.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| open_error(data_dir, e))?;
        let path = data_dir.join(STORE_FILE);
        let existed = path.exists();
        // Check the format on a read-only open first, so a newer store is never written to.
        // A file that was not closed cleanly (a crash) needs redb's repair, which only a
        // writable open performs; its format is checked right after.
        if existed {
            match redb::ReadOnlyDatabase::open(&path) {
                Ok(db) => check_format(&db, &path)?,
                Err(redb::DatabaseError::RepairAborted) => {}
                Err(e) => return Err(database_error(&path, e)),
            }
        }
        let db = Database::create(&path).map_err(|e| database_error(&path, e))?;
        if existed {
            check_format(&db, &path)?;
        }
        if !existed {
            let write = db.begin_write().map_err(|e| open_error(&path, e))?;
            {
                let mut meta = write.open_table(META).map_err(|e| open_error(&path, e))?;
                meta.insert("format", FORMAT_VERSION).map_err(|e| open_error(&path, e))?;
                // Create every table so readers never meet a missing one.
                write.open_table(STREAMS).map_err(|e| open_error(&path, e))?;
                write.open_table(LOG).map_err(|e| open_error(&path, e))?;
                write.open_table(SNAPSHOTS).map_err(|e| open_error(&path, e))?;
            }
            write.commit().map_err(|e| open_error(&path, e))?;
        }
        let db = Arc::new(db);
        let log_bytes = Arc::new(AtomicI64::new(0));
        let stats = Arc::new(CommitStats::default());
        let (jobs, thread) = committer::start(db.clone(), path.clone(), options, log_bytes.clone(), stats.clone());
        Ok(Self {
            path,
            db: Mutex::new(Some(db)),
            jobs: Mutex::new(Some(jobs)),
            committer: Mutex::new(Some(thread)),
            log_bytes,
            stats,
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commit timings since the last call.
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Queues writes and waits until they are committed at the configured durability.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let jobs = lock(&self.jobs).clone().ok_or(StoreError::Closed)?;
        let (done, finished) = oneshot::channel();
        jobs.send(Job { writes, done }).await.map_err(|_| StoreError::Closed)?;
        finished.await.map_err(|_| StoreError::Closed)?
    }

    /// Everything stored, for recovery.
    pub fn load(&self) -> Result<Vec<Result<recovery::StoredStream, recovery::DamagedStream>>, StoreError> {
        let db = lock(&self.db).clone().ok_or(StoreError::Closed)?;
        recovery::load(&db, &self.path, &self.log_bytes)
    }

    /// Finishes the queued writes and closes the file cleanly (blocking).
    pub fn close(&self) {
        drop(lock(&self.jobs).take());
        if let Some(thread) = lock(&self.committer).take() {
            let _ = thread.join();
        }
        // The last reference: redb records a clean shutdown, so no repair is needed on open.
        drop(lock(&self.db).take());
    }

    /// Total bytes held in logs.
    pub fn log_size(&self) -> i64 {
        self.log_bytes.load(Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Journal for Store {
    fn encode_batch(&self, batch: &domain::batch::SampleBatch) -> Vec<u8> {
        codec::encode_batch(batch)
    }

    fn encode_entry(&self, entry: &LogEntry) -> Vec<u8> {
        codec::encode_entry(entry)
    }

    fn encode_snapshot(&self, state: &StreamState) -> Vec<u8> {
        codec::encode_snapshot(state)
    }

    fn encode_definition(&self, definition: &StreamDefinition) -> Vec<u8> {
        definition::encode_definition(definition)
    }

    fn commit(&self, writes: Vec<Write>) -> Commit<'_> {
        Box::pin(async move { Store::commit(self, writes).await.map_err(DomainError::from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_in_use_says_so_and_does_not_call_itself_damaged() {
        let dir = std::env::temp_dir().join(format!("koopstream-store-in-use-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = StoreOptions {
            durability: Durability::PerAck,
            group_commit: Duration::from_micros(100),
            flush_interval: Duration::from_millis(100),
        };
        let first = Store::open(&dir, options).unwrap();
        let Err(second) = Store::open(&dir, options) else { panic!("a second open of a store in use") };
        assert!(matches!(second, StoreError::InUse { .. }), "{second:?}");
        let message = second.to_string();
        assert!(message.contains("in use by another process") && message.contains("koopstream.redb"), "{message}");
        assert!(!message.contains("damaged") && !message.contains("move it aside"), "{message}");
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
