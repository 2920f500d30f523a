//! Deterministic, seeded simulators of the koopstream test systems: Van der Pol
//! oscillator, ring of Van der Pol oscillators, Hénon map, and the IEEE 68-bus,
//! 16-machine power system (classical model), with measurement models and ground truth.
//!
//! Everything is reproducible: a [`SimulationRequest`] with the same seed yields the same
//! [`Trajectory`] bit for bit. No clocks, no I/O besides the data embedded at compile time.
//!
//! # Simulating
//!
//! [`simulate`] runs a request and returns a [`Trajectory`] (channel names, times, row-major
//! values), which [`Trajectory::write_csv`] writes as `t,<names>` CSV (`NaN` for dropouts).
//!
//! ```
//! use systems::{MeasurementModel, NoiseLevel, SimulationRequest, SystemSpec, simulate};
//!
//! // koopstream simulate --system vdp --duration 20 --rate 10 --snr 30 --seed 7
//! let request = SimulationRequest::new(SystemSpec::from_name("vdp", None)?)
//!     .with_duration(20.0)
//!     .with_rate(10.0)
//!     .with_seed(7)
//!     .with_measurement(MeasurementModel {
//!         noise: Some(NoiseLevel::SnrDb(30.0)),
//!         ..MeasurementModel::clean()
//!     });
//! let trajectory = simulate(&request)?;
//! assert_eq!(trajectory.names(), ["x1", "x2"]);
//! let mut csv = Vec::new();
//! trajectory.write_csv(&mut csv).expect("writing to memory");
//! # Ok::<(), systems::SystemsError>(())
//! ```
//!
//! Systems ([`SystemSpec::from_name`] names, state order = CSV column order):
//!
//! | name | states / channels | defaults |
//! |---|---|---|
//! | `vdp` | `x1`, `x2` | mu = 1; x0 ~ U[−2, 2]²; 30 s at 10 Hz; RK4 step 0.01 s |
//! | `vdp-ring` | `x1..xn` = positions, `x{n+1}..x{2n}` = velocities | n = 10, mu = 1, c = 0.2, no detuning; x0 ~ U[−2, 2]^(2n); as `vdp` |
//! | `henon` | `x1` = x, `x2` = y; t = iterate index | a = 1.4, b = 0.3, 100 transient iterates from U[−0.5, 0.5]² (escaping starts redrawn); duration = 1000 iterates |
//! | `ieee68` | `delta_g1..delta_g16` (rad), `omega_g1..omega_g16` (pu) | scenario `fault`; absolute angles; 20 s at 60 frames/s; RK4 step 1/240 s |
//!
//! IEEE 68-bus scenarios ([`Ieee68Scenario`]): `fault` — a bolted three-phase fault at
//! bus 29 (bus grounded in the Kron reduction) from t = 1.0 s for 0.05 s, cleared by
//! opening line 28–29, then the post-fault network; `ambient` — the pre-fault network
//! driven by white-noise fluctuations of every load admittance (held constant over each
//! internal step with std σ/√h, σ = 0.005/√s by default). Recorded angles can be
//! absolute (the model state; default), relative to one machine or to the centre of
//! inertia ([`AngleReference`]).
//!
//! PMU measurements of the 68-bus system ([`SimulationRequest::with_pmu`],
//! [`PmuMeasurement`]): instead of the states, voltage magnitude, angle (relative to a
//! reference bus, default 65), frequency and ROCOF at chosen buses ([`PmuLayout`]), solved
//! from the full network at every output step, with C37.118.1 errors ([`PmuErrors`]:
//! 1 % TVE, 0.005 Hz FE, 0.01 Hz/s RFE met by 99 % of values) before the measurement model.
//!
//! Measurement ([`MeasurementModel`]): Gaussian noise by sigma (global or per channel) or
//! SNR in dB (std of the clean channel × 10^(−SNR/20)), outliers, dropouts (NaN) and
//! time-stamp jitter, each from its own seeded stream.
//!
//! Seeds: one request seed feeds independent streams for the initial state (and ring
//! detuning), the process noise and the measurement model.
//!
//! # Ground truth
//!
//! [`truth`]: [`truth::ieee68_modes`]`(Network::Pre | Network::Post)` gives the
//! oscillatory modes {frequency_hz, damping_ratio, re, im} of the linearised 68-bus
//! system (pre-fault reproduces the published case A; post-fault is linearised at the
//! post-fault equilibrium), [`truth::vdp_limit_cycle`]`(mu)` the period and Floquet
//! exponent, [`truth::henon_jacobian`] and [`truth::henon_attractor`] the map's Jacobian
//! (determinant −b) and attractor statistics.
#![warn(missing_docs)]

pub mod error;
pub mod henon;
pub mod ieee68;
pub mod integrate;
pub mod measurement;
pub mod pmu_error;
pub mod request;
pub mod ring;
pub mod rng;
mod simulate;
pub mod trajectory;
pub mod truth;
pub mod vdp;

pub use error::SystemsError;
pub use ieee68::{
    AmbientParams, AngleReference, FaultParams, Ieee68Scenario, Network, PmuChannel, PmuLayout, PmuOutputMap,
    PmuQuantity,
};
pub use measurement::{MeasurementModel, NoiseLevel, Outliers, SpikeSize};
pub use pmu_error::{PmuErrors, PmuMeasurement};
pub use request::{
    DampingChange, HenonParams, Ieee68Params, SimulationRequest, SystemSpec, VanDerPolParams, VdpRingParams,
};
pub use rng::Rng;
pub use simulate::{simulate, simulate_clean};
pub use trajectory::Trajectory;
