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

# Two stages, each of independent parts at once (the two cores are seldom both busy with one of them):
# the checks that need no lab with the console's build, then the integration and the browser tests,
# each on a lab of its own (the browser tests' on loopback addresses of their own, e2e/lab.ts).
# Each part writes to its own log, printed whole when the stage ends.
part() { # part NAME COMMAND...: runs in the background, its output to .lab/part-NAME.log
  local name=$1
  shift
  ( "$@" > ".lab/part-$name.log" 2>&1; echo $? > ".lab/part-$name.rc" ) &
}
ended() { # ended NAME HEADER: prints the part's log under its header; false when it failed
  echo "== $2"
  cat ".lab/part-$1.log"
  [ "$(cat ".lab/part-$1.rc" 2>/dev/null)" = 0 ]
}
lint() {
  local rc=0
  npx eslint . --max-warnings 0 || rc=1
  npx prettier --check . --log-level warn || rc=1
  return $rc
}
rm -f .lab/part-*.log .lab/part-*.rc

stage=$(date +%s)
echo "== type check, lint, unit tests and the console's build, at once"
part typecheck npx tsc --noEmit -p tsconfig.json
part lint lint
part unit npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.lab/vitest-unit-report.json
# Built once, here: the integration tests that run consoles (the --ha demo, a rolling upgrade of pgherd)
# and the browser tests use this build.
part build npx next build
wait
typecheck=passed lint=passed
ended typecheck "type check" || { status=1; typecheck=FAILED; }
ended lint "lint (ESLint: typescript-eslint strict type-checked, pgherd's layers; then prettier --check)" || { status=1; lint=FAILED; }
ended unit "unit tests (vitest, no lab)" || status=1
ended build "the console's build (next build)" || status=1
echo "== (the first stage took $(( $(date +%s) - stage )) s)"

stage=$(date +%s)
echo "== integration tests (vitest, against the lab) and browser tests (Playwright, Debian Chromium), at once"
PGHERD_SKIP_BUILD=1 PLAYWRIGHT_JSON_OUTPUT_NAME=.lab/playwright-report.json part e2e npx playwright test --reporter=list,json
part integration npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.lab/vitest-report.json
wait
ended integration "integration tests (vitest, against the lab)" || status=1
ended e2e "browser tests (Playwright, Debian Chromium)" || status=1
echo "== (the second stage took $(( $(date +%s) - stage )) s)"

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
