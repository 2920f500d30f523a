//! End to end: a model exported as a MATLAB `.mat` file and a NumPy `.npz` archive
//! (`GET /model?format=mat|npz`, `koopstream fit --output`) carries the same variables as
//! the JSON document, the channels' units reach `/model` and `/modes`, and the exported
//! lifting is complete: a state lifted from the exported arrays alone and run through the
//! exported A, B, C predicts what the service predicts. The ignored test runs the Python
//! example (docs/examples/predict_from_export.py, with python-control) against the live
//! server's predictions; its interpreter comes from PYTHON_FOR_EXPORT
//! (tests/model_export/setup-venv.sh).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{TestServer, scratch_dir};
use koopstream::wire::export::EXPORTED;
use koopstream::wire::model_doc::ModelDoc;
use koopstream::wire::pb;
use prost::Message as _;
use serde_json::{Value, json};

const TS: f64 = 0.1;
const SAMPLES: usize = 600;
const HORIZON: usize = 40;
/// The dictionary with every family the export must describe but Fourier features (which
/// `fourier_features_are_exported` covers through `fit`).
const DICTIONARY: &str = "state,const,poly:2,rbf:4,delay:1";

/// The input applied over sample k (held for the whole step).
fn input(k: usize) -> f64 {
    let k = k as f64;
    0.5 * (0.37 * k).sin() + 0.3 * (1.1 * k + 0.5).sin()
}

/// Van der Pol (mu = 1) with a force u on the second equation, RK4 with 10 substeps, from
/// (2, 0): the states and the inputs of `samples` steps.
fn forced_van_der_pol(samples: usize) -> (Vec<[f64; 2]>, Vec<f64>) {
    let f = |x: [f64; 2], u: f64| [x[1], (1.0 - x[0] * x[0]) * x[1] - x[0] + u];
    let h = TS / 10.0;
    let mut x = [2.0, 0.0];
    let (mut states, mut inputs) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for k in 0..samples {
        let u = input(k);
        states.push(x);
        inputs.push(u);
        for _ in 0..10 {
            let k1 = f(x, u);
            let k2 = f([x[0] + 0.5 * h * k1[0], x[1] + 0.5 * h * k1[1]], u);
            let k3 = f([x[0] + 0.5 * h * k2[0], x[1] + 0.5 * h * k2[1]], u);
            let k4 = f([x[0] + h * k3[0], x[1] + h * k3[1]], u);
            for i in 0..2 {
                x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
        }
    }
    (states, inputs)
}

/// A server with stream `vx` fed the forced Van der Pol samples: states in m and m/s, the
/// force in N.
async fn server_with_model() -> (TestServer, Vec<[f64; 2]>) {
    let server = TestServer::start().await;
    server
        .create(json!({"id": "vx", "ts": TS, "dictionary": DICTIONARY, "mu": 1e-3, "warmup": 100,
            "channels": [{"name": "x1", "unit": "m"}, {"name": "x2", "unit": "m/s"}],
            "inputs": [{"name": "u", "unit": "N"}]}))
        .await;
    let (states, inputs) = forced_van_der_pol(SAMPLES);
    let x: Vec<Vec<f64>> = states.iter().map(|r| r.to_vec()).collect();
    let u: Vec<Vec<f64>> = inputs.iter().map(|v| vec![*v]).collect();
    server.ingest("vx", &json!({"seq": 1, "t0": 0.0, "x": x, "u": u})).await;
    (server, states)
}

/// The start rows (the last three states: more than the 1 + delay the lifting needs) and
/// the inputs of the horizon.
fn start_and_inputs(states: &[[f64; 2]]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let start = states[states.len() - 3..].iter().map(|r| r.to_vec()).collect();
    let inputs = (0..HORIZON).map(|k| vec![input(SAMPLES + k)]).collect();
    (start, inputs)
}

/// The service's linear prediction from the start rows.
async fn service_prediction(server: &TestServer, start: &[Vec<f64>], inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let body = json!({"horizon": HORIZON, "mode": "linear", "start": {"x": start}, "u": inputs});
    let r = server.post_json("/v1/streams/vx/predict", &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    serde_json::from_value(answer["x"].clone()).unwrap()
}

/// GET of a binary export: the bytes, checking the media type and the file name.
async fn download(server: &TestServer, format: &str, media_type: &str) -> Vec<u8> {
    let r = server.http.get(server.url(&format!("/v1/streams/vx/model?format={format}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], media_type);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"vx-v") && disposition.ends_with(&format!(".{format}\"")));
    r.bytes().await.unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------
// A small reader of what the writers write: Level-5 MAT elements and .npy arrays, each
// brought to one comparable form.

/// A variable as both files hold it: numbers as a rows x cols matrix in row-major order
/// (a 0-D or 1-D .npy array is one column), complex numbers likewise, strings as a list.
#[derive(Debug, Clone, PartialEq)]
enum Value2 {
    Real { rows: usize, cols: usize, data: Vec<f64> },
    Complex { rows: usize, cols: usize, data: Vec<(f64, f64)> },
    Texts(Vec<String>),
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The data elements of a body: (type, data), each padded to 8 bytes.
fn elements(body: &[u8]) -> Vec<(u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let (kind, len) = (u32_at(body, at), u32_at(body, at + 4) as usize);
        out.push((kind, &body[at + 8..at + 8 + len]));
        at += 8 + len.div_ceil(8) * 8;
    }
    assert_eq!(at, body.len(), "elements tile their parent");
    out
}

fn doubles(data: &[u8]) -> Vec<f64> {
    data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Column-major rows x cols to row-major.
fn row_major<T: Copy>(rows: usize, cols: usize, data: &[T]) -> Vec<T> {
    (0..rows * cols).map(|k| data[(k % cols) * rows + k / cols]).collect()
}

/// One miMATRIX body: its name and value (a char array is a one-string list, a cell of
/// char arrays a list).
fn mat_matrix(body: &[u8]) -> (String, Value2) {
    let parts = elements(body);
    assert_eq!((parts[0].0, parts[1].0, parts[2].0), (6, 5, 1), "flags, dimensions, name");
    let (class, complex) = (parts[0].1[0], parts[0].1[1] & 0x08 != 0);
    let dims: Vec<usize> =
        parts[1].1.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let (rows, cols) = (dims[0], dims[1]);
    let name = String::from_utf8(parts[2].1.to_vec()).unwrap();
    let value = match class {
        6 if complex => {
            let (re, im) = (doubles(parts[3].1), doubles(parts[4].1));
            let pairs: Vec<(f64, f64)> = re.into_iter().zip(im).collect();
            Value2::Complex { rows, cols, data: row_major(rows, cols, &pairs) }
        }
        6 => Value2::Real { rows, cols, data: row_major(rows, cols, &doubles(parts[3].1)) },
        4 => {
            assert_eq!(parts[3].0, 4, "char data as miUINT16");
            let units: Vec<u16> = parts[3].1.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            assert_eq!(units.len(), rows * cols);
            Value2::Texts(vec![String::from_utf16(&units).unwrap()])
        }
        1 => {
            assert_eq!(cols, 1, "name lists are columns");
            let items = parts[3..]
                .iter()
                .map(|(kind, data)| {
                    assert_eq!(*kind, 14);
                    match mat_matrix(data) {
                        (name, Value2::Texts(t)) if name.is_empty() && t.len() == 1 => t[0].clone(),
                        other => panic!("a cell of char arrays, not {other:?}"),
                    }
                })
                .collect::<Vec<_>>();
            assert_eq!(items.len(), rows);
            Value2::Texts(items)
        }
        other => panic!("class {other}"),
    };
    (name, value)
}

/// Every variable of a MAT file, in file order.
fn read_mat(bytes: &[u8]) -> Vec<(String, Value2)> {
    assert!(bytes.starts_with(b"MATLAB 5.0 MAT-file"));
    assert_eq!(&bytes[124..128], &[0x00, 0x01, b'I', b'M'], "version 0x0100, little-endian");
    elements(&bytes[128..])
        .into_iter()
        .map(|(kind, body)| {
            assert_eq!(kind, 14, "only miMATRIX at the top level");
            mat_matrix(body)
        })
        .collect()
}

/// Every array of an .npz archive (stored entries), in archive order.
fn read_npz(bytes: &[u8]) -> Vec<(String, Value2)> {
    let mut out = Vec::new();
    let mut at = 0;
    while u32_at(bytes, at) == 0x0403_4B50 {
        let size = u32_at(bytes, at + 18) as usize;
        let name_len = u16::from_le_bytes([bytes[at + 26], bytes[at + 27]]) as usize;
        let extra = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
        let name = std::str::from_utf8(&bytes[at + 30..at + 30 + name_len]).unwrap();
        let data = &bytes[at + 30 + name_len + extra..at + 30 + name_len + extra + size];
        out.push((name.strip_suffix(".npy").unwrap().to_owned(), read_npy(data)));
        at += 30 + name_len + extra + size;
    }
    out
}

fn read_npy(data: &[u8]) -> Value2 {
    assert_eq!(&data[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([data[8], data[9]]) as usize;
    let header = std::str::from_utf8(&data[10..10 + header_len]).unwrap();
    let body = &data[10 + header_len..];
    let field = |key: &str| header.split(&format!("'{key}': ")).nth(1).unwrap().to_owned();
    assert!(field("fortran_order").starts_with("False"));
    let descr = field("descr");
    let descr = descr.split('\'').nth(1).unwrap();
    let shape_text = field("shape");
    let shape: Vec<usize> = shape_text[1..shape_text.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let (rows, cols) = match shape[..] {
        [] => (1, 1),
        [k] => (k, 1),
        [r, c] => (r, c),
        _ => panic!("shape {shape:?}"),
    };
    match descr {
        "<f8" => Value2::Real { rows, cols, data: doubles(body) },
        "<c16" => {
            let parts = doubles(body);
            Value2::Complex { rows, cols, data: parts.chunks_exact(2).map(|c| (c[0], c[1])).collect() }
        }
        text if text.starts_with("<U") => {
            let width: usize = text[2..].parse().unwrap();
            let strings = body
                .chunks_exact(4 * width)
                .map(|s| {
                    s.chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                        .take_while(|c| *c != 0)
                        .map(|c| char::from_u32(c).unwrap())
                        .collect()
                })
                .collect();
            Value2::Texts(strings)
        }
        other => panic!("descr {other}"),
    }
}

/// The variables of both files: the same names in the same order, and the same values
/// (MAT keeps 2-D shapes where .npy has 0-D and 1-D ones; a 0 x k matrix is empty in both).
fn same_variables(mat: &[(String, Value2)], npz: &[(String, Value2)]) -> BTreeMap<String, Value2> {
    let names: Vec<&str> = mat.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, EXPORTED);
    assert_eq!(npz.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), EXPORTED);
    for ((name, a), (_, b)) in mat.iter().zip(npz) {
        match (a, b) {
            (Value2::Real { data: x, .. }, Value2::Real { data: y, .. }) if x.is_empty() && y.is_empty() => {}
            (Value2::Texts(x), Value2::Texts(y)) if x.len() == 1 && y.len() == 1 => assert_eq!(x, y, "{name}"),
            _ => assert_eq!(a, b, "{name}"),
        }
    }
    mat.iter().cloned().collect()
}

fn real(values: &BTreeMap<String, Value2>, name: &str) -> (usize, usize, Vec<f64>) {
    match &values[name] {
        Value2::Real { rows, cols, data } => (*rows, *cols, data.clone()),
        other => panic!("{name}: {other:?}"),
    }
}

fn texts(values: &BTreeMap<String, Value2>, name: &str) -> Vec<String> {
    match &values[name] {
        Value2::Texts(t) => t.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The lifting, from the exported arrays alone.

/// Predicts `inputs.len()` steps from the start rows with nothing but the exported
/// variables, as a user of the file would (the Python example does the same).
fn predict_from_export(values: &BTreeMap<String, Value2>, start: &[Vec<f64>], inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (nn, _, a) = real(values, "A");
    let (_, m, b) = real(values, "B");
    let (n, _, c) = real(values, "C");
    let (_, _, offset) = real(values, "c_offset");
    let (_, _, mean) = real(values, "std_mean");
    let (_, _, scale) = real(values, "std_scale");
    let (_, _, exponents) = real(values, "poly_exponents");
    let (_, _, centres) = real(values, "rbf_centres");
    let (_, _, width) = real(values, "rbf_width");
    let (_, _, w) = real(values, "fourier_w");
    let (_, _, phases) = real(values, "fourier_b");
    let delay = real(values, "delay").2[0] as usize;
    let z: Vec<Vec<f64>> = start[start.len() - 1 - delay..]
        .iter()
        .map(|x| (0..n).map(|j| (x[j] - mean[j]) / scale[j]).collect())
        .collect();
    let now = z.last().unwrap();
    let mut psi: Vec<f64> =
        exponents.chunks_exact(n).map(|row| (0..n).map(|j| now[j].powi(row[j] as i32)).product()).collect();
    for centre in centres.chunks_exact(n) {
        let d2: f64 = (0..n).map(|j| (now[j] - centre[j]).powi(2)).sum();
        psi.push((-0.5 * d2 / (width[0] * width[0])).exp());
    }
    for (row, phase) in w.chunks_exact(n).zip(&phases) {
        psi.push(((0..n).map(|j| row[j] * now[j]).sum::<f64>() + phase).cos());
    }
    for lag in 1..=delay {
        psi.extend_from_slice(&z[z.len() - 1 - lag]);
    }
    assert_eq!(psi.len(), nn, "the exported lifting makes every observable");
    inputs
        .iter()
        .map(|u| {
            psi = (0..nn)
                .map(|i| {
                    (0..nn).map(|j| a[i * nn + j] * psi[j]).sum::<f64>()
                        + (0..m).map(|j| b[i * m + j] * u[j]).sum::<f64>()
                })
                .collect();
            (0..n).map(|i| (0..nn).map(|j| c[i * nn + j] * psi[j]).sum::<f64>() + offset[i]).collect()
        })
        .collect()
}

/// |a - b| <= 1e-9 (1 + |b|) for every value: 1e-9 absolute, and relative for values above 1.
fn assert_close(found: &[Vec<f64>], expected: &[Vec<f64>], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: rows");
    for (k, (f, e)) in found.iter().zip(expected).enumerate() {
        assert_eq!(f.len(), e.len());
        for (a, b) in f.iter().zip(e) {
            assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{what}: step {} {a} vs {b}", k + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mat_and_npz_carry_the_same_complete_model_with_units() {
    let (server, states) = server_with_model().await;
    let doc: ModelDoc = serde_json::from_value(common::model(&server, "vx").await).unwrap();
    assert_eq!(
        (doc.state_units.clone(), doc.input_units.clone()),
        (vec!["m".to_owned(), "m/s".to_owned()], vec!["N".to_owned()])
    );
    let d = &doc.dictionary;
    assert_eq!(d.delay, Some(1));
    assert_eq!(d.poly_exponents.as_ref().unwrap().rows, 2 + 1 + 3, "state, const, three quadratics");
    assert_eq!(d.rbf.as_ref().unwrap().centres.rows, 4);
    assert!(d.fourier.is_none());

    // The protobuf form holds the units and the lifting too.
    let r = server.http.get(server.url("/v1/streams/vx/model")).header("accept", "application/x-protobuf").send().await;
    let message = pb::ModelDoc::decode(r.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(ModelDoc::try_from(&message).unwrap(), doc);

    let mat = read_mat(&download(&server, "mat", "application/x-matlab-data").await);
    let npz = read_npz(&download(&server, "npz", "application/x-npz").await);
    let values = same_variables(&mat, &npz);
    assert_eq!(real(&values, "A"), (doc.a.rows, doc.a.cols, doc.a.data.clone()));
    assert_eq!(real(&values, "B"), (doc.b.rows, 1, doc.b.data.clone()));
    assert_eq!(real(&values, "C"), (2, doc.c.cols, doc.c.data.clone()));
    assert_eq!(real(&values, "D"), (2, 1, vec![0.0; 2]));
    assert_eq!(real(&values, "Ts"), (1, 1, vec![TS]));
    assert_eq!(real(&values, "c_offset").2, doc.c_offset);
    assert_eq!(real(&values, "std_mean").2, d.standardisation.as_ref().unwrap().mean);
    assert_eq!(real(&values, "rbf_width").2, [d.rbf.as_ref().unwrap().width]);
    assert_eq!(real(&values, "delay").2, [1.0]);
    let eigenvalues: Vec<(f64, f64)> = doc.eigenvalues.iter().map(|e| (e.re, e.im)).collect();
    assert_eq!(values["eigenvalues"], Value2::Complex { rows: eigenvalues.len(), cols: 1, data: eigenvalues });
    assert_eq!(texts(&values, "state_names"), ["x1", "x2"]);
    assert_eq!(texts(&values, "input_names"), ["u"]);
    assert_eq!(texts(&values, "state_units"), ["m", "m/s"]);
    assert_eq!(texts(&values, "input_units"), ["N"]);
    assert_eq!(texts(&values, "observables"), d.observables);
    assert_eq!(texts(&values, "dictionary"), [DICTIONARY]);
    assert_eq!(texts(&values, "format"), ["koopstream.model.v1"]);
    let (rows, cols, exponents) = real(&values, "poly_exponents");
    assert_eq!((rows, cols), (6, 2));
    assert_eq!(exponents, [1., 0., 0., 1., 0., 0., 2., 0., 1., 1., 0., 2.]);

    // Lifted from the file alone, the model predicts what the service predicts.
    let (start, inputs) = start_and_inputs(&states);
    let expected = service_prediction(&server, &start, &inputs).await;
    assert_close(&predict_from_export(&values, &start, &inputs), &expected, "the exported arrays");

    // Units on the modes, parallel to the channels.
    for path in ["/v1/streams/vx/modes", "/v1/streams/vx/modes?all=true"] {
        let (status, modes) = server.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!((&modes["channels"], &modes["units"]), (&json!(["x1", "x2"]), &json!(["m", "m/s"])), "{path}");
    }
    let r = server.http.get(server.url("/v1/streams/vx/modes?all=true")).header("accept", "application/x-protobuf");
    let message = pb::ModesResponse::decode(r.send().await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(message.units, ["m", "m/s"]);

    // An unknown format is refused, naming the ones there are.
    let (status, problem) = server.get_json("/v1/streams/vx/model?format=xlsx").await;
    assert_eq!(status, 422);
    assert!(problem["detail"].as_str().unwrap().contains("json, protobuf, mat or npz"), "{problem}");
    // The OpenAPI document lists the format.
    let (_, openapi) = server.get_json("/openapi.json").await;
    let parameters = openapi["paths"]["/v1/streams/{id}/model"]["get"]["parameters"].as_array().unwrap().clone();
    let format = parameters.iter().find(|p| p["name"] == "format").unwrap();
    assert_eq!(format["schema"]["pattern"], "^(json|protobuf|mat|npz)$");
    server.stop().await;
}

#[test]
fn fit_writes_the_format_of_the_extension_and_fourier_features_are_exported() {
    let dir = scratch_dir("export-fit");
    let (states, _) = forced_van_der_pol(400);
    let mut csv = String::from("t,x1,x2\n");
    for (k, x) in states.iter().enumerate() {
        csv.push_str(&format!("{},{},{}\n", k as f64 * TS, x[0], x[1]));
    }
    let input = dir.join("vdp.csv");
    std::fs::write(&input, csv).unwrap();
    let fit = |output: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_koopstream"))
            .args(["fit", "--dt", "0.1", "--dictionary", "state,const,poly:2,fourier:3:2,delay:2", "--warmup", "100"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(dir.join(output))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(dir.join(output)).unwrap()
    };
    let doc: ModelDoc = serde_json::from_slice(&fit("model.json")).unwrap();
    assert_eq!(doc.state_units, ["", ""], "a CSV file has no units");
    let values = same_variables(&read_mat(&fit("model.mat")), &read_npz(&fit("model.NPZ")));
    assert_eq!(texts(&values, "state_units"), ["", ""]);
    assert_eq!(texts(&values, "input_names"), Vec::<String>::new());
    assert_eq!(real(&values, "B").1, 0);
    let fourier = doc.dictionary.fourier.as_ref().unwrap();
    assert_eq!(real(&values, "fourier_w"), (3, 2, fourier.w.data.clone()));
    assert_eq!(real(&values, "fourier_b").2, fourier.b);
    assert_eq!(real(&values, "delay").2, [2.0]);
    assert_eq!(real(&values, "rbf_centres"), (0, 2, vec![]));
    assert_eq!(real(&values, "A").2, doc.a.data, "the same fit, whatever the file");

    // The exported lifting reproduces the estimator's own.
    let model = koopman::Lifting::from_state(
        &doc.dictionary.spec.parse().unwrap(),
        &doc.state_channels,
        koopman::LiftingState {
            standardisation: doc.dictionary.standardisation.as_ref().map(|s| (s.mean.clone(), s.scale.clone())),
            rbf_centres: Vec::new(),
            rbf_width: 1.0,
            fourier_w: fourier.w.data.clone(),
            fourier_b: fourier.b.clone(),
        },
    )
    .unwrap();
    let start: Vec<Vec<f64>> = states[states.len() - 3..].iter().map(|r| r.to_vec()).collect();
    let psi = model.lift_recent(&start.concat()).unwrap();
    // One step with the estimator's lifting: z' = A psi, x = C z' + c_offset (C reads the
    // state block, diagonal there).
    let expected: Vec<f64> = (0..2)
        .map(|i| doc.c.get(i, i) * (0..psi.len()).map(|j| doc.a.get(i, j) * psi[j]).sum::<f64>() + doc.c_offset[i])
        .collect();
    let found = predict_from_export(&values, &start, &[vec![]]);
    assert_close(&found, &[expected], "one step from the exported lifting");
}

#[tokio::test]
#[ignore = "needs Python with scipy, numpy and python-control (PYTHON_FOR_EXPORT)"]
async fn the_python_example_predicts_what_the_service_predicts() {
    let python = std::env::var("PYTHON_FOR_EXPORT").expect("PYTHON_FOR_EXPORT names the venv's python");
    let (server, states) = server_with_model().await;
    let dir = scratch_dir("export-python");
    let mat = download(&server, "mat", "application/x-matlab-data").await;
    std::fs::write(dir.join("model.mat"), mat).unwrap();
    let (start, inputs) = start_and_inputs(&states);
    std::fs::write(dir.join("start.json"), json!({"x": start, "u": inputs}).to_string()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/predict_from_export.py");
    let out = Command::new(python)
        .arg(script)
        .arg(dir.join("model.mat"))
        .arg(dir.join("start.json"))
        .arg(HORIZON.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&printed["channels"], &printed["units"]), (&json!(["x1", "x2"]), &json!(["m", "m/s"])));
    let python_x: Vec<Vec<f64>> = serde_json::from_value(printed["x"].clone()).unwrap();
    let expected = service_prediction(&server, &start, &inputs).await;
    // 1e-9 absolute, relative above 1: the same arithmetic up to summation order.
    assert_close(&python_x, &expected, "python-control");
    server.stop().await;
}
