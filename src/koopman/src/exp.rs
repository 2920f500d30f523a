//! exp over a slice, branch-free so that it vectorises: the RBF part of the lifting
//! evaluates one exponential per centre per sample, and libm's scalar `exp` (a call with
//! branches per value) was the largest cost of lifting a few dozen centres.
//!
//! Method: x = k ln 2 + r with k = round(x / ln 2) and |r| <= ln 2 / 2 (ln 2 split in a
//! high part exact in 32 bits and a low part, so r is exact), exp(r) by its Taylor series
//! to degree 13 (truncation below 2e-16 relative on that interval) in Horner form, and
//! 2^k assembled in the exponent bits. Within 2 ulp of the correctly rounded value for
//! x in [-708, 709]; below that the result is 0 (exp(-708) is 3e-308), above it +inf.

use pulp::{Arch, Simd, WithSimd};

const LOG2_E: f64 = std::f64::consts::LOG2_E;
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// 1/j! for j = 13 down to 0 (Horner order).
const INVERSE_FACTORIALS: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

#[inline(always)]
fn exp_one(x: f64) -> f64 {
    let clamped = x.clamp(-708.0, 709.0);
    // Plain multiplies and adds: `mul_add` is a library call where the CPU has no FMA.
    let shifted = clamped * LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    // k * LN2_HI is exact (LN2_HI has 32 trailing zero bits and |k| < 2^11).
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let mut poly = INVERSE_FACTORIALS[0];
    for c in &INVERSE_FACTORIALS[1..] {
        poly = poly * r + c;
    }
    // k as an integer is the difference of the bit patterns (both in [2^52, 2^53)).
    let k_bits = shifted.to_bits().wrapping_sub(ROUNDER.to_bits());
    let two_to_k = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    let value = poly * two_to_k;
    if x < -708.0 {
        0.0
    } else if x > 709.0 {
        f64::INFINITY
    } else {
        value
    }
}

#[cfg(test)]
struct ExpInPlace<'a>(&'a mut [f64]);

#[cfg(test)]
impl WithSimd for ExpInPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        // Plain scalar code: inside the dispatched function the compiler vectorises it
        // with the CPU's width.
        for v in self.0.iter_mut() {
            *v = exp_one(*v);
        }
    }
}

/// values[i] <- exp(values[i]).
#[cfg(test)]
pub(crate) fn exp_in_place(values: &mut [f64]) {
    Arch::new().dispatch(ExpInPlace(values));
}

/// Gaussians below e^-150 (7e-66, more than 17 widths from their centre) are 0. Why:
/// products of such values in the Gram sum and the update are subnormal numbers, which
/// the CPU handles in microcode at a hundred times the cost (measured: a 128-observable
/// RBF model ran 2 to 5 times slower); at 7e-66 even a product of four stays normal.
pub(crate) const GAUSSIAN_CUTOFF: f64 = -150.0;

struct Gaussians<'a> {
    z: &'a [f64],
    centres_by_coordinate: &'a [f64],
    gain: f64,
    out: &'a mut [f64],
}

impl WithSimd for Gaussians<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self { z, centres_by_coordinate, gain, out } = self;
        let count = out.len();
        out.fill(0.0);
        for (zd, centres) in z.iter().zip(centres_by_coordinate.chunks_exact(count)) {
            for (o, c) in out.iter_mut().zip(centres) {
                let d = zd - c;
                *o += d * d;
            }
        }
        for o in out.iter_mut() {
            let exponent = gain * *o;
            *o = if exponent < GAUSSIAN_CUTOFF { 0.0 } else { exp_one(exponent) };
        }
    }
}

/// out[j] = exp(gain * |z - c_j|^2) (0 below [`GAUSSIAN_CUTOFF`]) for the centres c_j, given by coordinate (n x count,
/// row-major): contiguous sweeps over the centres, then the exponentials, in one
/// dispatched function.
pub(crate) fn gaussians_into(z: &[f64], centres_by_coordinate: &[f64], gain: f64, out: &mut [f64]) {
    if out.is_empty() {
        return;
    }
    Arch::new().dispatch(Gaussians { z, centres_by_coordinate, gain, out });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn agrees_with_std_within_two_ulp() {
        let mut xs: Vec<f64> = (0..200_001).map(|i| -708.0 + 1417.0 * i as f64 / 200_000.0).collect();
        xs.extend((0..20_001).map(|i| -1.0 + i as f64 / 10_000.0));
        xs.extend([0.0, -0.0, 1e-300, -1e-300, 0.5 * std::f64::consts::LN_2, -0.5 * std::f64::consts::LN_2]);
        let mut values = xs.clone();
        exp_in_place(&mut values);
        for (x, v) in xs.iter().zip(&values) {
            let reference = x.exp();
            assert!(ulps(*v, reference) <= 2, "exp({x}) = {v}, std gives {reference}");
        }
    }

    #[test]
    fn far_gaussians_are_zero_not_subnormal() {
        let centres = [0.0, 1.0, 20.0, 0.0, 0.0, 0.0];
        let mut out = [f64::NAN; 3];
        gaussians_into(&[0.0, 0.0], &centres, -0.5, &mut out);
        assert_eq!(out[0], 1.0);
        assert!((out[1] - (-0.5f64).exp()).abs() < 1e-16);
        assert_eq!(out[2], 0.0, "exp(-200) is below the cut-off");
    }

    #[test]
    fn saturates_outside_the_range() {
        let mut values = [-1e308, -800.0, -708.5, 710.0, 1e308, f64::NEG_INFINITY, f64::INFINITY];
        exp_in_place(&mut values);
        assert_eq!(values, [0.0, 0.0, 0.0, f64::INFINITY, f64::INFINITY, 0.0, f64::INFINITY]);
    }
}
