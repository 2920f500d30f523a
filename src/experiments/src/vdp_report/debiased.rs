//! The Van der Pol report's comparisons of the de-biased estimators: per-realisation tallies
//! against EDMD and robust, the correlation estimator's lag counts, fits without a model,
//! limit-cycle frequency errors and how each method's error grows with the noise.

use super::*;

/// Where `candidate` wins, ties and loses against `reference` over every (sigma, H),
/// each entry "sigma s H h (candidate vs reference)".
#[derive(Default)]
pub(super) struct Tally {
    wins: Vec<String>,
    ties: Vec<String>,
    /// Losses, mixed and undecided comparisons: everything that is not a win or a tie.
    losses: Vec<String>,
}

impl Tally {
    pub(super) fn of(s: &Settings, by_sigma: &[Vec<Record>], candidate: usize, reference: usize) -> Self {
        let mut tally = Self::default();
        for (sigma, records) in s.sigmas.iter().zip(by_sigma) {
            for (h, pick) in HORIZONS {
                let (c, r) = (records[candidate].mean(pick), records[reference].mean(pick));
                let (wins, reps) = head_to_head(&records[candidate], &records[reference], pick);
                let v = verdict(c, r, wins, reps);
                let (dc, dr) = (records[candidate].diverged(pick).0, records[reference].diverged(pick).0);
                let mut text = format!("sigma {sigma} H {h} ({c:.3} vs {r:.3}");
                if matches!(v, Verdict::Mixed | Verdict::Undecided) {
                    text += &format!(", {}", v.text(""));
                }
                // The means leave diverged starts out: a win with more of them is said so.
                if dc > dr {
                    text += &format!(", but {dc} vs {dr} diverged starts, left out of the means");
                }
                text += ")";
                match v {
                    Verdict::Wins => tally.wins.push(text),
                    Verdict::Tie => tally.ties.push(text),
                    _ => tally.losses.push(text),
                }
            }
        }
        tally
    }

    /// "wins at ...; ties (within 1 %) at ...; LOSES at ...".
    pub(super) fn describe(&self) -> String {
        let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
        format!(
            "wins at {}; ties (within 1 %) at {}; LOSES at {}",
            list(&self.wins),
            list(&self.ties),
            list(&self.losses)
        )
    }
}

/// Each de-biased estimator against batch EDMD and against the robust estimator, per
/// realisation, and one finding per pairing saying where it wins and where it loses.
pub(super) fn debiased_comparison(s: &Settings, by_sigma: &[Vec<Record>]) -> (Table, Vec<String>) {
    let mut table = Table::new(
        "vdp_debiased_comparison",
        "De-biased estimators against batch EDMD and against robust (mu from sigma), relift prediction, per realisation",
        &[
            "sigma",
            "H",
            "estimator",
            "against",
            "estimator error",
            "other error",
            "difference (%)",
            "better in",
            "diverged (estimator / other)",
            "verdict",
        ],
    );
    let references = [(EDMD, "EDMD"), (ROBUST, "robust")];
    for (sigma, records) in s.sigmas.iter().zip(by_sigma) {
        for (h, pick) in HORIZONS {
            for (candidate, short, _) in DEBIASED {
                for (reference, label) in references {
                    let (c, r) = (records[candidate].mean(pick), records[reference].mean(pick));
                    let (wins, reps) = head_to_head(&records[candidate], &records[reference], pick);
                    table.push(vec![
                        Cell::fixed(*sigma, 2),
                        Cell::int(h),
                        Cell::text(short),
                        Cell::text(label),
                        Cell::fixed(c, 4),
                        Cell::fixed(r, 4),
                        Cell::fixed(100.0 * (c / r - 1.0), 1),
                        Cell::text(format!("{wins}/{reps}")),
                        Cell::text(format!(
                            "{} / {}",
                            records[candidate].diverged(pick).0,
                            records[reference].diverged(pick).0
                        )),
                        Cell::text(verdict(c, r, wins, reps).text(short)),
                    ]);
                }
            }
        }
    }
    let mut findings = Vec::new();
    for (candidate, _, long) in DEBIASED {
        for (reference, label) in references {
            let tally = Tally::of(s, by_sigma, candidate, reference);
            findings.push(format!(
                "{} against {label} (relift error, mean over realisations): {}.",
                capitalise(long),
                tally.describe()
            ));
        }
    }
    (table, findings)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The correlation estimator at each lag count of the settings (the one in the other
/// tables among them), and which count predicted best at each noise level.
pub(super) fn correlation_lags(s: &Settings, by_lags: &[Vec<Record>]) -> (Table, String) {
    let mut table = Table::new(
        "vdp_correlation_lags",
        "Correlation estimator by number of lags (lags 1..=L), relift prediction error, mean over realisations",
        &["sigma", "lags L", "H=20 relift", "H=50 relift", "diverged H=50", "models"],
    );
    // (sigma, H, lag count, error) of the lag count with the lowest error.
    let mut best: Vec<(f64, usize, usize, f64)> = Vec::new();
    for (sigma, records) in s.sigmas.iter().zip(by_lags) {
        for (lags, record) in s.correlation_lags.iter().zip(records) {
            let (d, total) = record.diverged(|x| x.h50);
            table.push(vec![
                Cell::fixed(*sigma, 2),
                Cell::int(*lags),
                Cell::fixed(record.mean(|x| x.h20), 4),
                Cell::fixed(record.mean(|x| x.h50), 4),
                Cell::text(format!("{d}/{total}")),
                Cell::text(format!("{}/{}", record.fitted().count(), record.scores.len())),
            ]);
        }
        for (h, pick) in HORIZONS {
            let winner = s
                .correlation_lags
                .iter()
                .zip(records)
                .map(|(lags, r)| (*lags, r.mean(pick)))
                .filter(|(_, e)| e.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((lags, error)) = winner {
                best.push((*sigma, h, lags, error));
            }
        }
    }
    let chosen = vdp::CORRELATION_LAGS;
    let listed: Vec<String> =
        best.iter().map(|(sigma, h, lags, e)| format!("sigma {sigma} H {h}: {lags} lags ({e:.3})")).collect();
    let verdict = if !best.is_empty() && best.iter().all(|b| b.2 == chosen) {
        format!("The {chosen} lags used in the other tables are the best measured everywhere.")
    } else {
        format!("The {chosen} lags used in the other tables are not the best measured everywhere.")
    };
    let finding = format!(
        "Correlation estimator, lag counts {:?} (one lag is refused: the estimator regresses lag l + 1 on lag l): \
         lowest relift error at {}. {verdict}",
        s.correlation_lags,
        listed.join(", "),
    );
    (table, finding)
}

/// One finding per method and noise level in which a fit gave no model, with the reason.
pub(super) fn failures(
    s: &Settings,
    names: &[String],
    by_sigma: &[Vec<Record>],
    by_lags: &[Vec<Record>],
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, sigma) in s.sigmas.iter().enumerate() {
        let lag_names = s.correlation_lags.iter().map(|l| format!("correlation, {l} lags"));
        let all = names.iter().cloned().chain(lag_names).zip(by_sigma[i].iter().chain(&by_lags[i]));
        for (name, record) in all {
            if let Some((_, first)) = record.failures.first() {
                let reps: Vec<String> = record.failures.iter().map(|(rep, _)| rep.to_string()).collect();
                out.push(format!(
                    "sigma = {sigma}: {name} gave no model in {} of {} realisations (realisations {}; first error: \
                     {first}).",
                    record.failures.len(),
                    record.scores.len(),
                    reps.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        out.push("Every fit gave a model in every realisation (the correlation estimator included).".into());
    }
    out
}

/// Per noise level, the mean |limit-cycle frequency error| and |Floquet decay error| over
/// realisations of robust, EDMD and the de-biased estimators, and which is smallest.
pub(super) fn frequency_findings(s: &Settings, by_sigma: &[Vec<Record>]) -> Vec<String> {
    let describe = |records: &[Record], error: fn(&Record) -> f64, unit: &str, decimals: usize| {
        let errors: Vec<(&str, f64)> = COMPARED.iter().map(|&(m, label)| (label, error(&records[m]))).collect();
        let listed: Vec<String> = errors.iter().map(|(label, e)| format!("{label} {e:.decimals$}{unit}")).collect();
        let smallest = errors.iter().filter(|(_, e)| e.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1));
        format!("{} (smallest: {})", listed.join(", "), smallest.map_or("none found", |(label, _)| label))
    };
    s.sigmas
        .iter()
        .zip(by_sigma)
        .map(|(sigma, records)| {
            format!(
                "sigma = {sigma}, mean over realisations with a model: limit-cycle frequency |error| {}; |error| of \
                 the real decay rate nearest the Floquet exponent {}.",
                describe(records, Record::mean_abs_f0_error, " %", 2),
                describe(records, Record::mean_abs_floquet_error, " 1/s", 3),
            )
        })
        .collect()
}

/// How each compared method's H = 20 relift error grows from the lowest to the highest
/// noise level.
pub(super) fn noise_growth(s: &Settings, by_sigma: &[Vec<Record>]) -> Option<String> {
    let (first, last) = (by_sigma.first()?, by_sigma.last()?);
    let (low, high) = (s.sigmas.first()?, s.sigmas.last()?);
    let growth: Vec<String> = COMPARED
        .iter()
        .map(|&(m, label)| {
            let (a, b) = (first[m].mean(|x| x.h20), last[m].mean(|x| x.h20));
            format!("{label} {a:.3} -> {b:.3} (x{:.1})", b / a)
        })
        .collect();
    Some(format!("H = 20 relift error from sigma = {low} to sigma = {high}: {}.", growth.join(", ")))
}
