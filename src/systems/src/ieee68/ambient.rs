//! Ambient excitation of the 68-bus system: random fluctuations of every load's
//! admittance, mapped onto the reduced network to first order.
//!
//! Each load l has admittance y_l (1 + ε_l(t)). The ε_l are independent white noises of
//! intensity σ: over each internal RK4 step of length h, ε_l is held at a fresh draw
//! N(0, σ²/h), so its average over any window τ has std ≈ σ/√τ whatever the step
//! (the Euler–Maruyama scaling). A change ΔY_bb of the load admittances changes the
//! reduced matrix by L ΔY_bb W (L = Y_gb Y_bb⁻¹, W = Y_bb⁻¹ Y_bg), which is exact to
//! first order in ε and cheap enough to rebuild every step.

use nalgebra::{Complex, DMatrix};

use super::data::{Ieee68Data, N_MACHINES};
use super::network::{ReducedNetwork, load_admittances};
use super::swing::{PowerCoefficients, SwingEquations};
use crate::integrate::OdeSystem;
use crate::rng::Rng;

type C64 = Complex<f64>;

/// One load's rank-one contribution y_l · L[:, l] · W[l, :] to ∂Y_red/∂ε_l.
#[derive(Debug, Clone, PartialEq)]
struct LoadTerm {
    sensitivity: DMatrix<C64>,
}

/// How relative load changes perturb the pre-fault reduced network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadCoupling {
    y_reduced: DMatrix<C64>,
    emf: Vec<f64>,
    terms: Vec<LoadTerm>,
}

impl LoadCoupling {
    /// Precomputes the load sensitivities of the intact network `reduced`.
    pub fn new(data: &Ieee68Data, reduced: &ReducedNetwork, emf: Vec<f64>) -> Self {
        let terms = load_admittances(data)
            .into_iter()
            .enumerate()
            .filter(|(_, y)| y.norm() > 0.0)
            .map(|(bus, y)| {
                let left = reduced.current_map.column(bus);
                let right = reduced.voltage_map.row(bus);
                LoadTerm { sensitivity: left * right * y }
            })
            .collect();
        Self { y_reduced: reduced.y_reduced.clone(), emf, terms }
    }

    /// Number of fluctuating loads.
    pub fn n_loads(&self) -> usize {
        self.terms.len()
    }

    /// Power coefficients of the network with relative load changes `epsilon`.
    pub fn perturbed(&self, epsilon: &[f64]) -> PowerCoefficients {
        let mut y = self.y_reduced.clone();
        for (term, &e) in self.terms.iter().zip(epsilon) {
            y += &term.sensitivity * C64::new(e, 0.0);
        }
        PowerCoefficients::new(&y, &self.emf)
    }
}

/// The swing equations driven by white-noise load fluctuations (an [`OdeSystem`]).
pub(crate) struct AmbientSystem<'a> {
    swing: &'a SwingEquations,
    /// From this time on, these swing equations (a damping change).
    after: Option<(f64, &'a SwingEquations)>,
    late: bool,
    coupling: &'a LoadCoupling,
    intensity: f64,
    rng: Rng,
    epsilon: Vec<f64>,
    network: PowerCoefficients,
}

impl<'a> AmbientSystem<'a> {
    /// Noise of `intensity` σ (1/√s) drawn from `rng`; `after` switches the swing
    /// equations at a time (which the caller makes a breakpoint).
    pub fn new(
        swing: &'a SwingEquations,
        after: Option<(f64, &'a SwingEquations)>,
        coupling: &'a LoadCoupling,
        intensity: f64,
        rng: Rng,
    ) -> Self {
        let epsilon = vec![0.0; coupling.n_loads()];
        let network = coupling.perturbed(&epsilon);
        Self { swing, after, late: false, coupling, intensity, rng, epsilon, network }
    }
}

impl OdeSystem for AmbientSystem<'_> {
    fn dim(&self) -> usize {
        2 * N_MACHINES
    }

    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        let swing = match self.after {
            Some((_, after)) if self.late => after,
            _ => self.swing,
        };
        swing.rhs(&self.network, x, dx);
    }

    fn begin_step(&mut self, t: f64, h: f64) {
        self.late = self.after.is_some_and(|(at, _)| t + 0.5 * h > at);
        if self.intensity == 0.0 {
            return;
        }
        let std = self.intensity / h.sqrt();
        for e in &mut self.epsilon {
            *e = std * self.rng.normal();
        }
        self.network = self.coupling.perturbed(&self.epsilon);
    }
}

#[cfg(test)]
mod tests {
    use super::super::network::{Topology, internal_emfs, reduce};
    use super::*;

    #[test]
    fn first_order_load_change_matches_exact_reduction() {
        // Scale one load by (1 + 1e-4) exactly and compare with the linear prediction.
        let mut data = Ieee68Data::load().unwrap();
        let emf: Vec<f64> = internal_emfs(&data).iter().map(|e| e.norm()).collect();
        let intact = reduce(&data, &Topology::default()).unwrap();
        let coupling = LoadCoupling::new(&data, &intact, emf);
        assert_eq!(coupling.n_loads(), 35);
        let bus = 40; // bus 41, 10 + j2.5 pu
        let eps = 1e-4;
        let load_index = load_admittances(&data)[..bus].iter().filter(|y| y.norm() > 0.0).count();
        let mut epsilon = vec![0.0; 35];
        epsilon[load_index] = eps;
        let predicted = &intact.y_reduced + &coupling.terms[load_index].sensitivity * C64::new(eps, 0.0);
        let voltage = data.buses[bus].v;
        data.buses[bus].p_load *= 1.0 + eps;
        data.buses[bus].q_load *= 1.0 + eps;
        assert_eq!(data.buses[bus].v, voltage);
        let exact = reduce(&data, &Topology::default()).unwrap().y_reduced;
        let change = (&exact - &intact.y_reduced).norm();
        assert!(change > 1e-6);
        assert!((&exact - &predicted).norm() < 1e-3 * change);
    }
}
