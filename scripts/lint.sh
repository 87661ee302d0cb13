#!/usr/bin/env bash
# Quality gates: ruff (rules in pyproject.toml), then mypy on the library, the handlers and the
# stack. Any finding fails. Run from anywhere; uses the project's virtualenv (DOCMILL_VENV).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DOCMILL_VENV:-.venv}
PY="$VENV/bin/python"
"$PY" -m ruff check --no-fix .
"$PY" -m mypy -p docmill -p docmill_devtools -p infra -p functions
