//! Where a stream's samples come from besides HTTP and WebSocket: an IEEE C37.118.2 PMU or
//! PDC the service subscribes to. Here are the validated source definition (parsed once
//! from the request, stored with the stream), the status its client publishes, and the
//! port through which the binary plugs the client in (the domain does no network I/O).

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::definition::Channel;
use crate::error::DomainError;
use crate::registry::StreamHandle;

/// Longest `address` (a host name of at most 253 characters, a colon and a port).
pub const MAX_ADDRESS_LEN: usize = 260;
/// Longest station or channel name a mapping may name (C37.118.2 names are 16 bytes; CFG-3
/// allows up to 255).
pub const MAX_SOURCE_NAME_LEN: usize = 255;

/// How the client talks to the PMU or PDC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceTransport {
    /// Commands and data over one TCP connection.
    Tcp,
    /// Commands and data as UDP datagrams to and from `address`.
    Udp,
    /// Commands (and configuration) over TCP, data frames as UDP datagrams to the client's
    /// `udp_port` (where the PMU or PDC is configured to send them).
    TcpUdp,
}

/// Which PMU of a (PDC) configuration a channel is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PmuRef {
    /// By its IDCODE in the configuration.
    Idcode(u16),
    /// By its station name (STN, padding trimmed).
    Station(String),
}

impl fmt::Display for PmuRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PmuRef::Idcode(id) => write!(f, "IDCODE {id}"),
            PmuRef::Station(s) => write!(f, "station `{s}`"),
        }
    }
}

/// What a stream channel takes from its PMU. Angles are in degrees, unwrapped across
/// frames; magnitudes in the phasor's unit (V or A) after the configuration's scaling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Quantity {
    /// Frequency in Hz.
    Freq,
    /// Rate of change of frequency in Hz/s.
    Rocof,
    /// Angle of the PMU's first voltage phasor.
    Va,
    /// Magnitude of the PMU's first voltage phasor.
    Vm,
    /// Angle of the named phasor.
    PhasorAngle(String),
    /// Magnitude of the named phasor.
    PhasorMagnitude(String),
    /// The named analog value.
    Analog(String),
}

impl Quantity {
    /// Parses `freq`, `rocof`, `va`, `vm`, `phasor:NAME:angle`, `phasor:NAME:mag` or
    /// `analog:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let named = |name: &str| -> Result<String, String> {
            if name.is_empty() || name.len() > MAX_SOURCE_NAME_LEN {
                return Err(format!("the channel name in `{text}` must have 1 to {MAX_SOURCE_NAME_LEN} bytes"));
            }
            Ok(name.to_owned())
        };
        match text {
            "freq" => Ok(Quantity::Freq),
            "rocof" => Ok(Quantity::Rocof),
            "va" => Ok(Quantity::Va),
            "vm" => Ok(Quantity::Vm),
            _ => {
                if let Some(rest) = text.strip_prefix("phasor:") {
                    if let Some(name) = rest.strip_suffix(":angle") {
                        return Ok(Quantity::PhasorAngle(named(name)?));
                    }
                    if let Some(name) = rest.strip_suffix(":mag") {
                        return Ok(Quantity::PhasorMagnitude(named(name)?));
                    }
                    return Err(format!("`{text}`: a phasor quantity is `phasor:NAME:angle` or `phasor:NAME:mag`"));
                }
                if let Some(name) = text.strip_prefix("analog:") {
                    return Ok(Quantity::Analog(named(name)?));
                }
                Err(format!(
                    "unknown quantity `{text}`: expected freq, rocof, va, vm, phasor:NAME:angle, phasor:NAME:mag \
                     or analog:NAME"
                ))
            }
        }
    }

    /// Whether the value is an angle (unwrapped by the client).
    pub fn is_angle(&self) -> bool {
        matches!(self, Quantity::Va | Quantity::PhasorAngle(_))
    }
}

impl TryFrom<String> for Quantity {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Quantity::parse(&text)
    }
}

impl From<Quantity> for String {
    fn from(q: Quantity) -> String {
        q.to_string()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Freq => f.write_str("freq"),
            Quantity::Rocof => f.write_str("rocof"),
            Quantity::Va => f.write_str("va"),
            Quantity::Vm => f.write_str("vm"),
            Quantity::PhasorAngle(n) => write!(f, "phasor:{n}:angle"),
            Quantity::PhasorMagnitude(n) => write!(f, "phasor:{n}:mag"),
            Quantity::Analog(n) => write!(f, "analog:{n}"),
        }
    }
}

/// One stream channel (state or input) and where its values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceChannel {
    /// The PMU.
    pub pmu: PmuRef,
    /// The quantity.
    pub quantity: Quantity,
    /// The stream channel (or input) it feeds.
    pub name: String,
    /// Factor the value is multiplied by (1 in definitions stored before it existed).
    #[serde(default = "unit_scale")]
    pub scale: f64,
}

fn unit_scale() -> f64 {
    1.0
}

/// A C37.118.2 source, validated against the stream's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C37118Source {
    /// `HOST:PORT` of the PMU or PDC.
    pub address: String,
    /// The IDCODE of the data stream commands are addressed to.
    pub idcode: u16,
    /// TCP, UDP, or commands over TCP with data over UDP.
    pub transport: SourceTransport,
    /// The local UDP port data frames arrive on (`tcp-udp` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// One entry per stream channel and input, in the stream's order (states, then inputs).
    pub channels: Vec<SourceChannel>,
}

/// A stream's external source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceSpec {
    /// An IEEE C37.118.2 PMU or PDC.
    C37118(C37118Source),
}

/// A source as the request gave it (the wire layer fills it; the domain validates it).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRequest {
    /// `HOST:PORT`.
    pub address: String,
    /// IDCODE of the data stream.
    pub idcode: u16,
    /// Transport (default TCP).
    pub transport: Option<SourceTransport>,
    /// The local UDP port of `tcp-udp`.
    pub udp_port: Option<u16>,
    /// Channel mappings.
    pub channels: Vec<SourceChannelRequest>,
}

/// A channel mapping as the request gave it (the quantity not yet parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceChannelRequest {
    /// The PMU.
    pub pmu: PmuRef,
    /// The quantity, as text (see [`Quantity::parse`]).
    pub quantity: String,
    /// The stream channel (or input) it feeds.
    pub name: String,
    /// Factor the value is multiplied by (default 1): ANUNIT's unit is left to the user by
    /// the standard, so a PDC's analogs may need one.
    pub scale: Option<f64>,
}

const POINTER: &str = "/source/c37118";

impl SourceRequest {
    /// Validates the source against the stream's channels and inputs: a well-formed
    /// address, and every channel and input fed by exactly one mapping (no other names).
    /// The mappings are stored in the stream's order.
    pub fn validate(self, channels: &[Channel], inputs: &[Channel]) -> Result<SourceSpec, DomainError> {
        check_address(&self.address).map_err(|e| DomainError::invalid(e).at(format!("{POINTER}/address")))?;
        let transport = self.transport.unwrap_or(SourceTransport::Tcp);
        match (transport, self.udp_port) {
            (SourceTransport::TcpUdp, None | Some(0)) => {
                return Err(DomainError::invalid(
                    "`tcp-udp` needs `udp_port`, the local port (1 to 65535) the data frames are sent to",
                )
                .at(format!("{POINTER}/udp_port")));
            }
            (SourceTransport::Tcp | SourceTransport::Udp, Some(_)) => {
                return Err(DomainError::invalid("`udp_port` belongs to the `tcp-udp` transport only")
                    .at(format!("{POINTER}/udp_port")));
            }
            _ => {}
        }
        let names: Vec<&str> = channels.iter().chain(inputs).map(|c| c.name.as_str()).collect();
        let mut slots: Vec<Option<SourceChannel>> = vec![None; names.len()];
        if self.channels.len() > names.len() {
            return Err(DomainError::invalid(format!(
                "the source maps {} channels; the stream has {} channels and inputs, each fed by exactly one",
                self.channels.len(),
                names.len()
            ))
            .at(format!("{POINTER}/channels")));
        }
        for (i, mapping) in self.channels.into_iter().enumerate() {
            let at = format!("{POINTER}/channels/{i}");
            if let PmuRef::Station(s) = &mapping.pmu
                && (s.is_empty() || s.len() > MAX_SOURCE_NAME_LEN)
            {
                return Err(DomainError::invalid(format!("a station name has 1 to {MAX_SOURCE_NAME_LEN} bytes"))
                    .at(format!("{at}/pmu")));
            }
            let quantity =
                Quantity::parse(&mapping.quantity).map_err(|e| DomainError::invalid(e).at(format!("{at}/quantity")))?;
            let scale = mapping.scale.unwrap_or(1.0);
            if !(scale.is_finite() && scale != 0.0) {
                return Err(DomainError::invalid(format!("the scale must be a finite, non-zero number, not {scale}"))
                    .at(format!("{at}/scale")));
            }
            let mapping = SourceChannel { pmu: mapping.pmu, quantity, name: mapping.name, scale };
            let Some(slot) = names.iter().position(|n| *n == mapping.name) else {
                return Err(DomainError::invalid(format!(
                    "`{}` is not a channel or input of the stream",
                    mapping.name
                ))
                .at(format!("{at}/name")));
            };
            if slots[slot].is_some() {
                return Err(DomainError::invalid(format!("channel `{}` is mapped twice", mapping.name))
                    .at(format!("{at}/name")));
            }
            slots[slot] = Some(mapping);
        }
        if let Some(missing) = slots.iter().position(Option::is_none) {
            return Err(DomainError::invalid(format!(
                "channel `{}` has no mapping: every channel and input of the stream is fed by the source",
                names[missing]
            ))
            .at(format!("{POINTER}/channels")));
        }
        Ok(SourceSpec::C37118(C37118Source {
            address: self.address,
            idcode: self.idcode,
            transport,
            udp_port: self.udp_port,
            channels: slots.into_iter().flatten().collect(),
        }))
    }
}

/// Checks `HOST:PORT` (a name or an IPv4 address, or `[IPv6]`; port 1 to 65535).
fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return Err(format!("the address must have 1 to {MAX_ADDRESS_LEN} bytes, as HOST:PORT"));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("`{address}` is not HOST:PORT"));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("`{port}` is not a port (1 to 65535)")),
    }
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let name_like = host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if host.is_empty() || !name_like {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

/// The hosts the service may connect to as a client (`sources.allowed_hosts`): a stream
/// definition names an address, and without this list anyone allowed to create streams
/// could make the server open connections anywhere its network reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// Entries are host names or addresses (compared without case; IPv6 without brackets);
    /// `*` allows every host.
    pub fn new(hosts: Vec<String>) -> Self {
        Self(hosts.into_iter().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()).collect())
    }

    /// Loopback only: the default.
    pub fn loopback() -> Self {
        Self::new(vec!["127.0.0.1".into(), "::1".into(), "localhost".into()])
    }

    /// Whether `address` (`HOST:PORT`, already validated) names an allowed host.
    pub fn allows(&self, address: &str) -> bool {
        let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.0.iter().any(|allowed| allowed == "*" || *allowed == host)
    }

    /// Refuses a source whose host is not allowed (422 at its address).
    pub fn check(&self, source: Option<&SourceSpec>) -> Result<(), DomainError> {
        let Some(SourceSpec::C37118(s)) = source else {
            return Ok(());
        };
        if self.allows(&s.address) {
            return Ok(());
        }
        Err(DomainError::invalid(format!(
            "`{}`: the server connects only to the hosts of its configuration's `sources.allowed_hosts`",
            s.address
        ))
        .at(format!("{POINTER}/address")))
    }
}

/// Samples a source could not deliver, by reason (each becomes a missing value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceMissing {
    /// The PMU's STAT flagged a data error (bits 15-14).
    pub data_error: u64,
    /// The PMU's clock was not synchronised (STAT bit 13).
    pub sync_lost: u64,
    /// The PMU's clock had been unlocked for 10 s or more (STAT bits 5-4).
    pub unlocked: u64,
    /// A value was absent (NaN in float format, 0x8000 in integer format).
    pub missing_value: u64,
}

/// The configuration the source is following.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfiguration {
    /// Frames per second.
    pub rate_hz: f64,
    /// Station names of the PMUs in the frame.
    pub stations: Vec<String>,
    /// Configuration change count of each PMU.
    pub cfgcnt: Vec<u16>,
}

/// What a source's client reports (read by `GET /v1/streams/{id}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceStatus {
    /// Whether the connection is up and data is flowing.
    pub connected: bool,
    /// Connections made so far.
    pub connects: u64,
    /// The configuration in force.
    pub configuration: Option<SourceConfiguration>,
    /// Data frames received.
    pub frames_received: u64,
    /// Samples submitted to the stream (a frame is one sample).
    pub samples_submitted: u64,
    /// Samples delivered as missing values, by reason.
    pub missing: SourceMissing,
    /// Frames received with a time stamp not after the last one submitted (dropped).
    pub stale_frames: u64,
    /// The last error (connection, protocol or configuration) and when (Unix ms).
    pub last_error: Option<(String, u64)>,
    /// Time stamp of the last data frame, in seconds since the Unix epoch.
    pub last_timestamp: Option<f64>,
    /// The time-quality code of the last frame (0: locked to UTC; 15: fault).
    pub clock_quality: Option<u8>,
}

/// The live side of a stream's source: its status, and the signal that stops its client.
#[derive(Debug)]
pub struct SourceMonitor {
    /// The definition.
    pub spec: SourceSpec,
    status: Mutex<SourceStatus>,
    stop: watch::Sender<bool>,
}

impl SourceMonitor {
    /// A monitor for a source not yet running.
    pub fn new(spec: SourceSpec) -> Self {
        Self { spec, status: Mutex::new(SourceStatus::default()), stop: watch::channel(false).0 }
    }

    /// A copy of the status.
    pub fn status(&self) -> SourceStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the status (never held across an await).
    pub fn update(&self, change: impl FnOnce(&mut SourceStatus)) {
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Tells the client to stop.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Becomes true when the client must stop.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// The port through which the binary starts a stream's source client. The registry calls
/// it once a stream with a source exists (created and stored, or recovered); the client
/// ends when the monitor's stop signal is set or the stream's queue closes.
pub trait SourceLauncher: Send + Sync {
    /// Starts the client of `handle`'s source (`handle.source` is set).
    fn launch(&self, handle: Arc<StreamHandle>);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> Channel {
        Channel { name: name.into(), unit: String::new() }
    }

    fn mapping(pmu: PmuRef, quantity: &str, name: &str) -> SourceChannelRequest {
        SourceChannelRequest { pmu, quantity: quantity.into(), name: name.into(), scale: None }
    }

    #[test]
    fn quantities_parse_and_print_back() {
        for text in ["freq", "rocof", "va", "vm", "phasor:VA:angle", "phasor:I 1:mag", "analog:P"] {
            assert_eq!(Quantity::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "f", "phasor:VA", "phasor::angle", "analog:", "phasor:x:phase"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_source_must_feed_every_channel_once_and_is_stored_in_stream_order() {
        let channels = [ch("f1"), ch("a1")];
        let request = |maps: Vec<SourceChannelRequest>, address: &str| SourceRequest {
            address: address.into(),
            idcode: 7,
            transport: None,
            udp_port: None,
            channels: maps,
        };
        let good = vec![mapping(PmuRef::Idcode(3), "va", "a1"), mapping(PmuRef::Station("BUS1".into()), "freq", "f1")];
        let SourceSpec::C37118(spec) = request(good.clone(), "127.0.0.1:4712").validate(&channels, &[]).unwrap();
        assert_eq!(spec.channels[0].name, "f1");
        assert_eq!(spec.transport, SourceTransport::Tcp);

        let error = request(good[..1].to_vec(), "pmu:4712").validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/channels"));
        let twice = vec![good[0].clone(), good[0].clone()];
        let error = request(twice, "pmu:4712").validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/channels/1/name"));
        let unknown = vec![good[0].clone(), mapping(PmuRef::Idcode(1), "freq", "zz")];
        let error = request(unknown, "pmu:4712").validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/channels/1/name"));
        let mut zero_scale = good.clone();
        zero_scale[1].scale = Some(0.0);
        let error = request(zero_scale, "pmu:4712").validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/channels/1/scale"));
        let bad_quantity = vec![good[0].clone(), mapping(PmuRef::Idcode(1), "hz", "f1")];
        let error = request(bad_quantity, "pmu:4712").validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/channels/1/quantity"));
        for address in ["", "pmu", "pmu:0", "pmu:70000", ":4712", "a b:1"] {
            let error = request(good.clone(), address).validate(&channels, &[]).unwrap_err();
            assert_eq!(error.pointer(), Some("/source/c37118/address"), "{address}");
        }
        assert!(request(good.clone(), "[::1]:4712").validate(&channels, &[]).is_ok());
        let mut mixed = request(good, "pmu:4712");
        mixed.transport = Some(SourceTransport::TcpUdp);
        let error = mixed.clone().validate(&channels, &[]).unwrap_err();
        assert_eq!(error.pointer(), Some("/source/c37118/udp_port"));
        mixed.udp_port = Some(4713);
        assert!(mixed.clone().validate(&channels, &[]).is_ok());
        mixed.transport = Some(SourceTransport::Udp);
        assert_eq!(mixed.validate(&channels, &[]).unwrap_err().pointer(), Some("/source/c37118/udp_port"));
    }

    #[test]
    fn only_allowed_hosts_are_reached() {
        let loopback = AllowedHosts::loopback();
        for (address, allowed) in
            [("127.0.0.1:4712", true), ("[::1]:4712", true), ("LocalHost:1", true), ("10.0.0.1:4712", false)]
        {
            assert_eq!(loopback.allows(address), allowed, "{address}");
        }
        assert!(AllowedHosts::new(vec!["PDC.example".into()]).allows("pdc.example:4712"));
        assert!(AllowedHosts::new(vec!["*".into()]).allows("10.0.0.1:4712"));
    }
}
