#!/usr/bin/env bash
# The whole test suite, from nothing: installs and builds what is missing, then runs unit
# and integration tests (real tansu broker, real DuckLake) in the one release profile the
# demo and the benchmark use, so nothing is compiled twice. DUCKLAKE_SINK_DUCKDB=bundled runs
# it all on DuckDB compiled in rather than on the prebuilt library (scripts/env.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

bash scripts/setup.sh
# setup.sh may just have fetched the prebuilt libduckdb: pick the build path it used.
duckdb_build_path
cargo fmt --check
cargo clippy $CARGO_PROFILE_FLAG $CARGO_FEATURE_FLAGS --all-targets --quiet -- -D warnings
cargo test $CARGO_PROFILE_FLAG $CARGO_FEATURE_FLAGS --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
