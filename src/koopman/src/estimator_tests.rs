//! Unit tests of the estimator: refused samples, gaps, rank, prediction checks, and exact
//! continuation from an exported state.

use super::*;
use crate::error::PredictError;
use crate::model::PredictionMode;

fn config(spec: &str, mu: f64, warmup: usize) -> EstimatorConfig {
    let mut c = EstimatorConfig::new(EstimatorConfig::default_names("x", 2), spec.parse().unwrap());
    c.input_names = vec!["u".into()];
    c.regularisation = Regularisation::Mu(mu);
    c.warmup = warmup;
    c
}

fn feed(e: &mut Estimator, count: usize) {
    for k in 0..count {
        let t = k as f64 * 0.1;
        e.push(&[t.sin(), (1.3 * t).cos()], &[(0.7 * t).sin()]).unwrap();
    }
}

#[test]
fn a_refused_sample_changes_nothing() {
    let mut e = Estimator::new(config("state,const,poly:2", 0.1, 20)).unwrap();
    feed(&mut e, 100);
    let k_before = e.k().unwrap();
    let counters_before = e.counters();
    let residual_before = e.residual_rms().unwrap();
    let bad: [(&[f64], &[f64]); 4] =
        [(&[f64::NAN, 0.0], &[0.0]), (&[0.0, f64::INFINITY], &[0.0]), (&[0.0], &[0.0]), (&[0.0, 0.0], &[f64::NAN])];
    for (x, u) in bad {
        assert!(e.push(x, u).is_err());
    }
    assert!(matches!(
        e.push(&[0.0, f64::NAN], &[0.0]),
        Err(SampleError::NonFinite { field: SampleField::State, index: 1, .. })
    ));
    assert_eq!(e.push(&[0.0], &[0.0]), Err(SampleError::Length { field: SampleField::State, expected: 2, got: 1 }));
    assert_eq!(e.k().unwrap(), k_before);
    assert_eq!(e.counters(), counters_before);
    assert_eq!(e.residual_rms().unwrap(), residual_before);
    let mean = residual_before.iter().sum::<f64>() / residual_before.len() as f64;
    assert!(residual_before.iter().all(|r| *r > 0.0));
    assert!((e.mean_residual_rms().unwrap() - mean).abs() <= 1e-15 * mean);
}

#[test]
fn gaps_skip_the_spanning_pairs_and_refill_delays() {
    let mut e = Estimator::new(config("state,delay:2", 0.1, 10)).unwrap();
    feed(&mut e, 50);
    let pairs = e.counters().pairs;
    e.break_chain();
    // Three samples refill the history (current + 2 delays) before the next pair forms.
    for _ in 0..3 {
        assert_eq!(e.push(&[0.1, 0.2], &[0.0]).unwrap(), SampleOutcome::ChainStart);
    }
    assert_eq!(e.push(&[0.1, 0.2], &[0.0]).unwrap(), SampleOutcome::Updated);
    let c = e.counters();
    assert_eq!((c.gaps, c.pairs_skipped, c.pairs), (1, 3, pairs + 1));
    assert_eq!(e.recent_states().len(), 3 * 2);
}

#[test]
fn warm_up_then_ready_and_unregularised_waits_for_rank() {
    let mut e = Estimator::new(config("state,const,poly:2", 0.0, 3)).unwrap();
    assert_eq!(e.progress(), Progress::WarmingUp { have: 0, need: 3 });
    feed(&mut e, 3);
    // N' = 2 + 1 + 3 + 1 = 7 unknowns per column, 2 pairs: singular without a ridge.
    assert_eq!(e.progress(), Progress::AwaitingRank);
    assert!(e.k().is_none() && e.linear_model().is_none());
    feed(&mut e, 200);
    assert_eq!(e.progress(), Progress::Ready);
    e.reset();
    assert_eq!(e.progress(), Progress::WarmingUp { have: 0, need: 3 });
    assert_eq!(e.counters(), Counters::default());
}

#[test]
fn a_restored_estimator_continues_bit_for_bit() {
    for (spec, window, forgetting) in
        [("state,const,poly:2", None, 1.0), ("state,fourier:4,delay:2", Some(30), 1.0), ("state,rbf:5", None, 0.99)]
    {
        let mut c = config(spec, 0.1, 20);
        c.window = window;
        c.forgetting = forgetting;
        c.refactor_every = 37;
        for stop_at in [5, 60] {
            let mut original = Estimator::new(c.clone()).unwrap();
            feed(&mut original, stop_at);
            original.break_chain();
            let mut restored = Estimator::restore(c.clone(), original.export_state()).unwrap();
            for k in 0..300 {
                let t = k as f64 * 0.07;
                let (x, u) = ([t.cos(), (0.5 * t).sin()], [t.sin()]);
                assert_eq!(original.push(&x, &u), restored.push(&x, &u));
            }
            assert_eq!(original.k().unwrap(), restored.k().unwrap(), "{spec}");
            assert_eq!(original.counters(), restored.counters());
            assert_eq!(original.residual_rms(), restored.residual_rms());
            assert_eq!(original.export_state(), restored.export_state());
        }
    }
    let wrong = config("state,const", 0.1, 20);
    let mut e = Estimator::new(config("state,const,poly:2", 0.1, 20)).unwrap();
    feed(&mut e, 50);
    assert!(Estimator::restore(wrong, e.export_state()).is_err(), "a state of another shape is refused");
}

#[test]
fn prediction_checks_its_request() {
    let mut e = Estimator::new(config("state,delay:1", 0.1, 10)).unwrap();
    feed(&mut e, 50);
    let model = e.linear_model().unwrap();
    let recent = e.recent_states();
    assert_eq!(model.predict(&recent, &[0.0; 4], 4, PredictionMode::Relift).unwrap().len(), 8);
    assert_eq!(
        model.predict(&recent[2..], &[0.0], 1, PredictionMode::Linear),
        Err(PredictError::History { needed: 2, got: 1 })
    );
    assert_eq!(
        model.predict(&recent, &[0.0], 2, PredictionMode::Linear),
        Err(PredictError::Inputs { got: 1, horizon: 2 })
    );
    assert_eq!(model.predict(&recent, &[], 0, PredictionMode::Linear), Err(PredictError::Horizon(0)));
    assert!(model.predict(&[f64::NAN, 0.0, 0.0, 0.0], &[0.0], 1, PredictionMode::Linear).is_err());
}

/// A trajectory of two states and one input, `count` samples from sample `from` on.
fn trajectory(from: usize, count: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut states, mut inputs) = (Vec::new(), Vec::new());
    for k in from..from + count {
        let t = k as f64 * 0.1;
        states.extend_from_slice(&[t.sin() + 0.05 * (7.1 * t).cos(), (1.3 * t).cos()]);
        inputs.push((0.7 * t).sin());
    }
    (states, inputs)
}

#[test]
fn the_one_step_residual_is_the_batch_models_and_the_pairs_and_reading_it_changes_nothing() {
    // Immediate (N' = 11), deferred (N' = 29 > 24: pairs pending at the time of asking) and
    // windowed strategies.
    for (spec, window) in [("state,const,poly:3", None), ("state,const,rbf:25", None), ("state,const,poly:2", Some(40))]
    {
        let mut c = config(spec, 0.1, 30);
        c.window = window;
        let mut e = Estimator::new(c).unwrap();
        let (states, inputs) = trajectory(0, 150);
        for (x, u) in states.chunks_exact(2).zip(&inputs) {
            e.push(x, &[*u]).unwrap();
        }
        let (next, _) = trajectory(150, 1);
        let before = e.export_state();
        let online = e.one_step_residual(&next).unwrap().to_vec();
        assert_eq!(e.export_state(), before, "reading the residual changes nothing ({spec})");
        // Direct: the batch ridge solution over exactly the pairs used, and the prediction
        // of the pair the next sample would form.
        let lifting = e.lifting().unwrap().clone();
        let mut all_states = states.clone();
        all_states.extend_from_slice(&next);
        let mut all_inputs = inputs.clone();
        all_inputs.push(0.0);
        let pairs = crate::batch::stack_pairs(&lifting, &all_states, &all_inputs, None);
        let used = pairs.regressors.nrows() - 1;
        let first = window.map_or(0, |w| used - w);
        let k = crate::batch::solve(
            pairs.regressors.as_ref().subrows(first, used - first),
            pairs.targets.as_ref().subrows(first, used - first),
            e.mu().unwrap(),
            None,
        )
        .unwrap();
        let p = pairs.regressors.row(used);
        for j in 0..2 {
            let predicted: f64 = (0..p.ncols()).map(|i| p[i] * k[(i, j)]).sum();
            let direct = pairs.targets[(used, j)] - predicted;
            assert!((online[j] - direct).abs() <= 1e-8, "{spec}: channel {j}: {} vs {direct}", online[j]);
        }
        // Pushing the sample records the same residual as the state block of its pair's.
        e.push(&next, &[0.0]).unwrap();
        let Phase::Online(o) = &e.phase else { unreachable!() };
        let recorded = &o.recursion.last_residual()[..2];
        for j in 0..2 {
            assert!((online[j] - recorded[j]).abs() <= 1e-12, "{spec}: {online:?} vs {recorded:?}");
        }
    }
}

#[test]
fn there_is_no_one_step_residual_without_a_model_or_a_previous_sample() {
    let mut e = Estimator::new(config("state,const,delay:1", 0.1, 20)).unwrap();
    feed(&mut e, 10);
    assert!(e.one_step_residual(&[0.1, 0.2]).is_none(), "warming up");
    feed(&mut e, 40);
    assert!(e.one_step_residual(&[0.1, 0.2]).is_some());
    assert!(e.one_step_residual(&[0.1]).is_none() && e.one_step_residual(&[0.1, f64::NAN]).is_none());
    e.break_chain();
    assert!(e.one_step_residual(&[0.1, 0.2]).is_none(), "after a gap");
    // The delay must refill: the first sample after the gap forms no pair, nor the second's
    // predecessor; then a prediction exists again.
    e.push(&[0.1, 0.2], &[0.0]).unwrap();
    assert!(e.one_step_residual(&[0.1, 0.2]).is_none());
    e.push(&[0.1, 0.2], &[0.0]).unwrap();
    assert!(e.one_step_residual(&[0.1, 0.2]).is_some());
}
