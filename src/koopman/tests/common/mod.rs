//! Shared test data: a seeded generator and trajectories of known systems.
#![allow(dead_code)]

/// xorshift64* with Box–Muller normals: enough for test data, seeded and reproducible.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A stable random linear system x' = A x + B u driven by noise and random inputs, with
/// optional measurement noise; returns (states row-major, inputs row-major, A row-major).
pub fn linear_trajectory(n: usize, m: usize, steps: usize, noise: f64, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut rng = TestRng::new(seed);
    // A = 0.95 * rotation-ish random matrix scaled below 1 in norm.
    let mut a: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
    let norm: f64 = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    a.iter_mut().for_each(|v| *v *= 0.95 / norm);
    let b: Vec<f64> = (0..n * m).map(|_| rng.normal() * 0.5).collect();
    let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mut states = Vec::with_capacity(steps * n);
    let mut inputs = Vec::with_capacity(steps * m);
    for _ in 0..steps {
        states.extend(x.iter().map(|v| v + noise * rng.normal()));
        let u: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
        inputs.extend_from_slice(&u);
        let next: Vec<f64> = (0..n)
            .map(|i| {
                (0..n).map(|j| a[i * n + j] * x[j]).sum::<f64>()
                    + (0..m).map(|j| b[i * m + j] * u[j]).sum::<f64>()
                    + 0.3 * rng.normal()
            })
            .collect();
        x = next;
    }
    (states, inputs, a)
}

/// Van der Pol, RK4 with `substeps` internal steps per sample of period `ts`.
pub fn van_der_pol(mu: f64, x0: [f64; 2], ts: f64, samples: usize, substeps: usize) -> Vec<f64> {
    let f = |x: [f64; 2]| [x[1], mu * (1.0 - x[0] * x[0]) * x[1] - x[0]];
    let h = ts / substeps as f64;
    let mut x = x0;
    let mut out = Vec::with_capacity(samples * 2);
    for _ in 0..samples {
        out.extend_from_slice(&x);
        for _ in 0..substeps {
            let k1 = f(x);
            let k2 = f([x[0] + 0.5 * h * k1[0], x[1] + 0.5 * h * k1[1]]);
            let k3 = f([x[0] + 0.5 * h * k2[0], x[1] + 0.5 * h * k2[1]]);
            let k4 = f([x[0] + h * k3[0], x[1] + h * k3[1]]);
            x = [
                x[0] + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
                x[1] + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
            ];
        }
    }
    out
}

/// Relative Frobenius distance |a - b| / |b|.
pub fn relative_error(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    let mut diff = 0.0;
    let mut norm = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            diff += (a[(i, j)] - b[(i, j)]).powi(2);
            norm += b[(i, j)].powi(2);
        }
    }
    (diff / norm).sqrt()
}

/// Feeds `samples` samples of x_{k+1} = a1 x_k + a2 x_{k-1} + e_k (unit noise, seeded) to
/// `estimator`, after `burn_in` steps that reach the steady state.
pub fn feed_ar2(estimator: &mut koopman::Estimator, a: [f64; 2], burn_in: usize, samples: usize, seed: u64) {
    let mut rng = TestRng::new(seed);
    let (mut x, mut x_prev) = (0.0, 0.0);
    for k in 0..burn_in + samples {
        if k >= burn_in {
            estimator.push(&[x], &[]).unwrap();
        }
        let next = a[0] * x + a[1] * x_prev + rng.normal();
        (x_prev, x) = (x, next);
    }
}
