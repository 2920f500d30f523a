"""Resident memory of streams that are defined but never fed (what a cluster node's idle
copy of another node's stream is), BENCHMARKS.md issue 17.

usage: python3 unfed-streams.py BIN COUNT
Starts `BIN serve` on a loopback port with in-memory durability and a scratch data
directory, creates COUNT streams of 32 channels (`state,delay:4`), and prints the growth
of the server's VmRSS divided by COUNT. The server is stopped (SIGTERM) at the end.
"""
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

binary, count = sys.argv[1], int(sys.argv[2])
scratch = tempfile.mkdtemp()
log_path = f"{scratch}/log"
with open(log_path, "w") as log:
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", f"{scratch}/data", "--durability", "memory"],
        stdout=log, stderr=subprocess.STDOUT)
try:
    base = None
    for _ in range(100):
        time.sleep(0.1)
        found = re.search(r"127\.0\.0\.1:\d+", open(log_path).read())
        if found:
            base = "http://" + found.group(0)
            break
    if base is None:
        sys.exit("the server did not say where it listens")

    def rss_kib():
        for line in open(f"/proc/{server.pid}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1])

    time.sleep(1)
    before = rss_kib()
    channels = [{"name": f"c{i}", "unit": "pu"} for i in range(32)]
    created = 0
    for i in range(count):
        body = json.dumps({"id": f"s{i}", "channels": channels, "ts": 1 / 30,
                           "dictionary": "state,delay:4", "warmup": 300}).encode()
        request = urllib.request.Request(base + "/v1/streams", data=body,
                                         headers={"content-type": "application/json"})
        try:
            urllib.request.urlopen(request).read()
        except urllib.error.HTTPError as refused:
            print(f"stream {i} refused: {refused.read()[:200]}")
            break
        created += 1
    time.sleep(2)
    after = rss_kib()
    print(f"{created} unfed streams: VmRSS {before} -> {after} KiB, {(after - before) / created:.1f} KiB each")
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(scratch, ignore_errors=True)
