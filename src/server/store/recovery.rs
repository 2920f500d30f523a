//! Reading the store back at start: every stream's definition, its latest snapshot and the
//! log entries after it, checked for damage (a record that cannot be decoded or a hole in a
//! log stops recovery with the file and the stream named; nothing is discarded).

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

/// Loads every stream. Sets `log_bytes` to the size of the logs found.
pub fn load(db: &Database, path: &Path, log_bytes: &AtomicI64) -> Result<Vec<StoredStream>, StoreError> {
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
        let snapshot = match snapshots.get(id.as_str()).map_err(|e| open(&e))? {
            Some(bytes) => Some(
                codec::decode_snapshot(bytes.value())
                    .map_err(|e| corrupt(path, format!("snapshot of stream `{id}`"), e))?,
            ),
            None => None,
        };
        let covered = snapshot.as_ref().map_or(0, |s| s.version);
        let mut entries = Vec::new();
        let mut expected = covered + 1;
        for item in log.range((id.as_str(), 0)..=(id.as_str(), u64::MAX)).map_err(|e| open(&e))? {
            let (key, value) = item.map_err(|e| open(&e))?;
            let index = key.value().1;
            total += value.value().len() as i64;
            if index <= covered {
                // Left by a snapshot whose truncation did not finish; the snapshot covers it.
                continue;
            }
            if index != expected {
                return Err(corrupt(
                    path,
                    format!("log of stream `{id}`"),
                    format!("entry {expected} is missing (found {index})"),
                ));
            }
            let entry = codec::decode_entry(value.value())
                .map_err(|e| corrupt(path, format!("log entry {index} of stream `{id}`"), e))?;
            entries.push((index, entry));
            expected += 1;
        }
        out.push(StoredStream { id, definition: definition.value().to_vec(), snapshot, log: entries });
    }
    log_bytes.store(total, Ordering::Relaxed);
    Ok(out)
}
