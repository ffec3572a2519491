#!/usr/bin/env bash
# The whole test suite, from nothing: installs and builds what is missing, then runs unit
# and integration tests (real tansu broker, real DuckLake) in the one release profile the
# demo and the benchmark use, so DuckDB is compiled once per machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

bash scripts/setup.sh
cargo fmt --check
cargo clippy $CARGO_PROFILE_FLAG --all-targets --quiet -- -D warnings
cargo test $CARGO_PROFILE_FLAG --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
