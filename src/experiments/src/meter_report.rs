//! The mode-meter experiment of the report (issue 12): coverage of the damping and
//! frequency intervals over many ambient realisations and record lengths, id stability and
//! false alarms over a healthy hour, the delay from a damping drop to the alarms, and the
//! intervals of a ring-down against the post-fault truth.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use koopman::DictionarySpec;
use koopman::uncertainty::Z95;
use meter::{AlarmEvent, MeterEvent, Severity, TrackedMode};
use systems::Network;

use super::meter_study::{self, Measured, Recipe, RecordSpec, analysed_match, monitor, record, state_columns};
use super::report::{Cell, Section, Table};
use super::{ExperimentError, Scale};
use crate::identify::{Ieee68Channels, TrueMode, ieee68_inter_area_modes};

/// The sizes of the four studies.
struct Sizes {
    coverage_seeds: u64,
    checkpoints: Vec<f64>,
    hour: f64,
    hour_seeds: u64,
    stressed: (f64, f64),
    stressed_seeds: u64,
    ringdown_seeds: u64,
}

fn sizes(scale: Scale) -> Sizes {
    scale.pick(
        Sizes {
            coverage_seeds: 100,
            checkpoints: vec![150.0, 300.0, 600.0],
            hour: 3600.0,
            hour_seeds: 3,
            stressed: (1200.0, 600.0),
            stressed_seeds: 20,
            ringdown_seeds: 20,
        },
        Sizes {
            coverage_seeds: 2,
            checkpoints: vec![60.0, 120.0],
            hour: 180.0,
            hour_seeds: 1,
            stressed: (240.0, 120.0),
            stressed_seeds: 1,
            ringdown_seeds: 1,
        },
    )
}

/// One interval reading of a true mode.
#[derive(Debug, Clone, Copy)]
struct Reading {
    damping: f64,
    frequency_ci: (f64, f64),
    damping_ci: (f64, f64),
}

fn reading(m: &koopman::spectrum::ModeEstimate) -> Option<Reading> {
    let c = m.mode.continuous?;
    Some(Reading { damping: c.damping_ratio, frequency_ci: m.frequency_ci95?, damping_ci: m.damping_ci95? })
}

/// The columns of [`coverage_row`].
const COVERAGE_HEADER: [&str; 11] = [
    "recipe",
    "record (s)",
    "true f (Hz)",
    "true zeta (%)",
    "found",
    "zeta coverage (%)",
    "f coverage (%)",
    "mean zeta (%)",
    "sd of zeta",
    "mean predicted sd",
    "mean width",
];

/// Coverage statistics of one true mode under one recipe and record length.
fn coverage_row(table: &mut Table, label: &str, length: f64, truth: &TrueMode, readings: &[Option<Reading>]) {
    let found: Vec<Reading> = readings.iter().flatten().copied().collect();
    // Nothing found: every statistic is undefined (shown as a dash).
    let n = if found.is_empty() { f64::NAN } else { found.len() as f64 };
    let inside = |ci: (f64, f64), v: f64| ci.0 <= v && v <= ci.1;
    let zeta_hits = found.iter().filter(|r| inside(r.damping_ci, truth.damping_ratio)).count();
    let f_hits = found.iter().filter(|r| inside(r.frequency_ci, truth.frequency_hz)).count();
    let mean = found.iter().map(|r| r.damping).sum::<f64>() / n;
    let spread = (found.iter().map(|r| (r.damping - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let predicted = found.iter().map(|r| (r.damping_ci.1 - r.damping_ci.0) / (2.0 * Z95)).sum::<f64>() / n;
    table.push(vec![
        Cell::text(label),
        Cell::fixed(length, 0),
        Cell::fixed(truth.frequency_hz, 4),
        Cell::fixed(100.0 * truth.damping_ratio, 2),
        Cell::text(format!("{}/{}", found.len(), readings.len())),
        Cell::fixed(100.0 * zeta_hits as f64 / n, 1),
        Cell::fixed(100.0 * f_hits as f64 / n, 1),
        Cell::fixed(100.0 * mean, 2),
        Cell::fixed(100.0 * spread, 2),
        Cell::fixed(100.0 * predicted, 2),
        Cell::fixed(100.0 * 2.0 * Z95 * predicted, 2),
    ]);
}

/// The damping intervals' coverage over `sizes.coverage_seeds` ambient realisations.
fn coverage(s: &Sizes, truth: &[TrueMode], section: &mut Section) -> Result<(), ExperimentError> {
    let recipes = [Recipe::monitoring(1.0), Recipe::monitoring(0.9995), Recipe::monitoring(0.9998)];
    let duration = s.checkpoints.last().copied().unwrap_or(0.0);
    let ts = 1.0 / meter_study::RATE;
    // per seed: [recipe][checkpoint][mode]
    let per_seed_readings = per_seed(s.coverage_seeds, |seed| {
        let measured = record(RecordSpec::ambient(duration), seed, &state_columns(), 0)?;
        let mut out = Vec::with_capacity(recipes.len());
        for recipe in &recipes {
            let mut at = vec![vec![None; truth.len()]; s.checkpoints.len()];
            monitor(&measured, recipe, |refreshed| {
                let end = refreshed.t + ts;
                if let Some(c) = s.checkpoints.iter().position(|cp| (cp - end).abs() < 0.5 * ts) {
                    for (m, t) in truth.iter().enumerate() {
                        at[c][m] = analysed_match(refreshed.analysed, t).and_then(reading);
                    }
                }
            })?;
            out.push(at);
        }
        Ok(out)
    })?;
    let readings_of = |r: usize, c: usize, m: usize| -> Vec<Option<Reading>> {
        per_seed_readings.iter().map(|seed| seed[r][c][m]).collect()
    };
    let mut table = Table::new(
        "meter_coverage",
        "Coverage of the 95 % intervals over ambient realisations (damping in %, sd and widths in points)",
        &COVERAGE_HEADER,
    );
    for (r, recipe) in recipes.iter().enumerate() {
        for (c, length) in s.checkpoints.iter().enumerate() {
            // With forgetting, only the full record (memory is shorter than any checkpoint).
            if recipe.forgetting < 1.0 && c + 1 != s.checkpoints.len() {
                continue;
            }
            for (m, t) in truth.iter().enumerate() {
                coverage_row(&mut table, &recipe.label, *length, t, &readings_of(r, c, m));
            }
        }
    }
    section.tables.push(table);
    Ok(())
}

/// The tracked physical mode nearest in frequency to `truth`, within 10 % (the four
/// inter-area modes are at least 22 % apart, so this cannot take a neighbour).
fn nearest_tracked(physical: &[TrackedMode], truth: &TrueMode) -> Option<u64> {
    physical
        .iter()
        .map(|p| (p, (p.frequency_hz / truth.frequency_hz - 1.0).abs()))
        .filter(|(_, d)| *d <= 0.1)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(p, _)| p.id)
}

/// Id stability, spurious modes and alarms over healthy hours.
fn healthy(s: &Sizes, truth: &[TrueMode], section: &mut Section) -> Result<(), ExperimentError> {
    let recipe = Recipe::monitoring(0.9995);
    let mut table = Table::new(
        "meter_healthy",
        "Healthy ambient operation: tracked ids after the first two minutes",
        &["seed", "true f (Hz)", "refreshes", "under its main id (%)", "ids seen", "spurious modes", "alarm events"],
    );
    for seed in 1..=s.hour_seeds {
        let measured = record(RecordSpec::ambient(s.hour), seed, &state_columns(), 0)?;
        let mut ids: Vec<Vec<Option<u64>>> = vec![Vec::new(); truth.len()];
        // Physical modes that are none of the four: id -> (refreshes, mean frequency).
        let mut spurious: BTreeMap<u64, (usize, f64)> = BTreeMap::new();
        let mut alarms = 0usize;
        monitor(&measured, &recipe, |r| {
            alarms += r
                .events
                .iter()
                .filter(|e| matches!(e, MeterEvent::Alarm(AlarmEvent::Alarm { to: Some(_), .. })))
                .count();
            if r.t < 120.0 {
                return;
            }
            let physical = r.meter.physical();
            for (m, t) in truth.iter().enumerate() {
                ids[m].push(nearest_tracked(&physical, t));
            }
            for p in &physical {
                if truth.iter().all(|t| nearest_tracked(std::slice::from_ref(p), t).is_none()) {
                    let entry = spurious.entry(p.id).or_insert((0, 0.0));
                    entry.0 += 1;
                    entry.1 += p.frequency_hz;
                }
            }
        })?;
        let spurious_text: Vec<String> = spurious
            .iter()
            .map(|(id, (n, sum))| format!("id {id}: {:.2} Hz in {n} refreshes", sum / *n as f64))
            .collect();
        for (m, t) in truth.iter().enumerate() {
            let seen: BTreeSet<u64> = ids[m].iter().flatten().copied().collect();
            let main = seen.iter().copied().max_by_key(|id| ids[m].iter().filter(|x| **x == Some(*id)).count());
            let under_main = ids[m].iter().filter(|x| x.is_some() && **x == main).count();
            table.push(vec![
                Cell::int(seed as usize),
                Cell::fixed(t.frequency_hz, 4),
                Cell::int(ids[m].len()),
                Cell::fixed(100.0 * under_main as f64 / ids[m].len().max(1) as f64, 1),
                Cell::int(seen.len()),
                Cell::text(if m == 0 { spurious_text.join("; ") } else { String::new() }),
                Cell::text(if m == 0 { alarms.to_string() } else { String::new() }),
            ]);
        }
    }
    section.tables.push(table);
    Ok(())
}

/// The deadline for the critical alarm after the damping drop.
const DEADLINE_S: f64 = 180.0;

/// One stressed run of one recipe.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    /// Delay to the first warning-or-worse and to the first critical alarm on the mode.
    warning: Option<f64>,
    critical: Option<f64>,
    /// Alarms raised before the drop.
    early: usize,
    /// The mode's damping and its predicted sd at the first refresh 3 minutes after.
    at_deadline: Option<(f64, f64)>,
    /// Refreshes from then on that found the mode, and those whose interval's upper end
    /// was below the critical threshold.
    after_deadline: usize,
    below_after_deadline: usize,
}

/// The delay from a damping drop to the alarms on the slowest inter-area mode.
fn stressed(s: &Sizes, truth: &[TrueMode], section: &mut Section) -> Result<(), ExperimentError> {
    let (duration, at) = s.stressed;
    let recipes = [
        Recipe::monitoring(0.999),
        Recipe::monitoring(0.9995),
        Recipe::monitoring(0.9998),
        Recipe::monitoring(0.9999),
        Recipe::monitoring(0.9998).with_hold(20.0),
        Recipe::monitoring_window(180.0),
    ];
    let slowest = truth[0].frequency_hz;
    let per_seed_outcomes: Vec<Vec<Outcome>> = per_seed(s.stressed_seeds, |seed| {
        let measured = record(RecordSpec::stressed(duration, 0.1, at), seed, &state_columns(), 0)?;
        let mut out = Vec::with_capacity(recipes.len());
        for recipe in &recipes {
            let mut o = Outcome::default();
            monitor(&measured, recipe, |refreshed| {
                // The estimate itself, matched to the truth whether tracked or not.
                if refreshed.t >= at + DEADLINE_S
                    && let Some(reading) = analysed_match(refreshed.analysed, &truth[0]).and_then(reading)
                {
                    let (low, high) = reading.damping_ci;
                    o.at_deadline.get_or_insert((reading.damping, (high - low) / (2.0 * Z95)));
                    o.after_deadline += 1;
                    if high < recipe.meter.alarm.critical {
                        o.below_after_deadline += 1;
                    }
                }
                for event in refreshed.events {
                    let MeterEvent::Alarm(AlarmEvent::Alarm { to: Some(severity), t, reading, .. }) = event else {
                        continue;
                    };
                    if *t < at {
                        o.early += 1;
                        continue;
                    }
                    if (reading.frequency_hz / slowest - 1.0).abs() > 0.1 {
                        continue;
                    }
                    let delay = *t - at;
                    o.warning.get_or_insert(delay);
                    if *severity == Severity::Critical {
                        o.critical.get_or_insert(delay);
                    }
                }
            })?;
            out.push(o);
        }
        Ok(out)
    })?;
    let delays: Vec<Vec<Outcome>> =
        (0..recipes.len()).map(|r| per_seed_outcomes.iter().map(|seed| seed[r]).collect()).collect();
    let mut table = Table::new(
        "meter_detection",
        "Damping drop to a tenth: delay to the alarms on the 0.38 Hz mode (s), and its estimate 3 minutes after the drop (damping in %, sd in points)",
        &[
            "recipe",
            "runs",
            "warning within 3 min",
            "critical within 3 min",
            "critical median",
            "critical worst",
            "critical delays",
            "alarms before the drop",
            "mean zeta at 3 min",
            "sd of zeta at 3 min",
            "mean predicted sd at 3 min",
            "refreshes after 3 min with upper end below critical (%)",
        ],
    );
    for (recipe, runs) in recipes.iter().zip(&delays) {
        let within = |pick: fn(&Outcome) -> Option<f64>| {
            runs.iter().filter(|d| pick(d).is_some_and(|v| v <= DEADLINE_S)).count()
        };
        let mut critical: Vec<f64> = runs.iter().map(|d| d.critical.unwrap_or(f64::INFINITY)).collect();
        critical.sort_by(f64::total_cmp);
        let list: Vec<String> =
            runs.iter().map(|d| d.critical.map_or("none".to_owned(), |v| format!("{v:.0}"))).collect();
        let at_deadline: Vec<(f64, f64)> = runs.iter().filter_map(|d| d.at_deadline).collect();
        let n = at_deadline.len() as f64;
        let mean = at_deadline.iter().map(|r| r.0).sum::<f64>() / n;
        let spread = (at_deadline.iter().map(|r| (r.0 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let predicted = at_deadline.iter().map(|r| r.1).sum::<f64>() / n;
        let after: usize = runs.iter().map(|d| d.after_deadline).sum();
        let below: usize = runs.iter().map(|d| d.below_after_deadline).sum();
        table.push(vec![
            Cell::text(&recipe.label),
            Cell::int(runs.len()),
            Cell::int(within(|d| d.warning)),
            Cell::int(within(|d| d.critical)),
            Cell::fixed(critical.get(critical.len() / 2).copied().unwrap_or(f64::NAN), 0),
            Cell::fixed(critical.last().copied().unwrap_or(f64::NAN), 0),
            Cell::text(list.join(" ")),
            Cell::int(runs.iter().map(|d| d.early).sum()),
            Cell::fixed(100.0 * mean, 2),
            Cell::fixed(100.0 * spread, 2),
            Cell::fixed(100.0 * predicted, 2),
            Cell::fixed(100.0 * below as f64 / after.max(1) as f64, 1),
        ]);
    }
    section.tables.push(table);
    Ok(())
}

/// The ring-down's intervals against the post-fault truth over measurement-noise seeds.
fn ringdown(s: &Sizes, section: &mut Section) -> Result<(), ExperimentError> {
    let truth = ieee68_inter_area_modes(Network::Post, Ieee68Channels::Speeds)?;
    let speeds: Vec<usize> = (16..32).collect();
    let whole = |mut recipe: Recipe, label: &str| {
        recipe.warmup = 200;
        recipe.label = label.to_owned();
        recipe
    };
    let recipes = [
        (whole(Recipe::monitoring(1.0), "measured state, `state,const`"), state_columns()),
        (
            Recipe {
                dictionary: DictionarySpec { delay: Some(20), constant: true, ..DictionarySpec::state_only() },
                ..whole(Recipe::monitoring(1.0), "speeds, `state,const,delay:20`")
            },
            speeds,
        ),
    ];
    let mut table = Table::new(
        "meter_ringdown",
        "Ring-down (30 s after the fault at bus 29): intervals against the post-fault modes",
        &COVERAGE_HEADER,
    );
    for (recipe, columns) in &recipes {
        let mut readings = vec![Vec::new(); truth.len()];
        for seed in 1..=s.ringdown_seeds {
            let measured: Measured = record(RecordSpec::ringdown(30.0), seed, columns, 47)?;
            let samples = measured.rows.len() / columns.len();
            let recipe = Recipe { eigen_every: samples, ..recipe.clone() };
            let mut last = vec![None; truth.len()];
            monitor(&measured, &recipe, |r| {
                for (m, t) in truth.iter().enumerate() {
                    last[m] = analysed_match(r.analysed, t).and_then(reading);
                }
            })?;
            for (m, value) in last.into_iter().enumerate() {
                readings[m].push(value);
            }
        }
        for (m, t) in truth.iter().enumerate() {
            coverage_row(&mut table, &recipe.label, 30.0 - 47.0 / meter_study::RATE, t, &readings[m]);
        }
    }
    section.tables.push(table);
    Ok(())
}

/// Runs `work` for seeds 1..=count on every available core; results in seed order.
fn per_seed<T: Send>(
    count: u64,
    work: impl Fn(u64) -> Result<T, ExperimentError> + Sync,
) -> Result<Vec<T>, ExperimentError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(count.max(1) as usize);
    let next = AtomicU64::new(1);
    let done = Mutex::new(Vec::with_capacity(count as usize));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > count {
                        break;
                    }
                    let result = work(seed);
                    done.lock().unwrap_or_else(|e| e.into_inner()).push((seed, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(seed, _)| *seed);
    done.into_iter().map(|(_, result)| result).collect()
}

/// The mode-meter experiment.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let s = sizes(scale);
    let truth = ieee68_inter_area_modes(Network::Pre, Ieee68Channels::Speeds)?;
    let mut section = Section { title: "IEEE 68-bus: the mode meter".into(), ..Section::default() };
    section.intro.push(format!(
        "The mode meter as the service runs it (`koopman::spectrum::analyse`, then `meter::Meter` at every eigen \
         refresh, so with the small-sample bias correction of the linear model), on 68-bus records at {} frames/s with measurement noise at {} dB: the 15 angles relative to G13 \
         and the 16 speeds, dictionary `state,const`, mu 1e-6, warm-up 300, a refresh every 300 samples, band \
         0.1-0.9 Hz, default alarms (warning 5 %, critical 3 %, hold 30 s, margin 1 point). Modes are matched to \
         the truth within 15 % in frequency by the largest MAC of the speed shapes (at least 0.5). Coverage: {} \
         ambient realisations (load noise and measurement noise seeded 1 to {}), with every pair weighted \
         equally at the record lengths shown, and with forgetting 0.9995 (about a minute of memory) at the end. \
         Healthy hours: {} realisations of {} s. Damping drop: {} realisations of {} s with every machine's \
         damping scaled by 0.1 from {} s on.",
        meter_study::RATE,
        meter_study::SNR_DB,
        s.coverage_seeds,
        s.coverage_seeds,
        s.hour_seeds,
        s.hour,
        s.stressed_seeds,
        s.stressed.0,
        s.stressed.1,
    ));
    coverage(&s, &truth, &mut section)?;
    healthy(&s, &truth, &mut section)?;
    stressed(&s, &truth, &mut section)?;
    ringdown(&s, &mut section)?;
    Ok(section)
}
