//! Prediction messages, JSON <-> protobuf: the request (rows of states and inputs <->
//! packed matrices) and the predicted trajectory.

use super::{WireError, matrix_to_rows, pb, rows_to_matrix, to_usize};
use crate::documents::{PredictMode, PredictRequest, PredictResponse, PredictStart};

impl From<PredictMode> for pb::PredictMode {
    fn from(mode: PredictMode) -> Self {
        match mode {
            PredictMode::Linear => Self::Linear,
            PredictMode::Relift => Self::Relift,
        }
    }
}

impl From<pb::PredictMode> for PredictMode {
    fn from(mode: pb::PredictMode) -> Self {
        match mode {
            pb::PredictMode::Linear => Self::Linear,
            pb::PredictMode::Relift => Self::Relift,
        }
    }
}

impl TryFrom<&PredictRequest> for pb::PredictRequest {
    type Error = WireError;

    fn try_from(r: &PredictRequest) -> Result<Self, WireError> {
        let start = match &r.start {
            Some(s) => Some(pb::PredictStart { x: Some(rows_to_matrix(&s.x, "start.x")?), t: s.t }),
            None => None,
        };
        Ok(Self {
            horizon: r.horizon as u64,
            mode: pb::PredictMode::from(r.mode).into(),
            start,
            u: r.u.as_deref().map(|u| rows_to_matrix(u, "u")).transpose()?,
        })
    }
}

impl TryFrom<&pb::PredictRequest> for PredictRequest {
    type Error = WireError;

    fn try_from(r: &pb::PredictRequest) -> Result<Self, WireError> {
        let mode =
            pb::PredictMode::try_from(r.mode).map_err(|_| WireError::UnknownEnum { field: "mode", value: r.mode })?;
        let start = match &r.start {
            Some(s) => {
                let x = s.x.as_ref().ok_or(WireError::Missing("start.x"))?;
                Some(PredictStart { x: matrix_to_rows(x, "start.x")?, t: s.t })
            }
            None => None,
        };
        Ok(Self {
            horizon: to_usize(r.horizon, "horizon")?,
            mode: mode.into(),
            start,
            u: r.u.as_ref().map(|u| matrix_to_rows(u, "u")).transpose()?,
        })
    }
}

impl TryFrom<&PredictResponse> for pb::PredictResponse {
    type Error = WireError;

    fn try_from(r: &PredictResponse) -> Result<Self, WireError> {
        Ok(Self {
            version: r.version,
            channels: r.channels.clone(),
            t: r.t.clone(),
            x: Some(rows_to_matrix(&r.x, "x")?),
        })
    }
}

impl TryFrom<&pb::PredictResponse> for PredictResponse {
    type Error = WireError;

    fn try_from(r: &pb::PredictResponse) -> Result<Self, WireError> {
        let x = r.x.as_ref().ok_or(WireError::Missing("x"))?;
        Ok(Self { version: r.version, channels: r.channels.clone(), t: r.t.clone(), x: matrix_to_rows(x, "x")? })
    }
}
