"""A pyc37 PMU for tests/c37118_source.rs: koopstream subscribes to it as a PDC would.

Usage: pmu_peer.py PORT FRAMES RATE

Serves one PMU (station PYPMU, IDCODE 11, data stream IDCODE 7, floats, polar) with a
voltage phasor V and two analogs X1 and X2: a lightly damped oscillator driven by a
seeded pseudo-random sequence. Prints `ready` once listening, then, after the first
client connects, queues FRAMES data frames time-stamped k / RATE after a fixed second
(pyc37 sends them at its own pace) and prints one JSON line per frame with its SOC,
FRACSEC and the values sent. Its own lines start with `KS ` (pyc37 logs to standard
output as well). Runs until its standard input closes.
"""

# pyc37 tests `isinstance(frasec, collections.abc.Sequence)` without importing the module.
import collections.abc  # noqa: F401
import json
import math
import random
import sys
import time

import pyc37.pmu
from pyc37.frame import ConfigFrame2, DataFrame
from pyc37.pmu import Pmu

# pyc37 logs to standard output, from the PMU and from the process it forks per client;
# its log goes to standard error instead, so standard output holds only this script's
# lines and a reader that stops reading cannot block the PMU.
pyc37.pmu.stdout = sys.stderr
Pmu.handler.setStream(sys.stderr)

SOC0 = 1_700_000_000
TIME_BASE = 1_000_000


def say(line):
    """pyc37 logs to standard output too: the test reads only lines marked with `KS `."""
    print("KS " + line, flush=True)


def main():
    port, frames, rate = (int(a) for a in sys.argv[1:4])
    config = ConfigFrame2(
        7, TIME_BASE, 1, "PYPMU", 11, (True, True, True, True), 1, 2, 0,
        ["V", "X1", "X2"], [(0, "v")], [(1, "pow"), (1, "pow")], [], 60, 1, rate)
    pmu = Pmu(pmu_id=7, data_rate=rate, port=port, ip="127.0.0.1", set_timestamp=False)
    pmu.logger.setLevel("WARNING")
    pmu.set_configuration(config)
    pmu.set_header("koopstream test PMU")
    pmu.run()
    say("ready")

    deadline = time.time() + 60
    while not pmu.client_buffers:
        if time.time() > deadline:
            sys.exit("no client connected within 60 s")
        time.sleep(0.05)

    # x[k+1] = A x[k] + e[k]: a damped rotation, so the model has a clear mode.
    rng = random.Random(20261204)
    radius, angle = 0.98, 2 * math.pi * 0.05
    a = [[radius * math.cos(angle), -radius * math.sin(angle)],
         [radius * math.sin(angle), radius * math.cos(angle)]]
    x = [1.0, 0.0]
    step = TIME_BASE // rate
    # pyc37 takes a float FREQ as the deviation from nominal (the standard: the actual
    # frequency); 0 is right either way, and koopstream reads both (README).
    for k in range(frames):
        soc, fracsec = SOC0 + k // rate, (k % rate) * step
        frame = DataFrame(7, ("ok", True, "timestamp", False, False, False, 0, "<10", 0),
                          [(230000.0, 0.01 * k)], 0.0, 0.0, [x[0], x[1]], [], config,
                          # A tuple: pyc37 takes a FRACSEC of 0 for "now" otherwise.
                          soc=soc, frasec=(fracsec, "+", False, False, 0))
        pmu.send(frame)
        say(json.dumps({"soc": soc, "fracsec": fracsec, "x": x}))
        e = [rng.gauss(0.0, 0.1), rng.gauss(0.0, 0.1)]
        x = [a[0][0] * x[0] + a[0][1] * x[1] + e[0], a[1][0] * x[0] + a[1][1] * x[1] + e[1]]
    say("sent")
    sys.stdin.read()
    pmu.stop()


if __name__ == "__main__":
    main()
