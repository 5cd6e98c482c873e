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

# The console's build first (the browser tests and the integration tests that run consoles use it),
# then two lanes at once, each suite on a lab of its own (the browser tests' on loopback addresses of
# their own, e2e/lab.ts): the integration tests (three files at a time), and the browser tests followed
# by the checks that need no lab (type check, lint, unit tests), which take the cores the integration
# tests leave idle once the browser tests are done. One lane after the other, the suite took 1,666 s
# on the 2-core development machine. Each part writes its own log, printed whole at the end.
# Each lane runs in a process group of its own (job control, turned on for the lanes only), so that a
# Ctrl-C here reaches it as it would reach a command run in the foreground: vitest and Playwright then
# stop their labs themselves.
lanes=()
lane() { # lane FUNCTION: runs it in the background, in a process group of its own; stopped, it goes no further
  (
    trap 'exit 130' INT
    "$@"
  ) &
  lanes+=($!)
}
step() { # step NAME COMMAND...: runs it, its output to .lab/part-NAME.log and its exit status to .lab/part-NAME.rc
  local name=$1
  shift
  "$@" > ".lab/part-$name.log" 2>&1
  echo $? > ".lab/part-$name.rc"
}
ended() { # ended NAME HEADER: prints the part's log under its header; false when it failed
  echo "== $2"
  cat ".lab/part-$1.log" 2>/dev/null
  [ "$(cat ".lab/part-$1.rc" 2>/dev/null)" = 0 ]
}
running() { # true while a process of any lane's group is left
  local p
  for p in "${lanes[@]}"; do kill -0 -- "-$p" 2>/dev/null && return 0; done
  return 1
}
stop_lanes() {
  # Once stopping, a second Ctrl-C does not cut the clean-up short; what runs from here runs in this
  # script's process group.
  trap '' INT TERM
  set +m
  echo "== stopped: the lanes are asked to stop (SIGINT), then made to (SIGTERM), then their labs are taken down"
  local p f
  for p in "${lanes[@]}"; do kill -INT -- "-$p" 2>/dev/null; done
  for _ in $(seq 60); do running || break; sleep 1; done
  for p in "${lanes[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
  # The labs the suites start (never lab.json, the demo's, nor a benchmark's); vitest leaves its files'
  # afterAll hooks unrun when stopped, the demo test's demo among them.
  for f in .lab/e2e-lab.json .lab/vitest-*.json .lab/*-test.json /tmp/pgherd-demo-test-*/lab.json; do
    [[ -f $f && $f != *report.json ]] && npx tsx lib/entry/cli/lab.ts down --file "$f" > /dev/null 2>&1
  done
  exit 130
}
trap stop_lanes INT TERM
lint() {
  local rc=0
  npx eslint . --max-warnings 0 || rc=1
  npx prettier --check . --log-level warn || rc=1
  return $rc
}
integration() {
  step integration npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.lab/vitest-report.json
}
browser_then_checks() {
  PGHERD_SKIP_BUILD=1 PLAYWRIGHT_JSON_OUTPUT_NAME=.lab/playwright-report.json step e2e npx playwright test --reporter=list,json
  step typecheck npx tsc --noEmit -p tsconfig.json
  step lint lint
  step unit npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.lab/vitest-unit-report.json
}
rm -f .lab/part-*.log .lab/part-*.rc

echo "== the console's build (next build)"
npx next build || status=1

echo "== integration tests, and browser tests then type check, lint and unit tests, at once (each one's output follows)"
lanes_started=$(date +%s)
set -m
lane integration
lane browser_then_checks
wait
set +m
typecheck=passed lint=passed
ended typecheck "type check" || { status=1; typecheck=FAILED; }
ended lint "lint (ESLint: typescript-eslint strict type-checked, pgherd's layers; then prettier --check)" || { status=1; lint=FAILED; }
ended unit "unit tests (vitest, no lab)" || status=1
ended integration "integration tests (vitest, against the lab)" || status=1
ended e2e "browser tests (Playwright, Debian Chromium)" || status=1
echo "== (the lanes took $(( $(date +%s) - lanes_started )) s)"

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
