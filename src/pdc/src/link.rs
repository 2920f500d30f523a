//! The connection to a PMU or PDC: frames in, commands out, over TCP (a byte stream cut
//! into frames by FRAMESIZE) or UDP (one frame per datagram). Reads are bounded by the
//! largest frame the protocol allows, so a peer cannot make the client allocate more.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use c37118::{Command, CommandFrame, Time, TimeQuality, frame_len};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use domain::source::SourceTransport;

/// The largest frame: FRAMESIZE is 16 bits.
const MAX_FRAME: usize = u16::MAX as usize;

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The bytes are not C37.118.2 frames (bad SYNC or FRAMESIZE).
    #[error("not a C37.118.2 frame: {0}")]
    Framing(#[from] c37118::ParseError),
}

/// An open connection.
pub enum Link {
    /// TCP, with the bytes received and not yet cut into frames.
    Tcp { stream: TcpStream, buffer: Vec<u8>, start: usize },
    /// UDP, connected to the peer, with one datagram buffer.
    Udp { socket: UdpSocket, buffer: Vec<u8>, len: usize },
    /// Commands and configuration over TCP (as `Tcp`), data frames as datagrams on a local
    /// UDP port, taken only from the peer's address.
    TcpUdp { stream: TcpStream, buffer: Vec<u8>, start: usize, socket: UdpSocket, datagram: Vec<u8>, peer: IpAddr },
}

/// Drops the frame handed out last time (`start` bytes) and returns the length of the next
/// whole frame in `buffer`, if one is there (its length is then the new `start`); else
/// makes room for more bytes, refusing a frame that could not fit in FRAMESIZE's 16 bits.
fn buffered_frame(buffer: &mut Vec<u8>, start: &mut usize) -> Result<Option<usize>, LinkError> {
    if *start > 0 {
        buffer.drain(..*start);
        *start = 0;
    }
    if let Some(len) = frame_len(buffer)?
        && buffer.len() >= len
    {
        *start = len;
        return Ok(Some(len));
    }
    if buffer.len() >= MAX_FRAME {
        return Err(LinkError::Framing(c37118::ParseError::SizeMismatch));
    }
    buffer.reserve(4096);
    Ok(None)
}

/// What one wait of a `TcpUdp` link brought.
enum Arrival {
    Bytes(usize),
    Datagram(usize, SocketAddr),
}

impl Link {
    /// Connects to `address` within `timeout` (`udp_port`: the local port of `TcpUdp`).
    pub async fn connect(
        address: &str,
        transport: SourceTransport,
        udp_port: Option<u16>,
        timeout: Duration,
    ) -> Result<Self, LinkError> {
        let connect = async {
            match transport {
                SourceTransport::Tcp => {
                    let stream = TcpStream::connect(address).await?;
                    stream.set_nodelay(true)?;
                    Ok::<_, io::Error>(Link::Tcp { stream, buffer: Vec::with_capacity(4096), start: 0 })
                }
                SourceTransport::Udp => {
                    let peer = tokio::net::lookup_host(address)
                        .await?
                        .next()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing"))?;
                    let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let socket = UdpSocket::bind(local).await?;
                    socket.connect(peer).await?;
                    Ok(Link::Udp { socket, buffer: vec![0; MAX_FRAME], len: 0 })
                }
                SourceTransport::TcpUdp => {
                    let stream = TcpStream::connect(address).await?;
                    stream.set_nodelay(true)?;
                    let peer = stream.peer_addr()?.ip();
                    let any: IpAddr = if peer.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() };
                    let socket = UdpSocket::bind((any, udp_port.unwrap_or(0))).await?;
                    Ok(Link::TcpUdp {
                        stream,
                        buffer: Vec::with_capacity(4096),
                        start: 0,
                        socket,
                        datagram: vec![0; MAX_FRAME],
                        peer,
                    })
                }
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(link) => Ok(link?),
            Err(_) => Err(LinkError::Io(io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))),
        }
    }

    /// Sends a command frame to data stream `idcode`.
    pub async fn send(&mut self, idcode: u16, command: Command) -> Result<(), LinkError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let time = Time::from_seconds(now.as_secs_f64(), 1_000_000, TimeQuality::default());
        let mut bytes = Vec::with_capacity(18);
        CommandFrame { idcode, time, command, extended: Vec::new() }.encode(&mut bytes);
        match self {
            Link::Tcp { stream, .. } | Link::TcpUdp { stream, .. } => stream.write_all(&bytes).await?,
            Link::Udp { socket, .. } => {
                socket.send(&bytes).await?;
            }
        }
        Ok(())
    }

    /// The next whole frame (SYNC and FRAMESIZE checked; the CRC is the parser's). Cancel
    /// safe: bytes read before a cancellation stay buffered.
    pub async fn next_frame(&mut self) -> Result<&[u8], LinkError> {
        match self {
            Link::Tcp { stream, buffer, start } => loop {
                if let Some(len) = buffered_frame(buffer, start)? {
                    return Ok(&buffer[..len]);
                }
                // `read_buf` fills spare capacity only and is cancel safe.
                if stream.read_buf(buffer).await? == 0 {
                    return Err(LinkError::Closed);
                }
            },
            Link::Udp { socket, buffer, len } => {
                *len = socket.recv(buffer).await?;
                Ok(&buffer[..*len])
            }
            Link::TcpUdp { stream, buffer, start, socket, datagram, peer } => {
                loop {
                    if let Some(len) = buffered_frame(buffer, start)? {
                        return Ok(&buffer[..len]);
                    }
                    // Both waits are cancel safe; whichever comes first is used.
                    let arrival = tokio::select! {
                        read = stream.read_buf(buffer) => Arrival::Bytes(read?),
                        received = socket.recv_from(datagram) => {
                            let (len, from) = received?;
                            Arrival::Datagram(len, from)
                        }
                    };
                    match arrival {
                        Arrival::Bytes(0) => return Err(LinkError::Closed),
                        Arrival::Bytes(_) => {}
                        // Data frames only from the peer the commands went to.
                        Arrival::Datagram(len, from) if from.ip() == *peer => return Ok(&datagram[..len]),
                        Arrival::Datagram(_, from) => {
                            tracing::warn!(%from, expected = %peer, "C37.118.2 datagram from another host ignored");
                        }
                    }
                }
            }
        }
    }
}
