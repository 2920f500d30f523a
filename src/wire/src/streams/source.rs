//! The JSON documents of a stream's external source: the `source` member of the create
//! request and of the definition (`{"c37118": {...}}`), and the source's status served with
//! the stream.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use domain::source::{
    C37118Source, PmuRef, SourceChannel, SourceChannelRequest, SourceRequest, SourceSpec, SourceStatus, SourceTransport,
};

/// A stream's external source. Exactly one kind: today `c37118`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Source)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    /// An IEEE C37.118.2 PMU or PDC the service subscribes to: it sends data off, CFG-2
    /// and data on, follows configuration changes and reconnects with backoff; each data
    /// frame becomes one sample (time stamp from SOC and FRACSEC), logged and acknowledged
    /// like an HTTP batch.
    pub c37118: C37118SourceDoc,
}

/// The transport of a C37.118.2 source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = SourceTransport)]
#[serde(rename_all = "kebab-case")]
pub enum SourceTransportDoc {
    /// Commands and data over one TCP connection (the default).
    Tcp,
    /// Commands and data as UDP datagrams to and from `address`.
    Udp,
    /// Commands and configuration over TCP, data frames as UDP datagrams to the local
    /// `udp_port` (where the PMU or PDC is configured to send them).
    TcpUdp,
}

/// A C37.118.2 source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = C37118Source)]
#[serde(deny_unknown_fields)]
pub struct C37118SourceDoc {
    /// `HOST:PORT` of the PMU or PDC (at most 260 bytes).
    #[schema(example = "127.0.0.1:4712")]
    pub address: String,
    /// IDCODE of the data stream the commands are addressed to.
    pub idcode: u16,
    /// `tcp` (default), `udp`, or `tcp-udp` (commands over TCP, data over UDP).
    #[serde(default)]
    pub transport: Option<SourceTransportDoc>,
    /// The local UDP port data frames arrive on (`tcp-udp` only; required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// One mapping per channel and input of the stream, each fed exactly once.
    pub channels: Vec<SourceChannelDoc>,
}

/// Which PMU a channel is read from: its IDCODE, or its station name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = PmuRef)]
#[serde(untagged)]
pub enum PmuRefDoc {
    /// The PMU's IDCODE.
    Idcode(u16),
    /// The PMU's station name (STN).
    Station(String),
}

/// A stream channel fed by a quantity of one PMU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = SourceChannel)]
#[serde(deny_unknown_fields)]
pub struct SourceChannelDoc {
    /// The PMU: IDCODE or station name.
    pub pmu: PmuRefDoc,
    /// `freq` (Hz), `rocof` (Hz/s), `va` / `vm` (angle in degrees, unwrapped, and
    /// magnitude of the PMU's first voltage phasor), `phasor:NAME:angle`, `phasor:NAME:mag`
    /// or `analog:NAME`. Magnitudes are in the phasor's unit (V or A) after the
    /// configuration's scaling.
    #[schema(example = "freq")]
    pub quantity: String,
    /// The stream channel or input it feeds.
    pub name: String,
    /// Factor the value is multiplied by (default 1; finite, non-zero), e.g. the unit of a
    /// PDC's integer analogs, which the standard leaves to the user (integer analogs are
    /// read as integer * ANUNIT).
    #[serde(default)]
    pub scale: Option<f64>,
}

impl From<SourceDoc> for SourceRequest {
    fn from(doc: SourceDoc) -> Self {
        let c = doc.c37118;
        SourceRequest {
            address: c.address,
            idcode: c.idcode,
            transport: c.transport.map(|t| match t {
                SourceTransportDoc::Tcp => SourceTransport::Tcp,
                SourceTransportDoc::Udp => SourceTransport::Udp,
                SourceTransportDoc::TcpUdp => SourceTransport::TcpUdp,
            }),
            udp_port: c.udp_port,
            channels: c
                .channels
                .into_iter()
                .map(|m| SourceChannelRequest {
                    pmu: match m.pmu {
                        PmuRefDoc::Idcode(id) => PmuRef::Idcode(id),
                        PmuRefDoc::Station(s) => PmuRef::Station(s),
                    },
                    quantity: m.quantity,
                    name: m.name,
                    scale: m.scale,
                })
                .collect(),
        }
    }
}

fn channel_doc(c: &SourceChannel) -> SourceChannelDoc {
    SourceChannelDoc {
        pmu: match &c.pmu {
            PmuRef::Idcode(id) => PmuRefDoc::Idcode(*id),
            PmuRef::Station(s) => PmuRefDoc::Station(s.clone()),
        },
        quantity: c.quantity.to_string(),
        name: c.name.clone(),
        scale: Some(c.scale),
    }
}

impl From<&SourceSpec> for SourceDoc {
    fn from(spec: &SourceSpec) -> Self {
        let SourceSpec::C37118(C37118Source { address, idcode, transport, udp_port, channels }) = spec;
        SourceDoc {
            c37118: C37118SourceDoc {
                address: address.clone(),
                idcode: *idcode,
                transport: Some(match transport {
                    SourceTransport::Tcp => SourceTransportDoc::Tcp,
                    SourceTransport::Udp => SourceTransportDoc::Udp,
                    SourceTransport::TcpUdp => SourceTransportDoc::TcpUdp,
                }),
                udp_port: *udp_port,
                channels: channels.iter().map(channel_doc).collect(),
            },
        }
    }
}

/// Samples a source delivered as missing values, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SourceMissing)]
pub struct SourceMissingDoc {
    /// STAT flagged a data error.
    pub data_error: u64,
    /// STAT said the PMU's clock was not synchronised.
    pub sync_lost: u64,
    /// STAT said the clock had been unlocked for 10 s or more.
    pub unlocked: u64,
    /// A mapped value was absent (NaN, or 0x8000 in integer format).
    pub missing_value: u64,
}

/// The configuration a source follows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = SourceConfiguration)]
pub struct SourceConfigurationDoc {
    /// Data frames per second.
    pub rate_hz: f64,
    /// Station names of the PMUs in the frame.
    pub stations: Vec<String>,
    /// Configuration change count of each PMU.
    pub cfgcnt: Vec<u16>,
}

/// The last error of a source.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = SourceError)]
pub struct SourceErrorDoc {
    /// What went wrong.
    pub message: String,
    /// When (Unix ms).
    pub at_ms: u64,
}

/// The status of a stream's source.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = SourceStatus)]
pub struct SourceStatusDoc {
    /// Whether the connection is up and data is flowing.
    pub connected: bool,
    /// Connections made so far.
    pub connects: u64,
    /// The configuration in force (null before the first one).
    pub configuration: Option<SourceConfigurationDoc>,
    /// Data frames received.
    pub frames_received: u64,
    /// Samples submitted to the stream.
    pub samples_submitted: u64,
    /// Samples delivered as missing values, by reason.
    pub missing: SourceMissingDoc,
    /// Frames whose time stamp was not after the last one submitted (dropped).
    pub stale_frames: u64,
    /// The last error, if any.
    pub last_error: Option<SourceErrorDoc>,
    /// Time stamp of the last data frame (seconds since the Unix epoch).
    pub last_timestamp: Option<f64>,
    /// Time-quality code of the last frame (0: locked to UTC, 15: fault or unreliable).
    pub clock_quality: Option<u8>,
}

impl From<&SourceStatus> for SourceStatusDoc {
    fn from(s: &SourceStatus) -> Self {
        SourceStatusDoc {
            connected: s.connected,
            connects: s.connects,
            configuration: s.configuration.as_ref().map(|c| SourceConfigurationDoc {
                rate_hz: c.rate_hz,
                stations: c.stations.clone(),
                cfgcnt: c.cfgcnt.clone(),
            }),
            frames_received: s.frames_received,
            samples_submitted: s.samples_submitted,
            missing: SourceMissingDoc {
                data_error: s.missing.data_error,
                sync_lost: s.missing.sync_lost,
                unlocked: s.missing.unlocked,
                missing_value: s.missing.missing_value,
            },
            stale_frames: s.stale_frames,
            last_error: s
                .last_error
                .as_ref()
                .map(|(message, at_ms)| SourceErrorDoc { message: message.clone(), at_ms: *at_ms }),
            last_timestamp: s.last_timestamp,
            clock_quality: s.clock_quality,
        }
    }
}
