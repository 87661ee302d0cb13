#!/usr/bin/env bash
# Install everything docmill needs on a fresh Debian/Ubuntu machine (or CI), idempotently:
# system packages for OCR and document conversion, a virtualenv with pinned dependencies
# (CPU-only torch via constraints.txt), docmill itself, and the CDK CLI.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${DOCMILL_VENV:-.venv}

need_apt=()
command -v tesseract >/dev/null || need_apt+=(tesseract-ocr tesseract-ocr-eng)
command -v pdftoppm >/dev/null || need_apt+=(poppler-utils)
command -v pandoc >/dev/null || need_apt+=(pandoc)
# Debian's chromium: the web app's end-to-end test drives it with Playwright (no browser download).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
[ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libmagic.so.1 ] || need_apt+=(libmagic1)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "warning: missing system packages (${need_apt[*]}); OCR/EPUB/RTF and the web e2e test need them" >&2
  fi
fi

# The notice board web app: npm ci + expo export, each step skipped when up to date.
./scripts/install-frontend.sh

# The ONNX embedder: exported offline from the packaged MiniLM weights into the model cache
# (DOCMILL_MODEL_CACHE, default ~/.cache/docmill); a no-op when the export is already there.
export_models() {
  "$VENV/bin/python" -m docmill.embeddings.export \
    || echo "warning: ONNX export failed; it is retried on first use (or set DOCMILL_EMBED_RUNTIME=torch)" >&2
}

stamp="$VENV/.docmill-install-stamp"
want=$(cat requirements/lock.txt requirements/lock.d/*.txt requirements/no-deps.txt constraints.txt pyproject.toml package.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "docmill: dependencies already installed ($VENV)"
  export_models
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
"$VENV/bin/python" -m pip install -q -c constraints.txt -r requirements/lock.txt
for extra in requirements/lock.d/*.txt; do
  if [ -e "$extra" ]; then "$VENV/bin/python" -m pip install -q -c constraints.txt -r "$extra"; fi
done
"$VENV/bin/python" -m pip install -q --no-deps -r requirements/no-deps.txt
# checkov pins boto3/networkx/packaging below docmill's: its own venv, linked into ours for the
# infra scanner test (tests/infra/test_scanners.py skips when it is absent).
if [ -f requirements/isolated/checkov.txt ]; then
  [ -x "$VENV-checkov/bin/python" ] || "$PY" -m venv "$VENV-checkov"
  "$VENV-checkov/bin/python" -m pip install -q --no-deps -r requirements/isolated/checkov.txt \
    && ln -sf "$(cd "$VENV-checkov/bin" && pwd)/checkov" "$VENV/bin/checkov" \
    || echo "warning: checkov not installed; the checkov scanner test will be skipped" >&2
fi
"$VENV/bin/python" -m pip install -q --no-deps -e .
if [ -f package.json ] && command -v npm >/dev/null; then
  npm install --no-audit --no-fund --silent >/dev/null 2>&1 || echo "warning: npm install failed; 'npx cdk' will not work" >&2
fi
echo "$want" > "$stamp"
export_models
echo "docmill: installed into $VENV"
