//! Dictionary evaluation per sample (`cargo bench -p koopman --bench lifting`): the lifting
//! the estimator runs before every update, for the dictionaries the peers comparison uses.

use divan::{Bencher, black_box};
use koopman::{DictionarySpec, Lifting};

fn main() {
    divan::main();
}

const SPECS: [&str; 5] = ["state,const,poly:3", "state,const,poly:6", "state,rbf:30", "state,rbf:126", "state,rbf:510"];

fn states(n: usize, count: usize) -> Vec<f64> {
    (0..n * count).map(|i| ((i * 7919) % 1000) as f64 / 250.0 - 2.0).collect()
}

/// Two channels (Van der Pol), warm-up of 600 samples for the standardisation and centres.
#[divan::bench(args = SPECS)]
fn lift(bencher: Bencher, spec: &str) {
    let spec: DictionarySpec = spec.parse().unwrap();
    let names = vec!["x1".to_owned(), "x2".to_owned()];
    let lifting = Lifting::build(&spec, &names, true, &states(2, 600), None, 0);
    let mut history = lifting.new_history();
    let mut z = vec![0.0; 2];
    let mut out = vec![0.0; lifting.dim()];
    let data = states(2, 1000);
    let mut k = 0;
    bencher.bench_local(|| {
        let x = &data[2 * k..2 * k + 2];
        k = (k + 1) % 1000;
        lifting.standardise_into(black_box(x), &mut z);
        history.push(&z);
        lifting.lift_into(&history, &mut out);
        black_box(&out);
    });
}
