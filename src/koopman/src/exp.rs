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

/// exp(x) for every x (the general form, against which the tests check the Gaussian path).
#[cfg(test)]
#[inline(always)]
fn exp_one(x: f64) -> f64 {
    let value = exp_in_range(x.clamp(-708.0, 709.0));
    if x < -708.0 {
        0.0
    } else if x > 709.0 {
        f64::INFINITY
    } else {
        value
    }
}

/// exp(x) for x in [-708, 709] (no range handling).
#[inline(always)]
fn exp_in_range(x: f64) -> f64 {
    // Plain multiplies and adds: `mul_add` is a library call where the CPU has no FMA.
    let shifted = x * LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    // k * LN2_HI is exact (LN2_HI has 32 trailing zero bits and |k| < 2^11).
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut poly = INVERSE_FACTORIALS[0];
    for c in &INVERSE_FACTORIALS[1..] {
        poly = poly * r + c;
    }
    // k as an integer is the difference of the bit patterns (both in [2^52, 2^53)).
    let k_bits = shifted.to_bits().wrapping_sub(ROUNDER.to_bits());
    let two_to_k = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    poly * two_to_k
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

    /// In chunks of [`CHUNK`] centres held in fixed-size arrays: every loop has a constant
    /// length, so all of it vectorises, including the exponentials of a last partial chunk
    /// (the centres are stored padded to whole chunks). With slices of the exact length,
    /// the remainder after the last full vector ran as scalar code: the 14-step polynomial
    /// one value at a time, a third of the lifting at 6 centres. The exponent is never
    /// positive (the gain is negative), and below the cut-off the value is 0, so the
    /// polynomial needs no range handling: it is evaluated at max(exponent, cut-off).
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self { z, centres_by_coordinate, gain, out } = self;
        let count = out.len();
        let stride = padded(count);
        for start in (0..count).step_by(CHUNK) {
            let mut squared = [0.0f64; CHUNK];
            for (&zd, centres) in z.iter().zip(centres_by_coordinate.chunks_exact(stride)) {
                let c: &[f64; CHUNK] = centres[start..start + CHUNK].try_into().expect("padded to whole chunks");
                for (s, ck) in squared.iter_mut().zip(c) {
                    let d = zd - ck;
                    *s += d * d;
                }
            }
            let mut values = [0.0f64; CHUNK];
            for (v, s) in values.iter_mut().zip(squared) {
                let exponent = gain * s;
                let value = exp_in_range(exponent.max(GAUSSIAN_CUTOFF));
                *v = if exponent < GAUSSIAN_CUTOFF { 0.0 } else { value };
            }
            for (o, v) in out[start..].iter_mut().zip(values) {
                *o = v;
            }
        }
    }
}

/// Centres per chunk of the Gaussian evaluation: two AVX2 vectors, or one AVX-512 vector.
const CHUNK: usize = 8;

fn padded(count: usize) -> usize {
    count.div_ceil(CHUNK) * CHUNK
}

/// Row-major count x n centres as the layout [`gaussians_into`] reads: n rows (one per
/// coordinate) of the count centres' values, each row padded with zeros to whole chunks.
pub(crate) fn centres_by_coordinate(centres: &[f64], n: usize) -> Vec<f64> {
    let count = centres.len() / n.max(1);
    let stride = padded(count);
    let mut out = vec![0.0; n * stride];
    for (k, centre) in centres.chunks_exact(n).enumerate() {
        for (d, &value) in centre.iter().enumerate() {
            out[d * stride + k] = value;
        }
    }
    out
}

/// out[j] = exp(gain * |z - c_j|^2) (0 below [`GAUSSIAN_CUTOFF`]) for the centres c_j in
/// the layout of [`centres_by_coordinate`], gain < 0: contiguous sweeps over the centres,
/// then the exponentials, in one dispatched function.
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
        let centres = centres_by_coordinate(&[0.0, 0.0, 1.0, 0.0, 20.0, 0.0], 2);
        let mut out = [f64::NAN; 3];
        gaussians_into(&[0.0, 0.0], &centres, -0.5, &mut out);
        assert_eq!(out[0], 1.0);
        assert!((out[1] - (-0.5f64).exp()).abs() < 1e-16);
        assert_eq!(out[2], 0.0, "exp(-200) is below the cut-off");
    }

    /// Every chunk and partial chunk gives the plain per-centre formula, bit for bit (the
    /// same operations in the same order).
    #[test]
    fn gaussians_match_the_plain_formula_across_chunk_boundaries() {
        let n = 3;
        let z = [0.3, -1.2, 0.7];
        for count in [1, 5, 7, 8, 9, 16, 17, 30] {
            let centres: Vec<f64> = (0..count * n).map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5).collect();
            let mut out = vec![f64::NAN; count];
            gaussians_into(&z, &centres_by_coordinate(&centres, n), -0.8, &mut out);
            for k in 0..count {
                let squared = (0..n).fold(0.0, |s, d| {
                    let diff = z[d] - centres[k * n + d];
                    s + diff * diff
                });
                let mut expected = [-0.8 * squared];
                exp_in_place(&mut expected);
                assert_eq!(out[k].to_bits(), expected[0].to_bits(), "count {count}, centre {k}");
            }
        }
    }

    #[test]
    fn saturates_outside_the_range() {
        let mut values = [-1e308, -800.0, -708.5, 710.0, 1e308, f64::NEG_INFINITY, f64::INFINITY];
        exp_in_place(&mut values);
        assert_eq!(values, [0.0, 0.0, 0.0, f64::INFINITY, f64::INFINITY, 0.0, f64::INFINITY]);
    }
}
