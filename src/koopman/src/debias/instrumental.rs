//! The instrumental-variable estimator: K = (sum w z p^T + mu I)^-1 sum w z q^T with the
//! regressor `delay` pairs earlier as the instrument z, kept current by a non-symmetric
//! rank-one update per pair and refactorised exactly from the sums every so often.
//!
//! Least squares regresses q on a p that carries measurement noise, and that noise,
//! correlated with p itself, shrinks K (its eigenvalues move toward the origin, which reads
//! as too much damping). An instrument correlates with the signal in p but not with the
//! noise of the pair; a regressor from before the dictionary's delay span shares no sample
//! with the pair, so with white measurement noise E[z e^T] = 0 and the estimate is
//! consistent. Its price is variance: the instrument's correlation with p decays with the
//! delay.

use faer::Mat;
use faer::linalg::solvers::{DenseSolveCore, Solve};

use crate::error::{NumericalError, StateError};
use crate::state::InstrumentalState;

/// The instrumental-variable sums, inverse and operator of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Instrumental {
    /// Regressor length N'.
    width: usize,
    /// Target length N.
    n: usize,
    delay: usize,
    rho: f64,
    refactor_every: usize,
    /// M = sum w z p^T + (decayed) mu I, N' x N' column-major.
    moment: Vec<f64>,
    /// S = sum w z q^T, N' x N.
    cross: Vec<f64>,
    /// sum w z z^T, N' x N' (the covariance of K's rows needs it).
    instruments: Vec<f64>,
    /// M^-1 (meaningful while solved).
    inverse: Vec<f64>,
    /// K = M^-1 S, N' x N.
    operator: Vec<f64>,
    solved: bool,
    /// The chain's latest `delay` regressors, a ring; slot `next` is the oldest once full.
    ring: Vec<f64>,
    ring_next: usize,
    ring_len: usize,
    since_refactor: usize,
    /// Work vectors: M^-1 z, M^-T p, the a-priori residual.
    gain: Vec<f64>,
    left: Vec<f64>,
    residual: Vec<f64>,
}

impl Instrumental {
    pub(crate) fn new(width: usize, n: usize, delay: usize, mu: f64, rho: f64, refactor_every: usize) -> Self {
        let mut moment = vec![0.0; width * width];
        for i in 0..width {
            moment[i * width + i] = mu;
        }
        Self {
            width,
            n,
            delay,
            rho,
            refactor_every,
            moment,
            cross: vec![0.0; width * n],
            instruments: vec![0.0; width * width],
            inverse: vec![0.0; width * width],
            operator: vec![0.0; width * n],
            solved: false,
            ring: vec![0.0; delay * width],
            ring_next: 0,
            ring_len: 0,
            since_refactor: 0,
            gain: vec![0.0; width],
            left: vec![0.0; width],
            residual: vec![0.0; n],
        }
    }

    /// A gap: the next pairs have no instrument until the ring refills.
    pub(crate) fn break_chain(&mut self) {
        self.ring_len = 0;
        self.ring_next = 0;
    }

    pub(crate) fn is_solved(&self) -> bool {
        self.solved
    }

    /// K (N' x N, column-major).
    pub(crate) fn operator(&self) -> &[f64] {
        &self.operator
    }

    /// Adds the pair (p, q): the sums decay by rho; with an instrument in the ring they
    /// gain z p^T, z q^T and z z^T, and a solved model takes the rank-one step. Returns the
    /// a-priori residual q - K^T p when the model was solved before the pair. `recursive`
    /// false moves the sums only (the warm-up replay). O(N'^2 + N' N), no allocation.
    pub(crate) fn update(&mut self, p: &[f64], q: &[f64], recursive: bool) -> Option<&[f64]> {
        let (w, n) = (self.width, self.n);
        if self.rho < 1.0 {
            let rho = self.rho;
            for v in self.moment.iter_mut().chain(&mut self.cross).chain(&mut self.instruments) {
                *v *= rho;
            }
            for v in &mut self.inverse {
                *v /= rho;
            }
        }
        let had_model = self.solved && recursive;
        if had_model {
            for (c, e) in self.residual.iter_mut().enumerate() {
                *e = q[c] - dot(&self.operator[c * w..(c + 1) * w], p);
            }
        }
        if self.ring_len == self.delay {
            let slot = self.ring_next;
            let z = &self.ring[slot * w..(slot + 1) * w];
            rank_one(&mut self.moment, w, z, p);
            rank_one(&mut self.cross, w, z, q);
            rank_one(&mut self.instruments, w, z, z);
            if had_model {
                // gain = M^-1 z, left = M^-T p, denominator 1 + p^T M^-1 z.
                for (i, g) in self.gain.iter_mut().enumerate() {
                    *g = (0..w).map(|c| self.inverse[c * w + i] * z[c]).sum();
                }
                for (c, l) in self.left.iter_mut().enumerate() {
                    *l = dot(&self.inverse[c * w..(c + 1) * w], p);
                }
                let denominator = 1.0 + dot(p, &self.gain);
                if denominator.abs() > 1e-12 && denominator.is_finite() {
                    let scale = -1.0 / denominator;
                    for c in 0..w {
                        let lc = self.left[c] * scale;
                        for (v, g) in self.inverse[c * w..(c + 1) * w].iter_mut().zip(&self.gain) {
                            *v += g * lc;
                        }
                    }
                    for c in 0..n {
                        let ec = self.residual[c] / denominator;
                        for (v, g) in self.operator[c * w..(c + 1) * w].iter_mut().zip(&self.gain) {
                            *v += g * ec;
                        }
                    }
                } else {
                    // The step would divide by (almost) nothing: solve exactly instead.
                    self.since_refactor = self.refactor_every;
                }
            }
        }
        let slot = self.ring_next;
        self.ring[slot * w..(slot + 1) * w].copy_from_slice(p);
        if self.delay > 0 {
            self.ring_next = (slot + 1) % self.delay;
            self.ring_len = (self.ring_len + 1).min(self.delay);
        }
        if recursive {
            self.since_refactor += 1;
            // Unsolved models retry every N' pairs; solved ones refactorise on schedule.
            let due = if self.solved { self.refactor_every } else { w.max(1) };
            if self.since_refactor >= due {
                let _ = self.refactorise();
            }
        }
        had_model.then_some(self.residual.as_slice())
    }

    /// Exact solve from the sums: M^-1 by partial-pivoting LU, K = M^-1 S.
    pub(crate) fn refactorise(&mut self) -> Result<(), NumericalError> {
        self.since_refactor = 0;
        let w = self.width;
        let m = Mat::from_fn(w, w, |r, c| self.moment[c * w + r]);
        if m.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
            self.solved = false;
            return Err(NumericalError::NotFinite);
        }
        let lu = m.partial_piv_lu();
        let inverse = lu.inverse();
        let s = Mat::from_fn(w, self.n, |r, c| self.cross[c * w + r]);
        let k = lu.solve(&s);
        let finite = |x: &Mat<f64>| x.col_iter().all(|c| c.iter().all(|v| v.is_finite()));
        // A singular M gives infinities or a residual of M M^-1 - I far from zero.
        let check = &m * &inverse;
        let off = (0..w).flat_map(|i| (0..w).map(move |j| (i, j))).fold(0.0_f64, |acc, (i, j)| {
            let target = if i == j { 1.0 } else { 0.0 };
            acc.max((check[(i, j)] - target).abs())
        });
        if !(finite(&inverse) && finite(&k)) || off > 1e-6 {
            self.solved = false;
            return Err(NumericalError::Singular);
        }
        for c in 0..w {
            for r in 0..w {
                self.inverse[c * w + r] = inverse[(r, c)];
            }
        }
        for c in 0..self.n {
            for r in 0..w {
                self.operator[c * w + r] = k[(r, c)];
            }
        }
        self.solved = true;
        Ok(())
    }

    /// The covariance factor of K's rows, M^-1 (sum w z z^T) M^-T (N' x N').
    pub(crate) fn row_covariance(&self) -> Mat<f64> {
        let w = self.width;
        let inverse = Mat::from_fn(w, w, |r, c| self.inverse[c * w + r]);
        let zz = Mat::from_fn(w, w, |r, c| self.instruments[c * w + r]);
        &inverse * &zz * inverse.transpose()
    }

    pub(crate) fn export(&self) -> InstrumentalState {
        let w = self.width;
        let mut ring = Vec::with_capacity(self.ring_len * w);
        for back in (1..=self.ring_len).rev() {
            let slot = (self.ring_next + self.delay - back) % self.delay;
            ring.extend_from_slice(&self.ring[slot * w..(slot + 1) * w]);
        }
        InstrumentalState {
            moment: self.moment.clone(),
            cross: self.cross.clone(),
            instruments: self.instruments.clone(),
            inverse: self.inverse.clone(),
            operator: self.operator.clone(),
            solved: self.solved,
            ring,
            since_refactor: self.since_refactor,
        }
    }

    pub(crate) fn restore(mut self, state: InstrumentalState) -> Result<Self, StateError> {
        let (w, n) = (self.width, self.n);
        let shapes_agree = state.moment.len() == w * w
            && state.cross.len() == w * n
            && state.instruments.len() == w * w
            && state.inverse.len() == w * w
            && state.operator.len() == w * n
            && state.ring.len().is_multiple_of(w)
            && state.ring.len() / w <= self.delay;
        if !shapes_agree {
            return Err(StateError::Shape("instrumental-variable sums"));
        }
        for p in state.ring.chunks_exact(w) {
            let slot = self.ring_next;
            self.ring[slot * w..(slot + 1) * w].copy_from_slice(p);
            self.ring_next = (slot + 1) % self.delay;
            self.ring_len += 1;
        }
        self.moment = state.moment;
        self.cross = state.cross;
        self.instruments = state.instruments;
        self.inverse = state.inverse;
        self.operator = state.operator;
        self.solved = state.solved;
        self.since_refactor = state.since_refactor;
        Ok(self)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// target += a b^T (target column-major with a.len() rows).
fn rank_one(target: &mut [f64], rows: usize, a: &[f64], b: &[f64]) {
    for (c, &bc) in b.iter().enumerate() {
        for (t, &ar) in target[c * rows..(c + 1) * rows].iter_mut().zip(a) {
            *t += ar * bc;
        }
    }
}
