#!/usr/bin/env bash
# Every test: type check, unit and integration (vitest, against the lab), browser (Playwright + Debian Chromium).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export NEXT_TELEMETRY_DISABLED=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
start=$(date +%s)

echo "== type check"
npx tsc --noEmit -p tsconfig.json

echo "== unit and integration tests (vitest)"
npx vitest run

echo "== browser tests (Playwright, Debian Chromium)"
npx playwright test

echo "== all tests passed in $(( $(date +%s) - start )) s"
