//! Hénon map x' = 1 − a x² + y, y' = b x: orbits, Jacobian, and attractor statistics.

use crate::error::{SystemsError, require};

/// The Hénon map with parameters `a` and `b` (classical chaotic values 1.4 and 0.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Henon {
    /// Quadratic parameter a.
    pub a: f64,
    /// Contraction parameter b (the Jacobian determinant is −b).
    pub b: f64,
}

impl Default for Henon {
    fn default() -> Self {
        Self { a: 1.4, b: 0.3 }
    }
}

/// Statistics of a long orbit on the attractor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HenonAttractor {
    /// Determinant of the Jacobian (−b everywhere).
    pub jacobian_determinant: f64,
    /// Largest Lyapunov exponent per iterate (≈ 0.418 for a = 1.4, b = 0.3).
    pub lyapunov_exponent: f64,
    /// Smallest and largest x visited.
    pub x_range: (f64, f64),
    /// Smallest and largest y visited.
    pub y_range: (f64, f64),
}

impl Henon {
    /// One iterate of the map.
    pub fn step(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [1.0 - self.a * x * x + y, self.b * x]
    }

    /// Jacobian [[−2 a x, 1], [b, 0]] at (x, y).
    pub fn jacobian(&self, [x, _y]: [f64; 2]) -> [[f64; 2]; 2] {
        [[-2.0 * self.a * x, 1.0], [self.b, 0.0]]
    }

    /// Discards `transient` iterates from `start`, then returns the next `count` points.
    ///
    /// Fails if the orbit escapes to infinity (parameters or start outside the basin).
    pub fn orbit(&self, start: [f64; 2], transient: usize, count: usize) -> Result<Vec<[f64; 2]>, SystemsError> {
        let mut point = start;
        for _ in 0..transient {
            point = self.step(point);
        }
        let mut points = Vec::with_capacity(count);
        for _ in 0..count {
            points.push(point);
            point = self.step(point);
        }
        require(
            points.iter().flatten().all(|v| v.is_finite() && v.abs() < 1e6),
            "initial_state",
            "the Hénon orbit escapes to infinity",
        )?;
        Ok(points)
    }

    /// Attractor statistics over `iterates` points after 1000 transient iterates from (0, 0).
    ///
    /// The Lyapunov exponent is the mean log growth of a tangent vector that is pushed
    /// through the Jacobian and renormalised every iterate.
    pub fn attractor(&self, iterates: usize) -> Result<HenonAttractor, SystemsError> {
        require(iterates > 0, "iterates", "must be positive")?;
        let points = self.orbit([0.0, 0.0], 1000, iterates)?;
        let mut tangent = [1.0, 0.0];
        let mut log_growth = 0.0;
        let mut x_range = (f64::INFINITY, f64::NEG_INFINITY);
        let mut y_range = x_range;
        for &point in &points {
            let j = self.jacobian(point);
            let next = [j[0][0] * tangent[0] + j[0][1] * tangent[1], j[1][0] * tangent[0] + j[1][1] * tangent[1]];
            let norm = next[0].hypot(next[1]);
            log_growth += norm.ln();
            tangent = [next[0] / norm, next[1] / norm];
            x_range = (x_range.0.min(point[0]), x_range.1.max(point[0]));
            y_range = (y_range.0.min(point[1]), y_range.1.max(point[1]));
        }
        Ok(HenonAttractor {
            jacobian_determinant: -self.b,
            lyapunov_exponent: log_growth / iterates as f64,
            x_range,
            y_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orbit_stays_on_the_attractor_box() {
        let henon = Henon::default();
        for start in [[0.0, 0.0], [0.4, -0.3], [-0.5, 0.5]] {
            let points = henon.orbit(start, 100, 20_000).unwrap();
            for [x, y] in points {
                assert!((-1.2851..=1.2731).contains(&x), "x = {x}");
                assert!((-0.3856..=0.3821).contains(&y), "y = {y}");
            }
        }
    }

    #[test]
    fn jacobian_determinant_is_minus_b() {
        let henon = Henon::default();
        for point in [[0.3, 0.1], [-1.1, 0.2], [1.27, -0.38]] {
            let j = henon.jacobian(point);
            let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
            assert!((det + 0.3).abs() < 1e-15);
        }
        // Finite-difference check of the first row.
        let (p, eps) = ([0.7, 0.2], 1e-6);
        let fd = (henon.step([p[0] + eps, p[1]])[0] - henon.step([p[0] - eps, p[1]])[0]) / (2.0 * eps);
        assert!((fd - henon.jacobian(p)[0][0]).abs() < 1e-8);
    }

    #[test]
    fn lyapunov_exponent_is_about_0_418() {
        let stats = Henon::default().attractor(100_000).unwrap();
        assert!((stats.lyapunov_exponent - 0.418).abs() < 0.005, "{}", stats.lyapunov_exponent);
        assert!(stats.x_range.0 > -1.2851 && stats.x_range.1 < 1.2731);
    }

    #[test]
    fn escaping_orbit_is_an_error() {
        assert!(Henon::default().orbit([3.0, 3.0], 100, 10).is_err());
    }
}
