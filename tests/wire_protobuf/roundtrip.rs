//! Property tests of the wire conversions: every JSON message becomes its protobuf form and
//! comes back unchanged through encoded bytes, and a protobuf batch survives the way back.
//! Numbers include NaN, infinities, signed zeros and subnormals. `same` compares Debug
//! renderings, which print every f64 exactly (the shortest form that reads back to the same
//! bits) and every NaN as `NaN`: bit for bit, except that NaN equals NaN (a missing value).
//! One documented exception: prost leaves out a singular proto3 double that compares equal
//! to 0.0, so -0.0 in such a field reads back as +0.0 (equal by IEEE; packed and `optional`
//! fields keep it). Singular fields are therefore drawn from [`scalar`].

use std::fmt::Debug;

use koopstream::api::problem::Problem;
use koopstream::service::command::{IngestAck, ModeBrief, ModelSummary};
use koopstream::wire::batch::SampleBatchBody;
use koopstream::wire::documents::{
    ComplexValue, ModeFlagsView, ModeView, ModesResponse, PredictMode, PredictRequest, PredictResponse, PredictStart,
    TrackedModeView, TrackedModesResponse,
};
use koopstream::wire::model_doc::{
    DictionaryDoc, EigenvalueDoc, ExponentsDoc, FourierDoc, MatrixDoc, ModelDoc, RbfDoc, StandardisationDoc,
};
use koopstream::wire::streams::EstimatorDoc;
use koopstream::wire::{ingest, pb};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn same<T: Debug>(a: &T, b: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    Ok(())
}

/// Through the encoded bytes, as on the wire.
fn wire<M: prost::Message + Default>(message: &M) -> M {
    M::decode(&message.encode_to_vec()[..]).unwrap()
}

fn number() -> impl Strategy<Value = f64> {
    proptest::num::f64::ANY
}

/// A number for a singular (implicit presence) double field: any, but -0.0 is +0.0.
fn scalar() -> impl Strategy<Value = f64> {
    number().prop_map(|v| if v == 0.0 { 0.0 } else { v })
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ .:-]{0,12}"
}

/// A JSON value: null, or any number but NaN (JSON has none; null is the missing value).
fn nullable() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), number().prop_filter("JSON has no NaN", |v| !v.is_nan()).prop_map(Some)]
}

fn rows(max_rows: usize, max_cols: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    (0..=max_rows, 0..=max_cols).prop_flat_map(|(r, c)| vec(vec(number(), c), r))
}

fn json_batch() -> impl Strategy<Value = SampleBatchBody> {
    (1..6_usize, 1..4_usize, 0..3_usize).prop_flat_map(|(r, n, m)| {
        let u = if m == 0 { Just(None).boxed() } else { option::of(vec(vec(nullable(), m), r)).boxed() };
        let head = (any::<u64>(), option::of(any::<u64>()));
        (head, option::of(vec(number(), r)), option::of(number()), vec(vec(nullable(), n), r), u)
            .prop_map(|((seq, epoch), t, t0, x, u)| SampleBatchBody { seq, epoch, t, t0, x, u })
    })
}

fn proto_batch() -> impl Strategy<Value = pb::SampleBatch> {
    (1..6_usize, 1..4_u32, 0..3_u32).prop_flat_map(|(r, n, m)| {
        let t = prop_oneof![Just(Vec::new()), vec(number(), r)];
        let quality = prop_oneof![Just(Vec::new()), vec(0..3_u32, r)];
        let head = (any::<u64>(), option::of(any::<u64>()));
        (head, t, option::of(number()), vec(number(), r * n as usize), vec(number(), r * m as usize), quality).prop_map(
            move |((seq, epoch), t, t0, x, u, quality)| pb::SampleBatch {
                stream_id: String::new(),
                seq,
                epoch,
                t,
                t0,
                channels: n,
                x,
                inputs: m,
                u,
                quality,
            },
        )
    })
}

fn matrix() -> impl Strategy<Value = MatrixDoc> {
    (0..4_usize, 0..4_usize)
        .prop_flat_map(|(rows, cols)| vec(number(), rows * cols).prop_map(move |data| MatrixDoc { rows, cols, data }))
}

fn model_doc() -> impl Strategy<Value = ModelDoc> {
    let eigenvalue =
        (scalar(), scalar(), option::of(number()), option::of(number()), option::of(number()), option::of(number()))
            .prop_map(|(re, im, continuous_re, continuous_im, frequency_hz, damping_ratio)| EigenvalueDoc {
                re,
                im,
                continuous_re,
                continuous_im,
                frequency_hz,
                damping_ratio,
            });
    let standardisation =
        (vec(number(), 0..3), vec(number(), 0..3)).prop_map(|(mean, scale)| StandardisationDoc { mean, scale });
    let exponents = (0..4_usize, 0..3_usize).prop_flat_map(|(rows, cols)| {
        vec(any::<u32>(), rows * cols).prop_map(move |data| ExponentsDoc { rows, cols, data })
    });
    let rbf = (matrix(), scalar()).prop_map(|(centres, width)| RbfDoc { centres, width });
    let fourier = (matrix(), vec(number(), 0..3)).prop_map(|(w, b)| FourierDoc { w, b });
    let lifting = (option::of(exponents), option::of(rbf), option::of(fourier), option::of(any::<u64>()));
    let dictionary = (name(), vec(name(), 0..4), option::of(standardisation), lifting).prop_map(
        |(spec, observables, standardisation, (poly_exponents, rbf, fourier, delay))| DictionaryDoc {
            spec,
            observables,
            standardisation,
            poly_exponents,
            rbf,
            fourier,
            delay,
        },
    );
    let units = (vec(name(), 0..3), vec(name(), 0..3));
    let head = (name(), scalar(), (vec(name(), 0..3), vec(name(), 0..3), units), dictionary, scalar(), scalar());
    let tail = (
        option::of(0..1_000_000_usize),
        any::<u64>(),
        (matrix(), matrix(), matrix()),
        vec(number(), 0..3),
        vec(eigenvalue, 0..4),
        option::of(vec(number(), 0..3)),
        prop_oneof![Just(EstimatorDoc::Ridge), Just(EstimatorDoc::Correlation), Just(EstimatorDoc::Iv)],
    );
    (head, tail).prop_map(
        |(
            (format, ts, (state_channels, input_channels, (state_units, input_units)), dictionary, mu, forgetting),
            (window, pairs, (a, b, c), c_offset, eigenvalues, residual_rms, estimator),
        )| {
            ModelDoc {
                format,
                ts,
                state_channels,
                input_channels,
                state_units,
                input_units,
                dictionary,
                estimator,
                mu,
                forgetting,
                window,
                pairs,
                a,
                b,
                c,
                c_offset,
                eigenvalues,
                residual_rms,
            }
        },
    )
}

fn complex() -> impl Strategy<Value = ComplexValue> {
    (scalar(), scalar()).prop_map(|(re, im)| ComplexValue { re, im })
}

fn modes() -> impl Strategy<Value = ModesResponse> {
    let flags = any::<(bool, bool, bool)>().prop_map(|(negative_real, near_zero, near_nyquist)| ModeFlagsView {
        negative_real,
        near_zero,
        near_nyquist,
    });
    let meter = (
        option::of(number()),
        option::of(interval()),
        option::of(interval()),
        option::of(any::<bool>()),
        option::of(any::<u64>()),
        option::of(name()),
    );
    let mode = (
        complex(),
        option::of(complex()),
        option::of(number()),
        option::of(number()),
        option::of(number()),
        any::<bool>(),
        flags,
        vec(complex(), 0..3),
        vec(number(), 0..3),
        meter,
    )
        .prop_map(
            |(
                eigenvalue,
                continuous,
                frequency_hz,
                damping_ratio,
                time_constant_s,
                ambiguous,
                flags,
                shape,
                participation,
                (energy, frequency_ci95, damping_ci95, bias_corrected, id, reason),
            )| {
                ModeView {
                    eigenvalue,
                    continuous,
                    frequency_hz,
                    damping_ratio,
                    time_constant_s,
                    ambiguous,
                    flags,
                    shape,
                    participation,
                    energy,
                    frequency_ci95,
                    damping_ci95,
                    bias_corrected,
                    id,
                    reason,
                }
            },
        );
    (any::<u64>(), scalar(), vec(name(), 0..3), vec(name(), 0..3), vec(mode, 0..4)).prop_map(
        |(version, ts, channels, units, modes)| ModesResponse {
            intervals_unavailable: (version % 2 == 0).then(|| "no intervals".to_owned()),
            version,
            ts,
            channels,
            units,
            modes,
        },
    )
}

/// An interval: a message of two singular doubles, so -0.0 is +0.0 in each.
fn interval() -> impl Strategy<Value = [f64; 2]> {
    (scalar(), scalar()).prop_map(|(a, b)| [a, b])
}

fn tracked_modes() -> impl Strategy<Value = TrackedModesResponse> {
    let alarm = option::of(prop_oneof![Just("warning".to_owned()), Just("critical".to_owned())]);
    let mode = (
        any::<u64>(),
        scalar(),
        scalar(),
        option::of(interval()),
        option::of(interval()),
        scalar(),
        vec(complex(), 0..3),
        scalar(),
        alarm,
        any::<bool>(),
    )
        .prop_map(
            |(
                id,
                frequency_hz,
                damping_ratio,
                frequency_ci95,
                damping_ci95,
                energy,
                shape,
                first_seen_t,
                alarm,
                current,
            )| {
                TrackedModeView {
                    id,
                    frequency_hz,
                    damping_ratio,
                    frequency_ci95,
                    damping_ci95,
                    energy,
                    shape,
                    first_seen_t,
                    alarm,
                    current,
                }
            },
        );
    let names = (vec(name(), 0..3), vec(name(), 0..3));
    (option::of(any::<u64>()), option::of(number()), scalar(), names, vec(mode, 0..4)).prop_map(
        |(version, t, ts, (channels, units), modes)| TrackedModesResponse {
            intervals_unavailable: version.map(|v| format!("reason {v}")),
            version,
            t,
            ts,
            channels,
            units,
            modes,
        },
    )
}

fn predict_request() -> impl Strategy<Value = PredictRequest> {
    let mode = prop_oneof![Just(PredictMode::Linear), Just(PredictMode::Relift)];
    let start = (rows(3, 3), option::of(number())).prop_map(|(x, t)| PredictStart { x, t });
    (0..1_000_000_usize, mode, option::of(start), option::of(rows(4, 3)))
        .prop_map(|(horizon, mode, start, u)| PredictRequest { horizon, mode, start, u })
}

fn predict_response() -> impl Strategy<Value = PredictResponse> {
    (any::<u64>(), vec(name(), 0..3), vec(number(), 0..4), rows(4, 3))
        .prop_map(|(version, channels, t, x)| PredictResponse { version, channels, t, x })
}

proptest! {
    #[test]
    fn a_json_batch_round_trips(body in json_batch()) {
        let message = wire(&ingest::batch_to_proto(&body, "s").unwrap());
        prop_assert_eq!(&message.stream_id, "s");
        same(&ingest::batch_from_proto(&message).unwrap(), &body)?;
    }

    #[test]
    fn a_protobuf_batch_round_trips_and_bad_samples_become_nulls(message in proto_batch()) {
        let body = ingest::batch_from_proto(&wire(&message)).unwrap();
        let n = message.channels as usize;
        for (k, row) in body.x.iter().enumerate() {
            let bad = message.quality.get(k).is_some_and(|q| *q != 0);
            for (j, v) in row.iter().enumerate() {
                let sent = message.x[k * n + j];
                let expected = if bad || sent.is_nan() { None } else { Some(sent) };
                same(v, &expected)?;
            }
        }
        if message.quality.is_empty() {
            same(&ingest::batch_to_proto(&body, "").unwrap(), &message)?;
        }
    }

    #[test]
    fn a_model_document_round_trips(doc in model_doc()) {
        same(&ModelDoc::try_from(&wire(&pb::ModelDoc::from(&doc))).unwrap(), &doc)?;
    }

    #[test]
    fn modes_round_trip(modes in modes(), tracked in tracked_modes()) {
        same(&ModesResponse::try_from(&wire(&pb::ModesResponse::from(&modes))).unwrap(), &modes)?;
        same(&TrackedModesResponse::from(&wire(&pb::TrackedModesResponse::from(&tracked))), &tracked)?;
    }

    #[test]
    fn predictions_round_trip(request in predict_request(), response in predict_response()) {
        same(&PredictRequest::try_from(&wire(&pb::PredictRequest::try_from(&request).unwrap())).unwrap(), &request)?;
        same(&PredictResponse::try_from(&wire(&pb::PredictResponse::try_from(&response).unwrap())).unwrap(), &response)?;
    }

    #[test]
    fn acknowledgements_problems_and_summaries_round_trip(
        ack in (any::<u64>(), any::<usize>(), any::<bool>(), any::<usize>(), any::<usize>(), any::<usize>(), any::<usize>(), any::<u64>()),
        problem in (name(), name(), any::<u16>(), name(), option::of(name())),
        summary in (any::<u64>(), any::<u64>(), option::of(vec(number(), 0..3)), vec((any::<u64>(), scalar(), scalar()), 0..3)),
    ) {
        let (seq, accepted, duplicate, out_of_order, missing_value, flat_line, outlier, version) = ack;
        let ack = IngestAck { seq, accepted, duplicate, out_of_order, missing_value, flat_line, outlier, version };
        same(&IngestAck::try_from(&wire(&pb::IngestAck::from(&ack))).unwrap(), &ack)?;
        let problem = Problem { kind: problem.0, title: problem.1, status: problem.2, detail: problem.3, pointer: problem.4 };
        same(&Problem::try_from(&wire(&pb::Problem::from(&problem))).unwrap(), &problem)?;
        let modes = summary.3.into_iter().map(|(id, frequency_hz, damping_ratio)| ModeBrief { id, frequency_hz, damping_ratio }).collect();
        let summary = ModelSummary { version: summary.0, samples_accepted: summary.1, residual_rms: summary.2, modes };
        same(&ModelSummary::from(&wire(&pb::ModelSummary::from(&summary))), &summary)?;
    }
}
