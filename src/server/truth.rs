//! `koopstream truth`: a test system's ground truth as one JSON document whose modes carry
//! the quantities and field names of the service's `/modes` (`frequency_hz`,
//! `damping_ratio`, `continuous`), so a served model reads against it field by field.

use serde::Serialize;
use systems::Network;
use systems::truth::{Complex, Linearisation};

use crate::pmu_cli::{ShapeEntry, shape_entries};
use crate::simulate_cli::{SimulateError, TruthArgs, TruthSystem};

/// The truth of one system.
#[derive(Debug, Serialize)]
pub struct TruthDoc {
    /// The system, as `--system` names it.
    pub system: &'static str,
    /// The true modes, by frequency (none for the Henon map).
    pub modes: Vec<ModeTruth>,
    /// Van der Pol: the limit cycle the mode comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_cycle: Option<LimitCycleTruth>,
    /// Henon map: the attractor's invariants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attractor: Option<HenonTruth>,
    /// What the document holds, when it needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// A continuous-time eigenvalue, as the service writes one.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ContinuousTruth {
    /// Real part (1/s).
    pub re: f64,
    /// Imaginary part (rad/s).
    pub im: f64,
}

/// One true mode.
#[derive(Debug, Serialize)]
pub struct ModeTruth {
    /// Frequency (Hz).
    pub frequency_hz: f64,
    /// Damping ratio (a fraction; 0.05 is 5 %).
    pub damping_ratio: f64,
    /// The continuous-time eigenvalue.
    pub continuous: ContinuousTruth,
    /// `inter-area` or `local` (68-bus), `limit-cycle` (Van der Pol).
    pub kind: &'static str,
    /// Only with `--measure pmu`, so the document is unchanged without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pmu_shape: Option<Vec<ShapeEntry>>,
}

/// The Van der Pol limit cycle.
#[derive(Debug, Serialize)]
pub struct LimitCycleTruth {
    /// The oscillator's parameter.
    pub mu: f64,
    /// Period (s).
    pub period_s: f64,
    /// 1 / period (Hz): the mode an identified model should show.
    pub frequency_hz: f64,
    /// 2 pi / period (rad/s).
    pub frequency_rad_per_s: f64,
    /// The transverse Floquet exponent (1/s).
    pub floquet_exponent_per_s: f64,
    /// The amplitude of x1.
    pub amplitude: f64,
}

/// The Henon attractor.
#[derive(Debug, Serialize)]
pub struct HenonTruth {
    /// Parameter a.
    pub a: f64,
    /// Parameter b.
    pub b: f64,
    /// The Jacobian's determinant (-b everywhere).
    pub jacobian_determinant: f64,
    /// The largest Lyapunov exponent (per iterate).
    pub lyapunov_exponent: f64,
    /// The attractor's extent in x.
    pub x_range: [f64; 2],
    /// The attractor's extent in y.
    pub y_range: [f64; 2],
}

/// The number of inter-area modes of the 68-bus system: the four slowest modes of the
/// published, pre-fault network (0.380, 0.489, 0.626, 0.781 Hz, the shared data's ground
/// truth); every other mode is local to a machine or a group of machines.
const INTER_AREA_MODES: usize = 4;

/// The ground truth of a system as pretty JSON.
pub fn run_truth(args: &TruthArgs) -> Result<String, SimulateError> {
    Ok(serde_json::to_string_pretty(&truth(args)?)?)
}

/// The ground truth of a system.
pub fn truth(args: &TruthArgs) -> Result<TruthDoc, SimulateError> {
    // Refuses PMU options on the systems whose truth has no buses, and the options of one
    // system given for another (they would be ignored without a word).
    let layout = args.pmu.layout(args.system.system())?;
    let foreign = |option: &'static str, given: bool, owner: &str| {
        if given {
            Err(SimulateError::Option { option, reason: format!("applies to --system {owner} only") })
        } else {
            Ok(())
        }
    };
    let is = |system: TruthSystem| args.system == system;
    foreign("--mu", args.mu.is_some() && !is(TruthSystem::Vdp), "vdp")?;
    foreign("--network", args.network.is_some() && !is(TruthSystem::Ieee68), "ieee68")?;
    foreign("--damping-scale", args.damping_scale.is_some() && !is(TruthSystem::Ieee68), "ieee68")?;
    let damping_scale = args.damping_scale.unwrap_or(1.0);
    let mu = args.mu.unwrap_or(1.0);
    Ok(match args.system {
        TruthSystem::Ieee68 => {
            let network = Network::from_name(args.network.as_deref().unwrap_or("pre"))?;
            let linearisation = systems::truth::ieee68_linearisation_scaled(network, damping_scale)?;
            let inter_area = inter_area_indices(&linearisation)?;
            let shapes: Vec<Option<Vec<ShapeEntry>>> = match layout {
                None => linearisation.modes.iter().map(|_| None).collect(),
                Some(layout) => systems::truth::ieee68_pmu_mode_shapes(network, damping_scale, &layout)?
                    .into_iter()
                    .map(|s| Some(shape_entries(&s.shape)))
                    .collect(),
            };
            let modes = linearisation
                .modes
                .iter()
                .zip(shapes)
                .enumerate()
                .map(|(i, (m, pmu_shape))| ModeTruth {
                    frequency_hz: m.frequency_hz,
                    damping_ratio: m.damping_ratio,
                    continuous: ContinuousTruth { re: m.re, im: m.im },
                    kind: if inter_area.contains(&i) { "inter-area" } else { "local" },
                    pmu_shape,
                })
                .collect();
            TruthDoc { system: "ieee68", modes, limit_cycle: None, attractor: None, note: None }
        }
        TruthSystem::Vdp => {
            let cycle = systems::truth::vdp_limit_cycle(mu)?;
            let omega = std::f64::consts::TAU / cycle.period;
            TruthDoc {
                system: "vdp",
                // On the limit cycle the Koopman eigenvalues are k i omega: undamped.
                modes: vec![ModeTruth {
                    frequency_hz: 1.0 / cycle.period,
                    damping_ratio: 0.0,
                    continuous: ContinuousTruth { re: 0.0, im: omega },
                    kind: "limit-cycle",
                    pmu_shape: None,
                }],
                limit_cycle: Some(LimitCycleTruth {
                    mu,
                    period_s: cycle.period,
                    frequency_hz: 1.0 / cycle.period,
                    frequency_rad_per_s: omega,
                    floquet_exponent_per_s: cycle.floquet_exponent,
                    amplitude: cycle.amplitude,
                }),
                attractor: None,
                note: None,
            }
        }
        TruthSystem::Henon => {
            let params = systems::HenonParams::default();
            let attractor = systems::truth::henon_attractor(&params)?;
            TruthDoc {
                system: "henon",
                modes: Vec::new(),
                limit_cycle: None,
                attractor: Some(HenonTruth {
                    a: params.a,
                    b: params.b,
                    jacobian_determinant: attractor.jacobian_determinant,
                    lyapunov_exponent: attractor.lyapunov_exponent,
                    x_range: [attractor.x_range.0, attractor.x_range.1],
                    y_range: [attractor.y_range.0, attractor.y_range.1],
                }),
                note: Some("a chaotic map has no oscillatory modes: compare the attractor's invariants"),
            }
        }
    })
}

/// The indices in `on.modes` of the inter-area modes. A changed network or damping moves
/// the modes, and after line 28-29 opens a local mode (G9's) passes between two of them,
/// so each pre-fault inter-area mode is found again as the mode whose shape is closest
/// to its own (largest MAC), not by its rank in frequency.
fn inter_area_indices(on: &Linearisation) -> Result<Vec<usize>, SimulateError> {
    let pre = systems::truth::ieee68_linearisation(Network::Pre)?;
    let shapes: Vec<Vec<Complex<f64>>> = on.modes.iter().map(|m| on.mode_shape(m)).collect::<Result<_, _>>()?;
    let mut indices = Vec::with_capacity(INTER_AREA_MODES);
    for reference in pre.modes.iter().take(INTER_AREA_MODES) {
        let reference = pre.mode_shape(reference)?;
        let best = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| (i, mac(s, &reference)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        indices.extend(best);
    }
    Ok(indices)
}

/// The modal assurance criterion |a^H b|^2 / (|a|^2 |b|^2): 1 for the same shape.
fn mac(a: &[Complex<f64>], b: &[Complex<f64>]) -> f64 {
    let dot: Complex<f64> = a.iter().zip(b).map(|(x, y)| x.conj() * y).sum();
    let norm = |v: &[Complex<f64>]| v.iter().map(|x| x.norm_sqr()).sum::<f64>();
    dot.norm_sqr() / (norm(a) * norm(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_ignores_scale_and_phase() {
        let a = [Complex::new(1.0, 0.0), Complex::new(0.0, 2.0)];
        let b: Vec<Complex<f64>> = a.iter().map(|x| x * Complex::new(0.0, -3.0)).collect();
        assert!((mac(&a, &b) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn the_inter_area_modes_are_the_published_four_before_and_after_the_fault() {
        let pre = systems::truth::ieee68_linearisation(Network::Pre).unwrap();
        let found: Vec<f64> = inter_area_indices(&pre).unwrap().iter().map(|&i| pre.modes[i].frequency_hz).collect();
        for (f, expected) in found.iter().zip([0.37960, 0.48909, 0.62580, 0.78098]) {
            assert!((f - expected).abs() < 1e-4, "{found:?}");
        }
        let post = systems::truth::ieee68_linearisation(Network::Post).unwrap();
        let found: Vec<f64> = inter_area_indices(&post).unwrap().iter().map(|&i| post.modes[i].frequency_hz).collect();
        for (f, expected) in found.iter().zip([0.374, 0.493, 0.595, 0.782]) {
            assert!((f - expected).abs() < 1e-3, "{found:?}");
        }
    }
}
