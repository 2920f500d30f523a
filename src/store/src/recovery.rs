//! Reading the store back at start: every stream's definition, its latest snapshot and the
//! log entries after it, checked for damage. A stream whose records cannot be decoded, or
//! whose log has a hole, comes back as damaged, with the file, the stream and the record
//! named, so the service can quarantine it while every other stream starts; nothing is
//! discarded or rewritten.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable};

use super::codec::{self, LogEntry, StreamState};
use super::{LOG, SNAPSHOTS, STREAMS, StoreError};

/// One stream as stored.
#[derive(Debug)]
pub struct StoredStream {
    /// Stream id.
    pub id: String,
    /// The definition (JSON).
    pub definition: Vec<u8>,
    /// The latest snapshot.
    pub snapshot: Option<StreamState>,
    /// Log entries after the snapshot, in order, with their indices.
    pub log: Vec<(u64, LogEntry)>,
}

fn corrupt(path: &Path, what: String, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { path: path.to_owned(), what, detail: detail.to_string() }
}

/// A stream whose records could not be read back (its records stay in the store as found).
#[derive(Debug)]
pub struct DamagedStream {
    /// Stream id.
    pub id: String,
    /// What is damaged, naming the file, the stream and the record.
    pub error: StoreError,
}

/// Loads every stream, each intact or damaged. Sets `log_bytes` to the size of the logs
/// found. Fails as a whole only when the file's tables cannot be read at all.
pub fn load(
    db: &Database,
    path: &Path,
    log_bytes: &AtomicI64,
) -> Result<Vec<Result<StoredStream, DamagedStream>>, StoreError> {
    let open = |e: &dyn std::fmt::Display| StoreError::Open { path: path.to_owned(), detail: e.to_string() };
    let read = db.begin_read().map_err(|e| open(&e))?;
    let streams = read.open_table(STREAMS).map_err(|e| open(&e))?;
    let snapshots = read.open_table(SNAPSHOTS).map_err(|e| open(&e))?;
    let log = read.open_table(LOG).map_err(|e| open(&e))?;
    let mut out = Vec::new();
    let mut total = 0i64;
    for item in streams.iter().map_err(|e| open(&e))? {
        let (id, definition) = item.map_err(|e| open(&e))?;
        let id = id.value().to_owned();
        let mut damage = None;
        let snapshot = match snapshots.get(id.as_str()).map_err(|e| open(&e))? {
            Some(bytes) => match codec::decode_snapshot(bytes.value()) {
                Ok(snapshot) => Some(snapshot),
                Err(e) => {
                    damage = Some(corrupt(path, format!("snapshot of stream `{id}`"), e));
                    None
                }
            },
            None => None,
        };
        let covered = snapshot.as_ref().map_or(0, |s| s.version);
        let mut entries = Vec::new();
        let mut expected = covered + 1;
        for item in log.range((id.as_str(), 0)..=(id.as_str(), u64::MAX)).map_err(|e| open(&e))? {
            let (key, value) = item.map_err(|e| open(&e))?;
            let index = key.value().1;
            total += value.value().len() as i64;
            if index <= covered || damage.is_some() {
                // Left by a snapshot whose truncation did not finish (the snapshot covers
                // it), or past damage already found (counted, not decoded).
                continue;
            }
            if index != expected {
                let detail = format!("entry {expected} is missing (found {index})");
                damage = Some(corrupt(path, format!("log of stream `{id}`"), detail));
                continue;
            }
            match codec::decode_entry(value.value()) {
                Ok(entry) => entries.push((index, entry)),
                Err(e) => damage = Some(corrupt(path, format!("log entry {index} of stream `{id}`"), e)),
            }
            expected += 1;
        }
        out.push(match damage {
            Some(error) => Err(DamagedStream { id, error }),
            None => Ok(StoredStream { id, definition: definition.value().to_vec(), snapshot, log: entries }),
        });
    }
    log_bytes.store(total, Ordering::Relaxed);
    Ok(out)
}
