//! Classical-model swing equations on a Kron-reduced network: electrical power, its
//! angle sensitivity, and the 32-state right-hand side (16 angles, then 16 speeds).

use nalgebra::{Complex, DMatrix};

use super::data::N_MACHINES;

/// Nominal angular frequency ω_b = 2π · 60 rad/s.
pub const OMEGA_BASE: f64 = 2.0 * std::f64::consts::PI * 60.0;

/// Power-flow coefficients of a reduced network for fixed EMF magnitudes:
/// Pe_i(δ) = Σ_j [C_ij cos(δ_i − δ_j) + S_ij sin(δ_i − δ_j)], C + jS = E_i E_j Y_red,ij.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PowerCoefficients {
    cos_part: DMatrix<f64>,
    sin_part: DMatrix<f64>,
}

impl PowerCoefficients {
    /// Coefficients of the reduced admittance `y` with EMF magnitudes `e`.
    pub fn new(y: &DMatrix<Complex<f64>>, e: &[f64]) -> Self {
        let n = e.len();
        Self {
            cos_part: DMatrix::from_fn(n, n, |i, j| e[i] * e[j] * y[(i, j)].re),
            sin_part: DMatrix::from_fn(n, n, |i, j| e[i] * e[j] * y[(i, j)].im),
        }
    }

    /// Electrical power of every machine at angles `delta`, written into `pe`.
    pub fn electrical_power(&self, delta: &[f64], pe: &mut [f64]) {
        let n = pe.len();
        let mut sin = [0.0; N_MACHINES];
        let mut cos = [0.0; N_MACHINES];
        for i in 0..n {
            (sin[i], cos[i]) = delta[i].sin_cos();
        }
        for i in 0..n {
            let mut sum = 0.0;
            for j in 0..n {
                // Angle-difference identities avoid 256 trigonometric calls per evaluation.
                let cos_ij = cos[i] * cos[j] + sin[i] * sin[j];
                let sin_ij = sin[i] * cos[j] - cos[i] * sin[j];
                sum += self.cos_part[(i, j)] * cos_ij + self.sin_part[(i, j)] * sin_ij;
            }
            pe[i] = sum;
        }
    }

    /// Synchronising-power matrix K_ij = ∂Pe_i/∂δ_j at `delta` (rows sum to zero).
    pub fn sensitivity(&self, delta: &[f64]) -> DMatrix<f64> {
        let n = delta.len();
        let mut k = DMatrix::zeros(n, n);
        for i in 0..n {
            let mut diagonal = 0.0;
            for j in (0..n).filter(|&j| j != i) {
                let (sin_ij, cos_ij) = (delta[i] - delta[j]).sin_cos();
                let off = self.cos_part[(i, j)] * sin_ij - self.sin_part[(i, j)] * cos_ij;
                k[(i, j)] = off;
                diagonal -= off;
            }
            k[(i, i)] = diagonal;
        }
        k
    }
}

/// Machine constants of the swing equations (100 MVA base).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SwingEquations {
    /// M_i = 2 H_i · MVA_i / 100 (s).
    pub inertia: Vec<f64>,
    /// D_i (pu power per pu speed).
    pub damping: Vec<f64>,
    /// Mechanical power Pm_i (pu), held constant.
    pub mechanical_power: Vec<f64>,
}

impl SwingEquations {
    /// δ_i' = ω_b (ω_i − 1), M_i ω_i' = Pm_i − Pe_i(δ) − D_i (ω_i − 1); state (δ, ω).
    pub fn rhs(&self, network: &PowerCoefficients, x: &[f64], dx: &mut [f64]) {
        let n = self.inertia.len();
        let (delta, omega) = x.split_at(n);
        let mut pe = [0.0; N_MACHINES];
        network.electrical_power(delta, &mut pe[..n]);
        for i in 0..n {
            let slip = omega[i] - 1.0;
            dx[i] = OMEGA_BASE * slip;
            dx[n + i] = (self.mechanical_power[i] - pe[i] - self.damping[i] * slip) / self.inertia[i];
        }
    }

    /// The 32 × 32 Jacobian of [`SwingEquations::rhs`] at angles `delta` (it does not
    /// depend on the speeds).
    pub fn jacobian(&self, network: &PowerCoefficients, delta: &[f64]) -> DMatrix<f64> {
        let n = self.inertia.len();
        let k = network.sensitivity(delta);
        let mut a = DMatrix::zeros(2 * n, 2 * n);
        for i in 0..n {
            a[(i, n + i)] = OMEGA_BASE;
            for j in 0..n {
                a[(n + i, j)] = -k[(i, j)] / self.inertia[i];
            }
            a[(n + i, n + i)] = -self.damping[i] / self.inertia[i];
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_machine() -> (PowerCoefficients, SwingEquations) {
        // A lossless tie of susceptance -10 between two unit EMFs.
        let y = DMatrix::from_row_slice(
            2,
            2,
            &[Complex::new(0.1, -10.0), Complex::new(0.0, 10.0), Complex::new(0.0, 10.0), Complex::new(0.1, -10.0)],
        );
        let network = PowerCoefficients::new(&y, &[1.0, 1.0]);
        let swing =
            SwingEquations { inertia: vec![2.0, 4.0], damping: vec![0.5, 1.0], mechanical_power: vec![0.1, 0.1] };
        (network, swing)
    }

    #[test]
    fn power_matches_closed_form() {
        let (network, _) = two_machine();
        let mut pe = [0.0; 2];
        network.electrical_power(&[0.3, 0.1], &mut pe);
        // P_1 = G_11 + B_12 sin(δ_1 − δ_2) for this network.
        assert!((pe[0] - (0.1 + 10.0 * 0.2f64.sin())).abs() < 1e-12);
        assert!((pe[1] - (0.1 - 10.0 * 0.2f64.sin())).abs() < 1e-12);
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let (network, swing) = two_machine();
        let x = [0.3, 0.1, 1.001, 0.999];
        let a = swing.jacobian(&network, &x[..2]);
        let eps = 1e-6;
        for j in 0..4 {
            let (mut plus, mut minus) = (x, x);
            plus[j] += eps;
            minus[j] -= eps;
            let (mut f_plus, mut f_minus) = ([0.0; 4], [0.0; 4]);
            swing.rhs(&network, &plus, &mut f_plus);
            swing.rhs(&network, &minus, &mut f_minus);
            for i in 0..4 {
                let fd = (f_plus[i] - f_minus[i]) / (2.0 * eps);
                assert!((fd - a[(i, j)]).abs() < 1e-6 * (1.0 + fd.abs()), "({i},{j})");
            }
        }
    }
}
