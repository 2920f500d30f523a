//! The spectra worker: one thread that computes what WebSocket summaries and the per-stream
//! mode gauges show (frequency and damping of the least damped modes), off the async
//! reactor and off the ingest path. An eigen-decomposition of a large model takes tens of
//! milliseconds; run on the blocking pool, several at once could take every core and hold
//! acknowledgements back. Here at most one runs at a time, whatever the number of streams.
//!
//! A stream has at most one job queued, and the job reads the stream's latest published
//! snapshot when it starts, not when it was queued: when the worker falls behind, a stream
//! that came due again gets its newest model decomposed once instead of a backlog of stale
//! ones. Only eigenvalues are computed (no eigenvectors, no inverse): that is all a summary
//! needs. The full modal analysis (shapes, participation) is computed on request by the
//! readers of `/modes` and `/model`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use koopman::NumericalError;
use koopman::spectrum::{self, Continuous};
use tokio::sync::{broadcast, watch};

use crate::command::{ModeBrief, ModelSummary};
use crate::metrics::Metrics;
use crate::snapshot::{ModelSnapshot, StreamSnapshot};

/// Leading modes sent in a WebSocket summary.
pub const SUMMARY_MODES: usize = 6;

/// A stream whose summary is due.
pub struct Job {
    /// The stream id (for the mode gauges).
    pub stream: String,
    /// The stream's published snapshots; the job takes the latest when it starts.
    pub snapshots: watch::Receiver<Arc<StreamSnapshot>>,
    /// Where the summary goes.
    pub summaries: broadcast::Sender<Arc<ModelSummary>>,
    /// Set while the job waits in the queue; cleared when it starts.
    pub queued: Arc<AtomicBool>,
    /// Whether the stream has per-stream mode gauges.
    pub gauges: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// The worker (stops when dropped).
pub struct Spectra {
    shared: Arc<Shared>,
}

impl Spectra {
    /// Starts the worker thread.
    pub fn start(metrics: Arc<Metrics>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { jobs: VecDeque::new(), closed: false }),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("koopstream-spectra".into())
            .spawn(move || run(&worker, &metrics))
            .expect("the spectra thread starts");
        Self { shared }
    }

    /// Queues a job; the caller set `job.queued` and queues no other job for the stream
    /// until the worker clears it.
    pub fn submit(&self, job: Job) {
        lock(&self.shared.state).jobs.push_back(job);
        self.shared.wake.notify_one();
    }
}

impl Drop for Spectra {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(shared: &Shared, metrics: &Metrics) {
    loop {
        let job = {
            let mut state = lock(&shared.state);
            loop {
                if state.closed {
                    return;
                }
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        job.queued.store(false, Ordering::Release);
        let snapshot = job.snapshots.borrow().clone();
        let Some(model) = &snapshot.model else { continue };
        let started = Instant::now();
        let Ok(modes) = leading_modes(model) else { continue };
        metrics.eigen_seconds.observe(started.elapsed().as_secs_f64());
        if job.gauges {
            let pairs: Vec<(f64, f64)> = modes.iter().map(|b| (b.frequency_hz, b.damping_ratio)).collect();
            metrics.stream_modes(&job.stream, &pairs);
        }
        let summary = ModelSummary {
            version: model.version,
            samples_accepted: snapshot.status.samples_accepted,
            residual_rms: model.residual_rms.clone(),
            modes,
        };
        // No subscriber is fine: summaries are only for connected WebSocket clients.
        let _ = job.summaries.send(Arc::new(summary));
    }
}

/// The leading oscillatory modes of a model (positive frequency, no ambiguity flag), least
/// damped first, then by frequency: the order of the full modal analysis. Uses the modes a
/// reader already computed for this model, else the eigenvalues alone.
pub fn leading_modes(model: &ModelSnapshot) -> Result<Vec<ModeBrief>, NumericalError> {
    let mut readings: Vec<Continuous> = if model.has_modes() {
        let modes = model.modes()?;
        modes.iter().filter(|m| m.eigenvalue.im > 0.0 && !m.flags.ambiguous()).filter_map(|m| m.continuous).collect()
    } else {
        spectrum::eigenvalues(model.model.a.as_ref())?
            .into_iter()
            .filter(|l| l.im > 0.0 && !spectrum::flags_of(*l).ambiguous())
            .filter_map(|l| Continuous::of(l, model.ts))
            .collect()
    };
    readings
        .sort_by(|a, b| a.damping_ratio.total_cmp(&b.damping_ratio).then(a.frequency_hz.total_cmp(&b.frequency_hz)));
    Ok(readings
        .iter()
        .take(SUMMARY_MODES)
        .map(|c| ModeBrief { frequency_hz: c.frequency_hz, damping_ratio: c.damping_ratio })
        .collect())
}
