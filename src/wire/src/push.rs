//! A stream's pushes (mode-meter summary, alarm change, mode change) as one protobuf
//! `ServerMessage` and back: the form a cluster's owner node sends them to the other nodes
//! in, which hand them to their own WebSocket and event-stream clients. Encoding is the
//! WebSocket's protobuf form, so decoding gives back exactly the push that was encoded.

use domain::command::{AlarmNotice, ModeChange, Push};
use meter::{Reading, Severity};

use super::ingest::{alarm_message, mode_changed_message, summary_message};
use super::{WireError, pb};

/// The message carrying `push`.
pub fn push_message(push: &Push) -> pb::ServerMessage {
    match push {
        Push::Summary(summary) => summary_message(summary),
        Push::Alarm(notice) => alarm_message(notice),
        Push::ModeChanged(change) => mode_changed_message(change),
    }
}

/// The push a message carries; an acknowledgement, an error or an incomplete push is
/// refused (no node sends one).
pub fn push_from_message(message: &pb::ServerMessage) -> Result<Push, WireError> {
    use pb::server_message::Message;
    match message.message.as_ref().ok_or(WireError::Missing("message"))? {
        Message::Summary(summary) => Ok(Push::Summary(summary.into())),
        Message::Alarm(alarm) => Ok(Push::Alarm(AlarmNotice {
            mode: alarm.mode,
            from: severity(&alarm.from, "from")?,
            to: severity(&alarm.to, "to")?,
            t: alarm.t,
            reading: reading(alarm.reading.as_ref(), "reading")?,
        })),
        Message::ModeChanged(changed) => Ok(Push::ModeChanged(ModeChange {
            mode: changed.mode,
            t: changed.t,
            before: reading(changed.before.as_ref(), "before")?,
            after: reading(changed.after.as_ref(), "after")?,
        })),
        Message::Ack(_) => Err(WireError::UnknownName { field: "message", value: "ack".into() }),
        Message::Error(_) => Err(WireError::UnknownName { field: "message", value: "error".into() }),
    }
}

/// An alarm level: empty for none.
fn severity(name: &str, field: &'static str) -> Result<Option<Severity>, WireError> {
    match name {
        "" => Ok(None),
        "warning" => Ok(Some(Severity::Warning)),
        "critical" => Ok(Some(Severity::Critical)),
        other => Err(WireError::UnknownName { field, value: other.to_owned() }),
    }
}

fn reading(reading: Option<&pb::Reading>, field: &'static str) -> Result<Reading, WireError> {
    let reading = reading.ok_or(WireError::Missing(field))?;
    let interval = |i: Option<&pb::Interval>, field| i.map(|i| (i.low, i.high)).ok_or(WireError::Missing(field));
    Ok(Reading {
        frequency_hz: reading.frequency_hz,
        damping_ratio: reading.damping_ratio,
        frequency_ci95: interval(reading.frequency_ci95.as_ref(), "frequency_ci95")?,
        damping_ci95: interval(reading.damping_ci95.as_ref(), "damping_ci95")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::command::{ModeBrief, ModelSummary};
    use prost::Message as _;

    fn round_trip(push: &Push) -> Push {
        let bytes = push_message(push).encode_to_vec();
        push_from_message(&pb::ServerMessage::decode(bytes.as_slice()).unwrap()).unwrap()
    }

    #[test]
    fn every_push_comes_back_as_it_was_sent() {
        let reading = |f: f64| Reading {
            frequency_hz: f,
            damping_ratio: 0.031,
            frequency_ci95: (f - 0.01, f + 0.02),
            damping_ci95: (0.02, 0.045),
        };
        let pushes = [
            Push::Summary(ModelSummary {
                version: 9001,
                samples_accepted: 12_345,
                residual_rms: Some(vec![0.5, 1e-300, f64::MAX]),
                modes: vec![ModeBrief { id: 3, frequency_hz: 0.62, damping_ratio: -0.01 }],
            }),
            Push::Summary(ModelSummary { version: 1, samples_accepted: 0, residual_rms: None, modes: vec![] }),
            Push::Alarm(AlarmNotice {
                mode: 3,
                from: None,
                to: Some(Severity::Critical),
                t: 1_700_000_000.25,
                reading: reading(0.62),
            }),
            Push::Alarm(AlarmNotice {
                mode: 4,
                from: Some(Severity::Warning),
                to: None,
                t: 2.0,
                reading: reading(1.1),
            }),
            Push::ModeChanged(ModeChange { mode: 7, t: 3.5, before: reading(0.4), after: reading(0.45) }),
        ];
        for push in &pushes {
            assert_eq!(&round_trip(push), push);
        }
    }

    #[test]
    fn what_is_no_push_is_refused() {
        let ack = pb::ServerMessage {
            message: Some(pb::server_message::Message::Ack(pb::IngestAck { seq: 1, ..Default::default() })),
        };
        assert!(push_from_message(&ack).is_err());
        assert!(matches!(push_from_message(&pb::ServerMessage { message: None }), Err(WireError::Missing("message"))));
        let unknown = pb::ServerMessage {
            message: Some(pb::server_message::Message::Alarm(pb::AlarmChange {
                from: "dire".into(),
                reading: Some(pb::Reading::default()),
                ..Default::default()
            })),
        };
        assert!(matches!(push_from_message(&unknown), Err(WireError::UnknownName { field: "from", .. })));
        let incomplete =
            pb::ServerMessage { message: Some(pb::server_message::Message::ModeChanged(pb::ModeChanged::default())) };
        assert!(matches!(push_from_message(&incomplete), Err(WireError::Missing("before"))));
    }
}
