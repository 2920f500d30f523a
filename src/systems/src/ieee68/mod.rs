//! IEEE 68-bus, 16-machine NETS–NYPS test system with classical machine models.
//!
//! Network: Y-bus from the 86 embedded branches (parallel circuits kept, taps on the
//! from side, half the line charging at each end), constant-impedance loads
//! y = (P − jQ)/|V|² at the solved power-flow voltages, and each machine as an EMF behind
//! j x'_d (100 MVA base). Kron reduction leaves the 16 internal nodes.
//! Dynamics: δ_i' = ω_b (ω_i − 1), M_i ω_i' = Pm_i − Pe_i(δ) − D_i (ω_i − 1), with
//! M = 2H·MVA/100, D from data16em (case A), ω_b = 2π·60, Pm = Pe at the initial angles.
//! State: δ_1..δ_16 (rad, synchronous frame in which bus 65 has angle 0 initially), then
//! ω_1..ω_16 (pu).
//!
//! Networks: pre-fault (intact); fault-on (pre-fault with bus 29 shorted to ground);
//! post-fault (line 28–29 open).
//!
//! The post-fault equilibrium is far from the pre-fault state: G9's power can only leave
//! through bus 26, so its angle advances by about 18°, and the changed losses leave all
//! machines at a common speed 1 + 3.0e-4 pu (constant Pm, nonzero damping). Its
//! inter-area modes (0.374, 0.493, 0.595, 0.782 Hz) therefore differ from those of the
//! post-fault network linearised at the pre-fault angles (0.378, 0.489, 0.620, 0.781 Hz);
//! the G9 local mode drops from 0.95 to 0.77 Hz.

mod ambient;
mod data;
mod linear;
mod modes;
mod network;
mod pmu;
mod pmu_layout;
mod pmu_linear;
mod scenario;
mod swing;

use nalgebra::{Complex, DMatrix};

pub use data::N_MACHINES;
pub use linear::{Linearisation, Mode, oscillatory_modes};
pub use pmu_layout::{
    DEFAULT_PMU_BUSES, DEFAULT_REFERENCE_BUS, MAX_PMU_BUSES, NOMINAL_FREQUENCY_HZ, PmuChannel, PmuLayout, PmuQuantity,
    parse_bus_list,
};
pub use pmu_linear::PmuOutputMap;
pub use scenario::{AmbientParams, AngleReference, FaultParams, Ieee68Scenario};
pub use swing::OMEGA_BASE;

use crate::error::SystemsError;
use ambient::LoadCoupling;
use data::Ieee68Data;
use network::{Topology, branch_between, internal_emfs, reduce};
use swing::{PowerCoefficients, SwingEquations};

/// Zero-based bus index of the fault location (bus 29).
const FAULT_BUS: usize = 28;
/// Zero-based bus index at the other end of the tripped line (bus 28).
const TRIPPED_LINE_OTHER_END: usize = 27;
/// Zero-based index of the swing machine G13, the angle reference of the equilibria.
const SWING_MACHINE: usize = 12;

/// Which network a linearisation or power evaluation refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Intact network of the power-flow case.
    Pre,
    /// After clearing: line 28–29 open.
    Post,
}

impl Network {
    /// Parses `pre` or `post`.
    pub fn from_name(name: &str) -> Result<Self, SystemsError> {
        match name {
            "pre" => Ok(Self::Pre),
            "post" => Ok(Self::Post),
            _ => Err(SystemsError::UnknownName { what: "network", name: name.to_owned() }),
        }
    }
}

/// The assembled classical model of the 68-bus system.
#[derive(Debug, Clone, PartialEq)]
pub struct Ieee68Model {
    swing: SwingEquations,
    emf: Vec<f64>,
    delta0: Vec<f64>,
    pre: PowerCoefficients,
    fault_on: PowerCoefficients,
    post: PowerCoefficients,
    load_coupling: LoadCoupling,
    /// Bus voltages per unit internal EMF, V = −W E (68 × 16), of the networks in force
    /// before, during and after the fault: the PMU records solve the full network with them.
    voltage_maps: [DMatrix<Complex<f64>>; 3],
    /// From this time on (s), the swing equations with scaled damping (see
    /// [`Ieee68Model::with_damping_scale`]).
    damping_change: Option<(f64, SwingEquations)>,
}

impl Ieee68Model {
    /// The same system with every machine's damping coefficient D_i scaled by `scale`
    /// (>= 0): from the start, or from time `at` (s) on. The operating point is unchanged
    /// (damping acts on the slip, which is zero there); the linearisation and the modes
    /// follow the scaled damping when it applies from the start.
    pub fn with_damping_scale(mut self, scale: f64, at: Option<f64>) -> Result<Self, SystemsError> {
        crate::error::require(scale.is_finite() && scale >= 0.0, "damping_scale", "must be >= 0")?;
        let mut scaled = self.swing.clone();
        scaled.damping.iter_mut().for_each(|d| *d *= scale);
        match at {
            None => self.swing = scaled,
            Some(at) => {
                crate::error::require(at.is_finite() && at >= 0.0, "damping_change_at", "must be >= 0")?;
                self.damping_change = Some((at, scaled));
            }
        }
        Ok(self)
    }

    /// Builds the model from the embedded data.
    pub fn new() -> Result<Self, SystemsError> {
        let data = Ieee68Data::load()?;
        let emfs = internal_emfs(&data);
        let emf: Vec<f64> = emfs.iter().map(|e| e.norm()).collect();
        let delta0: Vec<f64> = emfs.iter().map(|e| e.arg()).collect();

        let intact = reduce(&data, &Topology::default())?;
        let faulted = reduce(&data, &Topology { open_branches: vec![], grounded_buses: vec![FAULT_BUS] })?;
        let tripped = reduce(
            &data,
            &Topology {
                open_branches: vec![branch_between(&data, TRIPPED_LINE_OTHER_END, FAULT_BUS)?],
                grounded_buses: vec![],
            },
        )?;
        let pre = PowerCoefficients::new(&intact.y_reduced, &emf);
        let mut mechanical_power = vec![0.0; N_MACHINES];
        // Pm = Pe at the initial angles makes the initial state an exact equilibrium.
        pre.electrical_power(&delta0, &mut mechanical_power);
        Ok(Self {
            swing: SwingEquations {
                inertia: data.machines.iter().map(|m| m.inertia).collect(),
                damping: data.machines.iter().map(|m| m.damping).collect(),
                mechanical_power,
            },
            fault_on: PowerCoefficients::new(&faulted.y_reduced, &emf),
            post: PowerCoefficients::new(&tripped.y_reduced, &emf),
            load_coupling: LoadCoupling::new(&data, &intact, emf.clone()),
            voltage_maps: [intact.voltage_map.clone(), faulted.voltage_map, tripped.voltage_map],
            damping_change: None,
            pre,
            emf,
            delta0,
        })
    }

    /// The pre-fault operating point: initial angles (rad), then speeds 1.
    pub fn operating_point(&self) -> Vec<f64> {
        let mut x = self.delta0.clone();
        x.extend(std::iter::repeat_n(1.0, N_MACHINES));
        x
    }

    /// Internal EMF magnitudes |E_i| (pu).
    pub fn emf(&self) -> &[f64] {
        &self.emf
    }

    /// Mechanical powers Pm_i (pu on 100 MVA).
    pub fn mechanical_power(&self) -> &[f64] {
        &self.swing.mechanical_power
    }

    /// Inertia constants M_i = 2H·MVA/100 (s).
    pub fn inertia(&self) -> &[f64] {
        &self.swing.inertia
    }

    /// Damping constants D_i (pu on 100 MVA).
    pub fn damping(&self) -> &[f64] {
        &self.swing.damping
    }

    /// Electrical powers Pe_i(δ) of `network` (pu on 100 MVA).
    pub fn electrical_power(&self, network: Network, delta: &[f64]) -> Result<Vec<f64>, SystemsError> {
        check_len(delta, N_MACHINES, "delta")?;
        let mut pe = vec![0.0; N_MACHINES];
        self.coefficients(network).electrical_power(delta, &mut pe);
        Ok(pe)
    }

    /// Right-hand side of the 32 swing equations on `network` at state `x`.
    pub fn derivative(&self, network: Network, x: &[f64]) -> Result<Vec<f64>, SystemsError> {
        check_len(x, 2 * N_MACHINES, "state")?;
        let mut dx = vec![0.0; 2 * N_MACHINES];
        self.swing.rhs(self.coefficients(network), x, &mut dx);
        Ok(dx)
    }

    /// The analytic 32 × 32 Jacobian on `network` at angles `delta`.
    pub fn jacobian(&self, network: Network, delta: &[f64]) -> Result<DMatrix<f64>, SystemsError> {
        check_len(delta, N_MACHINES, "delta")?;
        Ok(self.swing.jacobian(self.coefficients(network), delta))
    }

    fn coefficients(&self, network: Network) -> &PowerCoefficients {
        match network {
            Network::Pre => &self.pre,
            Network::Post => &self.post,
        }
    }
}

fn check_len(values: &[f64], expected: usize, name: &'static str) -> Result<(), SystemsError> {
    crate::error::require(values.len() == expected, name, &format!("needs {expected} values"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operating_point_is_an_equilibrium_with_published_powers() {
        let model = Ieee68Model::new().unwrap();
        let data = Ieee68Data::load().unwrap();
        let x0 = model.operating_point();
        let pe = model.electrical_power(Network::Pre, &x0[..N_MACHINES]).unwrap();
        for (i, published) in data.published_init.iter().enumerate() {
            assert!((pe[i] - published.pm0).abs() < 1e-6, "G{}: Pe {} vs Pm0 {}", i + 1, pe[i], published.pm0);
            // The published angles agree to their rounding (8 decimals of the inputs).
            assert!((x0[i] - published.delta0_rad).abs() < 5e-7);
        }
        let dx = model.derivative(Network::Pre, &x0).unwrap();
        assert!(dx.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn jacobian_matches_finite_differences_of_the_model() {
        let model = Ieee68Model::new().unwrap();
        let mut x = model.operating_point();
        x[3] += 0.05; // away from equilibrium, to exercise all terms
        let a = model.jacobian(Network::Post, &x[..N_MACHINES]).unwrap();
        let eps = 1e-6;
        for j in 0..2 * N_MACHINES {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[j] += eps;
            minus[j] -= eps;
            let f_plus = model.derivative(Network::Post, &plus).unwrap();
            let f_minus = model.derivative(Network::Post, &minus).unwrap();
            for i in 0..2 * N_MACHINES {
                let fd = (f_plus[i] - f_minus[i]) / (2.0 * eps);
                assert!((fd - a[(i, j)]).abs() < 1e-6 * (1.0 + fd.abs()), "({i},{j}): {fd} vs {}", a[(i, j)]);
            }
        }
    }
}
