//! Linearisation of the assembled 68-bus model at the operating point of a network, and
//! the checks of its modes against the published case A and the post-fault equilibrium.

use super::linear::{self, Linearisation, oscillatory_modes};
use super::{Ieee68Model, N_MACHINES, Network, SWING_MACHINE, data};
use crate::error::SystemsError;

impl Ieee68Model {
    /// Linearises `network` at its own operating point: the pre-fault initial state, or
    /// for the post-fault network the equilibrium found by Newton's method from the
    /// pre-fault angles (G13's angle held fixed).
    pub fn linearise(&self, network: Network) -> Result<Linearisation, SystemsError> {
        let coefficients = self.coefficients(network);
        let (delta, slip) = linear::equilibrium(&self.swing, coefficients, &self.delta0, SWING_MACHINE)?;
        let jacobian = self.swing.jacobian(coefficients, &delta);
        let eigenvalues = linear::eigenvalues(&jacobian);
        let modes = oscillatory_modes(&eigenvalues);
        let mut operating_point = delta;
        operating_point.extend(std::iter::repeat_n(1.0 + slip, N_MACHINES));
        Ok(Linearisation { operating_point, speed_offset: slip, jacobian, eigenvalues, modes })
    }

    /// Modes published in the embedded `modes_classical.csv` for `case`
    /// (`A_data16m_Dclassical`, `B_data16m_D0`, `C_data16m_Ddata16m`, `D_pstv3p0_D0`) as
    /// (frequency Hz, damping ratio %), sorted by frequency. This model corresponds to case A.
    pub fn published_modes(case: &str) -> Result<Vec<(f64, f64)>, SystemsError> {
        let modes = data::published_modes(case)?;
        if modes.is_empty() {
            return Err(SystemsError::UnknownName { what: "mode table case", name: case.to_owned() });
        }
        Ok(modes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ieee68::OMEGA_BASE;

    #[test]
    fn pre_fault_modes_reproduce_case_a() {
        let model = Ieee68Model::new().unwrap();
        let lin = model.linearise(Network::Pre).unwrap();
        let reference = Ieee68Model::published_modes("A_data16m_Dclassical").unwrap();
        assert_eq!(lin.modes.len(), reference.len());
        let (mut worst_f, mut worst_zeta) = (0.0f64, 0.0f64);
        for (mode, (f, zeta_pct)) in lin.modes.iter().zip(&reference) {
            worst_f = worst_f.max((mode.frequency_hz - f).abs());
            worst_zeta = worst_zeta.max((100.0 * mode.damping_ratio - zeta_pct).abs());
        }
        println!("case A: max |df| = {worst_f:.2e} Hz, max |dzeta| = {worst_zeta:.2e} % points");
        assert!(worst_f < 1e-3 && worst_zeta < 0.1);
        // Besides the 15 pairs: one zero eigenvalue (angle reference) and one real mode.
        let real: Vec<_> = lin.eigenvalues.iter().filter(|l| l.im == 0.0).collect();
        assert_eq!(real.len(), 2, "{real:?}");
        assert!(real.iter().any(|l| l.re.abs() < 1e-8));
        assert_eq!(lin.speed_offset, 0.0);
    }

    /// Speed mode shapes of the modes below 1 Hz, as (frequency, shape) pairs.
    fn slow_modes(lin: &Linearisation) -> Vec<(f64, Vec<nalgebra::Complex<f64>>)> {
        lin.modes
            .iter()
            .filter(|m| m.frequency_hz < 1.0)
            .map(|m| (m.frequency_hz, lin.mode_shape(m).unwrap()[N_MACHINES..].to_vec()))
            .collect()
    }

    #[test]
    fn post_fault_inter_area_modes_at_the_post_fault_equilibrium() {
        let model = Ieee68Model::new().unwrap();
        let lin = model.linearise(Network::Post).unwrap();
        // It is an equilibrium of the post-fault network (angles rotating together).
        let dx = model.derivative(Network::Post, &lin.operating_point).unwrap();
        assert!(dx[N_MACHINES..].iter().all(|v| v.abs() < 1e-10));
        assert!(dx[..N_MACHINES].iter().all(|v| (v - OMEGA_BASE * lin.speed_offset).abs() < 1e-12));
        for m in lin.modes.iter().filter(|m| m.frequency_hz < 1.0) {
            println!("post-fault: {:.5} Hz, damping {:.3} %", m.frequency_hz, 100.0 * m.damping_ratio);
        }
        println!("post-fault speed offset {:e} pu", lin.speed_offset);
        // Below 1 Hz there are five modes: the four inter-area modes and the local mode of
        // G9, which is left on a single path (bus 29-26) and slows from 0.95 Hz to 0.77 Hz.
        // The local mode is the one in which G9 dominates and all other New England
        // machines swing against it.
        let slow = slow_modes(&lin);
        assert_eq!(slow.len(), 5);
        let is_g9_local =
            |shape: &[nalgebra::Complex<f64>]| shape[8].norm() == 1.0 && (0..8).all(|i| (shape[i] / shape[8]).re < 0.0);
        let local: Vec<f64> = slow.iter().filter(|(_, s)| is_g9_local(s)).map(|(f, _)| *f).collect();
        assert_eq!(local.len(), 1);
        assert!((local[0] - 0.772).abs() < 0.01);
        let inter_area: Vec<f64> = slow.iter().filter(|(_, s)| !is_g9_local(s)).map(|(f, _)| *f).collect();
        println!("post-fault inter-area modes (Hz): {inter_area:?}");
        for (got, expected) in inter_area.iter().zip([0.374, 0.493, 0.595, 0.782]) {
            assert!((got - expected).abs() < 0.005, "{got} vs {expected}");
        }
    }

    #[test]
    fn post_fault_network_at_pre_fault_angles() {
        // Linearising the post-fault network at the pre-fault angles (not an equilibrium of
        // it) gives modes close to the pre-fault ones: about 0.378, 0.489, 0.620, 0.781 Hz.
        let model = Ieee68Model::new().unwrap();
        let a = model.jacobian(Network::Post, &model.operating_point()[..N_MACHINES]).unwrap();
        let modes = oscillatory_modes(&linear::eigenvalues(&a));
        let first: Vec<f64> = modes.iter().take(4).map(|m| m.frequency_hz).collect();
        println!("post-fault network at pre-fault angles (Hz): {first:?}");
        for (got, expected) in first.iter().zip([0.378, 0.489, 0.620, 0.781]) {
            assert!((got - expected).abs() < 0.002, "{got} vs {expected}");
        }
    }
}
