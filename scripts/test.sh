#!/usr/bin/env bash
# The test command: install (a no-op when up to date), the lint and type gates, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
./scripts/lint.sh
# Two workers (CI has two cores): much of the suite waits on subprocesses, sockets and moto's
# retry intervals; tests sharing a module fixture stay on one worker (tests/conftest.py).
exec .venv/bin/python -m pytest -n "${DOCMILL_TEST_WORKERS:-2}" --dist loadgroup "$@"
