//! The spectra workers: a fixed pool of threads (`streams.spectra_workers`, one by
//! default) that refresh every stream's mode meter at its eigen cadence (the modal analysis
//! with energies and confidence intervals, classification, tracking, alarms), and from it
//! the WebSocket summaries and the per-stream mode and alarm gauges, off the async reactor
//! and off the ingest path. An eigen-decomposition of a large model takes tens of
//! milliseconds; run on the blocking pool, many at once could take every core and hold
//! acknowledgements back. Here at most as many run at a time as there are workers, whatever
//! the number of streams.
//!
//! A stream has at most one refresh queued or running, and the queue is first in, first
//! out: a stream waits for at most one refresh of every other stream, so none starves. The
//! job carries the model that was published when the refresh came due and copies of the
//! estimator's statistics taken at the same moment, so the analysis and the statistics
//! describe the same model; the time it waited is measured (`refresh_wait_seconds`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use koopman::spectrum;
use koopman::uncertainty::ModeStatistics;
use meter::{AlarmEvent, MeterEvent, Severity};
use tokio::sync::{broadcast, watch};

use crate::command::{AlarmNotice, ModeBrief, ModeChange, ModelSummary, Push};
use crate::metrics::Metrics;
use crate::modes::{MeterCell, MeterView};
use crate::snapshot::{ModelSnapshot, StreamSnapshot};

/// Leading modes sent in a WebSocket summary.
pub const SUMMARY_MODES: usize = 6;

/// A stream whose refresh is due.
pub struct Job {
    /// The stream id (for the gauges and the log).
    pub stream: String,
    /// The model to analyse.
    pub model: Arc<ModelSnapshot>,
    /// The estimator's statistics when it was published.
    pub stats: ModeStatistics,
    /// The stream's published snapshots (the summary reports the latest sample count).
    pub snapshots: watch::Receiver<Arc<StreamSnapshot>>,
    /// Where summaries and notices go.
    pub summaries: broadcast::Sender<Arc<Push>>,
    /// Set while the job waits in the queue or runs; cleared when it is done, so two
    /// workers never refresh one stream at once (nor publish its views out of order).
    pub queued: Arc<AtomicBool>,
    /// Whether the stream has per-stream mode gauges.
    pub gauges: bool,
    /// The stream's mode meter.
    pub meter: Arc<MeterCell>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Jobs with the instant each was queued.
    jobs: VecDeque<(Instant, Job)>,
    closed: bool,
}

/// Most spectra workers a server may run.
pub const MAX_SPECTRA_WORKERS: usize = 64;

/// The workers (they stop when this is dropped).
pub struct Spectra {
    shared: Arc<Shared>,
}

impl Spectra {
    /// Starts `workers` worker threads (at least one, at most [`MAX_SPECTRA_WORKERS`]).
    pub fn start(metrics: Arc<Metrics>, workers: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { jobs: VecDeque::new(), closed: false }),
            wake: Condvar::new(),
        });
        for k in 0..workers.clamp(1, MAX_SPECTRA_WORKERS) {
            let (worker, metrics) = (shared.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("koopstream-spectra-{k}"))
                .spawn(move || run(&worker, &metrics))
                .expect("a spectra thread starts");
        }
        Self { shared }
    }

    /// Queues a job; the caller set `job.queued` and queues no other job for the stream
    /// until the worker clears it.
    pub fn submit(&self, job: Job) {
        lock(&self.shared.state).jobs.push_back((Instant::now(), job));
        self.shared.wake.notify_one();
    }
}

impl Drop for Spectra {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_all();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The refresh workers' nice value: the lowest priority (19). The kernel then gives a core
/// to an owner task or the committer whenever one is runnable, so refreshes use only the
/// time ingest leaves and never delay an acknowledgement; on an idle machine they run at
/// full speed all the same.
pub const WORKER_NICE: i32 = 19;

/// Lowers this thread's priority to [`WORKER_NICE`] (on Linux a thread id names one thread
/// for setpriority). A refusal is logged, not fatal: the refreshes are still right.
fn lower_own_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), WORKER_NICE) {
        tracing::warn!(%error, "the refresh worker could not lower its priority; it competes with ingest");
    }
}

fn run(shared: &Shared, metrics: &Metrics) {
    lower_own_priority();
    loop {
        let (queued_at, job) = {
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
        metrics.refresh_wait_seconds.observe(queued_at.elapsed().as_secs_f64());
        let queued = job.queued.clone();
        refresh(job, metrics);
        queued.store(false, Ordering::Release);
    }
}

/// Analyses the job's model, refreshes the stream's meter, publishes its view, the gauges
/// and the summary, and logs what changed.
fn refresh(job: Job, metrics: &Metrics) {
    let model = &job.model;
    let started = Instant::now();
    let analysed = match spectrum::analyse(model.model.a.as_ref(), model.model.c.as_ref(), model.ts, &job.stats) {
        Ok(analysed) => Arc::new(analysed),
        Err(e) => {
            tracing::warn!(stream = %job.stream, version = model.version, error = %e, "modal analysis failed");
            return;
        }
    };
    metrics.eigen_seconds.observe(started.elapsed().as_secs_f64());
    let t = model.last_timestamp.unwrap_or(0.0);
    let (view, events) = {
        let mut meter = job.meter.meter();
        let scale = spectrum::channel_scale(model.model.c.as_ref());
        let refresh = meter.refresh(t, model.ts, &analysed, &scale);
        let view = MeterView::of(&meter, model.version, t, analysed, refresh.verdicts);
        (view, refresh.events)
    };
    log_events(&job.stream, &events);
    if job.gauges {
        let modes: Vec<(u64, f64, f64)> =
            view.physical.iter().map(|m| (m.id, m.frequency_hz, m.damping_ratio)).collect();
        metrics.stream_modes(&job.stream, &modes);
        let count = |s: Severity| view.active_alarms.iter().filter(|a| a.severity == s).count() as i64;
        metrics.stream_alarms(&job.stream, count(Severity::Warning), count(Severity::Critical));
    }
    let summary = ModelSummary {
        version: model.version,
        samples_accepted: job.snapshots.borrow().status.samples_accepted,
        residual_rms: model.residual_rms.clone(),
        modes: leading_modes(&view),
    };
    job.meter.publish(view);
    // No subscriber is fine: pushes are only for connected WebSocket clients.
    for event in events {
        let push = match event {
            MeterEvent::Alarm(AlarmEvent::Alarm { mode, from, to, t, reading }) => {
                Push::Alarm(AlarmNotice { mode, from, to, t, reading })
            }
            MeterEvent::Alarm(AlarmEvent::Changed { mode, t, before, after }) => {
                Push::ModeChanged(ModeChange { mode, t, before, after })
            }
            MeterEvent::Born { .. } | MeterEvent::Died { .. } => continue,
        };
        let _ = job.summaries.send(Arc::new(push));
    }
    let _ = job.summaries.send(Arc::new(Push::Summary(summary)));
}

fn log_events(stream: &str, events: &[MeterEvent]) {
    for event in events {
        match event {
            MeterEvent::Born { mode } => tracing::info!(stream, mode, "mode tracked"),
            MeterEvent::Died { mode } => tracing::info!(stream, mode, "mode lost"),
            MeterEvent::Alarm(AlarmEvent::Alarm { mode, from, to, t, reading }) => tracing::warn!(
                stream,
                mode,
                t,
                from = from.map_or("none", Severity::as_str),
                to = to.map_or("none", Severity::as_str),
                damping = reading.damping_ratio,
                damping_low = reading.damping_ci95.0,
                damping_high = reading.damping_ci95.1,
                frequency_hz = reading.frequency_hz,
                "damping alarm"
            ),
            MeterEvent::Alarm(AlarmEvent::Changed { mode, t, before, after }) => tracing::info!(
                stream,
                mode,
                t,
                frequency_before = before.frequency_hz,
                frequency_after = after.frequency_hz,
                damping_before = before.damping_ratio,
                damping_after = after.damping_ratio,
                "mode changed"
            ),
        }
    }
}

/// The leading tracked physical modes of a refresh, least damped first.
pub fn leading_modes(view: &MeterView) -> Vec<ModeBrief> {
    view.physical
        .iter()
        .take(SUMMARY_MODES)
        .map(|m| ModeBrief { id: m.id, frequency_hz: m.frequency_hz, damping_ratio: m.damping_ratio })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nice values of this process's threads whose name starts with `prefix`, read from
    /// /proc (field 19 of a task's stat line).
    fn nice_of_threads(prefix: &str) -> Vec<i32> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The name is in parentheses and may hold spaces: count fields after it.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            nice.push(after_name.split(' ').nth(16).unwrap().parse().unwrap());
        }
        nice
    }

    #[test]
    fn refresh_workers_run_at_the_lowest_priority() {
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = own();
        let spectra = Spectra::start(Arc::new(Metrics::new(10)), 3);
        // The workers lower their priority as they start: wait for them (bounded). Other
        // tests' workers may be there too, hence "at least".
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = nice_of_threads("koopstream-spec");
        while seen.iter().filter(|&&n| n == WORKER_NICE).count() < 3 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = nice_of_threads("koopstream-spec");
        }
        assert!(seen.iter().filter(|&&n| n == WORKER_NICE).count() >= 3, "nice values of the workers: {seen:?}");
        // The thread that started them (as ingest's would) keeps its priority.
        assert_eq!(own(), before);
        drop(spectra);
    }
}
