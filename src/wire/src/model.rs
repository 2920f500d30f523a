//! Model messages, JSON <-> protobuf: the `koopstream.model.v1` document and the modes. A
//! JSON null is an unset field (proto3 `optional`, or a message field), so both forms hold
//! exactly the same content and convert back without loss.

use super::{WireError, pb, to_usize};
use crate::documents::{ComplexValue, ModeFlagsView, ModeView, ModesResponse, TrackedModeView, TrackedModesResponse};
use crate::model_doc::{
    DictionaryDoc, EigenvalueDoc, ExponentsDoc, FourierDoc, MatrixDoc, ModelDoc, RbfDoc, StandardisationDoc,
};
use crate::streams::EstimatorDoc;
use domain::method::EstimatorKind;

impl From<&MatrixDoc> for pb::Matrix {
    fn from(m: &MatrixDoc) -> Self {
        Self { rows: m.rows as u64, cols: m.cols as u64, data: m.data.clone() }
    }
}

/// A matrix of the model document. The data length is not checked against the shape: the
/// JSON form does not check it either, and the server only ever writes consistent ones.
fn matrix_doc(m: Option<&pb::Matrix>, field: &'static str) -> Result<MatrixDoc, WireError> {
    let m = m.ok_or(WireError::Missing(field))?;
    Ok(MatrixDoc { rows: to_usize(m.rows, field)?, cols: to_usize(m.cols, field)?, data: m.data.clone() })
}

impl From<&DictionaryDoc> for pb::Dictionary {
    fn from(d: &DictionaryDoc) -> Self {
        Self {
            spec: d.spec.clone(),
            observables: d.observables.clone(),
            standardisation: d
                .standardisation
                .as_ref()
                .map(|s| pb::Standardisation { mean: s.mean.clone(), scale: s.scale.clone() }),
            poly_exponents: d.poly_exponents.as_ref().map(|e| pb::Exponents {
                rows: e.rows as u64,
                cols: e.cols as u64,
                data: e.data.clone(),
            }),
            rbf: d.rbf.as_ref().map(|r| pb::Rbf { centres: Some((&r.centres).into()), width: r.width }),
            fourier: d.fourier.as_ref().map(|f| pb::Fourier { w: Some((&f.w).into()), b: f.b.clone() }),
            delay: d.delay,
        }
    }
}

impl TryFrom<&pb::Dictionary> for DictionaryDoc {
    type Error = WireError;

    fn try_from(d: &pb::Dictionary) -> Result<Self, WireError> {
        Ok(Self {
            spec: d.spec.clone(),
            observables: d.observables.clone(),
            standardisation: d
                .standardisation
                .as_ref()
                .map(|s| StandardisationDoc { mean: s.mean.clone(), scale: s.scale.clone() }),
            poly_exponents: d
                .poly_exponents
                .as_ref()
                .map(|e| -> Result<_, WireError> {
                    Ok(ExponentsDoc {
                        rows: to_usize(e.rows, "dictionary.poly_exponents")?,
                        cols: to_usize(e.cols, "dictionary.poly_exponents")?,
                        data: e.data.clone(),
                    })
                })
                .transpose()?,
            rbf: d
                .rbf
                .as_ref()
                .map(|r| -> Result<_, WireError> {
                    Ok(RbfDoc { centres: matrix_doc(r.centres.as_ref(), "dictionary.rbf.centres")?, width: r.width })
                })
                .transpose()?,
            fourier: d
                .fourier
                .as_ref()
                .map(|f| -> Result<_, WireError> {
                    Ok(FourierDoc { w: matrix_doc(f.w.as_ref(), "dictionary.fourier.w")?, b: f.b.clone() })
                })
                .transpose()?,
            delay: d.delay,
        })
    }
}

impl From<&EigenvalueDoc> for pb::Eigenvalue {
    fn from(e: &EigenvalueDoc) -> Self {
        Self {
            re: e.re,
            im: e.im,
            continuous_re: e.continuous_re,
            continuous_im: e.continuous_im,
            frequency_hz: e.frequency_hz,
            damping_ratio: e.damping_ratio,
        }
    }
}

impl From<&pb::Eigenvalue> for EigenvalueDoc {
    fn from(e: &pb::Eigenvalue) -> Self {
        Self {
            re: e.re,
            im: e.im,
            continuous_re: e.continuous_re,
            continuous_im: e.continuous_im,
            frequency_hz: e.frequency_hz,
            damping_ratio: e.damping_ratio,
        }
    }
}

impl From<&ModelDoc> for pb::ModelDoc {
    fn from(doc: &ModelDoc) -> Self {
        Self {
            format: doc.format.clone(),
            ts: doc.ts,
            state_channels: doc.state_channels.clone(),
            input_channels: doc.input_channels.clone(),
            state_units: doc.state_units.clone(),
            input_units: doc.input_units.clone(),
            dictionary: Some((&doc.dictionary).into()),
            estimator: estimator_name(doc.estimator).to_owned(),
            mu: doc.mu,
            forgetting: doc.forgetting,
            window: doc.window.map(|w| w as u64),
            pairs: doc.pairs,
            a: Some((&doc.a).into()),
            b: Some((&doc.b).into()),
            c: Some((&doc.c).into()),
            c_offset: doc.c_offset.clone(),
            eigenvalues: doc.eigenvalues.iter().map(Into::into).collect(),
            residual_rms: doc.residual_rms.clone().map(|values| pb::DoubleList { values }),
        }
    }
}

impl TryFrom<&pb::ModelDoc> for ModelDoc {
    type Error = WireError;

    fn try_from(doc: &pb::ModelDoc) -> Result<Self, WireError> {
        let d = doc.dictionary.as_ref().ok_or(WireError::Missing("dictionary"))?;
        Ok(Self {
            format: doc.format.clone(),
            ts: doc.ts,
            state_channels: doc.state_channels.clone(),
            input_channels: doc.input_channels.clone(),
            state_units: doc.state_units.clone(),
            input_units: doc.input_units.clone(),
            dictionary: DictionaryDoc::try_from(d)?,
            estimator: estimator_of(&doc.estimator)?,
            mu: doc.mu,
            forgetting: doc.forgetting,
            window: doc.window.map(|w| to_usize(w, "window")).transpose()?,
            pairs: doc.pairs,
            a: matrix_doc(doc.a.as_ref(), "a")?,
            b: matrix_doc(doc.b.as_ref(), "b")?,
            c: matrix_doc(doc.c.as_ref(), "c")?,
            c_offset: doc.c_offset.clone(),
            eigenvalues: doc.eigenvalues.iter().map(Into::into).collect(),
            residual_rms: doc.residual_rms.as_ref().map(|list| list.values.clone()),
        })
    }
}

fn estimator_name(estimator: EstimatorDoc) -> &'static str {
    EstimatorKind::from(estimator).name()
}

/// The estimator of a protobuf model document: empty in documents written before methods
/// existed, which were all ridge.
fn estimator_of(name: &str) -> Result<EstimatorDoc, WireError> {
    if name.is_empty() {
        return Ok(EstimatorDoc::Ridge);
    }
    name.parse::<EstimatorKind>()
        .map(Into::into)
        .map_err(|_| WireError::UnknownName { field: "estimator", value: name.to_owned() })
}

fn complex(c: &ComplexValue) -> pb::Complex {
    pb::Complex { re: c.re, im: c.im }
}

fn complex_value(c: &pb::Complex) -> ComplexValue {
    ComplexValue { re: c.re, im: c.im }
}

impl From<&ModeView> for pb::Mode {
    fn from(m: &ModeView) -> Self {
        Self {
            eigenvalue: Some(complex(&m.eigenvalue)),
            continuous: m.continuous.as_ref().map(complex),
            frequency_hz: m.frequency_hz,
            damping_ratio: m.damping_ratio,
            time_constant_s: m.time_constant_s,
            ambiguous: m.ambiguous,
            flags: Some(pb::ModeFlags {
                negative_real: m.flags.negative_real,
                near_zero: m.flags.near_zero,
                near_nyquist: m.flags.near_nyquist,
            }),
            shape: m.shape.iter().map(complex).collect(),
            participation: m.participation.clone(),
            energy: m.energy,
            frequency_ci95: m.frequency_ci95.map(interval),
            damping_ci95: m.damping_ci95.map(interval),
            bias_corrected: m.bias_corrected,
            id: m.id,
            reason: m.reason.clone(),
        }
    }
}

impl TryFrom<&pb::Mode> for ModeView {
    type Error = WireError;

    fn try_from(m: &pb::Mode) -> Result<Self, WireError> {
        // An unset flags message is one with every flag clear, as proto3 defaults go.
        let flags = m.flags.unwrap_or_default();
        Ok(Self {
            eigenvalue: complex_value(m.eigenvalue.as_ref().ok_or(WireError::Missing("eigenvalue"))?),
            continuous: m.continuous.as_ref().map(complex_value),
            frequency_hz: m.frequency_hz,
            damping_ratio: m.damping_ratio,
            time_constant_s: m.time_constant_s,
            ambiguous: m.ambiguous,
            flags: ModeFlagsView {
                negative_real: flags.negative_real,
                near_zero: flags.near_zero,
                near_nyquist: flags.near_nyquist,
            },
            shape: m.shape.iter().map(complex_value).collect(),
            participation: m.participation.clone(),
            energy: m.energy,
            frequency_ci95: m.frequency_ci95.as_ref().map(interval_value),
            damping_ci95: m.damping_ci95.as_ref().map(interval_value),
            bias_corrected: m.bias_corrected,
            id: m.id,
            reason: m.reason.clone(),
        })
    }
}

fn interval([low, high]: [f64; 2]) -> pb::Interval {
    pb::Interval { low, high }
}

fn interval_value(i: &pb::Interval) -> [f64; 2] {
    [i.low, i.high]
}

impl From<&TrackedModeView> for pb::TrackedMode {
    fn from(m: &TrackedModeView) -> Self {
        Self {
            id: m.id,
            frequency_hz: m.frequency_hz,
            damping_ratio: m.damping_ratio,
            frequency_ci95: m.frequency_ci95.map(interval),
            damping_ci95: m.damping_ci95.map(interval),
            energy: m.energy,
            shape: m.shape.iter().map(complex).collect(),
            first_seen_t: m.first_seen_t,
            alarm: m.alarm.clone().unwrap_or_default(),
            current: m.current,
        }
    }
}

impl From<&pb::TrackedMode> for TrackedModeView {
    fn from(m: &pb::TrackedMode) -> Self {
        Self {
            id: m.id,
            frequency_hz: m.frequency_hz,
            damping_ratio: m.damping_ratio,
            frequency_ci95: m.frequency_ci95.as_ref().map(interval_value),
            damping_ci95: m.damping_ci95.as_ref().map(interval_value),
            energy: m.energy,
            shape: m.shape.iter().map(complex_value).collect(),
            first_seen_t: m.first_seen_t,
            alarm: (!m.alarm.is_empty()).then(|| m.alarm.clone()),
            current: m.current,
        }
    }
}

impl From<&TrackedModesResponse> for pb::TrackedModesResponse {
    fn from(r: &TrackedModesResponse) -> Self {
        Self {
            version: r.version,
            t: r.t,
            ts: r.ts,
            channels: r.channels.clone(),
            units: r.units.clone(),
            modes: r.modes.iter().map(Into::into).collect(),
            intervals_unavailable: r.intervals_unavailable.clone(),
        }
    }
}

impl From<&pb::TrackedModesResponse> for TrackedModesResponse {
    fn from(r: &pb::TrackedModesResponse) -> Self {
        Self {
            version: r.version,
            t: r.t,
            ts: r.ts,
            channels: r.channels.clone(),
            units: r.units.clone(),
            modes: r.modes.iter().map(Into::into).collect(),
            intervals_unavailable: r.intervals_unavailable.clone(),
        }
    }
}

impl From<&ModesResponse> for pb::ModesResponse {
    fn from(r: &ModesResponse) -> Self {
        Self {
            version: r.version,
            ts: r.ts,
            channels: r.channels.clone(),
            units: r.units.clone(),
            modes: r.modes.iter().map(Into::into).collect(),
            intervals_unavailable: r.intervals_unavailable.clone(),
        }
    }
}

impl TryFrom<&pb::ModesResponse> for ModesResponse {
    type Error = WireError;

    fn try_from(r: &pb::ModesResponse) -> Result<Self, WireError> {
        Ok(Self {
            version: r.version,
            ts: r.ts,
            channels: r.channels.clone(),
            units: r.units.clone(),
            modes: r.modes.iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
            intervals_unavailable: r.intervals_unavailable.clone(),
        })
    }
}
