//! How much the correlation recipe matters on the 68-bus ambient PMU records: delays, lags,
//! rank and forgetting varied one at a time around the `pmu-ambient` recipe, at the
//! C37.118.1 limits and at 40 dB, with the bias and the scatter of the frequency error
//! told apart, so the report can say whether a better recipe or only more data would meet
//! the goal.

use koopman::{DictionarySpec, EstimatorConfig, Method, Regularisation};
use systems::Network;

use super::debiased::{Errors, error_table};
use super::fitting::{self, Chains};
use super::pmu_ambient::{Noise, corrupt, pmu_truth, score, simulate_pmu};
use super::report::Section;
use super::{ExperimentError, Scale};
use crate::identify::TrueMode;

/// One correlation recipe: dictionary delays, lags, rank and forgetting factor.
#[derive(Debug, Clone, Copy)]
struct Recipe {
    delays: usize,
    lags: usize,
    rank: usize,
    forgetting: f64,
}

impl Recipe {
    fn label(&self) -> String {
        format!("delay:{}, {} lags, rank {}, forgetting {}", self.delays, self.lags, self.rank, self.forgetting)
    }
}

/// The recipe of the ambient sections (forgetting 1: the whole record), then one change at
/// a time: the preset's forgetting and a longer one, fewer lags, another rank, more delays.
const RECIPES: [Recipe; 8] = [
    Recipe { delays: 2, lags: 120, rank: 32, forgetting: 1.0 },
    Recipe { delays: 2, lags: 120, rank: 32, forgetting: 0.9999 },
    Recipe { delays: 2, lags: 120, rank: 32, forgetting: 0.99995 },
    Recipe { delays: 2, lags: 60, rank: 32, forgetting: 1.0 },
    Recipe { delays: 2, lags: 80, rank: 32, forgetting: 1.0 },
    Recipe { delays: 2, lags: 120, rank: 24, forgetting: 1.0 },
    Recipe { delays: 2, lags: 120, rank: 40, forgetting: 1.0 },
    Recipe { delays: 4, lags: 80, rank: 40, forgetting: 1.0 },
];

/// The goal: mean |errors| within these, worst within twice these.
const GOAL_F_PERCENT: f64 = 1.0;
const GOAL_ZETA_POINTS: f64 = 1.0;

/// Runs the sensitivity study and writes its section.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let realisations: u64 = scale.pick(10, 1);
    let duration = scale.pick(600.0, 90.0);
    let recipes = &RECIPES[..scale.pick(RECIPES.len(), 2)];
    // The same realisations and noise draws as the PMU ambient section (its levels 0 and 2).
    let levels = [(Noise::C37, 0), (Noise::Snr(40.0), 2)];
    let truth = pmu_truth(Network::Pre)?;
    let mut errors = vec![vec![vec![vec![Errors::default(); truth.len()]; recipes.len()]; levels.len()]];
    for seed in 0..realisations {
        let clean = simulate_pmu(duration, 11_000 + seed)?;
        for (l, &(noise, level_index)) in levels.iter().enumerate() {
            let record = corrupt(&clean, noise, 13_000 + 31 * seed + level_index)?;
            let mut chains = Chains::new(record.n_columns());
            chains.push_chain(record.values());
            for (r, recipe) in recipes.iter().enumerate() {
                let dictionary = DictionarySpec { delay: Some(recipe.delays), ..DictionarySpec::default() };
                let config = EstimatorConfig {
                    warmup: 300,
                    regularisation: Regularisation::Mu(1e-6),
                    forgetting: recipe.forgetting,
                    method: Method::Correlation { lags: recipe.lags, rank: Some(recipe.rank) },
                    solve_every: usize::MAX,
                    ..EstimatorConfig::new(record.names().to_vec(), dictionary)
                };
                let mut estimator = fitting::train_online(config, &chains)?;
                estimator.solve_now()?;
                score(estimator.linear_model(), &truth, &mut errors[0][l][r])?;
            }
        }
    }
    let labels: Vec<String> = levels.iter().map(|(n, _)| n.label()).collect();
    let names: Vec<String> = recipes.iter().map(Recipe::label).collect();
    let methods: Vec<&str> = names.iter().map(String::as_str).collect();
    let (table, _) = error_table(
        "ieee68_pmu_sensitivity",
        "Ambient 68-bus from PMUs: the correlation estimator's errors per recipe",
        &truth,
        &["PMU angle + frequency"],
        &labels,
        &methods,
        &errors,
    );
    let mut findings = Vec::new();
    for (l, label) in labels.iter().enumerate() {
        findings.push(goal_finding(label, &names, &truth, &errors[0][l]));
        findings.push(scatter_finding(label, &names[0], &truth, &errors[0][l][0]));
    }
    let intro = vec![format!(
        "The PMU records of the ambient section above (the same first {realisations} realisations of {duration:.0} \
         s and the same noise draws), fitted by the correlation estimator with the recipe of that section (first \
         row) and with one setting changed at a time. The preset `pmu-ambient` forgets with 0.9999 (an effective \
         memory of 10 000 pairs, 5.6 min) so that a stream follows the operating point; the other rows use the \
         whole record. The goal (issue 14): mean |errors| within {GOAL_F_PERCENT} % and {GOAL_ZETA_POINTS} point, \
         worst within twice that, for every inter-area mode."
    )];
    Ok(Section {
        title: "IEEE 68-bus ambient from PMUs: how much the recipe matters".into(),
        intro,
        tables: vec![table],
        findings,
        ..Section::default()
    })
}

/// Which recipes meet the goal at this level, or the best mean on the hardest mode.
fn goal_finding(level: &str, names: &[String], truth: &[TrueMode], by_recipe: &[Vec<Errors>]) -> String {
    let meets = |errors: &[Errors]| {
        errors.iter().all(|e| {
            let (f, z) = e.mean_abs_errors();
            e.found() == e.runs()
                && f <= GOAL_F_PERCENT
                && z <= GOAL_ZETA_POINTS
                && e.worst_frequency() <= 2.0 * GOAL_F_PERCENT
                && e.worst_damping() <= 2.0 * GOAL_ZETA_POINTS
        })
    };
    let meeting: Vec<&str> = names.iter().zip(by_recipe).filter(|(_, e)| meets(e)).map(|(n, _)| n.as_str()).collect();
    if !meeting.is_empty() {
        return format!("{level}: the goal is met by {}.", meeting.join("; "));
    }
    // The hardest mode: the one the first recipe misses most often, then the one with its
    // largest mean |f err|.
    let difficulty = |e: &Errors| {
        let f = e.mean_abs_errors().0;
        (e.runs() - e.found(), if f.is_nan() { f64::INFINITY } else { f })
    };
    let hardest = (0..truth.len())
        .max_by(|&a, &b| {
            let (ma, fa) = difficulty(&by_recipe[0][a]);
            let (mb, fb) = difficulty(&by_recipe[0][b]);
            ma.cmp(&mb).then(fa.total_cmp(&fb))
        })
        .unwrap_or(0);
    let (best, best_errors) = names
        .iter()
        .zip(by_recipe)
        .min_by(|a, b| {
            let (ma, fa) = difficulty(&a.1[hardest]);
            let (mb, fb) = difficulty(&b.1[hardest]);
            ma.cmp(&mb).then(fa.total_cmp(&fb))
        })
        .expect("at least one recipe");
    let e = &best_errors[hardest];
    if e.found() == 0 {
        return format!(
            "{level}: no recipe meets the goal; no recipe finds the {:.3} Hz mode.",
            truth[hardest].frequency_hz
        );
    }
    let (f, z) = e.mean_abs_errors();
    format!(
        "{level}: no recipe meets the goal. On the hardest mode ({:.3} Hz) the best is {best}: found {}/{}, mean \
         |f err| {f:.2} %, |zeta err| {z:.2} pt, worst {:.2} % / {:.2} pt.",
        truth[hardest].frequency_hz,
        e.found(),
        e.runs(),
        e.worst_frequency(),
        e.worst_damping()
    )
}

/// Bias against scatter of the frequency error, mode by mode, for one recipe.
fn scatter_finding(level: &str, name: &str, truth: &[TrueMode], errors: &[Errors]) -> String {
    let parts: Vec<String> = truth
        .iter()
        .zip(errors)
        .map(|(t, e)| match e.found() {
            0 => format!("{:.3} Hz: not found", t.frequency_hz),
            _ => {
                let (bias, scatter) = e.frequency_bias_and_scatter();
                format!("{:.3} Hz: bias {bias:+.2} %, scatter (sd) {scatter:.2} %", t.frequency_hz)
            }
        })
        .collect();
    format!("{level}, {name}: frequency error over realisations, {}.", parts.join("; "))
}
