//! Protobuf sample batches (`koopstream.v1.SampleBatch`): decoded, then validated by the
//! same rules as JSON batches into the same [`SampleBatch`]. Packed values use NaN for a
//! missing value; per-sample quality flags turn a bad sample into one with missing values.

use super::{SampleBatch, Shape, Timing, check_rows, check_times};
use crate::pb;
use domain::error::DomainError;

/// Parses a protobuf `koopstream.v1.SampleBatch` sent to stream `stream`: bytes that do not
/// decode are refused at the field prost names (or as malformed when it names none), a batch
/// that does not fit the stream is refused as its JSON twin would be. Pointers use the
/// message's field names (`/x/7` is value 7 of the packed `x`).
pub fn parse_protobuf(body: &[u8], stream: &str, shape: Shape) -> Result<SampleBatch, DomainError> {
    from_proto(decode_protobuf(body)?, stream, shape)
}

/// Decodes a protobuf batch without validating it (so a refusal can still name its seq).
pub fn decode_protobuf(body: &[u8]) -> Result<pb::SampleBatch, DomainError> {
    crate::located::from_protobuf(body, "the protobuf batch")
}

/// Checks packed values: NaN (any payload) is a missing value, made the one canonical NaN so
/// the log holds the same bytes as for a JSON null; an infinity refuses the batch.
fn check_packed(values: &mut [f64], width: usize, field: &str) -> Result<(), DomainError> {
    for (i, v) in values.iter_mut().enumerate() {
        if v.is_nan() {
            *v = f64::NAN;
        } else if !v.is_finite() {
            return Err(DomainError::invalid(format!(
                "field `{field}`: sample {} value {} is not finite",
                i / width,
                i % width
            ))
            .at(format!("/{field}/{i}")));
        }
    }
    Ok(())
}

/// Validates a decoded protobuf batch by the rules of JSON batches. The stream id in the
/// message must be empty or the stream's; a sample flagged bad in `quality` becomes a sample
/// with missing values, so the owner breaks the chain there and counts it as missing_value.
pub fn from_proto(batch: pb::SampleBatch, stream: &str, shape: Shape) -> Result<SampleBatch, DomainError> {
    let (n, m) = (shape.n, shape.m);
    if !batch.stream_id.is_empty() && batch.stream_id != stream {
        return Err(DomainError::invalid(format!(
            "field `stream_id`: the batch is for stream `{}`, not `{stream}`",
            batch.stream_id
        ))
        .at("/stream_id"));
    }
    if batch.channels as usize != n {
        return Err(DomainError::invalid(format!(
            "field `channels`: the batch has {} channels, the stream has {n}",
            batch.channels
        ))
        .at("/channels"));
    }
    if batch.x.len().checked_rem(n) != Some(0) {
        return Err(DomainError::invalid(format!(
            "field `x`: {} values are not whole samples of {n} channels",
            batch.x.len()
        ))
        .at("/x"));
    }
    let rows = batch.x.len() / n;
    check_rows(rows, shape).map_err(|e| e.at("/x"))?;
    if batch.inputs as usize != m {
        return Err(if batch.inputs == 0 && batch.u.is_empty() {
            DomainError::invalid(format!("field `u` is missing; the stream has {m} inputs")).at("/u")
        } else {
            DomainError::invalid(format!("field `inputs`: the batch has {} inputs, the stream has {m}", batch.inputs))
                .at("/inputs")
        });
    }
    if batch.u.len() != rows * m {
        return Err(DomainError::invalid(format!(
            "field `u` has {} values for {rows} samples of {m} inputs",
            batch.u.len()
        ))
        .at("/u"));
    }
    if !batch.quality.is_empty() && batch.quality.len() != rows {
        return Err(DomainError::invalid(format!(
            "field `quality` has {} flags for {rows} samples",
            batch.quality.len()
        ))
        .at("/quality"));
    }
    // proto3 cannot tell an empty `t` from an absent one; empty means absent.
    let timing = match (batch.t.is_empty(), batch.t0) {
        (false, Some(_)) => return Err(DomainError::invalid("fields `t` and `t0`: give one or the other").at("/t0")),
        (false, None) if batch.t.len() != rows => {
            return Err(DomainError::invalid(format!(
                "field `t` has {} time stamps for {rows} samples",
                batch.t.len()
            ))
            .at("/t"));
        }
        (false, None) => {
            check_times(&batch.t, |k| format!("/t/{k}"))?;
            Timing::Explicit(batch.t)
        }
        (true, Some(t0)) if t0.is_finite() => Timing::Start(t0),
        (true, Some(_)) => return Err(DomainError::invalid("field `t0` is not finite").at("/t0")),
        (true, None) => Timing::Continue,
    };
    let (mut x, mut u) = (batch.x, batch.u);
    check_packed(&mut x, n, "x")?;
    check_packed(&mut u, m.max(1), "u")?;
    for (k, _) in batch.quality.iter().enumerate().filter(|(_, q)| **q != 0) {
        x[k * n..(k + 1) * n].fill(f64::NAN);
        u[k * m..(k + 1) * m].fill(f64::NAN);
    }
    Ok(SampleBatch { seq: batch.seq, epoch: batch.epoch, timing, rows, x, u })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape { n: 2, m: 1, max_samples: 3 };

    fn message() -> pb::SampleBatch {
        pb::SampleBatch {
            stream_id: String::new(),
            seq: 7,
            t: vec![0.0, 0.1],
            t0: None,
            channels: 2,
            x: vec![1.0, 2.0, 3.0, 4.0],
            inputs: 1,
            u: vec![5.0, 6.0],
            quality: Vec::new(),
            epoch: Some(2),
        }
    }

    #[test]
    fn a_flagged_sample_and_a_nan_are_missing_values_like_json_nulls() {
        let mut flagged = message();
        flagged.quality = vec![0, 9];
        // A NaN with a payload: still a missing value, stored as the canonical NaN.
        flagged.x[0] = f64::from_bits(f64::NAN.to_bits() | 1);
        let batch = from_proto(flagged, "s", SHAPE).unwrap();
        assert_eq!(batch.x[0].to_bits(), f64::NAN.to_bits());
        assert!(batch.has_dropout(0, 2, 1) && batch.has_dropout(1, 2, 1));
        assert!(batch.x[2..].iter().chain(&batch.u[1..]).all(|v| v.is_nan()));
        assert_eq!((batch.seq, batch.rows, batch.timing.clone()), (7, 2, Timing::Explicit(vec![0.0, 0.1])));
        let json =
            super::super::parse_json(br#"{"seq":7,"t":[0,0.1],"x":[[null,2],[null,null]],"u":[[5],[null]]}"#, SHAPE);
        let json = json.unwrap();
        assert_eq!(json.x[1], batch.x[1]);
        assert!(json.x.iter().zip(&batch.x).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn misfits_are_refused_with_the_reason() {
        type Edit = fn(&mut pb::SampleBatch);
        let cases: [(Edit, &str); 9] = [
            (|b| b.stream_id = "other".into(), "for stream `other`, not `s`"),
            (|b| b.channels = 3, "the batch has 3 channels, the stream has 2"),
            (|b| b.x.push(1.0), "not whole samples"),
            (|b| b.x[3] = f64::INFINITY, "field `x`: sample 1 value 1 is not finite"),
            (|b| (b.inputs, b.u) = (0, vec![]), "field `u` is missing"),
            (|b| b.u.truncate(1), "field `u` has 1 values for 2 samples"),
            (|b| b.quality = vec![0], "field `quality` has 1 flags for 2 samples"),
            (|b| b.t0 = Some(0.0), "give one or the other"),
            (|b| b.x = vec![0.0; 8], "at most 3"),
        ];
        for (edit, expected) in cases {
            let mut m = message();
            edit(&mut m);
            let e = from_proto(m, "s", SHAPE).unwrap_err();
            assert!(e.to_string().contains(expected), "{e} (expected {expected})");
        }
        let mut named = message();
        named.stream_id = "s".into();
        assert!(from_proto(named, "s", SHAPE).is_ok());
        let e = parse_protobuf(b"\xff\xff\xff", "s", SHAPE).unwrap_err();
        assert_eq!(e.kind(), domain::error::ErrorKind::Malformed, "{e}");
    }
}
