//! The mode meter: from the eigenvalues of each refresh to a few tracked physical modes
//! with stable ids, and the alarms an operator acts on.
//!
//! At every eigen refresh the meter receives the modal analysis of the stream's model
//! ([`koopman::spectrum::analyse`]: eigenvalues, shapes, energies, confidence intervals)
//! and the time of the model's newest sample. It
//!
//! 1. classifies every eigenvalue ([`classify`]): a candidate is an eigenvalue of positive
//!    frequency inside the band, without an ambiguity flag (near zero, near Nyquist,
//!    negative real), whose conjugate pair carries at least the minimum energy;
//! 2. assigns candidates to tracks ([`Tracker`]) by continuous-eigenvalue distance and
//!    shape MAC (each channel divided by its scale); a track becomes a physical mode after
//!    it has been seen in `persist` consecutive refreshes, and dies after `miss`
//!    consecutive refreshes without a match; a born track may continue on an eigenvalue
//!    whose energy is below the minimum but not below half of it (hysteresis,
//!    [`classify::KEEP_ENERGY_FRACTION`]); ids are never reused;
//! 3. runs each physical mode's alarm and change detectors ([`alarm`]).
//!
//! No I/O and no clock: times are arguments, in seconds of the stream's own time axis.

pub mod alarm;
pub mod classify;
pub mod settings;
pub mod tracker;

pub use alarm::{AlarmEvent, AlarmRecord, Detector, Reading, Severity};
pub use classify::{Candidate, Classified, Verdict};
pub use settings::{AlarmSettings, MeterSettings};
pub use tracker::{ALARM_HISTORY, Meter, MeterEvent, Refresh, Track, TrackedMode};
