//! Runs a [`SimulationRequest`]: builds the system and its seeded initial state,
//! integrates or iterates it, names the channels, and applies the measurement model.

use crate::error::{SystemsError, require};
use crate::henon::Henon;
use crate::ieee68::Ieee68Model;
use crate::integrate::{OdeSystem, Rk4, SampleGrid, sample_trajectory};
use crate::measurement::MeasurementModel;
use crate::pmu_error::PmuMeasurement;
use crate::request::{DampingChange, Ieee68Params, SimulationRequest, SystemSpec};
use crate::ring::VdpRing;
use crate::rng::Rng;
use crate::trajectory::Trajectory;
use crate::vdp::VanDerPol;

/// Random-stream numbers (see [`Rng::stream`]) of the request's seed.
const INITIAL_STREAM: u64 = 1;
const PROCESS_STREAM: u64 = 2;
const MEASUREMENT_STREAM: u64 = 3;
const PMU_ERROR_STREAM: u64 = 4;

/// Simulates `request` and returns the measured trajectory (clean if the measurement
/// model is clean). PMU records get their C37.118.1 errors first, then the measurement
/// model. Equal requests give bit-identical results.
pub fn simulate(request: &SimulationRequest) -> Result<Trajectory, SystemsError> {
    let mut record = simulate_clean(request)?;
    if let Some(pmu) = &request.pmu
        && !pmu.errors.is_none()
    {
        let seed = Rng::stream(request.seed, PMU_ERROR_STREAM).next_u64();
        record = pmu.errors.apply(&record, &pmu.layout, seed)?;
    }
    if request.measurement == MeasurementModel::clean() {
        return Ok(record);
    }
    let measurement_seed = Rng::stream(request.seed, MEASUREMENT_STREAM).next_u64();
    request.measurement.apply(&record, measurement_seed)
}

/// Simulates `request` without any measurement error (the true signal; for PMU
/// measurements the error-free PMU quantities).
pub fn simulate_clean(request: &SimulationRequest) -> Result<Trajectory, SystemsError> {
    let system = &request.system;
    let duration = request.duration.unwrap_or_else(|| system.default_duration());
    let rate = request.rate_hz.unwrap_or_else(|| system.default_rate());
    let step = request.integration_step.unwrap_or_else(|| system.default_integration_step());
    let mut initial_rng = Rng::stream(request.seed, INITIAL_STREAM);
    let given = request.initial_state.as_deref();
    if request.pmu.is_some() && !matches!(system, SystemSpec::Ieee68(_)) {
        return Err(SystemsError::InvalidParameter {
            name: "measure",
            reason: format!("only the ieee68 system has PMU measurements, not `{}`", system.name()),
        });
    }
    match *system {
        SystemSpec::VanDerPol(params) => {
            require(params.mu.is_finite(), "mu", "must be finite")?;
            let x0 = initial_state(given, 2, 2.0, &mut initial_rng)?;
            let mut vdp = VanDerPol { mu: params.mu };
            integrate(&mut vdp, &x0, duration, rate, step, numbered_names(2))
        }
        SystemSpec::VdpRing(params) => {
            require(params.detuning.is_finite(), "detuning", "must be finite")?;
            // Detuning is drawn before the initial state so that giving an explicit initial
            // state leaves the frequencies of a seed unchanged.
            let omegas = VdpRing::detuned_frequencies(params.n, params.detuning, &mut initial_rng);
            let mut ring = VdpRing::new(params.mu, params.coupling, &omegas)?;
            let x0 = initial_state(given, 2 * params.n, 2.0, &mut initial_rng)?;
            integrate(&mut ring, &x0, duration, rate, step, numbered_names(2 * params.n))
        }
        SystemSpec::Henon(params) => {
            require(
                duration.is_finite() && (1.0..=1e8).contains(&duration.round()),
                "duration",
                "must be between 1 and 1e8 iterates",
            )?;
            let henon = Henon { a: params.a, b: params.b };
            let start = match given {
                Some(_) => initial_state(given, 2, 0.5, &mut initial_rng)?,
                None => henon_start(&henon, &mut initial_rng)?,
            };
            let points = henon.orbit([start[0], start[1]], params.transient, duration.round() as usize)?;
            let times = (0..points.len()).map(|k| k as f64).collect();
            Trajectory::new(numbered_names(2), times, points.concat())
        }
        SystemSpec::Ieee68(params) => {
            simulate_ieee68(&params, given, duration, rate, step, request.seed, request.pmu.as_ref())
        }
    }
}

fn simulate_ieee68(
    params: &Ieee68Params,
    given: Option<&[f64]>,
    duration: f64,
    rate: f64,
    step: f64,
    seed: u64,
    pmu: Option<&PmuMeasurement>,
) -> Result<Trajectory, SystemsError> {
    if let Some(pmu) = pmu {
        // Checked before the integration, which may take a while.
        pmu.layout.validate()?;
        pmu.errors.validate()?;
    }
    let mut model = Ieee68Model::new()?;
    if params.damping != DampingChange::default() {
        model = model.with_damping_scale(params.damping.scale, params.damping.at)?;
    }
    let x0 = match given {
        Some(x) => x.to_vec(),
        None => model.operating_point(),
    };
    let grid = SampleGrid::from_rate(duration, rate)?;
    let mut integrator = Rk4::new(step)?;
    let process_rng = Rng::stream(seed, PROCESS_STREAM);
    let states = model.simulate_states(&params.scenario, &x0, &grid, &mut integrator, process_rng)?;
    if let Some(pmu) = pmu {
        let times = grid.times();
        let values = model.pmu_outputs(&params.scenario, &times, &states, &pmu.layout)?;
        return Trajectory::new(pmu.layout.channel_names(), times, values);
    }
    let values = model.outputs(&states, params.angle_reference)?;
    Trajectory::new(Ieee68Model::channel_names(), grid.times(), values)
}

/// Integrates an ODE system on a uniform grid and wraps the states as a trajectory.
fn integrate<S: OdeSystem>(
    system: &mut S,
    x0: &[f64],
    duration: f64,
    rate: f64,
    step: f64,
    names: Vec<String>,
) -> Result<Trajectory, SystemsError> {
    let grid = SampleGrid::from_rate(duration, rate)?;
    let mut integrator = Rk4::new(step)?;
    let states = sample_trajectory(system, &mut integrator, x0, &grid, &[]);
    Trajectory::new(names, grid.times(), states)
}

/// The given initial state (checked), or a seeded uniform draw from [−half_width, half_width]^dim.
fn initial_state(given: Option<&[f64]>, dim: usize, half_width: f64, rng: &mut Rng) -> Result<Vec<f64>, SystemsError> {
    match given {
        Some(x) => {
            require(x.len() == dim, "initial_state", &format!("needs {dim} values"))?;
            require(x.iter().all(|v| v.is_finite()), "initial_state", "must be finite")?;
            Ok(x.to_vec())
        }
        None => Ok((0..dim).map(|_| rng.uniform_in(-half_width, half_width)).collect()),
    }
}

/// A seeded start in [−0.5, 0.5]² inside the basin of the attractor: about 11 % of that
/// square escapes to infinity for a = 1.4, b = 0.3, so escaping draws are rejected
/// (an orbit still bounded after 200 iterates has reached the attractor).
fn henon_start(henon: &Henon, rng: &mut Rng) -> Result<Vec<f64>, SystemsError> {
    for _ in 0..1000 {
        let start = [rng.uniform_in(-0.5, 0.5), rng.uniform_in(-0.5, 0.5)];
        if henon.orbit(start, 200, 1).is_ok() {
            return Ok(start.to_vec());
        }
    }
    Err(SystemsError::InvalidParameter {
        name: "a, b",
        reason: "no bounded Hénon orbit starts in [-0.5, 0.5]^2".into(),
    })
}

/// Channel names `x1`, `x2`, … in state order.
fn numbered_names(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("x{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ieee68::{AmbientParams, AngleReference, Ieee68Scenario};
    use crate::measurement::{NoiseLevel, Outliers, SpikeSize};
    use crate::request::{Ieee68Params, VdpRingParams};

    fn noisy() -> MeasurementModel {
        MeasurementModel {
            noise: Some(NoiseLevel::SnrDb(30.0)),
            outliers: Some(Outliers { probability: 0.01, size: SpikeSize::ChannelStds(5.0) }),
            dropout_probability: 0.01,
            timestamp_jitter: 1e-4,
        }
    }

    fn all_systems() -> Vec<SystemSpec> {
        let ambient = Ieee68Params {
            scenario: Ieee68Scenario::Ambient(AmbientParams::default()),
            angle_reference: AngleReference::Machine(13),
            damping: DampingChange::default(),
        };
        vec![
            SystemSpec::from_name("vdp", None).unwrap(),
            SystemSpec::VdpRing(VdpRingParams { detuning: 0.05, ..Default::default() }),
            SystemSpec::from_name("henon", None).unwrap(),
            SystemSpec::Ieee68(ambient),
        ]
    }

    /// Bit-for-bit comparison that treats NaN (dropouts) as equal to NaN.
    fn bits(t: &Trajectory) -> Vec<u64> {
        t.times().iter().chain(t.values()).map(|v| v.to_bits()).collect()
    }

    #[test]
    fn seeded_runs_are_reproducible_bit_for_bit() {
        for system in all_systems() {
            let request = SimulationRequest::new(system).with_duration(5.0).with_seed(11).with_measurement(noisy());
            let a = simulate(&request).unwrap();
            let b = simulate(&request).unwrap();
            assert_eq!(bits(&a), bits(&b), "{}", system.name());
            let c = simulate(&request.clone().with_seed(12)).unwrap();
            assert_ne!(bits(&a), bits(&c), "{}", system.name());
            assert_eq!(a.names(), c.names());
        }
    }

    #[test]
    fn a_damping_change_applies_from_its_time_on() {
        let ambient = |damping| {
            let params = Ieee68Params {
                scenario: Ieee68Scenario::Ambient(AmbientParams::default()),
                angle_reference: AngleReference::Machine(13),
                damping,
            };
            simulate(&SimulationRequest::new(SystemSpec::Ieee68(params)).with_duration(4.0).with_seed(3)).unwrap()
        };
        let base = ambient(DampingChange::default());
        // A change of scale 1 changes nothing, bit for bit (2 s is on the step grid).
        assert_eq!(bits(&ambient(DampingChange { scale: 1.0, at: Some(2.0) })), bits(&base));
        let changed = ambient(DampingChange { scale: 0.1, at: Some(2.0) });
        let width = base.n_columns();
        let rows_before = base.times().iter().filter(|t| **t <= 2.0).count();
        assert_eq!(base.values()[..rows_before * width], changed.values()[..rows_before * width], "same until 2 s");
        assert_ne!(base.values()[rows_before * width..], changed.values()[rows_before * width..], "different after");
        // From the start, the whole record differs.
        let scaled = ambient(DampingChange { scale: 0.1, at: None });
        assert_ne!(base.values()[width..2 * width], scaled.values()[width..2 * width]);
    }

    #[test]
    fn shapes_and_names() {
        let vdp = simulate(&SimulationRequest::new(SystemSpec::from_name("vdp", None).unwrap())).unwrap();
        assert_eq!((vdp.n_rows(), vdp.names()), (301, &["x1".to_string(), "x2".to_string()][..]));
        let ring = simulate(&SimulationRequest::new(all_systems()[1]).with_duration(1.0)).unwrap();
        assert_eq!((ring.n_columns(), ring.names()[19].as_str()), (20, "x20"));
        let henon = simulate(&SimulationRequest::new(all_systems()[2])).unwrap();
        assert_eq!((henon.n_rows(), henon.times()[999]), (1000, 999.0));
        let grid = simulate(&SimulationRequest::new(all_systems()[3]).with_duration(1.0).with_rate(30.0)).unwrap();
        assert_eq!((grid.n_rows(), grid.n_columns()), (31, 32));
        assert_eq!(grid.names()[0], "delta_g1");
        assert!(grid.column(12).iter().all(|&d| d == 0.0), "angles relative to G13");
    }

    #[test]
    fn given_initial_state_is_used_and_checked() {
        let request = SimulationRequest::new(SystemSpec::from_name("vdp", None).unwrap())
            .with_duration(1.0)
            .with_initial_state(vec![2.0, 0.0]);
        assert_eq!(simulate(&request).unwrap().row(0), &[2.0, 0.0]);
        assert!(simulate(&request.with_initial_state(vec![1.0])).is_err());
    }

    #[test]
    fn pmu_records_of_both_scenarios_with_errors_and_noise_on_top() {
        let pmu = PmuMeasurement::default();
        for scenario in ["ambient", "fault"] {
            let request = SimulationRequest::new(SystemSpec::from_name("ieee68", Some(scenario)).unwrap())
                .with_duration(2.0)
                .with_seed(5)
                .with_pmu(pmu.clone());
            let clean = simulate_clean(&request).unwrap();
            assert_eq!(clean.names(), pmu.layout.channel_names());
            assert_eq!(clean.n_rows(), 121);
            let with_errors = simulate(&request).unwrap();
            assert_ne!(bits(&clean), bits(&with_errors));
            let noisy = request.clone().with_measurement(noisy());
            assert_eq!(bits(&simulate(&noisy).unwrap()), bits(&simulate(&noisy).unwrap()), "{scenario}");
            // Frequencies stay near 60 Hz; ambient angles stay near the power flow's.
            let f = clean.column(clean.column_index("b2_f").unwrap());
            assert!(f.iter().all(|f| (f - 60.0).abs() < 0.5), "{scenario}");
        }
        let ambient = SimulationRequest::new(SystemSpec::from_name("ieee68", Some("ambient")).unwrap())
            .with_duration(10.0)
            .with_pmu(PmuMeasurement { errors: crate::PmuErrors::none(), ..pmu.clone() });
        let record = simulate(&ambient).unwrap();
        let va = record.column(record.column_index("b41_va").unwrap());
        let swing = va.iter().map(|a| (a - va[0]).abs()).fold(0.0, f64::max);
        assert!(swing > 1e-4 && swing < 5.0, "ambient angle of bus 41 moves by {swing} deg");
    }

    #[test]
    fn pmu_requests_are_checked() {
        let vdp = SimulationRequest::new(SystemSpec::from_name("vdp", None).unwrap()).with_pmu(Default::default());
        assert!(simulate(&vdp).unwrap_err().to_string().contains("only the ieee68 system"));
        let ieee68 = SimulationRequest::new(SystemSpec::from_name("ieee68", None).unwrap());
        let one_sample = ieee68.clone().with_duration(0.0).with_pmu(Default::default());
        assert!(simulate(&one_sample).unwrap_err().to_string().contains("at least two samples"));
        let mut bad = PmuMeasurement::default();
        bad.layout.buses = vec![70];
        assert!(simulate(&ieee68.with_pmu(bad)).is_err());
    }

    #[test]
    fn clean_request_skips_measurement_and_noisy_one_differs() {
        let request = SimulationRequest::new(SystemSpec::from_name("vdp", None).unwrap()).with_seed(3);
        let clean = simulate(&request).unwrap();
        assert_eq!(clean, simulate_clean(&request).unwrap());
        let noisy = simulate(&request.with_measurement(noisy())).unwrap();
        assert_ne!(bits(&clean), bits(&noisy));
    }
}
