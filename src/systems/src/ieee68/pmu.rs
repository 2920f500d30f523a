//! Clean PMU records of the 68-bus system: bus voltages from the full network at every
//! output step, and the frequency and ROCOF a PMU derives from the voltage angle.
//!
//! At each recorded state the internal EMFs E_j = |E_j| e^{jδ_j} give the bus voltages
//! V = −W E through the network in force at that instant (intact; bus 29 grounded during
//! the fault; line 28–29 open after it), with the constant-impedance loads. The ambient
//! scenario's load fluctuations are white noise held over each 1/240 s integration step;
//! a PMU averages over several cycles, in which they average out (to σ/√τ), so its bus
//! voltages use the nominal load admittances.
//!
//! Frequency is what a PMU computes: f_k = f0 + (θ_k − θ_{k−1}) / (360 (t_k − t_{k−1}))
//! from the *absolute* angle θ (degrees, unwrapped) in the 60 Hz synchronous frame, a
//! backward difference over the reporting interval (it lags by half an interval); the
//! first row uses the first interval's difference. ROCOF is the backward difference of
//! consecutive frequencies in the same way. A bus with no voltage (the grounded fault bus)
//! has no angle: its last angle is held, as a PMU holds its last phase estimate.

use nalgebra::Complex;

use super::data::N_MACHINES;
use super::pmu_layout::{NOMINAL_FREQUENCY_HZ, PmuLayout, PmuQuantity};
use super::{Ieee68Model, Ieee68Scenario};
use crate::error::{SystemsError, require};

type C64 = Complex<f64>;

/// Below this magnitude (pu) a bus voltage has no meaningful angle.
const NO_VOLTAGE: f64 = 1e-9;

/// Which of the model's voltage maps (pre-fault, fault-on, post-fault) is in force.
pub(crate) fn network_index(scenario: &Ieee68Scenario, t: f64) -> usize {
    match scenario {
        Ieee68Scenario::Ambient(_) => 0,
        Ieee68Scenario::Fault(fault) => {
            // Switching instants belong to the network that follows them; the margin keeps
            // a grid time that rounds a hair below the instant on the same side.
            let margin = 1e-9 * (1.0 + t.abs());
            let end = fault.start + fault.clearing_time;
            if t + margin < fault.start {
                0
            } else if t + margin < end {
                1
            } else {
                2
            }
        }
    }
}

/// Voltage magnitude and unwrapped absolute angle (degrees) of one bus over a record.
struct BusSeries {
    magnitude: Vec<f64>,
    angle_deg: Vec<f64>,
}

impl Ieee68Model {
    /// Voltage of bus `bus` (zero-based) with the voltage map `network` at rotor angles
    /// `delta`: V_b = −Σ_j W_bj |E_j| e^{jδ_j}.
    pub(crate) fn bus_voltage(&self, network: usize, delta: &[f64], bus: usize) -> C64 {
        let map = &self.voltage_maps[network];
        -(0..N_MACHINES).map(|j| map[(bus, j)] * C64::from_polar(self.emf[j], delta[j])).sum::<C64>()
    }

    /// All 68 bus voltages (pu, complex, in the synchronous frame) of the intact
    /// (`Network::Pre`) or post-fault network at rotor angles `delta`.
    pub fn bus_voltages(&self, network: super::Network, delta: &[f64]) -> Result<Vec<C64>, SystemsError> {
        super::check_len(delta, N_MACHINES, "delta")?;
        let index = match network {
            super::Network::Pre => 0,
            super::Network::Post => 2,
        };
        Ok((0..super::data::N_BUSES).map(|b| self.bus_voltage(index, delta, b)).collect())
    }

    fn bus_series(&self, scenario: &Ieee68Scenario, times: &[f64], states: &[f64], bus: usize) -> BusSeries {
        let mut magnitude = Vec::with_capacity(times.len());
        let mut angle_deg: Vec<f64> = Vec::with_capacity(times.len());
        for (&t, row) in times.iter().zip(states.chunks_exact(2 * N_MACHINES)) {
            let v = self.bus_voltage(network_index(scenario, t), &row[..N_MACHINES], bus);
            magnitude.push(v.norm());
            let previous = angle_deg.last().copied();
            let angle = match previous {
                _ if v.norm() > NO_VOLTAGE => {
                    let raw = v.arg().to_degrees();
                    // Unwrap: the multiple of 360 that lands nearest the previous angle.
                    previous.map_or(raw, |p| p + (raw - p + 180.0).rem_euclid(360.0) - 180.0)
                }
                Some(p) => p,
                None => 0.0,
            };
            angle_deg.push(angle);
        }
        BusSeries { magnitude, angle_deg }
    }

    /// The clean PMU columns of `layout` (row-major, in [`PmuLayout::channels`] order) for
    /// the states of `scenario` recorded at `times` (at least two samples: frequency is a
    /// difference).
    pub fn pmu_outputs(
        &self,
        scenario: &Ieee68Scenario,
        times: &[f64],
        states: &[f64],
        layout: &PmuLayout,
    ) -> Result<Vec<f64>, SystemsError> {
        layout.validate()?;
        require(times.len() >= 2, "duration", "PMU records need at least two samples (frequency is a difference)")?;
        require(states.len() == times.len() * 2 * N_MACHINES, "states", "need 32 values per sample time")?;
        let reference = self.bus_series(scenario, times, states, layout.reference_bus - 1);
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for &bus in &layout.buses {
            let series = self.bus_series(scenario, times, states, bus - 1);
            let frequency = differences(&series.angle_deg, times, 1.0 / 360.0, NOMINAL_FREQUENCY_HZ);
            for &quantity in &layout.quantities {
                match quantity {
                    PmuQuantity::Vm => columns.push(series.magnitude.clone()),
                    PmuQuantity::Va if bus == layout.reference_bus => {}
                    PmuQuantity::Va => {
                        columns.push(series.angle_deg.iter().zip(&reference.angle_deg).map(|(a, r)| a - r).collect())
                    }
                    PmuQuantity::F => columns.push(frequency.clone()),
                    PmuQuantity::Rocof => columns.push(differences(&frequency, times, 1.0, 0.0)),
                }
            }
        }
        let mut values = Vec::with_capacity(times.len() * columns.len());
        for k in 0..times.len() {
            values.extend(columns.iter().map(|c| c[k]));
        }
        Ok(values)
    }
}

/// offset + scale · (x_k − x_{k−1}) / (t_k − t_{k−1}), the first row taking the first
/// interval's value.
fn differences(x: &[f64], times: &[f64], scale: f64, offset: f64) -> Vec<f64> {
    let rate = |k: usize| offset + scale * (x[k] - x[k - 1]) / (times[k] - times[k - 1]);
    (0..x.len()).map(|k| rate(k.max(1))).collect()
}

#[cfg(test)]
mod tests {
    use super::super::data::Ieee68Data;
    use super::super::{AmbientParams, FaultParams};
    use super::*;
    use crate::integrate::{Rk4, SampleGrid};
    use crate::rng::Rng;

    fn record(scenario: Ieee68Scenario, duration: f64, layout: &PmuLayout) -> (Vec<f64>, Vec<f64>) {
        let model = Ieee68Model::new().unwrap();
        let grid = SampleGrid::from_rate(duration, 60.0).unwrap();
        let mut rk4 = Rk4::new(1.0 / 240.0).unwrap();
        let states = model.simulate_states(&scenario, &model.operating_point(), &grid, &mut rk4, Rng::new(4)).unwrap();
        let times = grid.times();
        let values = model.pmu_outputs(&scenario, &times, &states, layout).unwrap();
        (times, values)
    }

    #[test]
    fn first_row_reproduces_the_power_flow_voltages() {
        let data = Ieee68Data::load().unwrap();
        let layout = PmuLayout {
            buses: (1..=68).collect(),
            quantities: vec![PmuQuantity::Vm, PmuQuantity::Va],
            ..PmuLayout::default()
        };
        let (_, values) = record(Ieee68Scenario::Fault(FaultParams::default()), 0.1, &layout);
        let (mut worst_vm, mut worst_va) = (0.0f64, 0.0f64);
        for (channel, value) in layout.channels().iter().zip(&values) {
            let bus = &data.buses[channel.bus - 1];
            match channel.quantity {
                PmuQuantity::Vm => worst_vm = worst_vm.max((value - bus.v).abs()),
                _ => worst_va = worst_va.max((value - bus.angle_rad.to_degrees()).abs()),
            }
        }
        println!("t = 0 against powerflow.csv: max |dvm| {worst_vm:e} pu, max |dva| {worst_va:e} deg");
        // The tolerance covers the 8 decimals of the published file.
        assert!(worst_vm < 1e-6 && worst_va < 1e-6);
    }

    #[test]
    fn steady_state_frequency_is_nominal_and_rocof_zero() {
        let layout = PmuLayout { quantities: vec![PmuQuantity::F, PmuQuantity::Rocof], ..PmuLayout::default() };
        let quiet = Ieee68Scenario::Ambient(AmbientParams { load_noise_intensity: 0.0 });
        let (_, values) = record(quiet, 2.0, &layout);
        let channels = layout.channels();
        for (i, value) in values.iter().enumerate() {
            let tolerance = if channels[i % channels.len()].quantity == PmuQuantity::F { 1e-9 } else { 1e-6 };
            let expected = if tolerance == 1e-9 { NOMINAL_FREQUENCY_HZ } else { 0.0 };
            assert!((value - expected).abs() < tolerance, "{}: {value}", channels[i % channels.len()].name());
        }
    }

    #[test]
    fn faulted_bus_has_no_voltage_during_the_fault() {
        let layout = PmuLayout { buses: vec![29, 28], ..PmuLayout::default() };
        let fault = FaultParams { start: 1.0, clearing_time: 0.1 };
        let (times, values) = record(Ieee68Scenario::Fault(fault), 2.0, &layout);
        let width = layout.channels().len();
        for (k, t) in times.iter().enumerate() {
            let row = &values[k * width..(k + 1) * width];
            let (vm29, va29, f29) = (row[0], row[1], row[2]);
            let during = *t > 1.0 + 1e-6 && *t < 1.1 - 1e-6;
            if during {
                assert!(vm29 < 1e-9, "t = {t}: |V29| = {vm29}");
                assert!(row[3] > 0.05 && row[3] < 0.9, "bus 28 depressed but alive: {}", row[3]);
            } else if *t < 1.0 - 1e-6 {
                assert!(vm29 > 1.0, "t = {t}: |V29| = {vm29}");
                assert!((f29 - 60.0).abs() < 1e-9);
            }
            assert!(va29.is_finite() && f29.is_finite());
        }
        // After clearing, bus 29 is fed again (through 26–29 only).
        let last = &values[values.len() - width..];
        println!("|V29| at the end: {}", last[0]);
        assert!(last[0] > 0.5);
    }

    #[test]
    fn network_in_force_switches_at_the_fault_instants() {
        let fault = Ieee68Scenario::Fault(FaultParams { start: 1.0, clearing_time: 0.05 });
        let at = |t| network_index(&fault, t);
        assert_eq!((at(0.99), at(1.0), at(1.02), at(1.05), at(3.0)), (0, 1, 1, 2, 2));
        assert_eq!(network_index(&Ieee68Scenario::Ambient(AmbientParams::default()), 1.02), 0);
    }
}
