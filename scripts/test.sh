#!/usr/bin/env bash
# Run every test of bosun: sets the machine up (scripts/setup-docker.sh), then
# checks formatting and lints, and runs the whole suite (unit tests, the
# validate/schema/malformed tests, the compose conformance tests against the
# docker CLI, and the multi-node sandbox tests on real daemons).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "test: cargo not found; install Rust >= 1.89 (https://rustup.rs) first" >&2
  exit 2
fi
# The compose corpus (../shared/corpus beside the checkout: 40 real stack
# files and what `docker stack deploy` sent for each) feeds the tests whose
# names match CORPUS_TESTS. Without it they are skipped, with one line that
# says so; .ci/run sets BOSUN_REQUIRE_CORPUS=1, so CI never skips them.
CORPUS_TESTS='binary_id(=bosun::tests) & (test(/corpus/) | test(/^conformance::/))'
skip=()
if [ ! -f ../shared/corpus/SOURCES.md ]; then
  if [ "${BOSUN_REQUIRE_CORPUS:-0}" = 1 ]; then
    echo "test: ../shared/corpus not found beside this checkout, and BOSUN_REQUIRE_CORPUS=1" >&2
    exit 2
  fi
  skip=(corpus)
fi

scripts/setup-docker.sh

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  if [ "${#skip[@]}" -gt 0 ]; then
    n=$(cargo nextest list --locked -E "$CORPUS_TESTS" --message-format oneline 2>/dev/null | grep -c . || true)
    echo "test: skipping $n corpus tests: ../shared/corpus not found beside this checkout"
    cargo nextest run --locked --no-fail-fast -E "not ($CORPUS_TESTS)"
  else
    cargo nextest run --locked --no-fail-fast
  fi
else
  if [ "${#skip[@]}" -gt 0 ]; then
    echo "test: skipping the corpus tests (integration tests named *corpus*, and conformance::): ../shared/corpus not found beside this checkout"
    cargo test --locked --no-fail-fast --lib --bins
    cargo test --locked --no-fail-fast --test tests -- --skip corpus --skip conformance::
  else
    cargo test --locked --no-fail-fast
  fi
fi
