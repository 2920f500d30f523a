#!/usr/bin/env bash
# Creates (or updates) the Python virtualenv of the C37.118 peer test and prints the path
# of its interpreter, for PYTHON_FOR_C37 (tests/pmu_serve.rs runs pdc_peer.py with it,
# tests/c37118_source.rs runs pmu_peer.py):
#   export PYTHON_FOR_C37="$(bash tests/c37118/setup-venv.sh [DIR])"
# DIR defaults to target/c37118-venv, relative to the current directory. pyc37 (PyPI,
# pure Python, the maintained fork of pypmu) and psutil, which pyc37's PMU imports without
# declaring it, are the only packages. Progress goes to
# stderr, so stdout holds only the path.
set -euo pipefail

venv="${1:-target/c37118-venv}"

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pyc37==1.0.2" "psutil==7.1.3" >&2
# Check that the modules the peer uses import.
"$venv/bin/python" -c 'import pyc37.pdc, pyc37.pmu, pyc37.frame' >&2
echo "$(cd "$venv" && pwd)/bin/python"
