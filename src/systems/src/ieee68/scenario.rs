//! Scenarios of the 68-bus system (fault ring-down, ambient load noise) and the mapping
//! from states to the recorded channels (angles with a chosen reference, speeds).

use super::Ieee68Model;
use super::ambient::AmbientSystem;
use super::data::N_MACHINES;
use super::swing::{PowerCoefficients, SwingEquations};
use crate::error::{SystemsError, require};
use crate::integrate::{OdeSystem, Rk4, SampleGrid, sample_trajectory};
use crate::rng::Rng;

/// Three-phase fault at bus 29, cleared by opening line 28–29.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultParams {
    /// Fault inception time (s); default 1.0, so records begin with a second of steady state.
    pub start: f64,
    /// Fault duration until clearing (s); default 0.05 (data16m's near-end clearing; its
    /// far end clears at 0.1).
    pub clearing_time: f64,
}

impl Default for FaultParams {
    fn default() -> Self {
        Self { start: 1.0, clearing_time: 0.05 }
    }
}

/// Ambient operation: random load fluctuations on the intact network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmbientParams {
    /// White-noise intensity σ (1/√s) of the relative load changes ε_l: a load's average
    /// over a window τ fluctuates by about σ/√τ. Default 0.005 (0.5 % over one second),
    /// which gives speed deviations of a few 1e-4 pu and inter-area angle swings of about
    /// one degree.
    pub load_noise_intensity: f64,
}

impl Default for AmbientParams {
    fn default() -> Self {
        Self { load_noise_intensity: 0.005 }
    }
}

/// What happens to the 68-bus system during the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ieee68Scenario {
    /// Fault at bus 29, then post-fault network (ring-down).
    Fault(FaultParams),
    /// Random load fluctuations around the operating point.
    Ambient(AmbientParams),
}

impl Default for Ieee68Scenario {
    fn default() -> Self {
        Self::Fault(FaultParams::default())
    }
}

impl Ieee68Scenario {
    /// Parses `fault` or `ambient` (with default parameters).
    pub fn from_name(name: &str) -> Result<Self, SystemsError> {
        match name {
            "fault" => Ok(Self::Fault(FaultParams::default())),
            "ambient" => Ok(Self::Ambient(AmbientParams::default())),
            _ => Err(SystemsError::UnknownName { what: "scenario", name: name.to_owned() }),
        }
    }
}

/// Reference of the recorded rotor angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AngleReference {
    /// The state itself: angles in the 60 Hz synchronous frame (default). They match the
    /// linearised model's states, but drift slowly if the common frequency moves.
    #[default]
    Absolute,
    /// Relative to machine `k` (1-based, e.g. 13 for the swing machine G13); that
    /// machine's own channel is then identically zero.
    Machine(usize),
    /// Relative to the centre of inertia Σ M_i δ_i / Σ M_i.
    CenterOfInertia,
}

/// The swing equations in effect: the model's, or the damping-scaled ones after the change.
struct DampingSwitch<'a> {
    before: &'a SwingEquations,
    after: Option<(f64, &'a SwingEquations)>,
    late: bool,
}

impl<'a> DampingSwitch<'a> {
    fn of(model: &'a Ieee68Model) -> Self {
        Self { before: &model.swing, after: model.damping_change.as_ref().map(|(at, s)| (*at, s)), late: false }
    }

    /// Steps never straddle the change (it is a breakpoint): the midpoint decides.
    fn begin_step(&mut self, midpoint: f64) {
        self.late = self.after.is_some_and(|(at, _)| midpoint > at);
    }

    fn swing(&self) -> &'a SwingEquations {
        match self.after {
            Some((_, after)) if self.late => after,
            _ => self.before,
        }
    }

    fn breakpoints(&self) -> Vec<f64> {
        self.after.map(|(at, _)| at).into_iter().collect()
    }
}

/// The swing equations with the network switched at the fault and clearing instants.
struct FaultSystem<'a> {
    swing: DampingSwitch<'a>,
    networks: [&'a PowerCoefficients; 3],
    switch_times: [f64; 2],
    active: usize,
}

impl OdeSystem for FaultSystem<'_> {
    fn dim(&self) -> usize {
        2 * N_MACHINES
    }

    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        self.swing.swing().rhs(self.networks[self.active], x, dx);
    }

    fn begin_step(&mut self, t: f64, h: f64) {
        // Steps never straddle a switching time (they are breakpoints), so the midpoint
        // tells which network the whole step belongs to.
        let midpoint = t + 0.5 * h;
        self.active = self.switch_times.iter().filter(|&&s| midpoint > s).count();
        self.swing.begin_step(midpoint);
    }
}

impl Ieee68Model {
    /// Integrates `scenario` from `x0` and returns the states on `grid`, row-major.
    /// Process noise (ambient) is drawn from `rng`.
    pub fn simulate_states(
        &self,
        scenario: &Ieee68Scenario,
        x0: &[f64],
        grid: &SampleGrid,
        integrator: &mut Rk4,
        rng: Rng,
    ) -> Result<Vec<f64>, SystemsError> {
        require(x0.len() == 2 * N_MACHINES, "initial_state", "needs 32 values")?;
        match *scenario {
            Ieee68Scenario::Fault(fault) => {
                require(fault.start.is_finite() && fault.start >= 0.0, "fault_start", "must be >= 0")?;
                require(
                    fault.clearing_time.is_finite() && fault.clearing_time > 0.0,
                    "clearing_time",
                    "must be positive",
                )?;
                let switch_times = [fault.start, fault.start + fault.clearing_time];
                let swing = DampingSwitch::of(self);
                let mut breakpoints = swing.breakpoints();
                breakpoints.extend(switch_times);
                breakpoints.sort_by(f64::total_cmp);
                let mut system =
                    FaultSystem { swing, networks: [&self.pre, &self.fault_on, &self.post], switch_times, active: 0 };
                Ok(sample_trajectory(&mut system, integrator, x0, grid, &breakpoints))
            }
            Ieee68Scenario::Ambient(ambient) => {
                let sigma = ambient.load_noise_intensity;
                require(sigma.is_finite() && sigma >= 0.0, "load_noise_intensity", "must be >= 0")?;
                let swing = DampingSwitch::of(self);
                let breakpoints = swing.breakpoints();
                let mut system = AmbientSystem::new(swing.before, swing.after, &self.load_coupling, sigma, rng);
                Ok(sample_trajectory(&mut system, integrator, x0, grid, &breakpoints))
            }
        }
    }

    /// Channel names: `delta_g1`..`delta_g16`, then `omega_g1`..`omega_g16`.
    pub fn channel_names() -> Vec<String> {
        let angles = (1..=N_MACHINES).map(|i| format!("delta_g{i}"));
        angles.chain((1..=N_MACHINES).map(|i| format!("omega_g{i}"))).collect()
    }

    /// Converts row-major states into recorded channels: angles (rad) relative to
    /// `reference`, speeds (pu) unchanged.
    pub fn outputs(&self, states: &[f64], reference: AngleReference) -> Result<Vec<f64>, SystemsError> {
        if let AngleReference::Machine(k) = reference {
            require((1..=N_MACHINES).contains(&k), "angle_reference", "machine must be 1..16")?;
        }
        let total_inertia: f64 = self.swing.inertia.iter().sum();
        let mut out = states.to_vec();
        for row in out.chunks_exact_mut(2 * N_MACHINES) {
            let offset = match reference {
                AngleReference::Absolute => 0.0,
                AngleReference::Machine(k) => row[k - 1],
                AngleReference::CenterOfInertia => {
                    row.iter().zip(&self.swing.inertia).map(|(d, m)| d * m).sum::<f64>() / total_inertia
                }
            };
            for delta in &mut row[..N_MACHINES] {
                *delta -= offset;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ieee68::{N_MACHINES, Network, SWING_MACHINE};

    #[test]
    fn fault_ring_down_settles_at_the_post_fault_equilibrium() {
        let model = Ieee68Model::new().unwrap();
        let lin = model.linearise(Network::Post).unwrap();
        let grid = SampleGrid::from_rate(40.0, 5.0).unwrap();
        let fault = Ieee68Scenario::Fault(FaultParams::default());
        let states = model
            .simulate_states(&fault, &model.operating_point(), &grid, &mut Rk4::new(0.01).unwrap(), Rng::new(0))
            .unwrap();
        let last = &states[states.len() - 2 * N_MACHINES..];
        let reference = SWING_MACHINE;
        for i in 0..N_MACHINES {
            let simulated = last[i] - last[reference];
            let equilibrium = lin.operating_point[i] - lin.operating_point[reference];
            assert!((simulated - equilibrium).abs() < 2e-3, "G{}: {simulated} vs {equilibrium}", i + 1);
            assert!((last[N_MACHINES + i] - 1.0 - lin.speed_offset).abs() < 1e-5);
        }
    }

    #[test]
    fn fault_rings_down_and_ambient_stays_bounded() {
        let model = Ieee68Model::new().unwrap();
        let grid = SampleGrid::from_rate(15.0, 30.0).unwrap();
        let x0 = model.operating_point();
        let speed_deviation = |row: &[f64]| row[N_MACHINES..].iter().map(|w| (w - 1.0).abs()).fold(0.0, f64::max);
        for clearing_time in [0.05, 0.1] {
            let fault = Ieee68Scenario::Fault(FaultParams { start: 1.0, clearing_time });
            let states =
                model.simulate_states(&fault, &x0, &grid, &mut Rk4::new(1.0 / 240.0).unwrap(), Rng::new(0)).unwrap();
            let rows: Vec<&[f64]> = states.chunks(2 * N_MACHINES).collect();
            let early = rows[..90].iter().map(|r| speed_deviation(r)).fold(0.0, f64::max);
            let late = rows[rows.len() - 30..].iter().map(|r| speed_deviation(r)).fold(0.0, f64::max);
            println!("fault cleared in {clearing_time} s: max |w - 1| first 3 s {early:e}, last second {late:e}");
            assert!(rows[..30].iter().all(|r| speed_deviation(r) < 1e-12), "steady before the fault");
            // The speeds settle near 1 + 3e-4 (the post-fault common frequency).
            assert!(early > 1e-3 && late < 0.2 * early);
        }

        let ambient = Ieee68Scenario::Ambient(AmbientParams::default());
        let states =
            model.simulate_states(&ambient, &x0, &grid, &mut Rk4::new(1.0 / 240.0).unwrap(), Rng::new(1)).unwrap();
        let worst = states.chunks(2 * N_MACHINES).map(speed_deviation).fold(0.0, f64::max);
        let angle_swing =
            states.chunks(2 * N_MACHINES).map(|r| (r[0] - r[12] - (x0[0] - x0[12])).abs()).fold(0.0, f64::max);
        println!("ambient: max speed deviation {worst:e}, max G1-G13 angle change {angle_swing:e}");
        assert!(worst > 1e-6 && worst < 1e-2 && angle_swing < 0.2);
    }

    #[test]
    fn angle_references() {
        let model = Ieee68Model::new().unwrap();
        let x0 = model.operating_point();
        let to_g13 = model.outputs(&x0, AngleReference::Machine(13)).unwrap();
        assert_eq!(to_g13[12], 0.0);
        assert!((to_g13[0] - (x0[0] - x0[12])).abs() < 1e-15);
        let coi = model.outputs(&x0, AngleReference::CenterOfInertia).unwrap();
        let weighted: f64 = coi[..N_MACHINES].iter().zip(model.inertia()).map(|(d, m)| d * m).sum();
        assert!(weighted.abs() < 1e-9);
        assert_eq!(model.outputs(&x0, AngleReference::Absolute).unwrap(), x0);
        assert!(model.outputs(&x0, AngleReference::Machine(17)).is_err());
        assert_eq!(Ieee68Model::channel_names()[16], "omega_g1");
    }
}
