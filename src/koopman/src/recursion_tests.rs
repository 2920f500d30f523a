//! Unit tests of the recursion: the strategies agree with each other, small models keep P
//! exactly mirrored through every writer, restored recursions continue bit for bit, and
//! states that do not fit are refused.

use super::*;

fn pair(k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let p = (0..n).map(|i| ((k * 31 + i * 7) as f64 * 0.013).sin() + if i == k % n { 1.0 } else { 0.0 }).collect();
    let q = (0..n).map(|i| ((k * 17 + i * 5) as f64 * 0.021).cos()).collect();
    (p, q)
}

fn run(recursion: &mut Recursion, pairs: std::ops::Range<usize>, n: usize) {
    for k in pairs {
        let (p, q) = pair(k, n);
        assert_eq!(recursion.update(&p, &q, Mode::Recursive), PairEffect::Updated);
    }
}

fn max_relative(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> f64 {
    (a - b).norm_max() / b.norm_max()
}

/// The strategy a recursion was built with.
fn strategy(r: &Recursion) -> &'static str {
    match r.strategy {
        Strategy::Immediate => "immediate",
        Strategy::Deferred(_) => "deferred",
        Strategy::Windowed(_) => "windowed",
    }
}

#[test]
fn the_strategy_follows_size_and_window() {
    assert_eq!(strategy(&Recursion::new(8, 8, 0.5, 1.0, None, 100)), "immediate");
    assert_eq!(strategy(&Recursion::new(23, 23, 0.5, 1.0, None, 100)), "immediate");
    assert_eq!(strategy(&Recursion::new(20, 24, 0.5, 1.0, None, 100)), "deferred");
    assert_eq!(strategy(&Recursion::new(8, 8, 0.5, 1.0, Some(30), 100)), "windowed");
    assert_eq!(strategy(&Recursion::new(40, 40, 0.5, 1.0, Some(30), 100)), "windowed");
}

/// Deferred pairs give the same P, K, G and R as immediate rank-one updates, with and
/// without forgetting, at block boundaries and in between.
#[test]
fn deferred_updates_equal_immediate_ones() {
    let n = 40;
    for rho in [1.0, 0.995] {
        // Block of 10 at N' = 40: inside the first block, at and across its end, many blocks.
        for pairs in [1, 9, 10, 11, 100] {
            let mut deferred = Recursion::new(n, n, 0.5, rho, None, 10_000);
            let mut immediate = deferred.clone();
            assert_eq!(strategy(&deferred), "deferred");
            immediate.strategy = Strategy::Immediate;
            run(&mut deferred, 0..pairs, n);
            run(&mut immediate, 0..pairs, n);
            let tolerance = 1e-12;
            assert!(max_relative(deferred.operator().as_ref(), immediate.operator().as_ref()) < tolerance);
            let (p_d, p_i) = (deferred.inverse(), immediate.inverse());
            assert!(max_relative(p_d.as_ref(), p_i.as_ref()) < tolerance, "P, rho {rho}, {pairs} pairs");
            let ((g_d, r_d), (g_i, r_i)) = (deferred.sums(), immediate.sums());
            assert!(max_relative(g_d.as_ref(), g_i.as_ref()) < tolerance, "G, rho {rho}, {pairs} pairs");
            assert!(max_relative(r_d.as_ref(), r_i.as_ref()) < tolerance, "R, rho {rho}, {pairs} pairs");
        }
    }
}

fn exactly_symmetric(s: &Symmetric) -> bool {
    let (n, m) = (s.order(), s.entries());
    (0..n).all(|j| (0..j).all(|i| m[j * n + i].to_bits() == m[i * n + j].to_bits()))
}

/// At the exact sizes the update reads P in full, so every writer keeps it exactly
/// symmetric: the update itself, the window's rank-two step, refactorisation and restore
/// (from a state whose upper triangle is stale, as older snapshots hold). And the result
/// still matches a model that never relied on the upper triangle: one above the size
/// limit would read only the lower one, so here the same pairs at N' = 24 (with a zero
/// regressor appended, which changes no prediction) give the same K to rounding.
#[test]
fn small_models_keep_their_inverse_exactly_symmetric() {
    for window in [None, Some(12)] {
        let n = 7;
        let mut r = Recursion::new(n, n, 0.5, 1.0, window, 25);
        assert_eq!(r.matrices.inverse.storage(), Storage::Mirrored);
        for k in 0..60 {
            let (p, q) = pair(k, n);
            r.update(&p, &q, Mode::Recursive);
            assert!(exactly_symmetric(&r.matrices.inverse), "after pair {k}, window {window:?}");
        }
        assert!(r.refactorisations >= 2, "refactorisations were crossed");
        let mut state = r.export();
        // Spoil the upper triangle, as a snapshot of an older version could hold it.
        for j in 1..n {
            for i in 0..j {
                state.p[j * n + i] = 0.0;
            }
        }
        let mut restored = Recursion::restore(state, n, n, 1.0, window, 25).unwrap();
        assert!(exactly_symmetric(&restored.matrices.inverse));
        assert_eq!(restored.export(), r.export());
        let (p, q) = pair(60, n);
        assert_eq!(restored.update(&p, &q, Mode::Recursive), r.update(&p, &q, Mode::Recursive));
        assert_eq!(restored.export(), r.export(), "a restored small model continues bit for bit");
    }
    // The general (lower-triangle) path on a padded copy of the same problem agrees.
    let (n, padded) = (7, 24);
    let mut small = Recursion::new(n, n, 0.5, 1.0, None, 10_000);
    let mut large = Recursion::new(n, padded, 0.5, 1.0, None, 10_000);
    large.strategy = Strategy::Immediate;
    assert_eq!(large.matrices.inverse.storage(), Storage::Lower);
    for k in 0..200 {
        let (p, q) = pair(k, n);
        let mut p_padded = p.clone();
        p_padded.resize(padded, 0.0);
        small.update(&p, &q, Mode::Recursive);
        large.update(&p_padded, &q, Mode::Recursive);
    }
    let (k_small, k_large) = (small.operator(), large.operator());
    let k_large = k_large.as_ref().subrows(0, n);
    assert!(max_relative(k_small.as_ref(), k_large) < 1e-12);
}

/// Exported in the middle of a block and restored, a recursion continues bit for bit.
#[test]
fn a_restored_block_continues_bit_for_bit() {
    let n = 30;
    let mut original = Recursion::new(n, n, 0.5, 0.99, None, 50);
    run(&mut original, 0..45, n);
    let Strategy::Deferred(pending) = &original.strategy else { panic!("N' = 30 defers") };
    assert_eq!(pending.len(), 45 % pending.block());
    assert!(pending.len() > 0, "the export must fall inside a block");
    let mut restored = Recursion::restore(original.export(), n, n, 0.99, None, 50).unwrap();
    run(&mut original, 45..120, n);
    run(&mut restored, 45..120, n);
    assert_eq!(original.export(), restored.export());
}

/// The sums-only mode moves G and R exactly as the recursive updates do (to rounding),
/// and leaves P and K alone.
#[test]
fn sums_only_pairs_move_the_sums_alone() {
    for (n, window) in [(7, None), (7, Some(5)), (30, None), (30, Some(40))] {
        let mut recursive = Recursion::new(n, n, 0.5, 1.0, window, 10_000);
        let mut sums_only = recursive.clone();
        for k in 0..60 {
            let (p, q) = pair(k, n);
            assert_eq!(recursive.update(&p, &q, Mode::Recursive), PairEffect::Updated);
            assert_eq!(sums_only.update(&p, &q, Mode::SumsOnly), PairEffect::SumsOnly);
        }
        let ((g_r, r_r), (g_s, r_s)) = (recursive.sums(), sums_only.sums());
        assert!(max_relative(g_s.as_ref(), g_r.as_ref()) < 1e-12, "G, n = {n}, window {window:?}");
        assert!(max_relative(r_s.as_ref(), r_r.as_ref()) < 1e-12, "R, n = {n}, window {window:?}");
        assert_eq!(sums_only.operator(), Mat::<f64>::zeros(n, n), "K untouched");
        assert_eq!(sums_only.inverse(), Mat::<f64>::identity(n, n) * faer::Scale(2.0), "P untouched");
    }
}

/// A state refuses to restore into sizes or a configuration it does not fit, naming
/// what does not fit.
#[test]
fn states_that_do_not_fit_are_refused() {
    let refuse = |state: RecursionState, n: usize, window: Option<usize>| {
        Recursion::restore(state, n, n, 1.0, window, 100).map(|_| ()).unwrap_err()
    };
    let mut small = Recursion::new(7, 7, 0.5, 1.0, None, 100);
    run(&mut small, 0..10, 7);
    let mut large = Recursion::new(30, 30, 0.5, 1.0, None, 100);
    run(&mut large, 0..10, 30);
    let mut windowed = Recursion::new(7, 7, 0.5, 1.0, Some(4), 100);
    run(&mut windowed, 0..10, 7);

    assert_eq!(refuse(small.export(), 8, None), StateError::Shape("gram"));
    let mut state = small.export();
    state.cross.pop();
    assert_eq!(refuse(state, 7, None), StateError::Shape("cross"));
    let mut state = small.export();
    state.p.push(0.0);
    assert_eq!(refuse(state, 7, None), StateError::Shape("p"));
    let mut state = small.export();
    state.k.clear();
    assert_eq!(refuse(state, 7, None), StateError::Shape("k"));
    assert_eq!(refuse(small.export(), 7, Some(4)), StateError::Shape("window"));
    assert_eq!(refuse(windowed.export(), 7, None), StateError::Shape("window"));
    assert_eq!(refuse(windowed.export(), 7, Some(3)), StateError::Shape("window"));
    assert_eq!(refuse(large.export(), 7, None), StateError::Shape("pending pairs"));
    let mut state = small.export();
    state.pending = large.export().pending;
    assert_eq!(refuse(state, 7, None), StateError::Shape("pending pairs"));
    // A large state without its block (written before deferral existed) restores empty.
    let mut state = large.export();
    state.pending = None;
    assert!(Recursion::restore(state, 30, 30, 1.0, None, 100).is_ok());
}
