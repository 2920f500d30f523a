//! One client of `pmu-serve`: a task that reads command frames (from a TCP byte stream or
//! from UDP datagrams) and a loop that answers them and, while data is on, sends data
//! frames when the pacer says they are due.
//!
//! The reader and the writer are separate tasks joined by a small queue of commands, so a
//! client that sends while it is being written to is never blocked by its own frames, and
//! a write is never cancelled half-way by an incoming command.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use c37118::{Command, CommandFrame, ConfigKind, DataFrame, ParseError, Time, TimeQuality};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::Pacer;
use super::frames::{FrameSource, TIME_BASE};

/// The largest frame a client may send: commands are 18 bytes plus any extended data,
/// which this server ignores; anything bigger is refused before it is buffered.
const MAX_CLIENT_FRAME: usize = 1024;

/// Commands read but not yet handled, per session.
const COMMAND_QUEUE: usize = 16;

/// A client that takes longer than this to accept one frame is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("malformed frame: {0}")]
    Malformed(#[from] ParseError),
    #[error("frame of {0} bytes is larger than the {MAX_CLIENT_FRAME} a command may have")]
    TooLarge(usize),
    #[error("the client read nothing for {WRITE_TIMEOUT:?}")]
    WriteTimeout,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A command and where it came from (UDP answers go there).
struct Request {
    command: CommandFrame,
    from: SocketAddr,
}

/// Where a session's frames go.
enum Outlet {
    /// Replies over TCP; data frames too, or as datagrams to the address given (the
    /// standard's TCP/UDP mode: commands over TCP, data over UDP).
    Tcp(OwnedWriteHalf, Option<DataRoute>),
    /// The socket, and the sender of the latest command (nothing is sent before one).
    Udp(Arc<UdpSocket>, Option<SocketAddr>),
}

/// Where the data frames of TCP sessions go in the TCP/UDP mode.
pub(super) type DataRoute = (Arc<UdpSocket>, SocketAddr);

impl Outlet {
    /// Sends a data frame: over the session's own link, or to the data route.
    async fn send_data(&mut self, frame: &[u8]) -> Result<(), SessionError> {
        match self {
            Outlet::Tcp(_, Some((socket, to))) => {
                if let Err(error) = socket.send_to(frame, *to).await {
                    tracing::debug!(%error, %to, "pmu-serve: UDP send failed");
                }
                Ok(())
            }
            _ => self.send(frame).await,
        }
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), SessionError> {
        match self {
            Outlet::Tcp(writer, _) => match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(frame)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(SessionError::WriteTimeout),
            },
            Outlet::Udp(socket, Some(to)) => {
                // A datagram that cannot be sent (no route, a full buffer) is lost, as on
                // any UDP link; the stream goes on.
                if let Err(error) = socket.send_to(frame, *to).await {
                    tracing::debug!(%error, %to, "pmu-serve: UDP send failed");
                }
                Ok(())
            }
            Outlet::Udp(_, None) => Ok(()),
        }
    }
}

/// The state of one client's stream: which sample comes next and the buffers to encode it.
struct Stream {
    source: Arc<FrameSource>,
    pacer: Pacer,
    /// The next sample to send while data is on.
    next: Option<usize>,
    /// Unpaced streams resume here after data off.
    resume: usize,
    scratch: DataFrame,
    out: Vec<u8>,
    peer: String,
}

impl Stream {
    fn new(source: Arc<FrameSource>, pacer: Pacer, peer: String) -> Self {
        let scratch = DataFrame::shaped_for(source.config());
        let out = Vec::with_capacity(source.config().data_frame_len());
        Self { source, pacer, next: None, resume: 0, scratch, out, peer }
    }

    /// The time stamp of replies: the wall clock (the record's clock at real time).
    fn now() -> Time {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Time::from_seconds(now.as_secs_f64(), TIME_BASE, TimeQuality::default())
    }

    /// Applies a command; leaves a frame to send in `out` (empty: nothing to send).
    fn handle(&mut self, command: &CommandFrame) {
        self.out.clear();
        let peer = &self.peer;
        if command.idcode != self.source.idcode() {
            tracing::warn!(
                peer,
                idcode = command.idcode,
                ours = self.source.idcode(),
                "pmu-serve: command for another IDCODE ignored"
            );
            return;
        }
        let encoded = match command.command {
            Command::DataOff => {
                if let Some(next) = self.next.take() {
                    self.resume = next;
                }
                tracing::info!(peer, "pmu-serve: data off");
                Ok(())
            }
            Command::DataOn => {
                let start =
                    if self.pacer.paced() { self.pacer.current(tokio::time::Instant::now()) } else { self.resume };
                if self.next.is_none() {
                    self.next = Some(start);
                }
                tracing::info!(peer, sample = start, "pmu-serve: data on");
                Ok(())
            }
            Command::SendHeader => self.source.encode_header(Self::now(), &mut self.out),
            Command::SendCfg1 => self.source.encode_config(ConfigKind::Cfg1, Self::now(), &mut self.out),
            Command::SendCfg2 => self.source.encode_config(ConfigKind::Cfg2, Self::now(), &mut self.out),
            Command::SendCfg3 => self.source.encode_config(ConfigKind::Cfg3, Self::now(), &mut self.out),
            other => {
                // Extended and user commands mean nothing here.
                tracing::info!(peer, command = ?other, "pmu-serve: command not supported, ignored");
                Ok(())
            }
        };
        if let Err(error) = encoded {
            // The source's frames were checked when it was built; say so if one fails.
            tracing::error!(peer, %error, "pmu-serve: cannot encode a reply");
            self.out.clear();
        }
    }

    /// Whether a data frame is to be sent; `None` when data is off or the record is over.
    fn pending(&mut self) -> Option<usize> {
        let next = self.next?;
        if next >= self.source.len() {
            tracing::info!(peer = self.peer, samples = self.source.len(), "pmu-serve: end of the record, data off");
            self.next = None;
            self.resume = next;
            return None;
        }
        Some(next)
    }

    /// Encodes sample `k` into `out` and moves on.
    fn encode(&mut self, k: usize) -> bool {
        self.out.clear();
        self.next = Some(k + 1);
        match self.source.encode_data(k, &mut self.scratch, &mut self.out) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(peer = self.peer, sample = k, %error, "pmu-serve: sample cannot be encoded, skipped");
                false
            }
        }
    }
}

/// Sleeps until sample `k` is due (at once for unpaced streams).
async fn due(pacer: Pacer, k: usize) {
    if pacer.paced() {
        tokio::time::sleep_until(pacer.due(k)).await;
    }
}

/// The writer loop of a session: commands first, then due data frames, until the
/// commands end (the reader stopped), a write fails or the server stops.
async fn drive(
    mut outlet: Outlet,
    mut stream: Stream,
    mut commands: mpsc::Receiver<Request>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    loop {
        let pending = stream.pending();
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            request = commands.recv() => {
                let Some(request) = request else { return Ok(()) };
                if let Outlet::Udp(_, to) = &mut outlet {
                    *to = Some(request.from);
                }
                stream.handle(&request.command);
                if !stream.out.is_empty() {
                    outlet.send(&stream.out).await?;
                }
            }
            _ = due(stream.pacer, pending.unwrap_or(0)), if pending.is_some() => {
                if let Some(k) = pending && stream.encode(k) {
                    outlet.send_data(&stream.out).await?;
                }
            }
        }
    }
}

/// Reads command frames off a byte stream into `commands` until the client closes it.
async fn read_tcp(
    mut reader: OwnedReadHalf,
    from: SocketAddr,
    commands: mpsc::Sender<Request>,
) -> Result<(), SessionError> {
    // A fixed buffer: what a client declares is checked against it before anything waits
    // for those bytes.
    let mut buf = [0u8; MAX_CLIENT_FRAME];
    let mut filled = 0;
    loop {
        while let Some(len) = c37118::frame_len(&buf[..filled])? {
            if len > MAX_CLIENT_FRAME {
                return Err(SessionError::TooLarge(len));
            }
            if len > filled {
                break;
            }
            let command = CommandFrame::parse(&buf[..len])?;
            if commands.send(Request { command, from }).await.is_err() {
                return Ok(());
            }
            buf.copy_within(len..filled, 0);
            filled -= len;
        }
        let read = reader.read(&mut buf[filled..]).await?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
    }
}

/// One TCP client, from accept to close.
pub(super) async fn tcp(
    socket: TcpStream,
    peer: SocketAddr,
    source: Arc<FrameSource>,
    pacer: Pacer,
    stop: watch::Receiver<bool>,
    data_route: Option<DataRoute>,
    _permit: OwnedSemaphorePermit,
) {
    tracing::info!(%peer, "pmu-serve: client connected");
    // Frames are small and timely: send each at once.
    let _ = socket.set_nodelay(true);
    let (reader, writer) = socket.into_split();
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let reading = tokio::spawn(read_tcp(reader, peer, tx));
    let written = drive(Outlet::Tcp(writer, data_route), Stream::new(source, pacer, peer.to_string()), rx, stop).await;
    // The writer is done (its half is dropped): stop reading too, which closes the socket.
    reading.abort();
    let read = reading.await.unwrap_or(Ok(()));
    match written.and(read) {
        Ok(()) => tracing::info!(%peer, "pmu-serve: client disconnected"),
        // A client that leaves with frames unread resets the connection: a disconnect too.
        Err(SessionError::Io(error))
            if matches!(error.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) =>
        {
            tracing::info!(%peer, %error, "pmu-serve: client disconnected");
        }
        Err(error) => tracing::warn!(%peer, %error, "pmu-serve: connection closed"),
    }
}

/// The UDP session: commands from any sender, frames to the sender of the latest one.
pub(super) async fn udp(socket: UdpSocket, source: Arc<FrameSource>, pacer: Pacer, stop: watch::Receiver<bool>) {
    let socket = Arc::new(socket);
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let reader = socket.clone();
    let reading = tokio::spawn(async move {
        let mut buf = [0u8; MAX_CLIENT_FRAME];
        loop {
            // A datagram longer than the buffer is truncated, and then fails its CRC.
            let (len, from) = match reader.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(error) => {
                    // E.g. an ICMP "port unreachable" for an earlier datagram; do not spin.
                    tracing::debug!(%error, "pmu-serve: UDP receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match CommandFrame::parse(&buf[..len]) {
                Ok(command) => {
                    if tx.send(Request { command, from }).await.is_err() {
                        return;
                    }
                }
                // There is no connection to close: drop the datagram.
                Err(error) => tracing::warn!(%from, %error, "pmu-serve: malformed UDP frame ignored"),
            }
        }
    });
    let outlet = Outlet::Udp(socket, None);
    if let Err(error) = drive(outlet, Stream::new(source, pacer, "udp".into()), rx, stop).await {
        tracing::warn!(%error, "pmu-serve: UDP session ended");
    }
    reading.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pmu_serve::frames::Encoding;
    use systems::Trajectory;
    use tokio::net::TcpListener;

    fn stream(samples: usize) -> Stream {
        let times = (0..samples).map(|k| k as f64 / 10.0).collect();
        let values = (0..samples).map(|k| k as f64).collect();
        let record = Trajectory::new(vec!["x".into()], times, values).unwrap();
        let encoding = Encoding { float: true, polar: true };
        let source = FrameSource::new(record, 10, 7, "TEST", encoding, 100, "unit test").unwrap();
        Stream::new(Arc::new(source), Pacer::new(100, 10.0, 0.0), "test".into())
    }

    fn command(idcode: u16, command: Command) -> CommandFrame {
        CommandFrame { idcode, time: Time::default(), command, extended: Vec::new() }
    }

    #[tokio::test]
    async fn commands_switch_data_and_unpaced_streams_resume() {
        let mut s = stream(3);
        assert_eq!(s.pending(), None);
        s.handle(&command(8, Command::DataOn));
        assert_eq!(s.pending(), None, "another IDCODE is ignored");
        s.handle(&command(7, Command::SendCfg2));
        assert_eq!(c37118::parse_prefix(&s.out).unwrap().kind, c37118::FrameKind::Cfg2);
        s.handle(&command(7, Command::SendCfg3));
        assert_eq!(c37118::parse_prefix(&s.out).unwrap().kind, c37118::FrameKind::Cfg3);
        s.handle(&command(7, Command::DataOn));
        assert_eq!(s.pending(), Some(0));
        assert!(s.encode(0));
        assert_eq!(s.out.len(), s.source.config().data_frame_len());
        s.handle(&command(7, Command::DataOff));
        assert_eq!(s.pending(), None);
        s.handle(&command(7, Command::DataOn));
        assert_eq!(s.pending(), Some(1), "resumes where it stopped");
        assert!(s.encode(1) && s.encode(2));
        assert_eq!(s.pending(), None, "the record is over");
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn frames_are_cut_from_the_byte_stream_and_oversized_ones_refused() {
        let (mut client, server) = pair().await;
        let (reader, _writer) = server.into_split();
        let (tx, mut rx) = mpsc::channel(COMMAND_QUEUE);
        let from = client.local_addr().unwrap();
        let reading = tokio::spawn(read_tcp(reader, from, tx));
        let mut bytes = Vec::new();
        command(7, Command::SendCfg2).encode(&mut bytes);
        command(7, Command::DataOn).encode(&mut bytes);
        // Two frames, the second split across writes.
        client.write_all(&bytes[..25]).await.unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&bytes[25..]).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().command.command, Command::SendCfg2);
        assert_eq!(rx.recv().await.unwrap().command.command, Command::DataOn);
        // A frame that declares more bytes than a command may have: refused at once.
        client.write_all(&[0xAA, 0x41, 0xFF, 0xFF]).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), reading).await.unwrap().unwrap();
        assert!(matches!(result, Err(SessionError::TooLarge(65535))), "{result:?}");
    }
}
