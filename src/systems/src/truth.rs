//! Ground truth computed from the models themselves: modes of the linearised 68-bus
//! system, the Van der Pol limit cycle, and the Hénon map's Jacobian and attractor.

pub use crate::henon::HenonAttractor;
pub use crate::ieee68::{Linearisation, Mode, Network, PmuLayout, PmuOutputMap};
pub use crate::vdp::LimitCycle;
pub use nalgebra::Complex;

use crate::error::SystemsError;
use crate::henon::Henon;
use crate::ieee68::Ieee68Model;
use crate::request::HenonParams;

/// Oscillatory modes of the 68-bus system linearised on `network` at its operating point
/// (pre-fault: the power-flow state; post-fault: the post-fault equilibrium), sorted by
/// frequency. Pre-fault this reproduces `modes_classical.csv` case A.
pub fn ieee68_modes(network: Network) -> Result<Vec<Mode>, SystemsError> {
    Ok(ieee68_linearisation(network)?.modes)
}

/// The full linearisation (operating point, Jacobian, eigenvalues, modes) of `network`.
pub fn ieee68_linearisation(network: Network) -> Result<Linearisation, SystemsError> {
    Ieee68Model::new()?.linearise(network)
}

/// The linearisation of `network` with every machine's damping coefficient scaled by
/// `scale` (1: the published data).
pub fn ieee68_linearisation_scaled(network: Network, scale: f64) -> Result<Linearisation, SystemsError> {
    Ieee68Model::new()?.with_damping_scale(scale, None)?.linearise(network)
}

/// One mode of the 68-bus system with its shape in PMU quantities.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuModeShape {
    /// The mode.
    pub mode: Mode,
    /// (column name, complex entry of C v) for every column of the layout, in column
    /// order; v is the state eigenvector with its largest speed entry 1.
    pub shape: Vec<(String, Complex<f64>)>,
}

/// The oscillatory modes of `network` (damping scaled by `scale`) with their shapes in
/// the PMU quantities of `layout`, from the linearised output map C = ∂y/∂x.
pub fn ieee68_pmu_mode_shapes(
    network: Network,
    scale: f64,
    layout: &PmuLayout,
) -> Result<Vec<PmuModeShape>, SystemsError> {
    layout.validate()?;
    let model = Ieee68Model::new()?.with_damping_scale(scale, None)?;
    let linearisation = model.linearise(network)?;
    let map = model.pmu_output_map(network, &linearisation, layout)?;
    linearisation
        .modes
        .iter()
        .map(|mode| {
            let entries = map.mode_shape(&linearisation, mode)?;
            Ok(PmuModeShape { mode: *mode, shape: map.names.iter().cloned().zip(entries).collect() })
        })
        .collect()
}

/// Limit cycle of the Van der Pol oscillator with parameter `mu` in (0, 20]: period,
/// Floquet exponent and multipliers, amplitude.
pub fn vdp_limit_cycle(mu: f64) -> Result<LimitCycle, SystemsError> {
    crate::vdp::limit_cycle(mu)
}

/// Jacobian of the Hénon map at `point`; its determinant is −b everywhere.
pub fn henon_jacobian(params: &HenonParams, point: [f64; 2]) -> [[f64; 2]; 2] {
    Henon { a: params.a, b: params.b }.jacobian(point)
}

/// Attractor statistics (Jacobian determinant, largest Lyapunov exponent, extent) of the
/// Hénon map over 100 000 iterates.
pub fn henon_attractor(params: &HenonParams) -> Result<HenonAttractor, SystemsError> {
    Henon { a: params.a, b: params.b }.attractor(100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_entry_points_agree_with_the_models() {
        let pre = ieee68_modes(Network::Pre).unwrap();
        assert_eq!(pre.len(), 15);
        assert!((pre[0].frequency_hz - 0.3796).abs() < 1e-4);
        let jacobian = henon_jacobian(&HenonParams::default(), [0.5, 0.1]);
        assert_eq!(jacobian, [[-1.4, 1.0], [0.3, 0.0]]);
        let attractor = henon_attractor(&HenonParams::default()).unwrap();
        assert_eq!(attractor.jacobian_determinant, -0.3);
    }

    #[test]
    fn pmu_shapes_come_with_every_mode() {
        let layout = PmuLayout { buses: vec![2, 41], ..PmuLayout::default() };
        let shapes = ieee68_pmu_mode_shapes(Network::Pre, 1.0, &layout).unwrap();
        assert_eq!(shapes.len(), 15);
        assert_eq!(shapes[0].mode, ieee68_modes(Network::Pre).unwrap()[0]);
        let names: Vec<&str> = shapes[0].shape.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b2_vm", "b2_va", "b2_f", "b41_vm", "b41_va", "b41_f"]);
        // The slowest inter-area mode swings area 3 (bus 41) against New England (bus 2).
        let (f2, f41) = (shapes[0].shape[2].1, shapes[0].shape[5].1);
        assert!((f2 / f41).re < 0.0, "{f2} vs {f41}");
    }

    #[test]
    fn a_tenth_of_the_damping_leaves_the_inter_area_modes_damped_about_one_percent() {
        // The frequencies barely move; the damping ratios fall roughly tenfold (to 0.9 to
        // 1.5 % for the four inter-area modes of 9 to 15 %).
        let published = ieee68_modes(Network::Pre).unwrap();
        let stressed = ieee68_linearisation_scaled(Network::Pre, 0.1).unwrap().modes;
        for (p, s) in published.iter().zip(&stressed).take(4) {
            assert!((s.frequency_hz / p.frequency_hz - 1.0).abs() < 0.02, "{} vs {}", s.frequency_hz, p.frequency_hz);
            assert!((0.008..0.016).contains(&s.damping_ratio), "{} Hz: {}", s.frequency_hz, s.damping_ratio);
        }
        assert_eq!(ieee68_linearisation_scaled(Network::Pre, 1.0).unwrap().modes, published);
    }
}
