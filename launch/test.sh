#!/usr/bin/env bash
# Set everything up (idempotent) and run the default test suite: everything not marked slow.
# Extra arguments go to pytest, e.g. `bash launch/test.sh -m slow` or `bash launch/test.sh tests/envs`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh" test
cd "$ROOT"
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
