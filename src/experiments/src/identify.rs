//! Judging an identified model against ground truth: matching identified modes to true
//! modes by frequency band and mode shape (MAC), and the IEEE 68-bus reference modes.

use koopman::c64;
use koopman::spectrum::Mode;
use systems::{Network, SystemsError};

/// A true mode: frequency, damping and (optionally) its shape on the measured channels.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueMode {
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio (fraction).
    pub damping_ratio: f64,
    /// Shape on the measured channels, in channel order.
    pub shape: Option<Vec<c64>>,
}

/// The identified mode chosen for a true mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchedMode {
    /// Identified frequency in Hz.
    pub frequency_hz: f64,
    /// Identified damping ratio.
    pub damping_ratio: f64,
    /// Modal assurance criterion against the true shape (1 when no shape is known).
    pub mac: f64,
}

impl MatchedMode {
    /// Relative frequency error against `truth`.
    pub fn frequency_error(&self, truth: &TrueMode) -> f64 {
        self.frequency_hz / truth.frequency_hz - 1.0
    }

    /// Damping error in percentage points.
    pub fn damping_error_points(&self, truth: &TrueMode) -> f64 {
        100.0 * (self.damping_ratio - truth.damping_ratio)
    }
}

/// How candidates are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRule {
    /// Candidates lie within this relative frequency band around the true frequency.
    pub band: f64,
    /// A shape match below this MAC is rejected.
    pub min_mac: f64,
    /// Candidates need a damping ratio above this (0 excludes growing modes; a limit cycle
    /// is undamped, so it needs a little room below 0).
    pub min_damping: f64,
}

impl Default for MatchRule {
    fn default() -> Self {
        Self { band: 0.15, min_mac: 0.5, min_damping: 0.0 }
    }
}

/// Modal assurance criterion |a^H b|^2 / (|a|^2 |b|^2): 1 for the same shape.
pub fn mac(a: &[c64], b: &[c64]) -> f64 {
    let inner: c64 = a.iter().zip(b).map(|(x, y)| x.conj() * y).sum();
    let na: f64 = a.iter().map(|x| x.norm_sqr()).sum();
    let nb: f64 = b.iter().map(|x| x.norm_sqr()).sum();
    if na == 0.0 || nb == 0.0 { 0.0 } else { inner.norm_sqr() / (na * nb) }
}

/// For each true mode, the identified mode that matches it, if any. Candidates are
/// oscillatory (Im lambda > 0), unambiguous, with damping in (min_damping, 0.5) and a frequency within
/// the band; with a known true shape the candidate of largest MAC wins if it reaches
/// `min_mac`, otherwise the nearest in frequency wins.
pub fn match_modes(identified: &[Mode], truth: &[TrueMode], rule: MatchRule) -> Vec<Option<MatchedMode>> {
    truth
        .iter()
        .map(|t| {
            let candidates = identified.iter().filter_map(|m| {
                let c = m.continuous?;
                let usable = m.eigenvalue.im > 0.0
                    && !m.flags.ambiguous()
                    && c.damping_ratio > rule.min_damping
                    && c.damping_ratio < 0.5
                    && (c.frequency_hz / t.frequency_hz - 1.0).abs() <= rule.band;
                usable.then(|| MatchedMode {
                    frequency_hz: c.frequency_hz,
                    damping_ratio: c.damping_ratio,
                    mac: t.shape.as_ref().map_or(1.0, |s| mac(&m.shape, s)),
                })
            });
            match &t.shape {
                Some(_) => candidates.max_by(|a, b| a.mac.total_cmp(&b.mac)).filter(|m| m.mac >= rule.min_mac),
                None => candidates.min_by(|a, b| {
                    (a.frequency_hz - t.frequency_hz).abs().total_cmp(&(b.frequency_hz - t.frequency_hz).abs())
                }),
            }
        })
        .collect()
}

/// Which 68-bus channels a shape is taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ieee68Channels {
    /// The 16 speeds.
    Speeds,
    /// The 16 angles, then the 16 speeds.
    AnglesAndSpeeds,
}

/// The four inter-area modes of the 68-bus network, with shapes. They are the four slowest
/// modes of the pre-fault network (0.380, 0.489, 0.626, 0.781 Hz); after the fault each is
/// found on `network` as the mode whose full shape is closest (MAC) to its pre-fault shape,
/// because a local mode (G9) moves between them after line 28-29 opens.
pub fn ieee68_inter_area_modes(network: Network, channels: Ieee68Channels) -> Result<Vec<TrueMode>, SystemsError> {
    let pre = systems::truth::ieee68_linearisation(Network::Pre)?;
    let on = systems::truth::ieee68_linearisation(network)?;
    let shapes_on: Vec<Vec<c64>> = on.modes.iter().map(|m| on.mode_shape(m)).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for reference in pre.modes.iter().take(4) {
        let reference_shape = pre.mode_shape(reference)?;
        let (index, _) = shapes_on
            .iter()
            .enumerate()
            .map(|(i, s)| (i, mac(s, &reference_shape)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("the network has modes");
        let mode = &on.modes[index];
        let shape = &shapes_on[index];
        let shape = match channels {
            Ieee68Channels::Speeds => shape[16..].to_vec(),
            Ieee68Channels::AnglesAndSpeeds => shape.clone(),
        };
        out.push(TrueMode { frequency_hz: mode.frequency_hz, damping_ratio: mode.damping_ratio, shape: Some(shape) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_one_for_scaled_shapes_and_zero_for_orthogonal() {
        let a = [c64::new(1.0, 0.0), c64::new(0.0, 2.0)];
        let b: Vec<c64> = a.iter().map(|x| x * c64::new(0.0, -3.0)).collect();
        assert!((mac(&a, &b) - 1.0).abs() < 1e-15);
        assert_eq!(mac(&[c64::new(1.0, 0.0), c64::new(0.0, 0.0)], &[c64::new(0.0, 0.0), c64::new(1.0, 0.0)]), 0.0);
    }

    #[test]
    fn inter_area_modes_before_and_after_the_fault() {
        let pre = ieee68_inter_area_modes(Network::Pre, Ieee68Channels::Speeds).unwrap();
        let expected = [0.37960, 0.48909, 0.62580, 0.78098];
        for (m, f) in pre.iter().zip(expected) {
            assert!((m.frequency_hz - f).abs() < 1e-4, "{} vs {f}", m.frequency_hz);
        }
        let post = ieee68_inter_area_modes(Network::Post, Ieee68Channels::Speeds).unwrap();
        let freqs: Vec<f64> = post.iter().map(|m| m.frequency_hz).collect();
        // At the post-fault equilibrium: 0.374, 0.493, 0.595, 0.782 Hz (the G9 local mode
        // at 0.772 Hz lies between the last two and is not picked).
        for (f, e) in freqs.iter().zip([0.3738, 0.4927, 0.5950, 0.7819]) {
            assert!((f - e).abs() < 1e-3, "{freqs:?}");
        }
    }
}
