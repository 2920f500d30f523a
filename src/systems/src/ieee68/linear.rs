//! Linearisation of the swing equations: operating points (equilibria of a network),
//! eigenvalues of the 32 × 32 Jacobian, and the oscillatory modes.

use nalgebra::{Complex, DMatrix, DVector};

use super::swing::{OMEGA_BASE, PowerCoefficients, SwingEquations};
use crate::error::SystemsError;

/// One oscillatory mode: an eigenvalue λ = re + j·im with im > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mode {
    /// Frequency im / 2π (Hz).
    pub frequency_hz: f64,
    /// Damping ratio −re / |λ| (a fraction, not a percentage).
    pub damping_ratio: f64,
    /// Real part of the eigenvalue (1/s).
    pub re: f64,
    /// Imaginary part of the eigenvalue (rad/s).
    pub im: f64,
}

impl Mode {
    /// The mode of eigenvalue `lambda`.
    pub fn from_eigenvalue(lambda: Complex<f64>) -> Self {
        Self {
            frequency_hz: lambda.im / (2.0 * std::f64::consts::PI),
            damping_ratio: -lambda.re / lambda.norm(),
            re: lambda.re,
            im: lambda.im,
        }
    }
}

/// The oscillatory modes among `eigenvalues` (positive imaginary part), sorted by frequency.
///
/// Imaginary parts below 1e-8 of the spectral radius count as zero: they are rounding
/// noise on real eigenvalues, not oscillations.
pub fn oscillatory_modes(eigenvalues: &[Complex<f64>]) -> Vec<Mode> {
    let radius = eigenvalues.iter().map(|l| l.norm()).fold(1.0, f64::max);
    let mut modes: Vec<Mode> =
        eigenvalues.iter().filter(|l| l.im > 1e-8 * radius).map(|&l| Mode::from_eigenvalue(l)).collect();
    modes.sort_by(|a, b| a.frequency_hz.total_cmp(&b.frequency_hz));
    modes
}

/// The linearised model at an operating point of one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Linearisation {
    /// Operating point (16 angles in rad, then 16 speeds in pu).
    pub operating_point: Vec<f64>,
    /// Common speed deviation ω − 1 of the operating point. Zero for the pre-fault network;
    /// after the fault the losses change, so the machines settle at a slightly different
    /// common frequency and the angles rotate together (an equilibrium of the angle
    /// differences).
    pub speed_offset: f64,
    /// ∂f/∂x, 32 × 32, in the state order (δ, ω).
    pub jacobian: DMatrix<f64>,
    /// All 32 eigenvalues, sorted by imaginary part, then real part.
    pub eigenvalues: Vec<Complex<f64>>,
    /// Oscillatory modes (positive imaginary part), sorted by frequency.
    pub modes: Vec<Mode>,
}

impl Linearisation {
    /// Right eigenvector of `mode` (32 entries in the state order δ, ω), scaled so that
    /// the speed entry of largest magnitude is exactly 1; it shows which machines swing
    /// against which. Computed by inverse iteration with a complex LU factorisation.
    pub fn mode_shape(&self, mode: &Mode) -> Result<Vec<Complex<f64>>, SystemsError> {
        let n = self.jacobian.nrows();
        let lambda = Complex::new(mode.re, mode.im);
        // A tiny shift keeps A − λI numerically invertible; the iteration still converges
        // to the eigenvector in one or two solves.
        let shift = lambda + Complex::new(1e-9, 1e-9) * lambda.norm();
        let shifted = DMatrix::from_fn(n, n, |i, j| {
            let diagonal = if i == j { shift } else { Complex::new(0.0, 0.0) };
            Complex::new(self.jacobian[(i, j)], 0.0) - diagonal
        });
        let lu = shifted.lu();
        let mut v = DVector::from_element(n, Complex::new(1.0, 0.0));
        for _ in 0..3 {
            v = lu.solve(&v).ok_or_else(|| SystemsError::Numerical("singular matrix in inverse iteration".into()))?;
            let norm = v.norm();
            v.unscale_mut(norm);
        }
        let speeds = n / 2..n;
        let largest =
            speeds.map(|i| v[i]).max_by(|a, b| a.norm().total_cmp(&b.norm())).unwrap_or(Complex::new(1.0, 0.0));
        Ok(v.iter().map(|c| c / largest).collect())
    }
}

/// Eigenvalues of the swing Jacobian `a` (state order δ, ω).
///
/// The speed states are rescaled by √ω_b (a similarity transform, so the eigenvalues are
/// unchanged): the angle rows carry ω_b ≈ 377 and the speed rows K/M ≈ 0.1–1, and the
/// scaling brings both blocks to the order of the mode frequencies before the Schur
/// iteration, which nalgebra runs without balancing.
pub(crate) fn eigenvalues(a: &DMatrix<f64>) -> Vec<Complex<f64>> {
    let n = a.nrows() / 2;
    let speed_scale = OMEGA_BASE.sqrt();
    let scale = |i: usize| if i >= n { speed_scale } else { 1.0 };
    let scaled = DMatrix::from_fn(2 * n, 2 * n, |i, j| a[(i, j)] * scale(i) / scale(j));
    let mut values: Vec<Complex<f64>> = scaled.complex_eigenvalues().iter().copied().collect();
    values.sort_by(|x, y| x.im.total_cmp(&y.im).then(x.re.total_cmp(&y.re)));
    values
}

/// Solves for the operating point of `network` near the angles `guess`: all machines at
/// a common speed 1 + s with Pm_i − Pe_i(δ) − D_i s = 0, angle of machine `reference`
/// held at its guess. Newton's method on the 15 free angles and s.
pub(crate) fn equilibrium(
    swing: &SwingEquations,
    network: &PowerCoefficients,
    guess: &[f64],
    reference: usize,
) -> Result<(Vec<f64>, f64), SystemsError> {
    let n = guess.len();
    let mut delta = guess.to_vec();
    let mut slip = 0.0;
    let mut pe = vec![0.0; n];
    for _ in 0..50 {
        network.electrical_power(&delta, &mut pe);
        let residual = DVector::from_fn(n, |i, _| swing.mechanical_power[i] - pe[i] - swing.damping[i] * slip);
        if residual.amax() < 1e-11 {
            return Ok((delta, slip));
        }
        // Columns: ∂/∂δ_j for the free angles, and ∂/∂s in the reference machine's column.
        let k = network.sensitivity(&delta);
        let jacobian = DMatrix::from_fn(n, n, |i, j| if j == reference { -swing.damping[i] } else { -k[(i, j)] });
        let step = jacobian
            .lu()
            .solve(&residual)
            .ok_or_else(|| SystemsError::Numerical("singular Jacobian in the equilibrium Newton step".into()))?;
        for j in 0..n {
            if j == reference {
                slip -= step[j];
            } else {
                delta[j] -= step[j];
            }
        }
    }
    Err(SystemsError::Numerical("equilibrium Newton iteration did not converge".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_of_a_known_eigenvalue() {
        let mode = Mode::from_eigenvalue(Complex::new(-0.3, 4.0));
        assert!((mode.frequency_hz - 4.0 / (2.0 * std::f64::consts::PI)).abs() < 1e-15);
        assert!((mode.damping_ratio - 0.3 / 0.3f64.hypot(4.0)).abs() < 1e-15);
    }

    #[test]
    fn only_positive_imaginary_parts_count() {
        let eigenvalues =
            [Complex::new(-1.0, -2.0), Complex::new(-1.0, 2.0), Complex::new(0.0, 1e-12), Complex::new(-0.5, 1.0)];
        let modes = oscillatory_modes(&eigenvalues);
        assert_eq!(modes.len(), 2);
        assert!(modes[0].im == 1.0 && modes[1].im == 2.0);
    }
}
