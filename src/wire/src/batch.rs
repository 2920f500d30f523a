//! JSON and NDJSON batch bodies, and the protobuf batch, into the service's validated
//! [`SampleBatch`]: plain JSON takes a single-pass parser (`json`), everything else serde,
//! which names what is wrong; protobuf batches go through the same checks (`protobuf`).

use serde::Deserialize;
use utoipa::ToSchema;

use domain::batch::{SampleBatch, Shape, Timing, check_rows, check_times, push_row};
use domain::error::DomainError;

mod json;
mod protobuf;
pub use protobuf::{decode_protobuf, from_proto, parse_protobuf};

/// A batch as JSON: `{"seq", "t": [..] | "t0", "x": [[..], ..], "u": [[..], ..]}`; a `null`
/// value is a missing measurement.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleBatchBody {
    /// Sequence number, increasing; a batch whose seq is not above the last applied one is
    /// a retry when it carries the same samples, and refused (409) otherwise.
    #[serde(deserialize_with = "crate::integral::required")]
    pub seq: u64,
    /// Producer epoch: a producer that restarts its seq numbering sends a higher one
    /// (absent: the stream's current epoch).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub epoch: Option<u64>,
    /// Time stamps, one per sample, strictly increasing.
    pub t: Option<Vec<f64>>,
    /// Time of the first sample (the others follow at the stream's Ts).
    pub t0: Option<f64>,
    /// States, one row per sample (null for a missing value); at least one sample.
    #[schema(min_items = 1)]
    pub x: Vec<Vec<Option<f64>>>,
    /// Inputs, one row per sample (required when the stream has inputs).
    pub u: Option<Vec<Vec<Option<f64>>>>,
}

/// One NDJSON line: a sample.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleLine {
    t: Option<f64>,
    x: Vec<Option<f64>>,
    #[serde(default)]
    u: Option<Vec<Option<f64>>>,
}

/// Parses a JSON batch.
pub fn parse_json(body: &[u8], shape: Shape) -> Result<SampleBatch, DomainError> {
    parse_json_frame(body, shape).map_err(|(_, e)| e)
}

/// Parses a JSON batch; a refusal carries the batch's seq when it could be read (a
/// WebSocket error message names it). A plain, valid batch takes the single-pass fast
/// path; anything else goes through serde, which names what is wrong.
pub fn parse_json_frame(body: &[u8], shape: Shape) -> Result<SampleBatch, (Option<u64>, DomainError)> {
    if let Some(batch) = json::parse(body, shape) {
        return Ok(batch);
    }
    let batch: SampleBatchBody = serde_json::from_slice(body)
        .map_err(|e| (None, DomainError::malformed(format!("the JSON batch is malformed: {e}"))))?;
    let seq = batch.seq;
    from_body(batch, shape).map_err(|e| (Some(seq), e))
}

/// Validates a decoded JSON batch (also used for WebSocket text frames).
pub fn from_body(batch: SampleBatchBody, shape: Shape) -> Result<SampleBatch, DomainError> {
    let rows = batch.x.len();
    check_rows(rows, shape)?;
    let timing = match (batch.t, batch.t0) {
        (Some(_), Some(_)) => return Err(DomainError::invalid("fields `t` and `t0`: give one or the other")),
        (Some(t), None) => {
            if t.len() != rows {
                return Err(DomainError::invalid(format!("field `t` has {} time stamps for {rows} samples", t.len())));
            }
            check_times(&t)?;
            Timing::Explicit(t)
        }
        (None, Some(t0)) if t0.is_finite() => Timing::Start(t0),
        (None, Some(_)) => return Err(DomainError::invalid("field `t0` is not finite")),
        (None, None) => Timing::Continue,
    };
    let mut x = Vec::with_capacity(rows * shape.n);
    for (k, row) in batch.x.iter().enumerate() {
        push_row(&mut x, row, shape.n, "field `x`:", k)?;
    }
    let mut u = Vec::with_capacity(rows * shape.m);
    match (batch.u, shape.m) {
        (None, 0) => {}
        (None, m) => return Err(DomainError::invalid(format!("field `u` is missing; the stream has {m} inputs"))),
        (Some(rows_u), _) => {
            if rows_u.len() != rows {
                return Err(DomainError::invalid(format!("field `u` has {} rows for {rows} samples", rows_u.len())));
            }
            for (k, row) in rows_u.iter().enumerate() {
                push_row(&mut u, row, shape.m, "field `u`:", k)?;
            }
        }
    }
    Ok(SampleBatch { seq: batch.seq, epoch: batch.epoch, timing, rows, x, u })
}

/// Parses NDJSON: one `{"t", "x", "u"}` sample per line; `seq` comes from the query.
pub fn parse_ndjson(body: &[u8], seq: u64, shape: Shape) -> Result<SampleBatch, DomainError> {
    let text = std::str::from_utf8(body).map_err(|_| DomainError::malformed("the NDJSON body is not UTF-8"))?;
    let mut times = Vec::new();
    let mut x = Vec::new();
    let mut u = Vec::new();
    let mut rows = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let sample: SampleLine = serde_json::from_str(line)
            .map_err(|e| DomainError::malformed(format!("NDJSON line {}: {e}", index + 1)))?;
        let what = format!("NDJSON line {}: field `x`:", index + 1);
        push_row(&mut x, &sample.x, shape.n, &what, 0)?;
        match (sample.u, shape.m) {
            (None, 0) => {}
            (None, m) => {
                return Err(DomainError::invalid(format!(
                    "NDJSON line {}: field `u` is missing; the stream has {m} inputs",
                    index + 1
                )));
            }
            (Some(row), _) => push_row(&mut u, &row, shape.m, &format!("NDJSON line {}: field `u`:", index + 1), 0)?,
        }
        match sample.t {
            Some(t) => times.push(t),
            None if times.is_empty() => {}
            None => {
                return Err(DomainError::invalid(format!(
                    "NDJSON line {}: field `t` is missing (earlier lines have it)",
                    index + 1
                )));
            }
        }
        if !times.is_empty() && times.len() != rows + 1 {
            return Err(DomainError::invalid(format!(
                "NDJSON line {}: field `t` must be on every line or on none",
                index + 1
            )));
        }
        rows += 1;
    }
    check_rows(rows, shape)?;
    let timing = if times.is_empty() {
        Timing::Continue
    } else {
        check_times(&times)?;
        Timing::Explicit(times)
    };
    Ok(SampleBatch { seq, epoch: None, timing, rows, x, u })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::CreateStream;
    use domain::definition::StreamDefinition;

    fn definition() -> StreamDefinition {
        let request: CreateStream = serde_json::from_str(
            r#"{"id":"s","channels":[{"name":"a"},{"name":"b"}],"inputs":[{"name":"u"}],"ts":0.1}"#,
        )
        .unwrap();
        StreamDefinition::from_request(request.into(), 300, || unreachable!()).unwrap()
    }

    #[test]
    fn the_three_formats_give_the_same_batch() {
        let shape = Shape::of(&definition(), 100);
        let json = parse_json(br#"{"seq":4,"t":[0,0.1],"x":[[1,2],[3,null]],"u":[[5],[6]]}"#, shape).unwrap();
        let ndjson =
            parse_ndjson(b"{\"t\":0,\"x\":[1,2],\"u\":[5]}\n{\"t\":0.1,\"x\":[3,null],\"u\":[6]}\n", 4, shape).unwrap();
        let csv = crate::csv::parse_batch(b"t,u,b,a\n0,5,2,1\n0.1,6,,3\n", 4, &definition(), 100).unwrap();
        for batch in [&ndjson, &csv] {
            assert_eq!(batch.timing, json.timing);
            assert_eq!(batch.u, json.u);
            assert_eq!(batch.x[..3], json.x[..3]);
            assert!(batch.x[3].is_nan() && json.x[3].is_nan());
        }
        assert!(json.has_dropout(1, 2, 1) && !json.has_dropout(0, 2, 1));
    }

    #[test]
    fn bad_batches_are_refused_with_the_reason() {
        let shape = Shape::of(&definition(), 2);
        let cases: [(&[u8], &str); 8] = [
            (br#"{"seq":1,"x":[[1,2,3]],"u":[[1]]}"#, "row 0 has 3 values"),
            (br#"{"seq":1,"x":[[1,2]]}"#, "`u` is missing"),
            (br#"{"seq":1,"x":[]}"#, "no samples"),
            (br#"{"seq":1,"x":[[1,2],[1,2],[1,2]],"u":[[1],[1],[1]]}"#, "at most 2"),
            (br#"{"seq":1,"t":[1,1],"x":[[1,2],[1,2]],"u":[[1],[1]]}"#, "must increase"),
            (br#"{"seq":1,"t":[1],"t0":1,"x":[[1,2]],"u":[[1]]}"#, "`t` and `t0`"),
            (br#"{"seq":1,"x":[[1,2]],"u":[[1]],"extra":1}"#, "malformed"),
            (br#"{"x":[[1,2]],"u":[[1]]}"#, "malformed"),
        ];
        for (body, expected) in cases {
            let e = parse_json(body, shape).unwrap_err();
            assert!(e.to_string().contains(expected), "{}: {e}", String::from_utf8_lossy(body));
        }
        let e = crate::csv::parse_batch(b"t,a,b,u\n0,1,x,2\n", 1, &definition(), 10).unwrap_err();
        assert!(e.to_string().contains("CSV line 2, column `b`: `x` is not a number"), "{e}");
        let e = crate::csv::parse_batch(b"t,a,u\n0,1,2\n", 1, &definition(), 10).unwrap_err();
        assert!(e.to_string().contains("no column named `b`"), "{e}");
        // One grammar with `fit`: a column named twice is refused, not read from its first.
        let e = crate::csv::parse_batch(b"t,a,b,b,u\n0,1,2,3,4\n", 1, &definition(), 10).unwrap_err();
        assert!(e.to_string().contains("column `b` appears twice"), "{e}");
        // A column the stream does not know is refused by name, unless allowed.
        let body = b"t,a,b,u,temp,b2\n0,1,2,3,40,5\n";
        let e = crate::csv::parse_batch(body, 1, &definition(), 10).unwrap_err();
        assert!(
            e.to_string().contains("no column `temp`, `b2`; remove it or send `allow_unknown_columns=true`"),
            "{e}"
        );
        let allowed = crate::csv::parse_batch_with(body, 1, &definition(), 10, true).unwrap();
        assert_eq!((allowed.x.clone(), allowed.u.clone()), (vec![1.0, 2.0], vec![3.0]));
        let e = parse_ndjson(b"{\"x\":[1,2],\"u\":[1]}\n{\"x\":[1],\"u\":[1]}\n", 1, shape).unwrap_err();
        assert!(e.to_string().contains("NDJSON line 2"), "{e}");
    }
}
