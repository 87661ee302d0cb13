#!/usr/bin/env bash
# The test command: install (a no-op when up to date), the lint and type gates, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
./scripts/lint.sh
# Two workers (CI has two cores): much of the suite waits on subprocesses, sockets and moto's
# retry intervals. Tests go out one by one, except that a module sharing a module-scoped fixture
# stays on one worker (tests/conftest.py), so the fixture is built once.
exec .venv/bin/python -m pytest -n "${DOCMILL_TEST_WORKERS:-2}" --dist loadgroup "$@"
