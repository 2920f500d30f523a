//! The stream owner with a real store: batches queued together are logged in one commit,
//! retries are not logged, and the log replays to the live state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use koopstream::service::batch::{SampleBatch, Timing};
use koopstream::service::command::Command;
use koopstream::service::core::Core;
use koopstream::service::definition::StreamDefinition;
use koopstream::service::error::ErrorKind;
use koopstream::service::journal::{Journal, LogEntry};
use koopstream::service::metrics::{Metrics, Transport};
use koopstream::service::owner::OwnerContext;
use koopstream::service::registry::{Registry, RegistryLimits};
use koopstream::store::{Durability, Store, StoreOptions};
use koopstream::wire::streams::CreateStream;
use tokio::sync::oneshot;

fn batch(seq: u64, start: usize) -> SampleBatch {
    let x = (start..start + 3).flat_map(|k| [(k as f64 * 0.3).sin(), (k as f64 * 0.2).cos()]).collect();
    SampleBatch { seq, epoch: None, timing: Timing::Start(start as f64 * 0.1), rows: 3, x, u: Vec::new() }
}

/// Batches queued together are logged in one commit, retries among them (against the
/// stream or against an earlier batch of the group) are acknowledged and not logged, a
/// reset in the middle ends the group, and the log replays to the live state.
#[test]
fn queued_batches_are_logged_in_one_commit_and_replay_to_the_live_state() {
    let dir = std::env::temp_dir().join(format!("koopstream-owner-group-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let options = StoreOptions {
            durability: Durability::PerAck,
            group_commit: Duration::from_micros(100),
            flush_interval: Duration::from_secs(1),
        };
        let store = Arc::new(Store::open(&dir, options).unwrap());
        let context = OwnerContext {
            metrics: Arc::new(Metrics::new(0)),
            store: Some(store.clone() as Arc<dyn Journal>),
            publish_interval: Duration::from_millis(100),
            snapshot_every: 1_000_000,
            snapshot_interval: Duration::from_secs(3600),
            shared: None,
        };
        let registry = Registry::new(
            context,
            RegistryLimits {
                queue_capacity: 64,
                max_streams: 4,
                stream_memory_bytes: 1 << 30,
                total_memory_bytes: 1 << 32,
                spectra_workers: 1,
            },
        );
        let request: CreateStream =
            serde_json::from_str(r#"{"id":"g","channels":[{"name":"a"},{"name":"b"}],"ts":0.1,"mu":0.001,"warmup":4}"#)
                .unwrap();
        let definition = StreamDefinition::from_request(request.into(), 300, || unreachable!()).unwrap();
        let ts = definition.ts;
        let (handle, _) = registry.create(definition.clone()).await.unwrap();
        let commits_before = store.stats().commits.load(Ordering::Relaxed);
        // Queued without yielding, so the owner finds them all waiting.
        let (mut acks, mut reset) = (Vec::new(), None);
        for (i, (seq, start)) in
            [(1, 0), (2, 3), (2, 3), (4, 6), (2, 30), (1, 0), (5, 9), (0, 0), (6, 12)].into_iter().enumerate()
        {
            if i == 7 {
                let (reply, answer) = oneshot::channel();
                handle.try_submit(Command::Reset { watermarks: false, reply }).map_err(|_| "queued").unwrap();
                reset = Some(answer);
                continue;
            }
            let (reply, answer) = oneshot::channel();
            let command = Command::Ingest { batch: batch(seq, start), transport: Transport::Ws, reply };
            handle.try_submit(command).map_err(|_| "queued").unwrap();
            acks.push(answer);
        }
        let mut got = Vec::new();
        for answer in acks {
            got.push(answer.await.unwrap().map(|ack| (ack.seq, ack.duplicate, ack.version)).map_err(|e| e.kind()));
        }
        // Seq 2 again with other samples is a conflict: refused, not logged, nothing applied.
        assert_eq!(
            got,
            [
                Ok((1, false, 1)),
                Ok((2, false, 2)),
                Ok((2, true, 2)),
                Ok((4, false, 3)),
                Err(ErrorKind::Conflict),
                Ok((1, true, 3)),
                Ok((5, false, 4)),
                Ok((6, false, 6))
            ]
        );
        assert_eq!(reset.unwrap().await.unwrap().unwrap(), 5);
        // One commit for the six batches before the reset, one for the reset, one for the last batch.
        assert_eq!(store.stats().commits.load(Ordering::Relaxed) - commits_before, 3);

        let stored = store.load().unwrap();
        let log = &stored.iter().flatten().find(|s| s.id == "g").unwrap().log;
        let seqs: Vec<(u64, Option<u64>)> = log
            .iter()
            .map(|(index, entry)| match entry {
                LogEntry::Batch(b) => (*index, Some(b.seq)),
                LogEntry::Reset { .. } => (*index, None),
            })
            .collect();
        assert_eq!(seqs, [(1, Some(1)), (2, Some(2)), (3, Some(4)), (4, Some(5)), (5, None), (6, Some(6))]);
        let mut replayed = Core::new(koopman::Estimator::new(definition.estimator_config()).unwrap());
        for (_, entry) in log {
            replayed.replay(entry, ts);
        }
        let status = handle.status();
        assert_eq!((replayed.version, replayed.last_seq(), replayed.samples), (6, Some(6), status.samples_accepted));
        assert_eq!(status.version, 6);
        registry.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
