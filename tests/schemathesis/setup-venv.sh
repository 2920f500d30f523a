#!/usr/bin/env bash
# Creates (or updates) the virtualenv with schemathesis and prints the path of its `st`
# command, for SCHEMATHESIS (tests/schemathesis.rs runs it):
#   export SCHEMATHESIS="$(bash tests/schemathesis/setup-venv.sh [DIR])"
# DIR defaults to target/schemathesis-venv. Progress goes to stderr; stdout holds the path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-target/schemathesis-venv}"

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
"$venv/bin/st" --version >&2
echo "$(cd "$venv" && pwd)/bin/st"
