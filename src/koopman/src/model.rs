//! The linear state-space model read off K, and multi-step prediction with it.
//!
//! z_{k+1} = A z_k + B u_k, x_k = C z_k + offset, with A = K[..N, :]^T, B = K[N.., :]^T.
//! C selects the state block of psi and undoes the standardisation, so x is in data units.

use faer::{Mat, MatRef};

use crate::error::{PredictError, SampleError, SampleField};
use crate::lifting::Lifting;

/// Longest prediction horizon served (keeps a request from asking for gigabytes).
pub const MAX_HORIZON: usize = 1_000_000;

/// How a multi-step prediction is iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionMode {
    /// Iterate z <- A z + B u in lifted space and read x = C z + offset.
    Linear,
    /// Each step: read x back with C, lift it again, then apply A and B.
    Relift,
}

/// A linear model in lifted coordinates, with the lifting it belongs to.
#[derive(Debug, Clone)]
pub struct LinearModel {
    /// N x N state matrix.
    pub a: Mat<f64>,
    /// N x m input matrix.
    pub b: Mat<f64>,
    /// n x N output matrix (data units).
    pub c: Mat<f64>,
    /// x = C z + c_offset.
    pub c_offset: Vec<f64>,
    lifting: Lifting,
}

impl LinearModel {
    /// Reads A, B, C off K ((N + m) x N) for the given lifting.
    pub fn from_k(k: MatRef<'_, f64>, lifting: &Lifting, n_inputs: usize) -> Self {
        let n_lifted = lifting.dim();
        debug_assert_eq!((k.nrows(), k.ncols()), (n_lifted + n_inputs, n_lifted));
        let a = k.subrows(0, n_lifted).transpose().to_owned();
        let b = k.subrows(n_lifted, n_inputs).transpose().to_owned();
        let n = lifting.n_states();
        let (scale, offset) = match lifting.standardisation() {
            Some(s) => (s.scale.clone(), s.mean.clone()),
            None => (vec![1.0; n], vec![0.0; n]),
        };
        let c = Mat::from_fn(n, n_lifted, |i, j| if i == j { scale[i] } else { 0.0 });
        Self { a, b, c, c_offset: offset, lifting: lifting.clone() }
    }

    /// The lifting the model is expressed in.
    pub fn lifting(&self) -> &Lifting {
        &self.lifting
    }

    /// Predicts `horizon` future states from the recent states `recent` (raw units,
    /// row-major, oldest first; at least the dictionary's history length), with future
    /// inputs `inputs` (row-major, `horizon` rows of m values; empty when m = 0).
    /// Returns `horizon` rows of n values: x_{k+1}, ..., x_{k+horizon}.
    pub fn predict(
        &self,
        recent: &[f64],
        inputs: &[f64],
        horizon: usize,
        mode: PredictionMode,
    ) -> Result<Vec<f64>, PredictError> {
        let n = self.lifting.n_states();
        let m = self.b.ncols();
        let n_lifted = self.lifting.dim();
        if horizon == 0 || horizon > MAX_HORIZON {
            return Err(PredictError::Horizon(horizon));
        }
        if !recent.len().is_multiple_of(n) {
            return Err(SampleError::Length { field: SampleField::State, expected: n, got: recent.len() % n }.into());
        }
        if let Some(index) = recent.iter().chain(inputs).position(|v| !v.is_finite()) {
            let (field, index) = if index < recent.len() {
                (SampleField::State, index % n)
            } else {
                (SampleField::Input, (index - recent.len()) % m.max(1))
            };
            return Err(SampleError::NonFinite { field, index, value: f64::NAN }.into());
        }
        let have = recent.len() / n;
        if have < self.lifting.history_len() {
            return Err(PredictError::History { needed: self.lifting.history_len(), got: have });
        }
        if inputs.len() != horizon * m {
            return Err(PredictError::Inputs { got: inputs.len().checked_div(m).unwrap_or(inputs.len()), horizon });
        }
        let mut history = self.lifting.new_history();
        let mut z = vec![0.0; n];
        for row in recent.chunks_exact(n).skip(have - self.lifting.history_len()) {
            self.lifting.standardise_into(row, &mut z);
            history.push(&z);
        }
        let mut psi = vec![0.0; n_lifted];
        self.lifting.lift_into(&history, &mut psi);
        let mut next = vec![0.0; n_lifted];
        let mut out = Vec::with_capacity(horizon * n);
        let mut x = vec![0.0; n];
        for step in 0..horizon {
            let u = &inputs[step * m..(step + 1) * m];
            for (i, ni) in next.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (j, pj) in psi.iter().enumerate() {
                    acc += self.a[(i, j)] * pj;
                }
                for (j, uj) in u.iter().enumerate() {
                    acc += self.b[(i, j)] * uj;
                }
                *ni = acc;
            }
            for (i, xi) in x.iter_mut().enumerate() {
                *xi = self.c[(i, i)] * next[i] + self.c_offset[i];
            }
            out.extend_from_slice(&x);
            match mode {
                PredictionMode::Linear => std::mem::swap(&mut psi, &mut next),
                PredictionMode::Relift => {
                    // The state block of `next` is the standardised prediction itself.
                    history.push(&next[..n]);
                    self.lifting.lift_into(&history, &mut psi);
                }
            }
        }
        Ok(out)
    }
}
