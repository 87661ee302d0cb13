#!/usr/bin/env bash
# The notice board (frontend/): `npm ci` against the committed lock file, then the web export that
# `docmill serve` serves at / and the CDK stack deploys to S3. Idempotent: each step runs again
# only when its inputs changed. Playwright never downloads a browser (the e2e test uses Debian's
# chromium, which scripts/install.sh installs with apt when run as root).
set -euo pipefail
cd "$(dirname "$0")/../frontend"
if ! command -v npm >/dev/null; then
  echo "warning: npm not found; the web app is not built (install Node.js 20+)" >&2
  exit 0
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 EXPO_NO_TELEMETRY=1 CI=1

deps=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.docmill-deps 2>/dev/null)" != "$deps" ]; then
  echo "frontend: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$deps" > node_modules/.docmill-deps
fi

sources=$( (find index.ts app.json babel.config.js tsconfig.json src -type f -print0 | sort -z | xargs -0 sha256sum; echo "$deps") | sha256sum | cut -d' ' -f1)
if [ "$(cat node_modules/.docmill-web 2>/dev/null)" != "$sources" ] || [ ! -f dist/index.html ]; then
  echo "frontend: expo export --platform web"
  rm -rf dist
  npx expo export --platform web --output-dir dist >/dev/null
  echo "$sources" > node_modules/.docmill-web
fi
echo "frontend: web app built (frontend/dist)"
