#!/usr/bin/env bash
# Every test: type check, lint (with the layer rule), unit tests (no lab), integration tests (vitest,
# against the lab; the console built first for those that run it), browser (Playwright + Debian Chromium).
# Ends with one line "tests: N passed, N failed" and a non-zero exit when anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export NEXT_TELEMETRY_DISABLED=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
start=$(date +%s)
mkdir -p .lab
rm -f .lab/vitest-unit-report.json .lab/vitest-report.json .lab/playwright-report.json
status=0

echo "== type check"
typecheck=passed
npx tsc --noEmit -p tsconfig.json || { status=1; typecheck=FAILED; }

echo "== lint (ESLint: typescript-eslint strict type-checked, pgherd's layers; then prettier --check)"
lint=passed
npx eslint . --max-warnings 0 || { status=1; lint=FAILED; }
npx prettier --check . --log-level warn || { status=1; lint=FAILED; }

echo "== unit tests (vitest, no lab)"
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.lab/vitest-unit-report.json || status=1

# Built once, here: the integration tests that run consoles (the --ha demo, a rolling upgrade of pgherd)
# and the browser tests use this build.
echo "== the console's build (next build)"
npx next build || status=1

echo "== integration tests (vitest, against the lab)"
npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.lab/vitest-report.json || status=1

echo "== browser tests (Playwright, Debian Chromium)"
PGHERD_SKIP_BUILD=1 PLAYWRIGHT_JSON_OUTPUT_NAME=.lab/playwright-report.json npx playwright test --reporter=list,json || status=1

node -e '
const fs = require("fs");
let passed = 0, failed = 0, skipped = 0;
for (const report of [".lab/vitest-unit-report.json", ".lab/vitest-report.json"]) {
  try {
    const v = JSON.parse(fs.readFileSync(report, "utf8"));
    passed += v.numPassedTests; failed += v.numFailedTests; skipped += v.numPendingTests + (v.numTodoTests || 0);
    // A file whose setup (beforeAll, imports) fails reports its tests as skipped: count the file as failed.
    for (const f of v.testResults || []) {
      if (f.status === "failed" && !(f.assertionResults || []).some((a) => a.status === "failed")) { failed++; console.log(`vitest: ${f.name} failed outside its tests`); }
    }
  } catch { failed++; console.log(`vitest wrote no ${report}`); }
}
try {
  const r = JSON.parse(fs.readFileSync(".lab/playwright-report.json", "utf8"));
  passed += r.stats.expected; failed += r.stats.unexpected; skipped += r.stats.skipped;
  // A global setup that throws runs no test at all: count each such error as a failure.
  if (r.errors && r.errors.length) { failed += r.errors.length; console.log(`playwright: ${r.errors.length} error(s) outside tests (global setup?)`); }
} catch { failed++; console.log("playwright wrote no report"); }
console.log(`type check: ${process.argv[1]}, lint: ${process.argv[2]}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$typecheck" "$lint" || status=1
echo "== done in $(( $(date +%s) - start )) s"
exit $status
