#!/usr/bin/env bash
# Creates (or updates) the Python virtualenv of the example client and prints the path of
# its interpreter, for PYTHON_FOR_TESTS (tests/python_client.rs runs the client with it):
#   export PYTHON_FOR_TESTS="$(bash deploy/examples/setup-venv.sh [DIR])"
# DIR defaults to target/python-venv, relative to the current directory. Progress goes to
# stderr, so stdout holds only the path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-target/python-venv}"

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
# Check that the pinned set imports (the client needs nothing else).
"$venv/bin/python" -c 'import google.protobuf, grpc_tools.protoc, websockets.asyncio.client' >&2
echo "$(cd "$venv" && pwd)/bin/python"
