#!/usr/bin/env bash
# Every test: type check, unit and integration (vitest, against the lab), browser (Playwright + Debian Chromium).
# Ends with one line "tests: N passed, N failed" and a non-zero exit when anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export NEXT_TELEMETRY_DISABLED=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
start=$(date +%s)
mkdir -p .lab
rm -f .lab/vitest-report.json .lab/playwright-report.json
status=0

echo "== type check"
npx tsc --noEmit -p tsconfig.json || status=1

echo "== unit and integration tests (vitest)"
npx vitest run --reporter=default --reporter=json --outputFile.json=.lab/vitest-report.json || status=1

echo "== browser tests (Playwright, Debian Chromium)"
PLAYWRIGHT_JSON_OUTPUT_NAME=.lab/playwright-report.json npx playwright test --reporter=list,json || status=1

node -e '
const fs = require("fs");
let passed = 0, failed = 0, skipped = 0;
try { const v = JSON.parse(fs.readFileSync(".lab/vitest-report.json", "utf8")); passed += v.numPassedTests; failed += v.numFailedTests; skipped += v.numPendingTests + (v.numTodoTests || 0); } catch { failed++; console.log("vitest wrote no report"); }
try { const p = JSON.parse(fs.readFileSync(".lab/playwright-report.json", "utf8")).stats; passed += p.expected; failed += p.unexpected; skipped += p.skipped; } catch { failed++; console.log("playwright wrote no report"); }
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' || status=1
echo "== done in $(( $(date +%s) - start )) s"
exit $status
