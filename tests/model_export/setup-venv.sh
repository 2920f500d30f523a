#!/usr/bin/env bash
# Creates (or updates) the Python virtualenv of the model-export test and prints the path
# of its interpreter, for PYTHON_FOR_EXPORT (tests/model_export.rs runs
# docs/examples/predict_from_export.py with it):
#   export PYTHON_FOR_EXPORT="$(bash tests/model_export/setup-venv.sh [DIR])"
# DIR defaults to target/export-venv, relative to the current directory. numpy, scipy
# (scipy.io.loadmat reads the .mat file) and python-control (the state-space object) are
# the only packages, pinned. Progress goes to stderr, so stdout holds only the path.
set -euo pipefail

venv="${1:-target/export-venv}"

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "numpy==2.2.6" "scipy==1.15.3" "control==0.10.1" >&2
# Check that the modules the example uses import.
"$venv/bin/python" -c 'import numpy, scipy.io, control' >&2
echo "$(cd "$venv" && pwd)/bin/python"
