#!/usr/bin/env bash
# Run the swarm-touching tests (e2e, inswarm, reconcile, run, lease, precheck, pipe, swarm, plan,
# conformance, sandbox) N times in a row (default 5) and print one line per
# test with its pass count, e.g. `5/5 reconcile::…`. A test that fails even
# once is a bug: its output is kept under the log folder printed at the end.
#
#   scripts/stress.sh [N] [extra nextest filter words…]
#
# Exits 0 only when every test passed every run. Sets the machine up like
# scripts/test.sh (dockerd with a swarm). The corpus tests need
# ../shared/corpus beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
shift || true
case "$runs" in '' | *[!0-9]*) echo "stress: N must be a number, got '$runs'" >&2; exit 2 ;; esac
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "stress: needs cargo-nextest (cargo install cargo-nextest)" >&2
  exit 2
fi

scripts/setup-docker.sh
filter='binary_id(=bosun::tests) & test(/^(e2e|inswarm|reconcile|run|lease|conformance|sandbox|precheck|pipe|swarm|plan|vip|failover)::/)'
logs=$(mktemp -d /tmp/bosun-stress.XXXXXX)
cargo nextest run --locked --no-run >/dev/null

for i in $(seq 1 "$runs"); do
  echo "stress: run $i of $runs" >&2
  # --no-fail-fast: every test runs every time; the exit status is read
  # from the per-test lines below, not from nextest.
  cargo nextest run --locked --no-fail-fast --status-level all --final-status-level none \
    -E "$filter" "$@" >"$logs/run$i.log" 2>&1 || true
done

# nextest prints `  PASS [ 1.234s] (3/40) bosun::tests mod::name` (or FAIL,
# TIMEOUT, SIGSEGV…) once per test and run.
summary=$(
  for i in $(seq 1 "$runs"); do
    sed -n -E 's/^ *([A-Z]+) +\[[^]]*\] +(\([^)]*\) +)?bosun::tests +([^ ]+).*$/\1 \3/p' "$logs/run$i.log" |
      grep -E '^(PASS|FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|ABORT|LEAK) '
  done | awk -v runs="$runs" '
    { seen[$2] = 1; if ($1 == "PASS") pass[$2]++ }
    END {
      for (t in seen) printf "%d/%d %s\n", pass[t] + 0, runs, t
    }' | sort -k2
)
echo "$summary"
tests=$(printf '%s\n' "$summary" | grep -c . || true)
failing=$(printf '%s\n' "$summary" | awk -v r="$runs" -F'[/ ]' '$1 != r' | grep -c . || true)
echo "stress: $tests tests, $runs runs each; $failing not $runs/$runs (logs: $logs)"
if [ "$tests" -eq 0 ]; then
  echo "stress: no test ran (see $logs/run1.log)" >&2
  exit 2
fi
[ "$failing" -eq 0 ]
