//! The lifting psi: a fixed function from the recent (standardised) states to the vector of
//! observables, with a human-readable name for every observable.
//!
//! Layout of psi, in this order: the n state coordinates z (always first, so x is read back
//! as x = C psi + offset); `const` (1); `poly` monomials of degree 2..=D in graded
//! lexicographic order (all of degree 2 first, each degree in lexicographic order of its
//! sorted index tuple: x1^2, x1*x2, x2^2, then x1^3, x1^2*x2, ...); `rbf` Gaussians
//! exp(-|z - c_k|^2 / (2 s^2)); `fourier` features cos(w_k . z + b_k); `delay` copies
//! z(k-1), ..., z(k-D). All features use the standardised state z = (x - mean) / scale
//! (identity when standardisation is off).

use crate::centres;
use crate::error::StateError;
use crate::rng::SplitMix64;
use crate::spec::DictionarySpec;
use crate::state::LiftingState;

/// Per-channel affine map fixed at the end of warm-up: z = (x - mean) / scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardisation {
    /// Channel means.
    pub mean: Vec<f64>,
    /// Channel scales (standard deviations; 1 for a constant channel).
    pub scale: Vec<f64>,
}

impl Standardisation {
    /// Mean and population standard deviation of each column of `rows` (row-major, n columns).
    pub fn from_rows(rows: &[f64], n: usize) -> Self {
        let count = (rows.len() / n).max(1) as f64;
        let mut mean = vec![0.0; n];
        for row in rows.chunks_exact(n) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0; n];
        for row in rows.chunks_exact(n) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / count).sqrt();
                // A (nearly) constant channel keeps unit scale instead of exploding.
                if sd > 1e-12 * m.abs().max(1.0) { sd } else { 1.0 }
            })
            .collect();
        Self { mean, scale }
    }
}

/// The most recent standardised states, newest first, as the lifting needs them.
#[derive(Debug, Clone)]
pub struct StateHistory {
    n: usize,
    capacity: usize,
    data: Vec<f64>,
    newest: usize,
    len: usize,
}

impl StateHistory {
    /// A history of `capacity` states of dimension `n`.
    pub fn new(n: usize, capacity: usize) -> Self {
        Self { n, capacity, data: vec![0.0; n * capacity], newest: capacity - 1, len: 0 }
    }

    /// Appends the newest state.
    pub fn push(&mut self, z: &[f64]) {
        // A compare, not `%`: an integer division would cost more than a small lifting.
        self.newest = if self.newest + 1 == self.capacity { 0 } else { self.newest + 1 };
        self.data[self.newest * self.n..(self.newest + 1) * self.n].copy_from_slice(z);
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The state `lag` steps back (0 = newest). Panics if not held.
    pub fn lag(&self, lag: usize) -> &[f64] {
        assert!(lag < self.len, "history holds {} states, asked for lag {lag}", self.len);
        let slot = if lag <= self.newest { self.newest - lag } else { self.newest + self.capacity - lag };
        &self.data[slot * self.n..(slot + 1) * self.n]
    }

    /// Whether enough states are held to lift.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Number of states held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no state is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every state (after a gap the delays must refill).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Where each family of observables starts in psi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offsets {
    poly: usize,
    rbf: usize,
    fourier: usize,
    delay: usize,
}

/// The fixed lifting of a model. Built once, at the end of warm-up.
#[derive(Debug, Clone)]
pub struct Lifting {
    n: usize,
    spec: DictionarySpec,
    names: Vec<String>,
    standardisation: Option<Standardisation>,
    inv_scale: Vec<f64>,
    /// For each monomial: (index in psi of the monomial one degree lower, state index).
    monomials: Vec<(usize, usize)>,
    /// Centres in standardised coordinates, row-major (count x n).
    rbf_centres: Vec<f64>,
    /// The same centres by coordinate (n rows of count values, padded), so that distances
    /// to all centres are computed one coordinate at a time over contiguous memory.
    rbf_centres_by_coordinate: Vec<f64>,
    rbf_width: f64,
    fourier_w: Vec<f64>,
    fourier_b: Vec<f64>,
    offsets: Offsets,
    dim: usize,
}

/// Seed offsets so that features and centres draw from independent streams.
const FOURIER_STREAM: u64 = 0xF0_0B1E;
const CENTRE_STREAM: u64 = 0xCE_27E5;

impl Lifting {
    /// Builds the lifting. `warmup_states` (raw units, row-major, n columns) supplies the
    /// standardisation and the RBF centres when they are not given; `centres_raw` are
    /// explicit centres in raw units (count x n, row-major).
    pub fn build(
        spec: &DictionarySpec,
        state_names: &[String],
        standardise: bool,
        warmup_states: &[f64],
        centres_raw: Option<&[f64]>,
        seed: u64,
    ) -> Self {
        let n = state_names.len();
        let standardisation =
            (standardise && !warmup_states.is_empty()).then(|| Standardisation::from_rows(warmup_states, n));
        let (mean, scale) = match &standardisation {
            Some(s) => (s.mean.clone(), s.scale.clone()),
            None => (vec![0.0; n], vec![1.0; n]),
        };
        let inv_scale: Vec<f64> = scale.iter().map(|s| 1.0 / s).collect();
        let to_z = |rows: &[f64]| -> Vec<f64> {
            rows.chunks_exact(n)
                .flat_map(|r| r.iter().zip(&mean).zip(&inv_scale).map(|((x, m), i)| (x - m) * i))
                .collect()
        };

        let (mut names, monomials) = structure(spec, state_names);
        let poly = n + usize::from(spec.constant);
        let rbf = names.len();
        let (rbf_centres, rbf_width) = match &spec.rbf {
            Some(r) => {
                let centres = match centres_raw {
                    Some(c) => to_z(c),
                    None => centres::kmeans(&to_z(warmup_states), n, r.count, seed ^ CENTRE_STREAM),
                };
                let width = r.width.or_else(|| centres::mean_nearest_distance(&centres, n)).unwrap_or(1.0);
                names.extend((1..=r.count).map(|k| format!("rbf{k}")));
                (centres, width)
            }
            None => (Vec::new(), 1.0),
        };
        let fourier = names.len();
        let (fourier_w, fourier_b) = match &spec.fourier {
            Some(f) => {
                let mut rng = SplitMix64::new(seed ^ FOURIER_STREAM);
                let w: Vec<f64> = (0..f.count * n).map(|_| rng.normal() / f.scale).collect();
                let b: Vec<f64> = (0..f.count).map(|_| rng.uniform() * std::f64::consts::TAU).collect();
                names.extend((1..=f.count).map(|k| format!("fourier{k}")));
                (w, b)
            }
            None => (Vec::new(), Vec::new()),
        };
        let delay = names.len();
        for lag in 1..=spec.delay.unwrap_or(0) {
            names.extend(state_names.iter().map(|s| format!("{s}[k-{lag}]")));
        }
        let dim = names.len();
        debug_assert_eq!(dim, spec.dimension(n));
        Self {
            n,
            spec: spec.clone(),
            names,
            standardisation,
            inv_scale,
            monomials,
            rbf_centres_by_coordinate: crate::exp::centres_by_coordinate(&rbf_centres, n),
            rbf_centres,
            rbf_width,
            fourier_w,
            fourier_b,
            offsets: Offsets { poly, rbf, fourier, delay },
            dim,
        }
    }

    /// The data-derived parts, for saving.
    pub fn export(&self) -> LiftingState {
        LiftingState {
            standardisation: self.standardisation.as_ref().map(|s| (s.mean.clone(), s.scale.clone())),
            rbf_centres: self.rbf_centres.clone(),
            rbf_width: self.rbf_width,
            fourier_w: self.fourier_w.clone(),
            fourier_b: self.fourier_b.clone(),
        }
    }

    /// The lifting of `spec` with saved data-derived parts.
    pub fn from_state(spec: &DictionarySpec, state_names: &[String], state: LiftingState) -> Result<Self, StateError> {
        let n = state_names.len();
        let rbf_count = spec.rbf.as_ref().map_or(0, |r| r.count);
        let fourier_count = spec.fourier.as_ref().map_or(0, |f| f.count);
        if state.rbf_centres.len() != rbf_count * n {
            return Err(StateError::Shape("rbf centres"));
        }
        if state.fourier_w.len() != fourier_count * n || state.fourier_b.len() != fourier_count {
            return Err(StateError::Shape("fourier features"));
        }
        if let Some((mean, scale)) = &state.standardisation
            && (mean.len() != n || scale.len() != n || scale.iter().any(|s| !(s.is_finite() && *s > 0.0)))
        {
            return Err(StateError::Shape("standardisation"));
        }
        let (mut names, monomials) = structure(spec, state_names);
        let poly = n + usize::from(spec.constant);
        let rbf = names.len();
        names.extend((1..=rbf_count).map(|k| format!("rbf{k}")));
        let fourier = names.len();
        names.extend((1..=fourier_count).map(|k| format!("fourier{k}")));
        let delay = names.len();
        for lag in 1..=spec.delay.unwrap_or(0) {
            names.extend(state_names.iter().map(|s| format!("{s}[k-{lag}]")));
        }
        let standardisation = state.standardisation.map(|(mean, scale)| Standardisation { mean, scale });
        let inv_scale = match &standardisation {
            Some(s) => s.scale.iter().map(|v| 1.0 / v).collect(),
            None => vec![1.0; n],
        };
        Ok(Self {
            n,
            spec: spec.clone(),
            dim: names.len(),
            names,
            standardisation,
            inv_scale,
            monomials,
            rbf_centres_by_coordinate: crate::exp::centres_by_coordinate(&state.rbf_centres, n),
            rbf_centres: state.rbf_centres,
            rbf_width: state.rbf_width,
            fourier_w: state.fourier_w,
            fourier_b: state.fourier_b,
            offsets: Offsets { poly, rbf, fourier, delay },
        })
    }

    /// Number of observables N.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of state channels n.
    pub fn n_states(&self) -> usize {
        self.n
    }

    /// Name of every observable, in psi order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The dictionary this lifting implements.
    pub fn spec(&self) -> &DictionarySpec {
        &self.spec
    }

    /// Whether every observable is a (delayed) state or the constant, so that the lifted
    /// model is a vector autoregression (what [`crate::bias`] corrects).
    pub fn is_linear(&self) -> bool {
        self.monomials.is_empty() && self.rbf_centres.is_empty() && self.fourier_b.is_empty()
    }

    /// Index of the constant observable, if the dictionary has one.
    pub fn constant_index(&self) -> Option<usize> {
        self.spec.constant.then_some(self.n)
    }

    /// The standardisation, if enabled.
    pub fn standardisation(&self) -> Option<&Standardisation> {
        self.standardisation.as_ref()
    }

    /// The RBF centres in standardised coordinates (row-major, count x n) and their width.
    pub fn rbf_centres(&self) -> (&[f64], f64) {
        (&self.rbf_centres, self.rbf_width)
    }

    /// The random Fourier features: weights (row-major, count x n, acting on the
    /// standardised state) and phases (count).
    pub fn fourier_features(&self) -> (&[f64], &[f64]) {
        (&self.fourier_w, &self.fourier_b)
    }

    /// Number of delayed copies of the state (0 without delay coordinates).
    pub fn delays(&self) -> usize {
        self.spec.delay.unwrap_or(0)
    }

    /// The integer powers of the standardised state coordinates in each of the leading
    /// observables (the state, the constant and the monomials, in psi order), row-major with
    /// n columns: each observable is the product of z_j^row[j]. Exported so that a reader
    /// of the model can lift a state without re-deriving the monomial order.
    pub fn monomial_exponents(&self) -> Vec<u32> {
        let n = self.n;
        let leading = self.offsets.poly + self.monomials.len();
        let mut rows = vec![0u32; leading * n];
        for i in 0..n {
            rows[i * n + i] = 1;
        }
        // The constant's row stays zero; each monomial is its parent times one coordinate,
        // and a parent always precedes its child.
        for (k, &(parent, var)) in self.monomials.iter().enumerate() {
            let row = self.offsets.poly + k;
            let (before, after) = rows.split_at_mut(row * n);
            after[..n].copy_from_slice(&before[parent * n..(parent + 1) * n]);
            after[var] += 1;
        }
        rows
    }

    /// How many consecutive states a lifted vector needs (1 + delays).
    pub fn history_len(&self) -> usize {
        1 + self.spec.delay.unwrap_or(0)
    }

    /// A history buffer of the right shape for this lifting.
    pub fn new_history(&self) -> StateHistory {
        StateHistory::new(self.n, self.history_len())
    }

    /// z = (x - mean) / scale.
    pub fn standardise_into(&self, x: &[f64], z: &mut [f64]) {
        match &self.standardisation {
            Some(s) => {
                for (((zi, xi), m), i) in z.iter_mut().zip(x).zip(&s.mean).zip(&self.inv_scale) {
                    *zi = (xi - m) * i;
                }
            }
            None => z.copy_from_slice(x),
        }
    }

    /// x = z * scale + mean (the inverse of [`Lifting::standardise_into`]).
    pub fn unstandardise_into(&self, z: &[f64], x: &mut [f64]) {
        match &self.standardisation {
            Some(s) => {
                for (((xi, zi), m), sc) in x.iter_mut().zip(z).zip(&s.mean).zip(&s.scale) {
                    *xi = zi * sc + m;
                }
            }
            None => x.copy_from_slice(z),
        }
    }

    /// psi of the newest state in `history` (which must be full) into `out` (length N).
    pub fn lift_into(&self, history: &StateHistory, out: &mut [f64]) {
        debug_assert!(history.is_full());
        debug_assert_eq!(out.len(), self.dim);
        let n = self.n;
        let z = history.lag(0);
        out[..n].copy_from_slice(z);
        if self.spec.constant {
            out[n] = 1.0;
        }
        for (k, &(parent, var)) in self.monomials.iter().enumerate() {
            out[self.offsets.poly + k] = out[parent] * z[var];
        }
        if !self.rbf_centres.is_empty() {
            let gain = -0.5 / (self.rbf_width * self.rbf_width);
            let outs = &mut out[self.offsets.rbf..self.offsets.fourier];
            crate::exp::gaussians_into(z, &self.rbf_centres_by_coordinate, gain, outs);
        }
        if !self.fourier_b.is_empty() {
            let outs = &mut out[self.offsets.fourier..self.offsets.delay];
            for ((o, w), b) in outs.iter_mut().zip(self.fourier_w.chunks_exact(n)).zip(&self.fourier_b) {
                let phase: f64 = w.iter().zip(z).map(|(wi, zi)| wi * zi).sum::<f64>() + b;
                *o = phase.cos();
            }
        }
        for lag in 1..self.history_len() {
            let start = self.offsets.delay + (lag - 1) * n;
            out[start..start + n].copy_from_slice(history.lag(lag));
        }
    }

    /// psi of a short raw-unit trajectory's last state (rows oldest first, n columns).
    /// Convenience for callers off the hot path; allocates.
    pub fn lift_recent(&self, recent_raw: &[f64]) -> Option<Vec<f64>> {
        let rows = recent_raw.len() / self.n;
        if rows < self.history_len() {
            return None;
        }
        let mut history = self.new_history();
        let mut z = vec![0.0; self.n];
        for row in recent_raw.chunks_exact(self.n).skip(rows - self.history_len()) {
            self.standardise_into(row, &mut z);
            history.push(&z);
        }
        let mut out = vec![0.0; self.dim];
        self.lift_into(&history, &mut out);
        Some(out)
    }
}

/// Names of the state, const and poly observables, and each monomial's (parent, variable).
fn structure(spec: &DictionarySpec, state_names: &[String]) -> (Vec<String>, Vec<(usize, usize)>) {
    let n = state_names.len();
    let mut names: Vec<String> = state_names.to_vec();
    if spec.constant {
        names.push("1".to_owned());
    }
    let mut monomials = Vec::new();
    if let Some(degree) = spec.poly_degree {
        // Each monomial is stored as its sorted index tuple; children extend the tuple
        // with an index >= its last, which yields graded lexicographic order.
        let mut previous: Vec<(usize, Vec<usize>)> = (0..n).map(|i| (i, vec![i])).collect();
        for _ in 2..=degree {
            let mut current = Vec::new();
            for (parent, tuple) in &previous {
                let last = *tuple.last().expect("non-empty tuple");
                for var in last..n {
                    let mut child = tuple.clone();
                    child.push(var);
                    monomials.push((*parent, var));
                    names.push(monomial_name(&child, state_names));
                    current.push((names.len() - 1, child));
                }
            }
            previous = current;
        }
    }
    (names, monomials)
}

fn monomial_name(tuple: &[usize], names: &[String]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < tuple.len() {
        let var = tuple[i];
        let power = tuple[i..].iter().take_while(|&&v| v == var).count();
        parts.push(if power == 1 { names[var].clone() } else { format!("{}^{power}", names[var]) });
        i += power;
    }
    parts.join("*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("x{i}")).collect()
    }

    #[test]
    fn names_and_values_follow_the_documented_order() {
        let spec: DictionarySpec = "state,const,poly:3,delay:1".parse().unwrap();
        let lifting = Lifting::build(&spec, &names(2), false, &[], None, 0);
        assert_eq!(
            lifting.names(),
            ["x1", "x2", "1", "x1^2", "x1*x2", "x2^2", "x1^3", "x1^2*x2", "x1*x2^2", "x2^3", "x1[k-1]", "x2[k-1]"]
        );
        let psi = lifting.lift_recent(&[5.0, 7.0, 2.0, 3.0]).unwrap();
        assert_eq!(psi, [2.0, 3.0, 1.0, 4.0, 6.0, 9.0, 8.0, 12.0, 18.0, 27.0, 5.0, 7.0]);
        assert!(lifting.lift_recent(&[2.0, 3.0]).is_none(), "needs one delayed state");
        // The exported exponents reproduce every state, constant and monomial observable.
        let exponents = lifting.monomial_exponents();
        assert_eq!(exponents.len(), 10 * 2);
        assert_eq!(&exponents[..6], &[1, 0, 0, 1, 0, 0]);
        for (row, value) in exponents.chunks_exact(2).zip(&psi) {
            assert_eq!(2f64.powi(row[0] as i32) * 3f64.powi(row[1] as i32), *value);
        }
        assert_eq!(lifting.delays(), 1);
        assert!(lifting.fourier_features().0.is_empty());
    }

    #[test]
    fn standardisation_rbf_and_fourier_features() {
        let spec: DictionarySpec = "state,rbf:2:1,fourier:3:2".parse().unwrap();
        let warm = [0.0, 10.0, 2.0, 30.0, 4.0, 20.0];
        let centres = [2.0, 20.0, 4.0, 30.0];
        let lifting = Lifting::build(&spec, &names(2), true, &warm, Some(&centres), 9);
        let st = lifting.standardisation().unwrap();
        assert_eq!(st.mean, [2.0, 20.0]);
        assert!((st.scale[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
        let psi = lifting.lift_recent(&[2.0, 20.0]).unwrap();
        assert_eq!(&psi[..3], &[0.0, 0.0, 1.0], "state standardised, rbf at its centre is 1");
        let (c, _) = lifting.rbf_centres();
        let d2 = c[2] * c[2] + c[3] * c[3];
        assert!((psi[3] - (-0.5 * d2).exp()).abs() < 1e-15);
        assert!(psi[4..].iter().all(|v| v.abs() <= 1.0));
        // Same seed, same features; another seed, other features.
        let again = Lifting::build(&spec, &names(2), true, &warm, Some(&centres), 9);
        assert_eq!(again.lift_recent(&[1.0, 1.0]), lifting.lift_recent(&[1.0, 1.0]));
        let other = Lifting::build(&spec, &names(2), true, &warm, Some(&centres), 10);
        assert_ne!(other.lift_recent(&[1.0, 1.0]), lifting.lift_recent(&[1.0, 1.0]));
    }

    #[test]
    fn history_is_a_ring_newest_first() {
        let mut h = StateHistory::new(1, 3);
        for v in 1..=5 {
            h.push(&[v as f64]);
        }
        assert!(h.is_full());
        assert_eq!((h.lag(0), h.lag(1), h.lag(2)), (&[5.0][..], &[4.0][..], &[3.0][..]));
        h.clear();
        assert!(h.is_empty());
    }
}
