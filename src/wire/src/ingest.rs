//! Ingest messages, JSON <-> protobuf: the sample batch (rows of nullable values <-> packed
//! row-major values with NaN for null), the acknowledgement, the problem document, and the
//! model summary pushed over the WebSocket.

use super::{WireError, pb, to_usize};
use crate::batch::SampleBatchBody;
use crate::problem::Problem;
use domain::command::{AlarmNotice, IngestAck, ModeBrief, ModeChange, ModelSummary};
use meter::{Reading, Severity};

/// Packs rows of nullable values row-major, null as NaN; returns the row width too.
fn pack(rows: &[Vec<Option<f64>>], field: &'static str) -> Result<(u32, Vec<f64>), WireError> {
    let width = rows.first().map_or(0, Vec::len);
    if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
        return Err(WireError::Ragged { field, row, len: r.len(), first: width });
    }
    let width = u32::try_from(width).map_err(|_| WireError::OutOfRange { field, value: width as u64 })?;
    Ok((width, rows.iter().flatten().map(|v| v.unwrap_or(f64::NAN)).collect()))
}

/// Splits packed values into rows of `width`, NaN (any payload) as null.
fn unpack(values: &[f64], width: u32, field: &'static str) -> Result<Vec<Vec<Option<f64>>>, WireError> {
    let cols = width as usize;
    if cols == 0 || !values.len().is_multiple_of(cols) {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let rows = values.len().checked_div(cols).unwrap_or(0) as u64;
        return Err(WireError::Shape { field, rows, cols: u64::from(width), len: values.len() });
    }
    Ok(values.chunks_exact(cols).map(|row| row.iter().map(|v| (!v.is_nan()).then_some(*v)).collect()).collect())
}

/// The protobuf form of a JSON batch, addressed to `stream_id` (empty: whichever stream it
/// is sent to). Fails only for ragged rows, which the packed form cannot hold (the server
/// refuses them in JSON too).
pub fn batch_to_proto(body: &SampleBatchBody, stream_id: &str) -> Result<pb::SampleBatch, WireError> {
    let (channels, x) = pack(&body.x, "x")?;
    let (inputs, u) = match &body.u {
        Some(rows) => pack(rows, "u")?,
        None => (0, Vec::new()),
    };
    Ok(pb::SampleBatch {
        stream_id: stream_id.to_owned(),
        seq: body.seq,
        epoch: body.epoch,
        t: body.t.clone().unwrap_or_default(),
        t0: body.t0,
        channels,
        x,
        inputs,
        u,
        quality: Vec::new(),
    })
}

/// The JSON form of a protobuf batch. A sample flagged bad becomes a row of nulls, which is
/// exactly what the server makes of it; the stream id has no JSON form (it is in the URL).
pub fn batch_from_proto(batch: &pb::SampleBatch) -> Result<SampleBatchBody, WireError> {
    let mut x = unpack(&batch.x, batch.channels, "x")?;
    let mut u = if batch.inputs == 0 && batch.u.is_empty() { None } else { Some(unpack(&batch.u, batch.inputs, "u")?) };
    if !batch.quality.is_empty() {
        if batch.quality.len() != x.len() {
            let len = batch.quality.len();
            return Err(WireError::Shape { field: "quality", rows: x.len() as u64, cols: 1, len });
        }
        for (k, _) in batch.quality.iter().enumerate().filter(|(_, q)| **q != 0) {
            x[k].iter_mut().for_each(|v| *v = None);
            if let Some(row) = u.as_mut().and_then(|u| u.get_mut(k)) {
                row.iter_mut().for_each(|v| *v = None);
            }
        }
    }
    // An empty `t` is an absent one: proto3 cannot tell them apart.
    let t = (!batch.t.is_empty()).then(|| batch.t.clone());
    Ok(SampleBatchBody { seq: batch.seq, epoch: batch.epoch, t, t0: batch.t0, x, u })
}

impl From<&IngestAck> for pb::IngestAck {
    fn from(ack: &IngestAck) -> Self {
        Self {
            seq: ack.seq,
            accepted: ack.accepted as u64,
            duplicate: ack.duplicate,
            out_of_order: ack.out_of_order as u64,
            missing_value: ack.missing_value as u64,
            flat_line: ack.flat_line as u64,
            outlier: ack.outlier as u64,
            version: ack.version,
        }
    }
}

impl TryFrom<&pb::IngestAck> for IngestAck {
    type Error = WireError;

    fn try_from(ack: &pb::IngestAck) -> Result<Self, WireError> {
        Ok(Self {
            seq: ack.seq,
            accepted: to_usize(ack.accepted, "accepted")?,
            duplicate: ack.duplicate,
            out_of_order: to_usize(ack.out_of_order, "out_of_order")?,
            missing_value: to_usize(ack.missing_value, "missing_value")?,
            flat_line: to_usize(ack.flat_line, "flat_line")?,
            outlier: to_usize(ack.outlier, "outlier")?,
            version: ack.version,
        })
    }
}

impl From<&Problem> for pb::Problem {
    fn from(problem: &Problem) -> Self {
        Self {
            r#type: problem.kind.clone(),
            title: problem.title.clone(),
            status: u32::from(problem.status),
            detail: problem.detail.clone(),
            pointer: problem.pointer.clone(),
        }
    }
}

impl TryFrom<&pb::Problem> for Problem {
    type Error = WireError;

    fn try_from(problem: &pb::Problem) -> Result<Self, WireError> {
        let status = u16::try_from(problem.status)
            .map_err(|_| WireError::OutOfRange { field: "status", value: u64::from(problem.status) })?;
        Ok(Self {
            kind: problem.r#type.clone(),
            title: problem.title.clone(),
            status,
            detail: problem.detail.clone(),
            pointer: problem.pointer.clone(),
        })
    }
}

impl From<&ModelSummary> for pb::ModelSummary {
    fn from(summary: &ModelSummary) -> Self {
        Self {
            version: summary.version,
            samples_accepted: summary.samples_accepted,
            residual_rms: summary.residual_rms.clone().map(|values| pb::DoubleList { values }),
            modes: summary
                .modes
                .iter()
                .map(|m| pb::ModeBrief { id: m.id, frequency_hz: m.frequency_hz, damping_ratio: m.damping_ratio })
                .collect(),
        }
    }
}

impl From<&pb::ModelSummary> for ModelSummary {
    fn from(summary: &pb::ModelSummary) -> Self {
        Self {
            version: summary.version,
            samples_accepted: summary.samples_accepted,
            residual_rms: summary.residual_rms.as_ref().map(|list| list.values.clone()),
            modes: summary
                .modes
                .iter()
                .map(|m| ModeBrief { id: m.id, frequency_hz: m.frequency_hz, damping_ratio: m.damping_ratio })
                .collect(),
        }
    }
}

/// A WebSocket acknowledgement under the protobuf subprotocol.
pub fn ack_message(ack: &IngestAck) -> pb::ServerMessage {
    pb::ServerMessage { message: Some(pb::server_message::Message::Ack(ack.into())) }
}

/// A WebSocket refusal under the protobuf subprotocol.
pub fn error_message(seq: Option<u64>, problem: &Problem) -> pb::ServerMessage {
    let error = pb::IngestError { seq, problem: Some(problem.into()) };
    pb::ServerMessage { message: Some(pb::server_message::Message::Error(error)) }
}

/// A WebSocket model summary under the protobuf subprotocol.
pub fn summary_message(summary: &ModelSummary) -> pb::ServerMessage {
    pb::ServerMessage { message: Some(pb::server_message::Message::Summary(summary.into())) }
}

pub(crate) fn reading(r: &Reading) -> pb::Reading {
    pb::Reading {
        frequency_hz: r.frequency_hz,
        damping_ratio: r.damping_ratio,
        frequency_ci95: Some(pb::Interval { low: r.frequency_ci95.0, high: r.frequency_ci95.1 }),
        damping_ci95: Some(pb::Interval { low: r.damping_ci95.0, high: r.damping_ci95.1 }),
    }
}

/// An alarm change under the protobuf subprotocol.
pub fn alarm_message(n: &AlarmNotice) -> pb::ServerMessage {
    let severity = |s: Option<Severity>| s.map_or("", Severity::as_str).to_owned();
    let alarm = pb::AlarmChange {
        mode: n.mode,
        from: severity(n.from),
        to: severity(n.to),
        t: n.t,
        reading: Some(reading(&n.reading)),
    };
    pb::ServerMessage { message: Some(pb::server_message::Message::Alarm(alarm)) }
}

/// A mode change under the protobuf subprotocol.
pub fn mode_changed_message(c: &ModeChange) -> pb::ServerMessage {
    let changed =
        pb::ModeChanged { mode: c.mode, t: c.t, before: Some(reading(&c.before)), after: Some(reading(&c.after)) };
    pb::ServerMessage { message: Some(pb::server_message::Message::ModeChanged(changed)) }
}
