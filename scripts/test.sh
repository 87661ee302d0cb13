#!/usr/bin/env bash
# The test command: install (a no-op when up to date), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/python -m pytest "$@"
