//! The linearised PMU output map C = ∂y/∂x of the 68-bus system at an operating point, and
//! the mode shapes it gives in the measured quantities (comparable by MAC with shapes
//! identified from PMU records).
//!
//! With c_bj = −W_bj |E_j| e^{jδ_j} (so V_b = Σ_j c_bj), ∂V_b/∂δ_j = j c_bj, hence
//! ∂|V_b|/∂δ_j = −|V_b| Im(c_bj / V_b) and ∂θ_b/∂δ_j = Re(c_bj / V_b) (rad). Voltages do
//! not depend on the speeds. Rows: vm in pu, va in degrees relative to the reference bus,
//! f = f0 + (dθ_b/dt)/360 with θ_b the absolute angle in degrees, so its row is
//! (180/π) ∂θ_b/∂x · A / 360, and ROCOF the same with A².

use nalgebra::{Complex, DMatrix, DVector};

use super::data::N_MACHINES;
use super::linear::{Linearisation, Mode};
use super::pmu_layout::{PmuLayout, PmuQuantity};
use super::{Ieee68Model, Network};
use crate::error::SystemsError;

type C64 = Complex<f64>;

/// The linearised output map of a PMU layout: one row per recorded column.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuOutputMap {
    /// Column names, as in the simulated record.
    pub names: Vec<String>,
    /// ∂y/∂x (rows: the columns of the record; 32 columns in the state order δ, ω).
    pub matrix: DMatrix<f64>,
}

impl PmuOutputMap {
    /// The shape of `mode` in the measured quantities: C v with v the state eigenvector of
    /// [`Linearisation::mode_shape`] (largest speed entry 1). One complex entry per column.
    pub fn mode_shape(&self, linearisation: &Linearisation, mode: &Mode) -> Result<Vec<C64>, SystemsError> {
        let v = DVector::from_vec(linearisation.mode_shape(mode)?);
        Ok((self.matrix.map(|c| C64::new(c, 0.0)) * v).iter().copied().collect())
    }
}

impl Ieee68Model {
    /// Row vectors ∂|V_b|/∂δ and ∂θ_b/∂δ (rad per rad) of bus `bus` (zero-based).
    fn voltage_gradients(&self, network: usize, delta: &[f64], bus: usize) -> (Vec<f64>, Vec<f64>) {
        let map = &self.voltage_maps[network];
        let v = self.bus_voltage(network, delta, bus);
        let mut magnitude = vec![0.0; N_MACHINES];
        let mut angle = vec![0.0; N_MACHINES];
        if v.norm() == 0.0 {
            return (magnitude, angle);
        }
        for j in 0..N_MACHINES {
            let ratio = -map[(bus, j)] * C64::from_polar(self.emf[j], delta[j]) / v;
            magnitude[j] = -v.norm() * ratio.im;
            angle[j] = ratio.re;
        }
        (magnitude, angle)
    }

    /// The output map of `layout` on `network` at the operating point and state matrix of
    /// `linearisation` (from [`Ieee68Model::linearise`] of the same network).
    pub fn pmu_output_map(
        &self,
        network: Network,
        linearisation: &Linearisation,
        layout: &PmuLayout,
    ) -> Result<PmuOutputMap, SystemsError> {
        layout.validate()?;
        let index = match network {
            Network::Pre => 0,
            Network::Post => 2,
        };
        let delta = &linearisation.operating_point[..N_MACHINES];
        let a = &linearisation.jacobian;
        let a2 = a * a;
        let n = 2 * N_MACHINES;
        let degrees = 180.0 / std::f64::consts::PI;
        let (_, reference_angle) = self.voltage_gradients(index, delta, layout.reference_bus - 1);
        let mut rows: Vec<DVector<f64>> = Vec::new();
        for &bus in &layout.buses {
            let (magnitude, angle) = self.voltage_gradients(index, delta, bus - 1);
            // ∂θ_b/∂x in degrees, zero in the speed columns.
            let angle_row = DVector::from_fn(n, |j, _| if j < N_MACHINES { degrees * angle[j] } else { 0.0 });
            for &quantity in &layout.quantities {
                let row = match quantity {
                    PmuQuantity::Vm => DVector::from_fn(n, |j, _| if j < N_MACHINES { magnitude[j] } else { 0.0 }),
                    PmuQuantity::Va if bus == layout.reference_bus => continue,
                    PmuQuantity::Va => DVector::from_fn(n, |j, _| {
                        if j < N_MACHINES { degrees * (angle[j] - reference_angle[j]) } else { 0.0 }
                    }),
                    PmuQuantity::F => a.tr_mul(&angle_row) / 360.0,
                    PmuQuantity::Rocof => a2.tr_mul(&angle_row) / 360.0,
                };
                rows.push(row);
            }
        }
        let matrix = DMatrix::from_fn(rows.len(), n, |i, j| rows[i][j]);
        Ok(PmuOutputMap { names: layout.channel_names(), matrix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central difference of `f` along state direction `j` at `x`.
    fn derivative(f: &dyn Fn(&[f64]) -> f64, x: &[f64], j: usize, eps: f64) -> f64 {
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[j] += eps;
        minus[j] -= eps;
        (f(&plus) - f(&minus)) / (2.0 * eps)
    }

    #[test]
    fn output_map_matches_finite_differences_of_the_network_solution() {
        let model = Ieee68Model::new().unwrap();
        let layout = PmuLayout {
            buses: vec![1, 9, 29, 41, 52, 65],
            quantities: vec![PmuQuantity::Vm, PmuQuantity::Va, PmuQuantity::F],
            ..PmuLayout::default()
        };
        for network in [Network::Pre, Network::Post] {
            let lin = model.linearise(network).unwrap();
            let map = model.pmu_output_map(network, &lin, &layout).unwrap();
            let x0 = lin.operating_point.clone();
            let voltage = |x: &[f64], bus: usize| model.bus_voltages(network, &x[..N_MACHINES]).unwrap()[bus - 1];
            // f − f0 = (dθ/dt)/360 along the flow, by a central difference in time of the
            // absolute angle (degrees) over ±τ of the state's own rate δ' = ω_b (ω − 1).
            let frequency = |x: &[f64], bus: usize| {
                let dx = model.derivative(network, x).unwrap();
                let tau = 1e-3;
                let shifted = |sign: f64| -> Vec<f64> { (0..N_MACHINES).map(|i| x[i] + sign * tau * dx[i]).collect() };
                let angle = |d: &[f64]| model.bus_voltages(network, d).unwrap()[bus - 1].arg().to_degrees();
                (angle(&shifted(1.0)) - angle(&shifted(-1.0))) / (2.0 * tau) / 360.0
            };
            let mut worst = 0.0f64;
            for (row, channel) in layout.channels().iter().enumerate() {
                let bus = channel.bus;
                let f = |x: &[f64]| match channel.quantity {
                    PmuQuantity::Vm => voltage(x, bus).norm(),
                    PmuQuantity::Va => (voltage(x, bus).arg() - voltage(x, layout.reference_bus).arg()).to_degrees(),
                    _ => frequency(x, bus),
                };
                for j in 0..2 * N_MACHINES {
                    let fd = derivative(&f, &x0, j, 1e-6);
                    let error = (fd - map.matrix[(row, j)]).abs() / (1.0 + fd.abs());
                    worst = worst.max(error);
                    assert!(error < 1e-5, "{network:?} {} d/dx{j}: {fd} vs {}", channel.name(), map.matrix[(row, j)]);
                }
            }
            println!("{network:?}: worst relative difference to finite differences {worst:e}");
        }
    }

    #[test]
    fn rocof_row_is_the_frequency_row_times_a_and_shapes_have_one_entry_per_column() {
        let model = Ieee68Model::new().unwrap();
        let layout = PmuLayout { quantities: vec![PmuQuantity::F, PmuQuantity::Rocof], ..PmuLayout::default() };
        let lin = model.linearise(Network::Pre).unwrap();
        let map = model.pmu_output_map(Network::Pre, &lin, &layout).unwrap();
        let f = map.matrix.row(0).into_owned();
        let rocof = map.matrix.row(1).into_owned();
        assert!((f * &lin.jacobian - &rocof).norm() < 1e-9 * (1.0 + rocof.norm()));
        let shape = map.mode_shape(&lin, &lin.modes[0]).unwrap();
        assert_eq!(shape.len(), map.names.len());
        assert!(shape.iter().any(|c| c.norm() > 0.0));
    }

    #[test]
    fn a_small_ring_down_of_one_mode_follows_its_pmu_shape() {
        // Start at x0 + ε Re(v) for the slowest inter-area mode: to first order the record
        // is y0 + ε Re(C v e^{λt}), and the PMU's backward-difference frequency is the
        // interval average ε Re(C_f v (e^{λ t_k} − e^{λ t_{k−1}}) / (λ T)).
        use crate::ieee68::{AmbientParams, Ieee68Scenario};
        use crate::integrate::{Rk4, SampleGrid};
        use crate::rng::Rng;
        let model = Ieee68Model::new().unwrap();
        let lin = model.linearise(Network::Pre).unwrap();
        let layout = PmuLayout { buses: vec![2, 41, 52], ..PmuLayout::default() };
        let map = model.pmu_output_map(Network::Pre, &lin, &layout).unwrap();
        let mode = lin.modes[0];
        let v = lin.mode_shape(&mode).unwrap();
        let epsilon = 1e-3 / v[..N_MACHINES].iter().map(|c| c.norm()).fold(0.0, f64::max);
        let x0: Vec<f64> = lin.operating_point.iter().zip(&v).map(|(x, c)| x + epsilon * c.re).collect();
        let quiet = Ieee68Scenario::Ambient(AmbientParams { load_noise_intensity: 0.0 });
        let grid = SampleGrid::from_rate(3.0, 60.0).unwrap();
        let states =
            model.simulate_states(&quiet, &x0, &grid, &mut Rk4::new(1.0 / 240.0).unwrap(), Rng::new(0)).unwrap();
        let times = grid.times();
        let record = model.pmu_outputs(&quiet, &times, &states, &layout).unwrap();
        let at_rest = {
            let rest: Vec<f64> = lin.operating_point.iter().cycle().take(2 * 2 * N_MACHINES).copied().collect();
            model.pmu_outputs(&quiet, &times[..2], &rest, &layout).unwrap()
        };
        let shape = map.mode_shape(&lin, &mode).unwrap();
        let lambda = C64::new(mode.re, mode.im);
        let width = layout.channels().len();
        for (j, channel) in layout.channels().iter().enumerate() {
            let predicted = |k: usize| -> f64 {
                let grow = |t: f64| (lambda * t).exp();
                let factor = match channel.quantity {
                    PmuQuantity::F => {
                        let k = k.max(1);
                        (grow(times[k]) - grow(times[k - 1])) / (lambda * (times[k] - times[k - 1]))
                    }
                    _ => grow(times[k]),
                };
                epsilon * (shape[j] * factor).re
            };
            let scale = (0..times.len()).map(|k| predicted(k).abs()).fold(0.0, f64::max);
            let worst =
                (0..times.len()).map(|k| (record[k * width + j] - at_rest[j] - predicted(k)).abs()).fold(0.0, f64::max);
            println!("{}: largest deviation {scale:.3e}, worst linear misfit {worst:.3e}", channel.name());
            assert!(scale > 0.0 && worst < 0.02 * scale, "{}", channel.name());
        }
    }
}
