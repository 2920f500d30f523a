# Orchestrates bench/peers: data, koopstream vs odmd and pykoop, agreement, tables, plots.
"""koopstream against its Python peers, on identical data and identical observables.

Run through `bash bench/peers/run [--quick]` (which builds the binary and the virtual
environment first). Steps:

1. simulates Van der Pol (sigma 0.05, 10 Hz) and the IEEE 68-bus ambient scenario
   (SNR 40 dB, 30 Hz) with `koopstream simulate` into target/peers/;
2. online: for each lifted size N, `koopstream bench-online` times the service's per-sample
   path and exports the lifted data, A and P at the start of timing and A at the end;
   online_peer.py repeats the same updates with odmd's OnlineDMD and checks it lands on the
   same A;
3. batch: `koopstream fit` against batch_peer.py (pykoop Edmd), each as a whole process, on
   10^3 .. 10^6 samples; the eigenvalues of the two models are matched;
4. prints the tables, writes them into BENCHMARKS.md between the peers markers and draws
   bench/peers/online-scaling.svg and bench/peers/batch-scaling.svg.

--quick runs small sizes (well under a minute); it, and a run with any --skip-* flag,
writes its report and plots under target/peers/partial/ instead, leaving BENCHMARKS.md and
the committed plots alone.
"""

import os

# The peers run on one BLAS thread, as koopstream runs on one core. The OpenBLAS core-type
# overrides some machines set for old OpenBLAS builds slow a current numpy down; the kernel
# actually used is recorded in the report (threadpoolctl). Set before numpy is imported, and
# inherited by every peer process.
for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = ROOT / "target" / "release" / "koopstream"
WORK = ROOT / "target" / "peers"
PY = sys.executable

# Agreement tolerances (see bench/peers/README.md for how they were chosen).
ONLINE_TOL = 1e-6  # ||A_odmd - A_koopstream||_F / ||A_koopstream||_F after the same pairs
BATCH_TOL = 1e-6  # max |lambda_koopstream - lambda_pykoop| over matched eigenvalues with |lambda| > 0.5
BATCH_EIG_FLOOR = 0.5


def odmd_cost(n):
    """odmd's rough cost per update (s), only to choose how many updates it times so that it
    runs for about its target time (koopstream's count comes from its own first run)."""
    return 8e-6 + 8e-9 * n * n


VDP = {"name": "Van der Pol", "key": "vdp", "rate": 10.0, "dt": 0.1}
IEEE = {"name": "IEEE 68-bus", "key": "ieee68", "rate": 30.0, "dt": 1.0 / 30.0}


def settings(quick):
    if quick:
        return {
            "vdp_online_n": [8, 32, 128],
            "ieee_delays": [0, 1],
            "batch_sizes": [1_000, 10_000, 100_000],
            "ieee_batch": 10_000,
            "py_target": 0.15,
            "rust_target": 0.1,
            "vdp_rust_cap": 50_000,
            "ieee_rust_cap": 10_000,
            "repeat": 1,
        }
    return {
        "vdp_online_n": [8, 16, 32, 64, 128, 256, 512],
        "ieee_delays": [0, 1, 3, 7, 15],
        "batch_sizes": [1_000, 10_000, 100_000, 1_000_000],
        "ieee_batch": 100_000,
        "py_target": 1.5,
        "rust_target": 1.0,
        "vdp_rust_cap": 1_000_000,
        "ieee_rust_cap": 100_000,
        "repeat": 3,
    }


# ---------------------------------------------------------------- processes and data


def run(cmd, **kw):
    """Runs a command, returns its stdout; stops the benchmark with its stderr if it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"failed ({proc.returncode}): {' '.join(str(c) for c in cmd)}")
    return proc.stdout


def timed_process(cmd):
    """Whole wall time of a process (start, imports, reading, fitting, output) and its stdout."""
    start = time.perf_counter()
    out = run(cmd)
    return time.perf_counter() - start, out


def simulate(system, rows, path, extra):
    """`koopstream simulate` with at least `rows` samples (t = 0 included)."""
    duration = (rows + 5) / system["rate"]
    run([BIN, "simulate", "--system", system["key"], "--duration", f"{duration:.6f}", "--rate", system["rate"],
         "--seed", 1, *extra, "--output", path])
    with open(path, "rb") as f:
        have = sum(1 for _ in f) - 1
    if have < rows:
        sys.exit(f"{path}: {have} samples, {rows} needed")
    return have


def prefix(src, dst, rows):
    """The header and the first `rows` samples of src."""
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i > rows:
                break
            g.write(line)


def deviations(src, dst, rows):
    """The first `rows` samples of src, each channel as its deviation from the mean over those
    samples in units of its standard deviation (the time column kept)."""
    with open(src, encoding="utf-8") as f:
        header = f.readline().strip()
    x = np.loadtxt(src, delimiter=",", skiprows=1, max_rows=rows, ndmin=2)
    cols = [i for i, name in enumerate(header.split(",")) if name != "t"]
    x[:, cols] = (x[:, cols] - x[:, cols].mean(axis=0)) / x[:, cols].std(axis=0)
    np.savetxt(dst, x, delimiter=",", header=header, comments="", fmt="%.17g")


# ---------------------------------------------------------------- online


def bench_online(csv, system, dictionary, warmup, mu, updates, npz=None):
    cmd = [BIN, "bench-online", "--input", csv, "--dt", repr(system["dt"]), "--dictionary", dictionary,
           "--mu", repr(mu), "--warmup", warmup, "--max-updates", updates]
    if npz is not None:
        cmd += ["--npz", npz]
    return json.loads(run(cmd))


def warmup_for(n):
    """Warm-up samples: at least 2N, so the batch start and the RBF centres see enough data."""
    return max(200, 2 * n)


def online_point(csv, system, dictionary, n, delay, cfg, mu):
    """Times koopstream and odmd on the same pairs at one lifted size N."""
    warmup = warmup_for(n)
    m_py = max(200, int(cfg["py_target"] / odmd_cost(n)))
    # The agreement run: exactly the pairs odmd will time, and the data it needs.
    npz = WORK / f"online-{system['key']}-{n}.npz"
    short = WORK / f"online-{system['key']}-{n}.csv"
    prefix(csv, short, warmup + delay + m_py + 10)
    first = bench_online(short, system, dictionary, warmup, mu, m_py, npz)
    if first["observables"] != n or first["timed_updates"] != m_py:
        sys.exit(f"bench-online: expected N = {n} and {m_py} updates, got {first}")
    peer = json.loads(run([PY, HERE / "online_peer.py", "--npz", npz, "--first", first["first_timed_pair"],
                           "--updates", m_py, "--repeat", cfg["repeat"]]))
    # The timing runs: as many updates as give koopstream its target time, judged by this run.
    per_update = max(first["seconds"], 1e-9) / m_py
    m_rust = max(m_py, min(cfg["rust_cap"], int(cfg["rust_target"] / per_update)))
    if m_rust == m_py:
        rust = [first] + [bench_online(short, system, dictionary, warmup, mu, m_py) for _ in range(cfg["repeat"] - 1)]
    else:
        rust = [bench_online(csv, system, dictionary, warmup, mu, m_rust) for _ in range(cfg["repeat"])]
    for r in rust:
        if r["timed_updates"] != m_rust:
            sys.exit(f"bench-online: expected {m_rust} timed updates, got {r}")
    npz.unlink()
    short.unlink()
    ks = statistics.median(r["seconds"] for r in rust) / m_rust
    od = statistics.median(peer["seconds"]) / m_py
    point = {
        "system": system["name"], "dictionary": dictionary, "n": n, "mu": first["mu"], "warmup": warmup,
        "koopstream_updates": m_rust, "koopstream_s_per_update": ks,
        "odmd_updates": m_py, "odmd_s_per_update": od,
        "ratio": od / ks, "relative_difference": peer["relative_difference"],
        "tiny_fraction": peer["tiny_fraction"],
    }
    print(f"  {system['name']:12} N = {n:4}  koopstream {fmt_time(ks):>9}  odmd {fmt_time(od):>9}  "
          f"ratio {point['ratio']:7.1f}  agreement {point['relative_difference']:.1e}", flush=True)
    return point


# ---------------------------------------------------------------- batch


def eigen_match(ours, theirs):
    """Optimal one-to-one matching; max |delta| over all and over |lambda| > floor."""
    a = np.array(ours)
    b = np.array(theirs)
    cost = np.abs(a[:, None] - b[None, :])
    rows, cols = linear_sum_assignment(cost)
    d = cost[rows, cols]
    big = np.abs(a[rows]) > BATCH_EIG_FLOOR
    return float(d.max()), float(d[big].max()) if big.any() else 0.0, int(big.sum())


def batch_point(csv, system, samples, dictionary, standardise, peer_args, cfg):
    model = WORK / "batch-model.json"
    ks_cmd = [BIN, "fit", "--input", csv, "--dt", repr(system["dt"]), "--dictionary", dictionary, "--mu", "0",
              "--standardise", standardise, "--output", model]
    peer_cmd = [PY, HERE / "batch_peer.py", "--input", csv, *peer_args]
    ks_times, peer_times, fit_times = [], [], []
    for _ in range(cfg["repeat"]):
        t, _ = timed_process(ks_cmd)
        ks_times.append(t)
        t, out = timed_process(peer_cmd)
        peer_times.append(t)
        peer = json.loads(out)
        fit_times.append(peer["fit_seconds"])
    doc = json.loads(model.read_text())
    model.unlink()
    ours = [complex(e["re"], e["im"]) for e in doc["eigenvalues"]]
    theirs = [complex(re, im) for re, im in peer["eigenvalues"]]
    if doc["a"]["rows"] != peer["observables"] or doc["pairs"] != samples - 1 or peer["samples"] != samples:
        sys.exit(f"batch: shapes differ: koopstream N = {doc['a']['rows']}, {doc['pairs']} pairs; peer {peer}")
    d_all, d_big, n_big = eigen_match(ours, theirs)
    point = {
        "system": system["name"], "dictionary": dictionary, "standardise": standardise,
        "samples": samples, "n": peer["observables"],
        "koopstream_process_s": statistics.median(ks_times), "peer_process_s": statistics.median(peer_times),
        "peer_fit_s": statistics.median(fit_times),
        "max_eig_diff_all": d_all, "max_eig_diff_big": d_big, "eigs_big": n_big,
    }
    point["ratio"] = point["peer_process_s"] / point["koopstream_process_s"]
    print(f"  {system['name']:12} {samples:>9} samples N = {point['n']:3}  "
          f"koopstream {fmt_time(point['koopstream_process_s']):>9}  "
          f"pykoop {fmt_time(point['peer_process_s']):>9} (fit {fmt_time(point['peer_fit_s'])})  "
          f"ratio {point['ratio']:6.2f}  max|dlambda| {d_big:.1e}", flush=True)
    return point


# ---------------------------------------------------------------- report


def fmt_time(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{s} s"


def fmt_count(n):
    return f"{n:,}".replace(",", " ")


def fmt_share(f):
    return "0" if f == 0 else f"{100 * f:.2g} %"


def fmt_ratio(r):
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"


def slope(points, x, y, at_least=0):
    from svgplot import fitted_slope

    sel = [p for p in points if p[x] >= at_least]
    return fitted_slope([p[x] for p in sel], [p[y] for p in sel])


def fmt_slope(s):
    return "n/a" if s is None else f"{s:.2f}"


def machine():
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown memory"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {mem}"


def versions():
    names = ["numpy", "odmd", "pykoop", "scipy", "scikit-learn"]
    v = {n: importlib.metadata.version(n) for n in names}
    v["python"] = platform.python_version()
    try:
        from threadpoolctl import threadpool_info

        blas = []
        for b in threadpool_info():
            if b.get("user_api") != "blas":
                continue
            path = b.get("filepath", "")
            owner = next((name for name in ("numpy", "scipy") if f"{os.sep}{name}" in path), "other")
            blas.append(f"{owner}'s {b.get('internal_api')} {b.get('version')} ({b.get('architecture')} kernel, "
                        f"{b.get('num_threads')} thread)")
        if blas:
            v["blas"] = ", ".join(sorted(set(blas)))
    except Exception:  # the report goes on without it
        pass
    return v


def koopstream_revision():
    try:
        head = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml",
                                "Cargo.lock"]).returncode != 0
        return f"commit {head}" + (" with local changes to the sources" if dirty else "")
    except SystemExit:
        return "unknown revision"


def report(online, batch, cfg, quick, load):
    v = versions()
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    lines = [
        f"- Date: {today}; machine: {machine()}; koopstream {koopstream_revision()}",
        f"- Command: `bash bench/peers/run{' --quick' if quick else ''}` (see `bench/peers/README.md`)",
        f"- Peers: Python {v['python']}, numpy {v['numpy']}, odmd {v['odmd']}, pykoop {v['pykoop']} "
        f"(scipy {v['scipy']}, scikit-learn {v['scikit-learn']})"
        + (f"; BLAS: {v['blas']}" if "blas" in v else ""),
        "- One core each: koopstream is single-threaded, the peers run with one BLAS thread. "
        + (f"Times are medians of {cfg['repeat']} runs." if cfg["repeat"] > 1 else "Times are from one run."),
        f"- Load: the machine's 1-minute load average was {load[0]:.1f} when the run started and "
        f"{load[1]:.1f} when it ended (this benchmark accounts for about 1, the rest is other work "
        f"sharing the {os.cpu_count()} cores).",
        "",
    ]
    if online:
        lines += [
            "### Online: one update per sample, koopstream against odmd `OnlineDMD`",
            "",
            "`koopstream bench-online` streams the file through the service's estimator (warm-up untimed), "
            "then times M pushes of raw samples: standardisation, lifting, the rank-one update of P and A "
            "and the residual tracking, with the exact refactorisation from the sums every 2000 pairs "
            "amortised in, exactly the service's per-sample path. It exports the lifted observables and "
            "A and P at the start of timing. `online_peer.py` starts `odmd.OnlineDMD(N, weighting=1.0)` "
            "from that A and P and times `update(x, y)` over the same pairs; it is given the lifted "
            "vectors for free (its lifting is not timed). koopstream times more updates than odmd where "
            "odmd would take too long; for the agreement column it is run a second time over exactly "
            "odmd's pairs, and the column is ||A_odmd - A_koopstream||_F / ||A_koopstream||_F after them "
            f"(required: below {ONLINE_TOL:g}). Van der Pol: dictionary `state,rbf:K` (N = 2 + K); "
            "IEEE 68-bus: the 32 machine angles and speeds with `state,delay:D` (N = 32 (D + 1)); "
            f"mu = {online[0]['mu']:g}, warm-up max(200, 2N) samples.",
            "",
            "| system | dictionary | N | koopstream per update | odmd per update | odmd / koopstream | "
            "updates timed (koopstream / odmd) | agreement | tiny lifted values |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in online:
            lines.append(
                f"| {p['system']} | `{p['dictionary']}` | {p['n']} | {fmt_time(p['koopstream_s_per_update'])} | "
                f"{fmt_time(p['odmd_s_per_update'])} | {fmt_ratio(p['ratio'])} | "
                f"{fmt_count(p['koopstream_updates'])} / {fmt_count(p['odmd_updates'])} | "
                f"{p['relative_difference']:.1e} | {fmt_share(p['tiny_fraction'])} |"
            )
        lines.append("")
        for name in sorted({p["system"] for p in online}, key=lambda s: s != VDP["name"]):
            pts = [p for p in online if p["system"] == name]
            lines.append(
                f"Fitted log-log slope of time per update against N ({name}): koopstream "
                f"{fmt_slope(slope(pts, 'n', 'koopstream_s_per_update'))} over all N, "
                f"{fmt_slope(slope(pts, 'n', 'koopstream_s_per_update', 64))} for N >= 64; odmd "
                f"{fmt_slope(slope(pts, 'n', 'odmd_s_per_update'))} and "
                f"{fmt_slope(slope(pts, 'n', 'odmd_s_per_update', 64))}."
            )
        if any(p["tiny_fraction"] > 0 for p in online):
            lines += [
                "",
                "Tiny lifted values: the share of the timed lifted values v with 0 < |v| < 1.5e-154 "
                "(narrow Gaussians far from their centres). Their products underflow into subnormal "
                "numbers, which the processor handles slowly, in odmd's P x as in koopstream's "
                "update and running sums. koopstream, whose arithmetic is otherwise much cheaper, "
                "feels it most: compare its Van der Pol RBF rows with the 68-bus delay rows of the "
                "same N.",
            ]
        goal = {8: 200, 128: 20}
        met = [
            f"N = {p['n']}: {fmt_ratio(p['ratio'])}x, **{'met' if p['ratio'] >= goal[p['n']] else 'not met'}**"
            for p in online
            if p["system"] == VDP["name"] and p["n"] in goal
        ]
        if met:
            lines += ["", "Goals (issue 7): koopstream at least 200x faster per update than odmd at N = 8 and "
                      "20x at N = 128 (Van der Pol): " + "; ".join(met) + "."]
        lines += ["", "![online update time against N](bench/peers/online-scaling.svg)", ""]
    if batch:
        lines += [
            "### Batch: a model from a whole recorded file, `koopstream fit` against pykoop `Edmd`",
            "",
            "Both as whole processes, timed from outside (start, imports, reading the CSV, lifting, "
            "fitting, eigenvalues, output): `koopstream fit --mu 0` (streams the file through the "
            "online estimator sample by sample) and `batch_peer.py` (numpy `loadtxt`, pykoop "
            "`PolynomialLiftingFn` + `ConstantLiftingFn`, `Edmd(alpha=0)`: plain least squares over "
            "the same T - 1 pairs). The last time column is pykoop's in-process `fit` alone (lifting "
            "and regression). Van der Pol: dictionary `state,const,poly:6` (28 observables, all "
            "monomials of degree 0 to 6; koopstream standardises the channels with its warm-up mean "
            "and deviation, pykoop uses raw units: the same span, so with mu = 0 the two A are "
            "similar matrices with the same eigenvalues). IEEE 68-bus: the 32 channels written once as "
            "deviations from their mean in units of their standard deviation (raw speeds sit at 1 pu "
            "with deviations of 1e-4, and both sides' normal equations would lose about 12 digits "
            "to that), `state` without standardisation against pykoop's identity lifting (plain "
            "DMD, 32 observables). "
            "Agreement: eigenvalues matched one to one (optimal assignment), max |delta lambda| "
            f"over those with |lambda| > {BATCH_EIG_FLOOR:g} (required: below {BATCH_TOL:g}).",
            "",
            "| system | samples | N | koopstream fit (process) | pykoop (process) | pykoop / koopstream | "
            "pykoop fit only | max abs delta lambda |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in batch:
            lines.append(
                f"| {p['system']} | {fmt_count(p['samples'])} | {p['n']} | {fmt_time(p['koopstream_process_s'])} | "
                f"{fmt_time(p['peer_process_s'])} | {fmt_ratio(p['ratio'])} | {fmt_time(p['peer_fit_s'])} | "
                f"{p['max_eig_diff_big']:.1e} |"
            )
        pts = [p for p in batch if p["system"] == VDP["name"]]
        lines += [
            "",
            "Fitted log-log slope of time against samples (Van der Pol): koopstream "
            f"{fmt_slope(slope(pts, 'samples', 'koopstream_process_s'))}, pykoop process "
            f"{fmt_slope(slope(pts, 'samples', 'peer_process_s'))}, pykoop fit only "
            f"{fmt_slope(slope(pts, 'samples', 'peer_fit_s'))} (whole processes carry a fixed start-up cost, "
            "so their slope is below 1 on small files).",
            "",
            "![batch time against data size](bench/peers/batch-scaling.svg)",
        ]
    return "\n".join(lines) + "\n"


def plots(online, batch, out_dir):
    from svgplot import LogLogPlot

    if online:
        plot = LogLogPlot("Per-sample online update: koopstream vs odmd OnlineDMD", "lifted size N",
                          "time per update (s)")
        for name, dashed in ((VDP["name"], False), (IEEE["name"], True)):
            pts = [p for p in online if p["system"] == name]
            if not pts:
                continue
            for who, key in (("koopstream", "koopstream_s_per_update"), ("odmd", "odmd_s_per_update")):
                s = slope(pts, "n", key)
                plot.series(f"{who}, {name} (slope {fmt_slope(s)})", [p["n"] for p in pts], [p[key] for p in pts],
                            dashed=dashed)
        plot.save(out_dir / "online-scaling.svg")
    pts = [p for p in batch if p["system"] == VDP["name"]]
    if pts:
        plot = LogLogPlot("Batch EDMD from a whole file (Van der Pol, 28 observables)", "samples",
                          "wall time (s)", legend="lower right")
        for label, key, dashed in (("koopstream fit, process", "koopstream_process_s", False),
                                   ("pykoop, process", "peer_process_s", False),
                                   ("pykoop, fit only", "peer_fit_s", True)):
            s = slope(pts, "samples", key)
            plot.series(f"{label} (slope {fmt_slope(s)})", [p["samples"] for p in pts], [p[key] for p in pts],
                        dashed=dashed)
        plot.save(out_dir / "batch-scaling.svg")


def write_benchmarks(text):
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text(encoding="utf-8")
    begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        sys.exit("BENCHMARKS.md: the peers markers are missing")
    path.write_text(doc[: i + len(begin)] + "\n" + text + doc[j:], encoding="utf-8")


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes; report under target/peers/partial/")
    ap.add_argument("--skip-online", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-ieee", action="store_true", help="Van der Pol only")
    ap.add_argument("--mu", type=float, default=1e-6, help="ridge of the online runs (default 1e-6)")
    args = ap.parse_args()
    cfg = settings(args.quick)
    sys.dont_write_bytecode = True  # no __pycache__ in bench/peers
    sys.path.insert(0, str(HERE))
    WORK.mkdir(parents=True, exist_ok=True)
    if not BIN.exists():
        sys.exit(f"{BIN.relative_to(ROOT)} is missing: run `cargo build --release` (bench/peers/run does)")
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]

    print("simulating", flush=True)
    vdp_rows = max([*cfg["batch_sizes"], *(warmup_for(n) + cfg["vdp_rust_cap"] + 10 for n in cfg["vdp_online_n"])])
    vdp_csv = WORK / "vdp.csv"
    simulate(VDP, vdp_rows, vdp_csv, ["--sigma", "0.05"])
    ieee_csv = WORK / "ieee68.csv"
    if not args.skip_ieee:
        need = [warmup_for(32 * (d + 1)) + d + cfg["ieee_rust_cap"] + 10 for d in cfg["ieee_delays"]]
        ieee_rows = max(cfg["ieee_batch"], *need)
        simulate(IEEE, ieee_rows, ieee_csv, ["--scenario", "ambient", "--snr", "40"])

    online = []
    if not args.skip_online:
        print("online: koopstream bench-online against odmd OnlineDMD", flush=True)
        for n in cfg["vdp_online_n"]:
            c = dict(cfg, rust_cap=cfg["vdp_rust_cap"])
            online.append(online_point(vdp_csv, VDP, f"state,rbf:{n - 2}", n, 0, c, args.mu))
        if not args.skip_ieee:
            for d in cfg["ieee_delays"]:
                c = dict(cfg, rust_cap=cfg["ieee_rust_cap"])
                spec = "state" if d == 0 else f"state,delay:{d}"
                online.append(online_point(ieee_csv, IEEE, spec, 32 * (d + 1), d, c, args.mu))

    batch = []
    if not args.skip_batch:
        print("batch: koopstream fit against pykoop Edmd (whole processes)", flush=True)
        for size in cfg["batch_sizes"]:
            csv = WORK / f"vdp-{size}.csv"
            prefix(vdp_csv, csv, size)
            batch.append(batch_point(csv, VDP, size, "state,const,poly:6", "true", ["--degree", "6", "--const"], cfg))
            csv.unlink()
        if not args.skip_ieee:
            csv = WORK / f"ieee68-{cfg['ieee_batch']}.csv"
            deviations(ieee_csv, csv, cfg["ieee_batch"])
            batch.append(batch_point(csv, IEEE, cfg["ieee_batch"], "state", "false", ["--degree", "1"], cfg))
            csv.unlink()

    (WORK / "results.json").write_text(json.dumps({"online": online, "batch": batch}, indent=1))
    text = report(online, batch, cfg, args.quick, (load_at_start, os.getloadavg()[0]))
    print()
    print(text)

    failures = [
        f"online {p['system']} N = {p['n']}: relative difference {p['relative_difference']:.1e} > {ONLINE_TOL:g}"
        for p in online
        if not p["relative_difference"] < ONLINE_TOL
    ]
    failures += [
        f"batch {p['system']} {p['samples']} samples: max |delta lambda| {p['max_eig_diff_big']:.1e} > {BATCH_TOL:g}"
        for p in batch
        if not p["max_eig_diff_big"] < BATCH_TOL
    ]
    if failures:
        print("\n".join(["agreement check FAILED (nothing written):"] + failures), file=sys.stderr)
        sys.exit(1)

    if args.quick or args.skip_online or args.skip_batch or args.skip_ieee:
        out_dir = WORK / "partial"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "report.md").write_text(text, encoding="utf-8")
        plots(online, batch, out_dir)
        print(f"quick or partial run: report and plots in {out_dir.relative_to(ROOT)}/ (BENCHMARKS.md untouched)")
    else:
        write_benchmarks(text)
        plots(online, batch, HERE)
        print("wrote BENCHMARKS.md (peers section) and bench/peers/*-scaling.svg")
    print(f"agreement checks passed; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
