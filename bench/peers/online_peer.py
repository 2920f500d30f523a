# The online peer process for bench/peers: repeats koopstream's timed updates with odmd's OnlineDMD and times them.
"""odmd.OnlineDMD on exactly the pairs that `koopstream bench-online` timed.

    python online_peer.py --npz OUT.npz --first I0 --updates M [--repeat R]

OUT.npz comes from `koopstream bench-online --npz`: `lifted` (T x N, the lifted observables
of every sample as the estimator saw them), `k0` and `p0` (the operator A and the inverse
regularised Gram P when timing started) and `k_final` (A after the timed updates). The
peer starts from the same A and P (weighting 1, i.e. no forgetting), then times
`update(lifted[i], lifted[i + 1])` for i = I0 .. I0 + M - 1. The lifting is given to it
for free: only the update is timed. Each repeat starts again from k0 and p0. Prints one
JSON object: {"observables", "updates", "seconds": [per repeat], "relative_difference",
"tiny_fraction"}, where relative_difference = ||A_odmd - k_final||_F / ||k_final||_F and
tiny_fraction is the share of the timed lifted values v with 0 < |v| < 1.5e-154 (whose
squares underflow).
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", required=True)
    ap.add_argument("--first", type=int, required=True, help="row of the first timed pair (first_timed_pair)")
    ap.add_argument("--updates", type=int, required=True, help="timed pairs (timed_updates)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import odmd

    data = np.load(args.npz)
    lifted = np.ascontiguousarray(data["lifted"])
    k0, p0, k_final = data["k0"], data["p0"], data["k_final"]
    n = k0.shape[0]
    first, m = args.first, args.updates
    if first + m >= lifted.shape[0]:
        sys.exit(f"{args.npz}: {lifted.shape[0]} lifted rows, but pairs up to row {first + m} were asked for")
    if not np.all(np.isfinite(lifted[first : first + m + 1])):
        sys.exit(f"{args.npz}: a timed pair has no lifted vector (NaN)")

    seconds = []
    for _ in range(max(1, args.repeat)):
        d = odmd.OnlineDMD(n, weighting=1.0)
        d.A = k0.copy()
        d._P = p0.copy()  # odmd keeps P = (X X^T)^-1 in the attribute `_P`
        update = d.update
        start = time.perf_counter()
        for i in range(first, first + m):
            update(lifted[i], lifted[i + 1])
        seconds.append(time.perf_counter() - start)

    rel = float(np.linalg.norm(d.A - k_final) / np.linalg.norm(k_final))
    # Products of tiny values underflow into subnormal numbers, which the hardware handles
    # slowly (on both sides); say how many lifted values are that small.
    timed = np.abs(lifted[first : first + m + 1])
    tiny = float(np.mean((timed > 0) & (timed < np.sqrt(np.finfo(np.float64).tiny))))
    json.dump({"observables": n, "updates": m, "seconds": seconds, "relative_difference": rel,
               "tiny_fraction": tiny}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
