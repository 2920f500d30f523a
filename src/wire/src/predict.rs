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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_EMPTY_ROWS, WireError};

    /// Regression (found by the fuzz harness's allocation bound): a tiny message claiming a
    /// huge matrix of zero columns was unpacked into that many empty rows.
    #[test]
    fn a_matrix_of_no_columns_cannot_claim_unbounded_rows() {
        let claim = |rows: u64| pb::PredictRequest {
            horizon: 1,
            u: Some(pb::Matrix { rows, cols: 0, data: vec![] }),
            ..Default::default()
        };
        let e = PredictRequest::try_from(&claim(1 << 40)).unwrap_err();
        assert_eq!(e, WireError::EmptyRows { field: "u", rows: 1 << 40 });
        assert_eq!(e.pointer(), "/u");
        let ok = PredictRequest::try_from(&claim(MAX_EMPTY_ROWS as u64)).unwrap();
        assert_eq!(ok.u.map(|u| u.len()), Some(MAX_EMPTY_ROWS));
    }
}
