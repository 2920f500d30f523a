//! JSON and NDJSON batch bodies, and the protobuf batch, into the service's validated
//! [`SampleBatch`]: plain JSON takes a single-pass parser (`json`), everything else serde,
//! which names what is wrong; protobuf batches go through the same checks (`protobuf`).

use serde::Deserialize;
use utoipa::ToSchema;

use domain::batch::{SampleBatch, Shape, Timing, check_rows, check_times, push_row};
use domain::error::DomainError;

use crate::located::{from_json, from_json_at};

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
/// path; anything else goes through serde, which names what is wrong and where.
pub fn parse_json_frame(body: &[u8], shape: Shape) -> Result<SampleBatch, (Option<u64>, DomainError)> {
    if let Some(batch) = json::parse(body, shape) {
        return Ok(batch);
    }
    let batch: SampleBatchBody = from_json(body, "the JSON batch").map_err(|e| (None, e))?;
    let seq = batch.seq;
    from_body(batch, shape).map_err(|e| (Some(seq), e))
}

/// Validates a decoded JSON batch (also used for WebSocket text frames).
pub fn from_body(batch: SampleBatchBody, shape: Shape) -> Result<SampleBatch, DomainError> {
    let rows = batch.x.len();
    check_rows(rows, shape).map_err(|e| e.at("/x"))?;
    let timing = match (batch.t, batch.t0) {
        (Some(_), Some(_)) => {
            return Err(DomainError::invalid("fields `t` and `t0`: give one or the other").at("/t0"));
        }
        (Some(t), None) => {
            if t.len() != rows {
                return Err(
                    DomainError::invalid(format!("field `t` has {} time stamps for {rows} samples", t.len())).at("/t")
                );
            }
            check_times(&t, |k| format!("/t/{k}"))?;
            Timing::Explicit(t)
        }
        (None, Some(t0)) if t0.is_finite() => Timing::Start(t0),
        (None, Some(_)) => return Err(DomainError::invalid("field `t0` is not finite").at("/t0")),
        (None, None) => Timing::Continue,
    };
    let mut x = Vec::with_capacity(rows * shape.n);
    for (k, row) in batch.x.iter().enumerate() {
        push_row(&mut x, row, shape.n, "field `x`:", k, &format!("/x/{k}"))?;
    }
    let mut u = Vec::with_capacity(rows * shape.m);
    match (batch.u, shape.m) {
        (None, 0) => {}
        (None, m) => {
            return Err(DomainError::invalid(format!("field `u` is missing; the stream has {m} inputs")).at("/u"));
        }
        (Some(rows_u), _) => {
            if rows_u.len() != rows {
                return Err(
                    DomainError::invalid(format!("field `u` has {} rows for {rows} samples", rows_u.len())).at("/u")
                );
            }
            for (k, row) in rows_u.iter().enumerate() {
                push_row(&mut u, row, shape.m, "field `u`:", k, &format!("/u/{k}"))?;
            }
        }
    }
    Ok(SampleBatch { seq: batch.seq, epoch: batch.epoch, timing, rows, x, u })
}

/// Parses NDJSON: one `{"t", "x", "u"}` sample per line; `seq` comes from the query. The
/// body is read as a list of lines: pointers start with the 1-based line number, the
/// number the detail names (`/4/x/1` is value 1 of `x` on line 4), blank lines included.
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
        let number = index + 1;
        let what = format!("NDJSON line {number}");
        let sample: SampleLine = from_json_at(line.as_bytes(), &what, &format!("/{number}"))?;
        push_row(&mut x, &sample.x, shape.n, &format!("{what}: field `x`:"), 0, &format!("/{number}/x"))?;
        match (sample.u, shape.m) {
            (None, 0) => {}
            (None, m) => {
                return Err(DomainError::invalid(format!("{what}: field `u` is missing; the stream has {m} inputs"))
                    .at(format!("/{number}/u")));
            }
            (Some(row), _) => {
                push_row(&mut u, &row, shape.m, &format!("{what}: field `u`:"), 0, &format!("/{number}/u"))?;
            }
        }
        match sample.t {
            Some(t) => times.push((t, number)),
            None if times.is_empty() => {}
            None => {
                return Err(DomainError::invalid(format!("{what}: field `t` is missing (earlier lines have it)"))
                    .at(format!("/{number}/t")));
            }
        }
        if !times.is_empty() && times.len() != rows + 1 {
            return Err(DomainError::invalid(format!("{what}: field `t` must be on every line or on none"))
                .at(format!("/{number}/t")));
        }
        rows += 1;
        // Counting past the limit would only read further into a body that is refused.
        if rows > shape.max_samples {
            break;
        }
    }
    check_rows(rows, shape).map_err(|e| e.at(""))?;
    let timing = if times.is_empty() {
        Timing::Continue
    } else {
        let (stamps, lines): (Vec<f64>, Vec<usize>) = times.into_iter().unzip();
        check_times(&stamps, |k| format!("/{}/t", lines[k]))?;
        Timing::Explicit(stamps)
    };
    Ok(SampleBatch { seq, epoch: None, timing, rows, x, u })
}

/// The samples a refused body holds, for the refusal counters; `None` when they cannot be
/// counted at all. JSON: the elements of the top-level `x` array, found by a tolerant scan
/// (the body may be broken anywhere, even inside `x`); NDJSON: the non-blank lines; CSV:
/// the non-blank lines after the header; protobuf: the values of `x` over the message's
/// `channels` (the stream's when it names none), when the message decodes.
pub fn count_samples(format: Format, body: &[u8], shape: Shape) -> Option<usize> {
    let lines = || body.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
    match format {
        Format::Json => count_json_rows(body),
        Format::Ndjson => Some(lines()).filter(|n| *n > 0),
        Format::Csv => Some(lines().saturating_sub(1)).filter(|n| *n > 0),
        Format::Protobuf => {
            let message = decode_protobuf(body).ok()?;
            let width = if message.channels > 0 { message.channels as usize } else { shape.n };
            Some(message.x.len().div_ceil(width.max(1))).filter(|n| *n > 0)
        }
    }
}

/// The body formats of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON batch.
    Json,
    /// One JSON sample per line.
    Ndjson,
    /// A header row and one sample per line.
    Csv,
    /// A protobuf `koopstream.v1.SampleBatch`.
    Protobuf,
}

/// Counts the elements of the top-level object's `x` array without parsing the values: a
/// scan of brackets and strings that tolerates anything else, so a batch refused for a
/// `NaN` in row 3 still counts all its rows. Linear in the body, no allocation.
fn count_json_rows(body: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    // The last key read at depth 1 was "x" (and nothing but its colon followed).
    let mut after_key_x = false;
    // Depth inside the `x` array, once it is open; its commas and whether it holds anything.
    let mut rows_depth = None;
    let (mut commas, mut any) = (0usize, false);
    let mut at = 0;
    while at < body.len() {
        let b = body[at];
        at += 1;
        if b.is_ascii_whitespace() {
            continue;
        }
        let in_rows = rows_depth == Some(depth);
        match b {
            b'"' => {
                let start = at;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                let string = body.get(start..at).unwrap_or_default();
                at += 1;
                if depth == 1 && rows_depth.is_none() {
                    after_key_x = string == b"x";
                    continue;
                }
            }
            b':' if depth == 1 => continue,
            b'[' if depth == 1 && after_key_x && rows_depth.is_none() => {
                depth += 1;
                rows_depth = Some(depth);
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' if in_rows => return Some(commas + usize::from(any)),
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if in_rows => {
                commas += 1;
                continue;
            }
            _ => {}
        }
        after_key_x = false;
        if in_rows {
            any = true;
        }
    }
    // Cut off inside `x`: count what was there.
    rows_depth.map(|_| commas + usize::from(any))
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
            (br#"{"seq":1,"x":[[1,2]],"u":[[1]],"extra":1}"#, "unknown field `extra`"),
            (br#"{"x":[[1,2]],"u":[[1]]}"#, "missing field `seq`"),
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

    #[test]
    fn every_format_locates_its_errors_with_a_pointer() {
        use domain::error::ErrorKind::{InvalidField, Malformed};
        let definition = definition();
        let shape = Shape::of(&definition, 10);
        let at = |r: Result<SampleBatch, DomainError>| {
            let e = r.unwrap_err();
            (e.kind(), e.pointer().map(str::to_owned))
        };
        let invalid = |p: &str| (InvalidField, Some(p.to_owned()));
        // JSON: validation after serde, and serde's own errors.
        assert_eq!(at(parse_json(br#"{"seq":1,"x":[[1,2],[1]],"u":[[1],[1]]}"#, shape)), invalid("/x/1"));
        assert_eq!(at(parse_json(br#"{"seq":1,"t":[0,0],"x":[[1,2],[1,2]],"u":[[1],[1]]}"#, shape)), invalid("/t/1"));
        assert_eq!(at(parse_json(br#"{"seq":1,"t0":0,"x":[[1,2]],"u":[[1,NaN]]}"#, shape)), invalid("/u/0/1"));
        assert_eq!(at(parse_json(br#"{"seq":1,"t0":0,"x":[[1,2]]}"#, shape)), invalid("/u"));
        // NDJSON: the 1-based line, then the path in the line (blank lines count).
        let ndjson = |body: &str| at(parse_ndjson(body.as_bytes(), 1, shape));
        assert_eq!(ndjson("{\"x\":[1,2],\"u\":[1]}\n\n{\"x\":[1,NaN],\"u\":[1]}\n"), invalid("/3/x/1"));
        assert_eq!(ndjson("{\"x\":[1,\"2.0\"],\"u\":[1]}\n"), invalid("/1/x/1"));
        assert_eq!(ndjson("{\"x\":[1,2],\"u\":[1]}\n{\"x\":[1,2,3],\"u\":[1]}\n"), invalid("/2/x"));
        assert_eq!(ndjson("{\"t\":1,\"x\":[1,2],\"u\":[1]}\n{\"t\":1,\"x\":[1,2],\"u\":[1]}\n"), invalid("/2/t"));
        assert_eq!(ndjson("hello\n"), (Malformed, Some("/1".to_owned())));
        // CSV: the 1-based line (the header is line 1), then the column.
        let csv = |body: &str| at(crate::csv::parse_batch(body.as_bytes(), 1, &definition, 10));
        assert_eq!(csv("t,a,b,u\n0,1,2,3\n1,1,abc,3\n"), invalid("/3/b"));
        assert_eq!(csv("t,a,b,u\n0,1,2\n"), invalid("/2"));
        assert_eq!(csv("t,a,b,u\n0,1,2,3\n0,1,2,3\n"), invalid("/3/t"));
        assert_eq!(csv("t,a,b,u,c/d\n0,1,2,3,4\n"), invalid("/1/c~1d"));
        assert_eq!(csv(""), invalid("/1"), "an empty body lacks its header, line 1");
        // Protobuf: the message's field names, packed values by index.
        let proto = |m: crate::pb::SampleBatch| at(parse_protobuf(&prost::Message::encode_to_vec(&m), "s", shape));
        let message = crate::pb::SampleBatch {
            seq: 1,
            t0: Some(0.0),
            channels: 2,
            x: vec![1.0, 2.0, 3.0, f64::INFINITY],
            inputs: 1,
            u: vec![1.0, 2.0],
            ..Default::default()
        };
        assert_eq!(proto(message.clone()), invalid("/x/3"));
        assert_eq!(proto(crate::pb::SampleBatch { x: vec![1.0; 3], ..message.clone() }), invalid("/x"));
        assert_eq!(proto(crate::pb::SampleBatch { channels: 3, ..message }), invalid("/channels"));
    }

    #[test]
    fn refused_bodies_count_their_samples() {
        let shape = Shape { n: 2, m: 0, max_samples: 10 };
        let json = |body: &str| count_samples(Format::Json, body.as_bytes(), shape);
        assert_eq!(json(r#"{"seq":1,"x":[[1,2],[3,NaN],[5,"6"]]}"#), Some(3));
        assert_eq!(json(r#"{"x" : [ [1,2] , {"a":"]"} ], "seq": "#), Some(2));
        assert_eq!(json(r#"{"seq":1,"t":[1,2,3],"x":[]}"#), Some(0));
        assert_eq!(json(r#"{"seq":1,"y":{"x":[[1],[2]]},"x":[[1,2],[3"#), Some(2));
        assert_eq!(json(r#"{"seq":1,"x":"[[1],[2]]"}"#), None);
        assert_eq!(json("garbage"), None);
        assert_eq!(count_samples(Format::Ndjson, b"{}\n\n{}\n", shape), Some(2));
        assert_eq!(count_samples(Format::Csv, b"a,b\n1,2\n3\n", shape), Some(2));
        let message = crate::pb::SampleBatch { x: vec![1.0; 5], ..Default::default() };
        assert_eq!(count_samples(Format::Protobuf, &prost::Message::encode_to_vec(&message), shape), Some(3));
        assert_eq!(count_samples(Format::Protobuf, b"\xff\xff", shape), None);
    }
}
