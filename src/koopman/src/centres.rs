//! Choosing RBF centres from the warm-up window: seeded k-means++ seeding followed by a
//! fixed number of Lloyd iterations, so the same window and seed always give the same centres.

use crate::rng::SplitMix64;

const LLOYD_ITERATIONS: usize = 25;

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Picks `k` centres among `points` (row-major, `dim` columns). Returns k x dim row-major.
pub(crate) fn kmeans(points: &[f64], dim: usize, k: usize, seed: u64) -> Vec<f64> {
    let count = points.len() / dim;
    assert!(count > 0 && k > 0, "k-means needs points and centres");
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut rng = SplitMix64::new(seed);
    let mut centres = Vec::with_capacity(k * dim);
    let first = (rng.uniform() * count as f64) as usize % count;
    centres.extend_from_slice(row(first));
    // Distance from every point to its nearest chosen centre.
    let mut nearest: Vec<f64> = (0..count).map(|i| squared_distance(row(i), row(first))).collect();
    for _ in 1..k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            // Sample proportionally to the squared distance (the k-means++ rule).
            let target = rng.uniform() * total;
            let mut acc = 0.0;
            nearest
                .iter()
                .position(|d| {
                    acc += d;
                    acc > target
                })
                .unwrap_or(count - 1)
        } else {
            (rng.uniform() * count as f64) as usize % count
        };
        centres.extend_from_slice(row(pick));
        let new_centre = centres.len() / dim - 1;
        for (i, d) in nearest.iter_mut().enumerate() {
            let candidate = squared_distance(row(i), &centres[new_centre * dim..(new_centre + 1) * dim]);
            if candidate < *d {
                *d = candidate;
            }
        }
    }
    lloyd(points, dim, &mut centres);
    centres
}

fn lloyd(points: &[f64], dim: usize, centres: &mut [f64]) {
    let k = centres.len() / dim;
    let mut sums = vec![0.0; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..LLOYD_ITERATIONS {
        sums.fill(0.0);
        counts.fill(0);
        for point in points.chunks_exact(dim) {
            let best = (0..k)
                .map(|c| (c, squared_distance(point, &centres[c * dim..(c + 1) * dim])))
                .fold((0, f64::INFINITY), |best, cur| if cur.1 < best.1 { cur } else { best })
                .0;
            counts[best] += 1;
            for (s, p) in sums[best * dim..(best + 1) * dim].iter_mut().zip(point) {
                *s += p;
            }
        }
        let mut moved = false;
        for c in 0..k {
            // An empty cluster keeps its centre: it was a data point, so it stays sensible.
            if counts[c] == 0 {
                continue;
            }
            for d in 0..dim {
                let updated = sums[c * dim + d] / counts[c] as f64;
                moved |= updated != centres[c * dim + d];
                centres[c * dim + d] = updated;
            }
        }
        if !moved {
            break;
        }
    }
}

/// Mean distance from each centre to its nearest other centre (the default RBF width).
pub(crate) fn mean_nearest_distance(centres: &[f64], dim: usize) -> Option<f64> {
    let k = centres.len() / dim;
    if k < 2 {
        return None;
    }
    let row = |i: usize| &centres[i * dim..(i + 1) * dim];
    let total: f64 = (0..k)
        .map(|i| {
            (0..k).filter(|&j| j != i).map(|j| squared_distance(row(i), row(j))).fold(f64::INFINITY, f64::min).sqrt()
        })
        .sum();
    let mean = total / k as f64;
    (mean.is_finite() && mean > 0.0).then_some(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_well_separated_clusters_reproducibly() {
        let mut rng = SplitMix64::new(3);
        let blobs = [[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]];
        let mut points = Vec::new();
        for i in 0..300 {
            let b = blobs[i % 3];
            points.push(b[0] + 0.1 * rng.normal());
            points.push(b[1] + 0.1 * rng.normal());
        }
        let c1 = kmeans(&points, 2, 3, 11);
        assert_eq!(c1, kmeans(&points, 2, 3, 11));
        for b in blobs {
            let nearest = c1.chunks_exact(2).map(|c| squared_distance(c, &b).sqrt()).fold(f64::INFINITY, f64::min);
            assert!(nearest < 0.05, "blob {b:?} missed: {c1:?}");
        }
        let width = mean_nearest_distance(&c1, 2).unwrap();
        assert!(width > 9.0 && width < 10.0, "{width}");
    }

    #[test]
    fn more_centres_than_distinct_points_does_not_panic() {
        let points = vec![1.0, 1.0, 1.0, 1.0];
        let c = kmeans(&points, 2, 3, 0);
        assert_eq!(c.len(), 6);
        assert_eq!(mean_nearest_distance(&c, 2), None);
    }
}
