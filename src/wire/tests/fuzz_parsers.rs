//! A deterministic fuzz harness for every parser that reads the network: JSON batches (HTTP
//! bodies and WebSocket text frames), NDJSON, CSV, protobuf batches (HTTP and WebSocket
//! binary frames), stream definitions and predict requests (JSON and protobuf). No nightly
//! toolchain is needed: a seeded generator makes arbitrary bytes and mutations of valid
//! seed documents, and every parse must return (never panic) while allocating at most
//! `ALLOC_FACTOR` times the input's length plus `ALLOC_SLACK` at its peak, measured by a
//! counting global allocator in this test binary only.
//!
//! Cases per parser: `KOOPSTREAM_FUZZ_CASES` (default [`DEFAULT_CASES`], a few seconds per
//! parser in a debug build); the seed: `KOOPSTREAM_FUZZ_SEED`. The figures of a long run
//! are in EXPERIMENTS.md ("Fuzzing the network parsers"); run with `--nocapture` to see
//! them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use domain::batch::Shape;
use domain::definition::StreamDefinition;
use peak_alloc::PeakAlloc;
use prost::Message as _;
use wire::batch::{decode_protobuf, from_proto, parse_json_frame, parse_ndjson, parse_protobuf};
use wire::documents::PredictRequest;
use wire::located::{from_json, from_protobuf};
use wire::pb;
use wire::streams::CreateStream;

// The workspace forbids `unsafe` in our code, and implementing `GlobalAlloc` needs it, so
// the counting allocator is a small dependency (peak_alloc: System plus two atomics).
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Peak bytes one parse may allocate: `ALLOC_FACTOR` x the input's length + `ALLOC_SLACK`.
const ALLOC_FACTOR: usize = 64;
const ALLOC_SLACK: usize = 1 << 20;

/// Cases per parser when `KOOPSTREAM_FUZZ_CASES` is not set.
const DEFAULT_CASES: u64 = 20_000;

/// The allocator counts every thread: parsers are fuzzed one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// splitmix64: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers that stress a number parser and whatever validates its result.
const EXTREMES: &[&str] = &[
    "1e308",
    "-1e308",
    "1e309",
    "-0",
    "-0.0",
    "1e-320",
    "4.9e-324",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890123456789",
    "0.000000000000000000000000000000000000000000001",
    "NaN",
    "Infinity",
    "-",
    "1e",
    "0x10",
    "\"2.0\"",
    "null",
    "true",
    "[]",
    "{}",
];

/// Protobuf varints and fixed values that stress a decoder: the largest varints (sizes,
/// counts), an overlong varint, the infinities and a NaN.
const PROTOBUF_EXTREMES: &[&[u8]] = &[
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x7f],
    &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x7f],
    &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// One fuzz input: arbitrary bytes, or a seed mutated one to four times.
fn input(rng: &mut Rng, seeds: &[Vec<u8>], binary: bool) -> Vec<u8> {
    if rng.below(8) == 0 {
        let len = rng.below(300);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut data = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut data, seeds, binary);
    }
    data
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], binary: bool) {
    let at = rng.below(data.len() + 1);
    match rng.below(11) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 => data.insert(at, rng.next() as u8),
        2 if at < data.len() => {
            data.remove(at);
        }
        3 if at < data.len() => {
            // Duplicate a range in place.
            let end = (at + 1 + rng.below(64)).min(data.len());
            let copy = data[at..end].to_vec();
            data.splice(at..at, copy);
        }
        4 => {
            // Splice: this input's head, another seed's tail.
            let other = rng.pick(seeds);
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        5 if binary => {
            // Inserted, or written over what was there (a size or count becomes extreme).
            let extreme = rng.pick(PROTOBUF_EXTREMES);
            let end = if rng.below(2) == 0 { at } else { (at + 1).min(data.len()) };
            data.splice(at..end, extreme.iter().copied());
        }
        5 => replace_number(rng, data),
        6 => {
            // A very long string or number.
            let len = 1 + rng.below(20_000);
            let filler = if rng.below(2) == 0 { b'a' } else { b'9' };
            let mut long = vec![b'"'];
            long.resize(len, filler);
            long.push(b'"');
            data.splice(at..at, long);
        }
        7 => {
            // Deep nesting.
            let depth = 1 + rng.below(5_000);
            let open = if rng.below(2) == 0 { b'[' } else { b'{' };
            data.splice(at..at, std::iter::repeat_n(open, depth));
        }
        8 => data.truncate(at),
        9 if !data.is_empty() => {
            // A byte of the document's own grammar somewhere else.
            let i = rng.below(data.len());
            data[i] = *rng.pick(b"[]{},:\"\\0123456789.-eE \n\r\tnx");
        }
        _ => {
            let extreme = rng.pick(EXTREMES);
            data.splice(at..at, extreme.bytes());
        }
    }
}

/// Replaces one number of a text document with an extreme one.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| (data[i].is_ascii_digit() || data[i] == b'-') && (i == 0 || !data[i - 1].is_ascii_alphanumeric()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = *rng.pick(&starts);
    let end = start
        + 1
        + data[start + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            .count();
    data.splice(start..end, rng.pick(EXTREMES).bytes());
}

/// What a fuzz run saw.
#[derive(Debug, Default)]
struct Figures {
    cases: u64,
    accepted: u64,
    largest_input: usize,
    peak_bytes: usize,
    /// The largest peak over the bound's allowance, as a fraction of the bound.
    worst_fraction_of_bound: f64,
    /// The largest peak / input length over inputs of at least 1 KiB.
    worst_ratio_1k: f64,
}

fn cases() -> u64 {
    std::env::var("KOOPSTREAM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES)
}

fn seed_of(name: &str) -> u64 {
    let base = std::env::var("KOOPSTREAM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20_261_204);
    name.bytes().fold(base, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Runs `parse` on generated inputs; it returns whether the input was accepted.
fn fuzz(name: &str, seeds: &[Vec<u8>], binary: bool, parse: impl Fn(&[u8]) -> bool) -> Figures {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(seed_of(name));
    let mut figures = Figures::default();
    let started = std::time::Instant::now();
    for case in 0..cases() {
        let data = input(&mut rng, seeds, binary);
        let before = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&data)));
        let peak = ALLOCATOR.peak_usage().saturating_sub(before);
        let Ok(accepted) = outcome else {
            panic!("{name}: case {case} panicked on input {:?}", String::from_utf8_lossy(&data));
        };
        let bound = ALLOC_FACTOR * data.len() + ALLOC_SLACK;
        assert!(
            peak <= bound,
            "{name}: case {case} allocated {peak} bytes at its peak for {} input bytes (bound {bound}): {:?}",
            data.len(),
            String::from_utf8_lossy(&data[..data.len().min(200)])
        );
        figures.cases += 1;
        figures.accepted += u64::from(accepted);
        figures.largest_input = figures.largest_input.max(data.len());
        figures.peak_bytes = figures.peak_bytes.max(peak);
        figures.worst_fraction_of_bound = figures.worst_fraction_of_bound.max(peak as f64 / bound as f64);
        if data.len() >= 1024 {
            figures.worst_ratio_1k = figures.worst_ratio_1k.max(peak as f64 / data.len() as f64);
        }
    }
    eprintln!("{name}: {figures:?} in {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        figures.cases < 100 || figures.accepted > 0,
        "{name}: no generated input was accepted; the seeds are stale"
    );
    figures
}

const SHAPE: Shape = Shape { n: 2, m: 1, max_samples: 1_000 };

fn definition() -> StreamDefinition {
    let request: CreateStream =
        serde_json::from_str(r#"{"id":"s","channels":[{"name":"a"},{"name":"b"}],"inputs":[{"name":"u"}],"ts":0.1}"#)
            .unwrap();
    StreamDefinition::from_request(request.into(), 300, || unreachable!()).unwrap()
}

fn text(seeds: &[&str]) -> Vec<Vec<u8>> {
    seeds.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn json_batches_http_and_websocket_text_frames() {
    let seeds = text(&[
        r#"{"seq":1,"t":[0,0.1],"x":[[1,2],[3,null]],"u":[[5],[6]]}"#,
        r#"{"seq":2,"t0":1.5,"epoch":3,"x":[[1.5e-3,-2.25]],"u":[[0]]}"#,
        r#" { "seq" : 3 , "x" : [ [ 1 , 2 ] ] , "u" : [ [ 1 ] ] } "#,
        r#"{"seq":4,"t":[1,2,3],"x":[[1,2],[3,4],[5,6]],"u":[[1],[2],[3]]}"#,
    ]);
    fuzz("json_batch", &seeds, false, |body| parse_json_frame(body, SHAPE).is_ok());
}

#[test]
fn ndjson_batches() {
    let seeds = text(&[
        "{\"t\":0,\"x\":[1,2],\"u\":[5]}\n{\"t\":0.1,\"x\":[3,null],\"u\":[6]}\n",
        "{\"x\":[1,2],\"u\":[5]}\n\n{\"x\":[3,4],\"u\":[6]}",
        "{\"t\":1e3,\"x\":[-1.5,2e-7],\"u\":[0]}\r\n",
    ]);
    fuzz("ndjson", &seeds, false, |body| parse_ndjson(body, 1, SHAPE).is_ok());
}

#[test]
fn csv_batches() {
    let definition = definition();
    let seeds = text(&[
        "t,a,b,u\n0,1,2,3\n0.1,4,,6\n",
        "u,b,a\n1,2,3\nNaN,5,6\n",
        "\u{feff}\"t\",\"a\",\"b\",\"u\"\r\n1e-3,\"1\",2,3\r\n",
        "t,a,b,u,extra\n0,1,2,3,4\n",
    ]);
    fuzz("csv", &seeds, false, |body| {
        let allow = body.len() % 2 == 0;
        wire::csv::parse_batch_with(body, 1, &definition, SHAPE.max_samples, allow).is_ok()
    });
}

fn protobuf_batch_seeds() -> Vec<Vec<u8>> {
    let base = pb::SampleBatch {
        stream_id: String::new(),
        seq: 7,
        t: vec![0.0, 0.1],
        t0: None,
        channels: 2,
        x: vec![1.0, 2.0, 3.0, f64::NAN],
        inputs: 1,
        u: vec![5.0, 6.0],
        quality: vec![0, 1],
        epoch: Some(2),
    };
    let timed = pb::SampleBatch { t: vec![], t0: Some(3.0), stream_id: "s".into(), quality: vec![], ..base.clone() };
    vec![base.encode_to_vec(), timed.encode_to_vec()]
}

#[test]
fn protobuf_batches_http() {
    fuzz("protobuf_batch", &protobuf_batch_seeds(), true, |body| parse_protobuf(body, "s", SHAPE).is_ok());
}

#[test]
fn protobuf_websocket_binary_frames() {
    // The WebSocket decodes first (so a refusal can name the seq), then validates.
    fuzz("ws_protobuf_frame", &protobuf_batch_seeds(), true, |body| {
        decode_protobuf(body).is_ok_and(|message| from_proto(message, "s", SHAPE).is_ok())
    });
}

#[test]
fn stream_definitions() {
    let seeds = text(&[
        r#"{"id":"s","channels":[{"name":"a"},{"name":"b","unit":"V"}],"inputs":[{"name":"u"}],"ts":0.1}"#,
        r#"{"channels":[{"name":"x"}],"ts":0.02,"dictionary":"state,const,poly:3","mu":0.5,"warmup":50,"window":200}"#,
        r#"{"channels":[{"name":"x"},{"name":"y"}],"ts":1,"sigma":[0.1,0.2],"forgetting":0.99,"eigen_every":10,"modes":{"max":4,"band_hz":[0.01,0.4]}}"#,
        r#"{"id":"r","channels":[{"name":"x"}],"ts":0.5,"dictionary":"state,rbf:20:1.5,fourier:8:2","seed":9,"implicit_timing":true,"flat_line":5}"#,
    ]);
    fuzz("stream_definition", &seeds, false, |body| {
        from_json::<CreateStream>(body, "the JSON body")
            .is_ok_and(|request| StreamDefinition::from_request(request.into(), 300, || "g".into()).is_ok())
    });
}

#[test]
fn predict_requests_json() {
    let seeds = text(&[
        r#"{"horizon":10}"#,
        r#"{"horizon":5,"mode":"relift","start":{"x":[[1,2],[3,4]],"t":2.5},"u":[[1],[2],[3],[4],[5]]}"#,
        r#"{"horizon":1,"mode":"linear","u":[[0.5]]}"#,
    ]);
    fuzz("predict_json", &seeds, false, |body| from_json::<PredictRequest>(body, "the JSON body").is_ok());
}

#[test]
fn predict_requests_protobuf() {
    let request = pb::PredictRequest {
        horizon: 3,
        mode: 1,
        start: Some(pb::PredictStart {
            x: Some(pb::Matrix { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] }),
            t: Some(1.0),
        }),
        u: Some(pb::Matrix { rows: 3, cols: 1, data: vec![1.0, 2.0, 3.0] }),
    };
    let plain = pb::PredictRequest { horizon: 9, ..Default::default() };
    // A stream without inputs: future inputs of zero columns.
    let no_inputs = pb::PredictRequest { u: Some(pb::Matrix { rows: 3, cols: 0, data: vec![] }), ..plain.clone() };
    let seeds = vec![request.encode_to_vec(), plain.encode_to_vec(), no_inputs.encode_to_vec()];
    fuzz("predict_protobuf", &seeds, true, |body| {
        from_protobuf::<pb::PredictRequest>(body, "the protobuf request")
            .is_ok_and(|message| PredictRequest::try_from(&message).is_ok())
    });
}
