# The batch EDMD peer process for bench/peers: reads a recorded CSV, lifts it with pykoop, fits, prints JSON.
"""Batch EDMD with pykoop on a whole recorded file (the peer of `koopstream fit`).

    python batch_peer.py --input FILE.csv [--channels a,b] [--degree D] [--const]

Reads the CSV (header; column `t` is ignored), lifts every sample with pykoop's
PolynomialLiftingFn(order=D) (all monomials of degree 1..D, raw units) and, with --const,
ConstantLiftingFn (the monomial of degree 0); --degree 1 without --const is the identity
(the states themselves). Fits pykoop.Edmd(alpha=0) (plain least squares over the T - 1
consecutive pairs), computes the eigenvalues of A and prints one JSON object:
{"samples", "observables", "read_seconds", "fit_seconds", "eig_seconds", "eigenvalues": [[re, im], ...]}.
The process's whole wall time is measured by the caller.
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True)
    ap.add_argument("--channels", help="comma-separated state columns (default: all but t)")
    ap.add_argument("--degree", type=int, default=1)
    ap.add_argument("--const", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import pykoop

    t0 = time.perf_counter()
    with open(args.input, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    wanted = args.channels.split(",") if args.channels else [h for h in header if h != "t"]
    cols = [header.index(c) for c in wanted]
    x = np.loadtxt(args.input, delimiter=",", skiprows=1, usecols=cols, ndmin=2)
    if not np.all(np.isfinite(x)):
        sys.exit(f"{args.input}: missing values; this peer needs a complete file")
    t1 = time.perf_counter()

    lifting = []
    if args.degree > 1:
        lifting.append(("poly", pykoop.PolynomialLiftingFn(order=args.degree)))
    if args.const:
        lifting.append(("const", pykoop.ConstantLiftingFn()))
    pipeline = pykoop.KoopmanPipeline(lifting_functions=lifting or None, regressor=pykoop.Edmd(alpha=0))
    pipeline.fit(x, n_inputs=0, episode_feature=False)
    t2 = time.perf_counter()

    # Edmd stores coef_ with Theta = coef_^T Psi, so A = coef_^T.
    a = pipeline.regressor_.coef_.T
    lam = np.linalg.eigvals(a)
    t3 = time.perf_counter()

    json.dump(
        {
            "samples": int(x.shape[0]),
            "observables": int(a.shape[0]),
            "read_seconds": t1 - t0,
            "fit_seconds": t2 - t1,
            "eig_seconds": t3 - t2,
            "eigenvalues": [[float(v.real), float(v.imag)] for v in lam],
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
