//! `koopstream pmu-serve`: a simulated system served as an IEEE C37.118.2 PMU (or PDC, one
//! PMU per bus) over TCP, and optionally UDP.
//!
//! The record is simulated whole before serving starts (`frames.rs` turns any sample of it
//! into a data frame on demand, so memory is the record itself: 8 bytes per value, bounded
//! by the command). Time stamps are the record's: a whole UTC second at start-up plus
//! k / rate. At `speed` > 0 the frames of a stream leave at the absolute instants the
//! `Pacer` gives (start + k / (rate * speed)), so a slow write delays a frame but never
//! shifts the ones after it; at speed 0 each client gets its frames as fast as it reads.
//!
//! The simulator holds the machine states of the record besides its output while it
//! runs, so simulating takes up to about twice the kept record's memory, once.
//!
//! Every TCP client is a session (`session.rs`) of its own, at most `max_sessions` at a
//! time: it reads command frames and answers them (CFG-1, CFG-2, header, data on and off).
//! With `--udp` one more session reads commands from datagrams and sends its frames to
//! the address of the last command. `run` stops when `shutdown` resolves: no new clients,
//! every session stops at its next frame boundary and closes its connection.

pub mod frames;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use frames::{Encoding, FrameSource, FramesError};

/// How long `run` waits for its sessions after `shutdown` before dropping them.
const DRAIN: Duration = Duration::from_secs(2);

/// What `run` serves and how.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The frames of the simulated record.
    pub source: Arc<FrameSource>,
    /// 1 = real time, 2 = twice as fast, ...; 0 = as fast as each client reads.
    pub speed: f64,
    /// At most this many TCP clients at a time; more are closed on accept.
    pub max_sessions: usize,
    /// The TCP/UDP mode: TCP clients' data frames go as datagrams to this address (their
    /// commands and the replies stay on TCP).
    pub udp_data: Option<SocketAddr>,
}

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The speed is neither 0 nor between 0.001 and 1000.
    #[error("speed must be 0 (unpaced) or between 0.001 and 1000, not {0}")]
    Speed(f64),
    /// The UDP socket of the TCP/UDP mode could not be opened.
    #[error("cannot open the UDP socket for data frames: {0}")]
    Io(std::io::Error),
}

/// When each sample's frame is due: sample k at `start + k / frames_per_s`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacer {
    start: Instant,
    /// rate * speed; 0 for unpaced streams.
    frames_per_s: f64,
}

impl Pacer {
    /// A pacer whose sample 0 is due at the instant the wall clock reads `start_soc`
    /// (or now, if that has passed).
    pub(crate) fn new(start_soc: u32, rate: f64, speed: f64) -> Self {
        let start_wall = UNIX_EPOCH + Duration::from_secs(u64::from(start_soc));
        let wait = start_wall.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Self { start: Instant::now() + wait, frames_per_s: rate * speed }
    }

    /// Whether frames follow a clock at all.
    pub(crate) fn paced(&self) -> bool {
        self.frames_per_s > 0.0
    }

    /// The instant sample `k` is due (paced streams only).
    pub(crate) fn due(&self, k: usize) -> Instant {
        // Absolute instants from one start: rounding never accumulates.
        self.start + Duration::from_secs_f64(k as f64 / self.frames_per_s)
    }

    /// The latest sample due at `now` (0 before the start).
    pub(crate) fn current(&self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        (elapsed * self.frames_per_s).floor() as usize
    }
}

/// Refuses speeds whose schedule would overflow the clock (or mean nothing).
pub fn check_speed(speed: f64) -> Result<(), ServeError> {
    if speed == 0.0 || (1e-3..=1e3).contains(&speed) { Ok(()) } else { Err(ServeError::Speed(speed)) }
}

/// Serves `config` on `listener` (and on `udp`, if given) until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    udp: Option<UdpSocket>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    check_speed(config.speed)?;
    let source = config.source;
    let pacer = Pacer::new(source.time(0).soc, f64::from(source.rate()), config.speed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(config.max_sessions));
    let mut tasks = JoinSet::new();
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, pmus = source.config().pmus.len(), samples = source.len(), "pmu-serve: listening (TCP)");
    }
    if let Some(udp) = udp {
        if let Ok(address) = udp.local_addr() {
            tracing::info!(%address, "pmu-serve: listening (UDP)");
        }
        tasks.spawn(session::udp(udp, source.clone(), pacer, stop_rx.clone()));
    }
    // One socket sends every TCP session's data frames in the TCP/UDP mode.
    let data_route = match config.udp_data {
        Some(to) => {
            let local: SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let socket = UdpSocket::bind(local).await.map_err(ServeError::Io)?;
            tracing::info!(%to, "pmu-serve: data frames of TCP clients go over UDP");
            Some((Arc::new(socket), to))
        }
        None => None,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(session::tcp(
                            stream,
                            peer,
                            source.clone(),
                            pacer,
                            stop_rx.clone(),
                            data_route.clone(),
                            permit,
                        ));
                    }
                    Err(_) => {
                        tracing::warn!(%peer, max = config.max_sessions, "pmu-serve: too many clients, connection closed");
                    }
                },
                Err(error) => {
                    // E.g. out of file descriptors: wait rather than spin.
                    tracing::warn!(%error, "pmu-serve: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tracing::info!("pmu-serve: shutting down");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_schedules_absolute_instants() {
        let pacer = Pacer { start: Instant::now(), frames_per_s: 30.0 };
        assert!(pacer.paced());
        // Sample 3000 is due exactly 100 s after the start, not 3000 roundings later.
        assert_eq!(pacer.due(3000) - pacer.start, Duration::from_secs(100));
        assert_eq!(pacer.current(pacer.start + Duration::from_millis(1001)), 30);
        assert_eq!(pacer.current(pacer.start), 0);
        let unpaced = Pacer { start: Instant::now(), frames_per_s: 0.0 };
        assert!(!unpaced.paced());
    }
}
