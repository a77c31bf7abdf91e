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
if [ ! -d ../shared/corpus ]; then
  echo "test: ../shared/corpus not found beside this checkout (the conformance corpus)" >&2
  exit 2
fi

scripts/setup-docker.sh

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
