#!/usr/bin/env bash
# The test command: install (a no-op when up to date), the lint and type gates, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
./scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
