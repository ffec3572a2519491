#!/usr/bin/env bash
# Benchmark (not a test). On one local tansu broker (in memory), each mode pre-loads a topic,
# then measures in the same run
#   (a) the raw consume rate of those records with no sink work (ducklake-gen consume), and
#   (b) ducklake-sink draining them into a fresh DuckLake end to end,
# and prints records/s, MB/s, peak RSS and the ratio b/a. Modes:
#   append  N JSON orders, 4 partitions, insert.mode=append.
#   cdc     Debezium change events from `ducklake-gen cdc` (a snapshot of KEYS rows, then COUNT
#           inserts/updates/deletes/key changes in the issue's mix, 20 % updates and 10 % deletes
#           of the change events, each delete followed by a tombstone), one
#           partition, applied with insert.mode=upsert, pk.mode=record_key, delete.enabled=true;
#           "changes" are the topic's records (snapshot reads, c/u/d events, tombstones). The
#           lake table is then checked against the generator's expected final state.
#   append-avro  the append mode's orders with Avro values (AvroConverter, typed columns) through
#           scripts/schema_registry.py; the JSON mode's baseline is schemaless JSON.
#   cdc-avro     the cdc mode's changes serialized with AvroConverter.
#   freshness    the sink running (not draining) with flush.interval.ms=1000 while orders are
#           produced steadily at half its maximum rate (the append mode's rate from the same
#           run, else measured first on BENCH_FRESHNESS_MAX_COUNT orders, default N) for
#           BENCH_FRESHNESS_SECS (30) seconds; prints the p50/p90/p99 of commit time − Kafka
#           timestamp from the sink's /metrics histogram (target p99 <= 2 s).
#   commits      BENCH_COMMITS (10,000) orders drained with flush.max.records=1, one small commit
#           after another into one table: the mean latency of the last 100 flushes over the
#           first 100 shows whether a commit gets slower as the lake's snapshots pile up.
#           Not in the default modes (about 10 minutes); run it with BENCH_MODES=commits.
#   cdc-scale    the keyed apply at scale, lake only (no broker): examples/apply_bench pre-loads
#           a table of BENCH_SCALE_ROWS (10,000,000) rows in flushes of BENCH_SCALE_CHUNK (1,000,000),
#           then applies BENCH_SCALE_BATCHES
#           flushes of BENCH_SCALE_BATCH (100,000, the upsert default of flush.max.records)
#           changes with random keys, then with recent keys; prints changes/s, commit latency,
#           delete files and full-scan times before, after and after compaction. Not in the
#           default modes (a few minutes); BENCH_MODES=cdc-scale, BENCH_SCALE_STRATEGIES=plain,sorted.
#   cdc-workers  several workers on a PostgreSQL catalog: BENCH_WORKERS_TOPICS (8) single-partition
#           CDC topics of BENCH_WORKERS_CHANGES (100,000) changes over BENCH_WORKERS_KEYS (10,000)
#           keys each (`ducklake-gen cdc`), one table per topic, drained by 1 worker, then by
#           BENCH_WORKERS (4) worker processes of one connector (one consumer group) into a
#           fresh lake; prints the changes/s of each (first assignment to last commit over all
#           the workers), the CPU they used, their ratio, the commit conflicts and the most
#           retries any one flush needed, and checks every table against its expected state.
#           A worker still running after BENCH_WORKERS_TIMEOUT (300) seconds fails the mode.
#           Not in the default modes.
#
#   scripts/bench.sh [N]          N orders (append mode), default 1,000,000
#   BENCH_MODES="append cdc append-avro cdc-avro freshness"   the modes to run, in this order
#   BENCH_PARTITIONS=4 BENCH_FLUSH_RECORDS=100000 BENCH_INLINING=0 scripts/bench.sh
#   BENCH_COMMITS=10000 BENCH_MODES=commits scripts/bench.sh
#   BENCH_KEEP=1   keep the work folder (logs, lakes, connector files) and print where
#   BENCH_CDC_COUNT=1000000 BENCH_CDC_KEYS=100000 BENCH_CDC_FORMAT=json|json-schema scripts/bench.sh
#   BENCH_CDC_UPDATES=20 BENCH_CDC_DELETES=10   percent of the change events (the rest inserts)
#
# A new mode is a function bench_<mode> that fills a topic, then calls raw_consume,
# sink_drain and report (see bench_cdc), plus its name in BENCH_MODES.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

N=${1:-${BENCH_COUNT:-1000000}}
MODES=${BENCH_MODES:-append cdc append-avro cdc-avro freshness}
PARTITIONS=${BENCH_PARTITIONS:-4}
FLUSH_RECORDS=${BENCH_FLUSH_RECORDS:-100000}
INLINING=${BENCH_INLINING:-0}
CDC_COUNT=${BENCH_CDC_COUNT:-1000000}
CDC_KEYS=${BENCH_CDC_KEYS:-100000}
CDC_FORMAT=${BENCH_CDC_FORMAT:-json}
# The issue's CDC mix: percent of the change events after the snapshot.
CDC_UPDATES=${BENCH_CDC_UPDATES:-20}
CDC_DELETES=${BENCH_CDC_DELETES:-10}

bash scripts/setup.sh
# setup.sh may just have fetched the prebuilt libduckdb: pick the build path it used.
duckdb_build_path
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT
"$TANSU_BIN" broker --listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" --advertised-listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" \
  --storage-engine memory://tansu/ > "$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
REGISTRY_PID=
trap 'kill $TANSU_PID $REGISTRY_PID 2>/dev/null || true; [ ${#PG_STOP[@]} -gt 0 ] && "${PG_STOP[@]}" >/dev/null 2>&1; if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# The figures of the summary table, one KEY=VALUE a line, written by the modes as they run.
export RESULTS=$WORK/results
: > "$RESULTS"
result() { echo "$1=$2" >> "$RESULTS"; }
result_of() { sed -n "s/^$1=//p" "$RESULTS" | tail -1; }

MACHINE="bench: machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
SETTINGS="flush.max.records=$FLUSH_RECORDS, inlining limit $INLINING"

# raw_consume TOPIC COUNT: ducklake-gen's raw consume line (records=… records_per_s=… mb_per_s=…).
raw_consume() { "$BIN_DIR/ducklake-gen" consume --topic "$1" --count "$2"; }

# sink_drain NAME CONFIG_JSON: runs `ducklake-sink run --until-caught-up` with connector NAME on
# a fresh lake in $WORK/NAME/; its config is the keys every mode shares, overlaid with
# CONFIG_JSON (a JSON object: topics, converters, insert mode...). The connector file stays at
# $WORK/NAME.json for checks. Prints the figures on one line:
#   records=… bytes=… rows=… deleted=… flushes=… active_ms=… peak_rss_kb=… wall_s=…
sink_drain() {
  local name=$1 dir=$WORK/$1
  connector_file "$name" "$2"
  /usr/bin/time -f 'peak_rss_kb=%M wall_s=%e' -o "$dir/time.txt" \
    "$BIN_DIR/ducklake-sink" run --until-caught-up --http-addr 127.0.0.1:0 "$WORK/$name.json" 2> "$dir/sink.log" || {
    echo "bench: the sink failed:" >&2; tail -20 "$dir/sink.log" >&2; return 1; }
  local summary
  summary=$(grep "run summary" "$dir/sink.log" | tail -1)
  echo "$(grep -oE '\b(records|bytes|rows|deleted|flushes|active_ms)=[0-9]+' <<< "$summary" | tr '\n' ' ')$(cat "$dir/time.txt")"
}

# connector_file NAME CONFIG_JSON: writes $WORK/NAME.json (see sink_drain) for a lake in $WORK/NAME/.
connector_file() {
  local name=$1 dir=$WORK/$1
  mkdir -p "$dir"
  python3 - "$name" "$dir" "$2" "$INLINING" "$FLUSH_RECORDS" > "$WORK/$name.json" <<'PY'
import json, sys
name, dir, extra, inlining, flush_records = sys.argv[1:]
config = {"connector.class": "DuckLakeSink",
          "ducklake.catalog": f"{dir}/metadata/{name}.ducklake", "ducklake.data.path": f"{dir}/data/",
          "ducklake.data.inlining.row.limit": inlining, "auto.create": "true", "auto.evolve": "true",
          "flush.max.records": flush_records, "flush.interval.ms": "5000",
          "consumer.override.session.timeout.ms": "6000"}
config.update(json.loads(extra))
print(json.dumps({"name": name, "config": config}, indent=1))
PY
}

# report KEY TAG WHAT UNIT N RAW FIGURES TARGET: the (b), (a) and ratio lines of one mode; its
# figures go to the summary as KEY_rate, KEY_raw, KEY_ratio and KEY_rss (MiB).
report() {
  python3 - "$@" <<'PY'
import os, re, sys
key, tag, what, unit, n, raw, figures, target = sys.argv[1:]
def field(text, name):
    m = re.search(rf"\b{name}=([0-9.]+)", text)
    if not m:
        sys.exit(f"bench: cannot find {name} in: {text}")
    return float(m.group(1))
n = int(n)
raw_rate = field(raw, "records_per_s"); raw_mb = field(raw, "mb_per_s")
records = field(figures, "records"); active = field(figures, "active_ms") / 1000
bytes_ = field(figures, "bytes"); flushes = int(field(figures, "flushes"))
wall = field(figures, "wall_s"); rss = field(figures, "peak_rss_kb") / 1024
if int(records) != n:
    sys.exit(f"bench: the sink consumed {int(records)} records, expected {n}")
sink_rate = records / active
print(f"bench: ({tag}b) {what}: {sink_rate:,.0f} {unit}/s, {bytes_ / active / 1e6:.1f} MB/s "
      f"(first record to last commit {active:.2f}s; process wall {wall:.2f}s incl. group join; "
      f"{flushes} flushes; peak RSS {rss:.0f} MiB)")
print(f"bench: ({tag}a) raw consume: {raw_rate:,.0f} {unit}/s, {raw_mb:.1f} MB/s")
print(f"bench: {'(' + tag.strip() + ') ' if tag else ''}ratio b/a = {sink_rate / raw_rate:.2f}{target}")
with open(os.environ["RESULTS"], "a") as out:
    out.write(f"{key}_rate={sink_rate:.0f}\n{key}_raw={raw_rate:.0f}\n{key}_ratio={sink_rate / raw_rate:.2f}\n{key}_rss={rss:.0f}\n")
PY
}

# registry: starts scripts/schema_registry.py once; sets REGISTRY_URL.
registry() {
  [ -n "$REGISTRY_PID" ] && return
  python3 scripts/schema_registry.py --port 0 --quiet > "$WORK/registry.out" 2> "$WORK/registry.log" &
  REGISTRY_PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/registry.out" 2>/dev/null && break; sleep 0.1; done
  REGISTRY_URL=$(sed -n 's/^listening on //p' "$WORK/registry.out")
}

bench_append() {
  echo "$MACHINE; $N orders, $PARTITIONS partitions, $SETTINGS"
  "$BIN_DIR/ducklake-gen" orders --topic bench --partitions "$PARTITIONS" --count "$N" | sed 's/^/bench: produce: /'
  local raw figures
  raw=$(raw_consume bench "$N")
  echo "bench: (a) $raw"
  figures=$(sink_drain bench '{"topics": "bench",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}')
  report append "" "ducklake-sink end to end" records "$N" "$raw" "$figures" " (target >= 0.50, stretch 0.70)"
}

bench_append-avro() {
  registry
  echo "bench: (avro) $N orders, Avro values through $REGISTRY_URL, $PARTITIONS partitions"
  "$BIN_DIR/ducklake-gen" orders --topic bench-avro --partitions "$PARTITIONS" --count "$N" \
    --schema-registry "$REGISTRY_URL" | sed 's/^/bench: (avro) produce: /'
  local raw figures
  raw=$(raw_consume bench-avro "$N")
  echo "bench: (avro a) $raw"
  figures=$(sink_drain bench-avro '{"topics": "bench-avro",
    "value.converter": "io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": "'"$REGISTRY_URL"'"}')
  report append_avro "avro " "ducklake-sink end to end, Avro" records "$N" "$raw" "$figures" ""
}

bench_cdc-avro() {
  registry
  CDC_FORMAT=avro CDC_TAG=cdc-avro bench_cdc
}

bench_cdc() {
  local tag=${CDC_TAG:-cdc} schemas=false out total raw figures converters registry_args=()
  local topic=bench$tag.inventory.users
  topic=${topic//-/}
  if [ "$CDC_FORMAT" = json-schema ]; then schemas=true; fi
  converters='"key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "'$schemas'",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "'$schemas'"'
  if [ "$CDC_FORMAT" = avro ]; then
    registry_args=(--schema-registry "$REGISTRY_URL")
    converters='"key.converter": "io.confluent.connect.avro.AvroConverter", "key.converter.schema.registry.url": "'"$REGISTRY_URL"'",
    "value.converter": "io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": "'"$REGISTRY_URL"'"'
  fi
  [[ " $MODES " == *" append "* ]] || [ "$tag" != cdc ] || echo "$MACHINE; $SETTINGS"
  echo "bench: ($tag) $CDC_COUNT changes over $CDC_KEYS keys (ducklake-gen cdc --format $CDC_FORMAT), 1 partition, upsert by record key, deletes applied"
  out=$("$BIN_DIR/ducklake-gen" cdc --topic "$topic" --format "$CDC_FORMAT" --count "$CDC_COUNT" --keys "$CDC_KEYS" \
    --updates "$CDC_UPDATES" --deletes "$CDC_DELETES" \
    "${registry_args[@]}" --expect "$WORK/cdc-expect.jsonl")
  sed "s/^/bench: ($tag) produce: /" <<< "$out"
  python3 -c 'import re, sys
c, u, d = (int(re.search(rf"\b{k}=(\d+)", sys.argv[1]).group(1)) for k in "cud")
t = c + u + d
print(f"bench: ({sys.argv[2]}) mix of the changes after the snapshot: c {100*c/t:.0f} %, u {100*u/t:.0f} %, d {100*d/t:.0f} % (key changes count as d + c)")' "$out" "$tag"
  total=$(grep -oE 'sent [0-9]+ records' <<< "$out" | grep -oE '[0-9]+')
  raw=$(raw_consume "$topic" "$total")
  echo "bench: ($tag a) $raw"
  figures=$(sink_drain "bench-$tag" '{"topics": "'"$topic"'", "table.name.format": "${source.table}",
    '"$converters"',
    "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"}')
  report "${tag//-/_}" "$tag " "ducklake-sink upsert/delete end to end" changes "$total" "$raw" "$figures" ""
  cdc_check "bench-$tag" users
}

bench_commits() {
  local n=${BENCH_COMMITS:-10000} figures
  echo "bench: (commits) $n orders, 1 partition, drained with flush.max.records=1: $n commits in a row into one table (inlining limit $INLINING)"
  "$BIN_DIR/ducklake-gen" orders --topic bench-commits --partitions 1 --count "$n" | sed 's/^/bench: (commits) produce: /'
  figures=$(FLUSH_RECORDS=1 sink_drain bench-commits '{"topics": "bench-commits",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}')
  python3 - "$WORK/bench-commits/sink.log" "$n" "$figures" <<'PY'
import os, re, statistics, sys
log, n, figures = sys.argv[1], int(sys.argv[2]), sys.argv[3]
flushes = [(int(re.search(r"\bms=(\d+)", l).group(1)), int(re.search(r"\bcommit_ms=(\d+)", l).group(1)))
           for l in open(log) if " flushed" in l and re.search(r"\bms=\d+", l)]
if len(flushes) != n:
    sys.exit(f"bench: (commits) {len(flushes)} flushes logged, expected {n} (one per record)")
first, last = flushes[:100], flushes[-100:]
mean = lambda xs, i: statistics.mean(x[i] for x in xs)
p50 = lambda xs, i: statistics.median(x[i] for x in xs)
rss = re.search(r"peak_rss_kb=(\d+)", figures).group(1)
print(f"bench: (commits) {n} flushes: latency of the first 100 mean {mean(first, 0):.1f} ms (median {p50(first, 0):.0f}), "
      f"of the last 100 mean {mean(last, 0):.1f} ms (median {p50(last, 0):.0f}); of which commit {mean(first, 1):.1f} -> "
      f"{mean(last, 1):.1f} ms; peak RSS {int(rss) / 1024:.0f} MiB")
print(f"bench: (commits) ratio last 100 / first 100 = {mean(last, 0) / mean(first, 0):.2f} (target <= 1.5)")
with open(os.environ["RESULTS"], "a") as out:
    out.write(f"commits_ratio={mean(last, 0) / mean(first, 0):.2f}\n")
PY
}

# bench_freshness: the age of records at their commit while the sink keeps up with a steady
# stream at half its maximum rate (the append mode's figure from this run, else measured here
# on BENCH_FRESHNESS_MAX_COUNT orders), flush.interval.ms=1000: orders are produced paced for
# BENCH_FRESHNESS_SECS seconds into a topic the running sink is already assigned; the p99 of
# commit time − Kafka timestamp is read from the sink's /metrics histogram
# ducklake_sink_record_freshness_seconds, interpolated within its buckets as Prometheus'
# histogram_quantile does.
bench_freshness() {
  local max rate secs=${BENCH_FRESHNESS_SECS:-30} topic=bench-fresh count http_port sink_pid out
  max=$(result_of append_rate)
  if [ -z "$max" ]; then
    local n_max=${BENCH_FRESHNESS_MAX_COUNT:-$N} figures
    echo "bench: (freshness) maximum rate: $n_max orders drained as in the append mode"
    "$BIN_DIR/ducklake-gen" orders --topic bench-fresh-max --partitions "$PARTITIONS" --count "$n_max" | sed 's/^/bench: (freshness) produce: /'
    figures=$(sink_drain bench-fresh-max '{"topics": "bench-fresh-max",
      "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}')
    max=$(python3 -c 'import re, sys; f = sys.argv[1]; g = lambda k: float(re.search(rf"\b{k}=([0-9.]+)", f).group(1))
print(round(g("records") / (g("active_ms") / 1000)))' "$figures")
  fi
  rate=$((max / 2))
  count=$((rate * secs))
  http_port=$(free_port)
  echo "bench: (freshness) $count orders at $rate records/s (half of the maximum $max/s) for ${secs}s, $PARTITIONS partitions, flush.interval.ms=1000, to a running sink"
  "$BIN_DIR/ducklake-gen" orders --topic "$topic" --partitions "$PARTITIONS" --count 0 > /dev/null
  connector_file "$topic" '{"topics": "'"$topic"'", "flush.interval.ms": "1000",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}'
  "$BIN_DIR/ducklake-sink" run --http-addr "127.0.0.1:$http_port" "$WORK/$topic.json" 2> "$WORK/$topic/sink.log" &
  sink_pid=$!
  # Fails (and stops the sink) unless all PARTITIONS partitions are assigned within 60 s.
  if ! freshness_watch assigned "$http_port" "$topic" "$PARTITIONS"; then
    kill "$sink_pid" 2>/dev/null; wait "$sink_pid" || true; tail -20 "$WORK/$topic/sink.log" >&2; return 1
  fi
  "$BIN_DIR/ducklake-gen" orders --topic "$topic" --count "$count" --rate "$rate" | sed 's/^/bench: (freshness) produce: /'
  out=$(freshness_watch committed "$http_port" "$topic" "$count") || {
    kill "$sink_pid" 2>/dev/null; wait "$sink_pid" || true; tail -20 "$WORK/$topic/sink.log" >&2; return 1; }
  kill -TERM "$sink_pid"; wait "$sink_pid" || { echo "bench: (freshness) the sink failed:" >&2; tail -20 "$WORK/$topic/sink.log" >&2; return 1; }
  echo "bench: (freshness) $out (target p99 <= 2 s)"
  echo "bench: (freshness) flushes: $(grep -c ' flushed' "$WORK/$topic/sink.log") (interval $(grep -c 'reason="interval"' "$WORK/$topic/sink.log"))"
  result freshness_p99 "$(sed -E 's/.*p99 ([0-9.]+) s.*/\1/' <<< "$out")"
  result freshness_rate "$rate"
}

# freshness_watch assigned|committed HTTP_PORT CONNECTOR N: waits (up to 60 s past the last
# progress) until the connector holds N partitions, or has committed N records; for
# `committed`, prints the record freshness quantiles of its /metrics histogram.
freshness_watch() {
  python3 - "$@" <<'PY'
import json, re, sys, time, urllib.request
what, port, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = f"http://127.0.0.1:{port}"
def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return r.read().decode()
def committed(text):
    return sum(float(v) for v in re.findall(
        rf'^ducklake_sink_records_committed_total{{[^}}]*connector="{name}"[^}}]*}} ([0-9.e+]+)$', text, re.M))
last, progress = -1, time.monotonic()
while time.monotonic() - progress < 60:
    try:
        if what == "assigned":
            now = len(json.loads(get(f"/connectors/{name}/status")).get("partitions", []))
        else:
            now = committed(get("/metrics"))
    except OSError:
        now = last
    if now >= n:
        break
    if now != last:
        last, progress = now, time.monotonic()
    time.sleep(0.2)
else:
    sys.exit(f"bench: (freshness) {what}: {last} of {n} after 60 s without progress")
if what == "committed":
    text = get("/metrics")
    buckets = sorted((float("inf") if le == "+Inf" else float(le), float(v)) for le, v in re.findall(
        rf'^ducklake_sink_record_freshness_seconds_bucket{{[^}}]*le="([^"]+)"[^}}]*}} ([0-9.e+]+)$', text, re.M))
    total = buckets[-1][1] if buckets else 0
    if total < n:
        sys.exit(f"bench: (freshness) the histogram counts {total:.0f} records, expected {n}")
    def quantile(q):
        # Prometheus' histogram_quantile: linear within the bucket the rank falls in; the
        # highest finite bound if it falls in +Inf.
        rank, lower, below = q * total, 0.0, 0.0
        for bound, cum in buckets:
            if cum >= rank:
                if bound == float("inf"):
                    return lower
                return lower + (bound - lower) * (rank - below) / max(cum - below, 1)
            lower, below = bound, cum
        return lower
    print(f"{total:.0f} records committed: p50 {quantile(0.5):.2f} s, p90 {quantile(0.9):.2f} s, p99 {quantile(0.99):.2f} s")
PY
}

# summary: issue 10's table with this run's figures ("not run" for modes not in BENCH_MODES).
summary() {
  python3 - "$N" "$FLUSH_RECORDS" "$(uptime | sed 's/.*load average: //')" <<'PY'
import os, sys
n, flush_records, load = sys.argv[1:]
results = {}
for line in open(os.environ["RESULTS"]):
    k, _, v = line.strip().partition("=")
    results[k] = float(v)
def row(measure, key, fmt, target, ok):
    v = results.get(key)
    figure, verdict = ("not run", "") if v is None else (fmt(v), "met" if ok(v) else "NOT met")
    print(f"| {measure} | {figure} | {target} | {verdict} |")
per_s = lambda unit: lambda v: f"{v / 1e3:,.0f} k {unit}/s"
print(f"bench: summary ({int(n):,} orders, flush.max.records={flush_records}; load average at the end {load})")
print("| measure | this run | target | |")
print("| --- | --- | --- | --- |")
row("JSON orders append, end to end ÷ raw consume of the same topic", "append_ratio",
    lambda v: f"{v:.2f} (raw {results.get('append_raw', 0) / 1e6:.2f} M/s)", "≥ 0.50 (stretch 0.70)", lambda v: v >= 0.5)
row("JSON orders append, absolute", "append_rate", per_s("records"), "≥ 1 M records/s", lambda v: v >= 1e6)
row("Avro append, absolute", "append_avro_rate", per_s("records"), "≥ 1 M records/s", lambda v: v >= 1e6)
row("CDC apply, JSON (20 % updates, 10 % deletes)", "cdc_rate", per_s("changes"), "≥ 200 k changes/s", lambda v: v >= 2e5)
row("CDC apply, Avro (20 % updates, 10 % deletes)", "cdc_avro_rate", per_s("changes"), "≥ 200 k changes/s", lambda v: v >= 2e5)
rate = results.get("freshness_rate")
row(f"freshness at half of the maximum rate{f' ({rate / 1e3:,.0f} k records/s)' if rate else ''}, "
    "flush.interval.ms=1000: p99 of commit time − Kafka timestamp", "freshness_p99", lambda v: f"{v:.2f} s", "≤ 2 s", lambda v: v <= 2)
row("10,000 small commits in a row: latency of the last 100 ÷ the first 100", "commits_ratio", lambda v: f"{v:.2f}", "≤ 1.5", lambda v: v <= 1.5)
row(f"peak RSS, {int(n):,} orders (append mode, flush.max.records={flush_records})", "append_rss", lambda v: f"{v:.0f} MiB", "≤ 300 MiB", lambda v: v <= 300)
PY
}

bench_cdc-scale() {
  echo "bench: (cdc-scale) keyed apply at scale, lake only (cargo run --release --example apply_bench)"
  cargo build --release $CARGO_FEATURE_FLAGS --example apply_bench 2>&1 | tail -1 | sed 's/^/bench: (cdc-scale) /'
  "$CARGO_TARGET_DIR/release/examples/apply_bench" --rows "${BENCH_SCALE_ROWS:-10000000}" \
    --batch "${BENCH_SCALE_BATCH:-100000}" --batches "${BENCH_SCALE_BATCHES:-10}" --chunk "${BENCH_SCALE_CHUNK:-1000000}" \
    --strategies "${BENCH_SCALE_STRATEGIES:-plain}" --dir "$WORK/cdc-scale" 2>&1 | sed 's/^/bench: (cdc-scale) /'
}

# pg_start: a private PostgreSQL cluster for catalogs (once); sets PG_PORT, stopped on exit.
PG_PORT=
pg_start() {
  [ -n "$PG_PORT" ] && return
  local bin as_pg=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
  mkdir -p "$WORK/pg" && chmod 755 "$WORK"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as_pg[@]}" "$bin/initdb" -A trust -U postgres --no-sync -E UTF8 -D "$WORK/pg/data" >/dev/null
  "${as_pg[@]}" "$bin/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/pg.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg -c fsync=off -c max_connections=200" >/dev/null
  PG_STOP=("${as_pg[@]}" "$bin/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop)
}
PG_STOP=()

bench_cdc-workers() {
  local topics=${BENCH_WORKERS_TOPICS:-8} changes=${BENCH_WORKERS_CHANGES:-100000} keys=${BENCH_WORKERS_KEYS:-10000}
  local workers=${BENCH_WORKERS:-4} total=0 out i n list=() rates=()
  pg_start
  echo "bench: (cdc-workers) $topics single-partition CDC topics x $changes changes over $keys keys, PostgreSQL catalog; 1 worker, then $workers workers of one connector"
  for i in $(seq "$topics"); do
    out=$("$BIN_DIR/ducklake-gen" cdc --topic "cdcw$i" --format json --count "$changes" --keys "$keys" --seed "$i" \
      --expect "$WORK/cdcw$i-expect.jsonl")
    total=$((total + $(grep -oE 'sent [0-9]+ records' <<< "$out" | grep -oE '[0-9]+')))
    list+=("cdcw$i")
  done
  echo "bench: (cdc-workers) produced $total records"
  for n in 1 "$workers"; do
    local name=cdcw-$n dir=$WORK/cdcw-$n pids=()
    psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE lake_w$n"
    connector_file "$name" '{"topics": "'"$(IFS=,; echo "${list[*]}")"'", "table.name.format": "${topic}",
      "ducklake.catalog": "postgres:dbname=lake_w'"$n"' host=127.0.0.1 port='"$PG_PORT"' user=postgres",
      "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
      "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
      "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"}'
    for w in $(seq "$n"); do
      # A time limit: once, two workers left without partitions after the others stopped
      # never got a new assignment from tansu (the group showed no members) and waited forever.
      /usr/bin/time -f '%U %S' -o "$dir/cpu-$w.txt" timeout "${BENCH_WORKERS_TIMEOUT:-300}" \
        "$BIN_DIR/ducklake-sink" run --until-caught-up --http-addr 127.0.0.1:0 "$WORK/$name.json" 2> "$dir/sink-$w.log" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || { echo "bench: (cdc-workers) a worker failed or ran past BENCH_WORKERS_TIMEOUT (${BENCH_WORKERS_TIMEOUT:-300} s):" >&2; tail -5 "$dir"/sink-*.log >&2; return 1; }; done
    rates+=("$(python3 - "$total" "$dir" <<'PY'
import glob, re, sys
from datetime import datetime
total, dir = int(sys.argv[1]), sys.argv[2]
ansi = re.compile(r"\x1b\[[0-9;]*m")
stamp = lambda line: datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
starts, ends, records, retries, conflicts = [], [], 0, 0, 0
for path in glob.glob(f"{dir}/sink-*.log"):
    for line in open(path):
        line = ansi.sub("", line)
        # From the first partitions a worker was given to the last flush committed.
        if "partitions assigned" in line and "TopicPartition" in line:
            starts.append(stamp(line))
        if " flushed" in line:
            ends.append(stamp(line))
        if "run summary" in line:
            records += int(re.search(r"\brecords=(\d+)", line).group(1))
        if "retrying" in line and re.search(r'what="?flush', line):
            retries = max(retries, int(re.search(r"\battempt=(\d+)", line).group(1)))
            conflicts += "onflict" in line or "Failed to commit" in line
if records < total:
    sys.exit(f"bench: (cdc-workers) the workers consumed {records} records, expected {total}")
cpu = sum(sum(map(float, open(p).read().split()[-2:])) for p in glob.glob(f"{dir}/cpu-*.txt"))
window = max(ends) - min(starts)
print(f"{total / window:.0f} {window:.2f} {retries} {conflicts} {cpu:.1f} {cpu / window:.2f}")
PY
)")
    read -r rate window retries conflicts cpu cores <<< "${rates[-1]}"
    echo "bench: (cdc-workers) $n worker(s): $rate changes/s (first assignment to last commit ${window}s), CPU ${cpu}s = $cores cores busy on average, commit conflicts $conflicts, most retries of one flush $retries (target <= 3)"
    for i in $(seq "$topics"); do
      cp "$WORK/cdcw$i-expect.jsonl" "$WORK/cdc-expect.jsonl"
      cdc_check "$name" "cdcw$i" | sed "s/^bench: (cdc)/bench: (cdc-workers) $n worker(s), cdcw$i:/"
    done
  done
  python3 -c 'import sys; one, many = float(sys.argv[1].split()[0]), float(sys.argv[2].split()[0]); print(f"bench: (cdc-workers) ratio {sys.argv[3]} workers / 1 worker = {many / one:.2f} (target >= 1.6 on 2 cores)")' "${rates[0]}" "${rates[1]}" "$workers"
}

# cdc_check NAME TABLE: the lake table holds exactly the generator's expected rows (keys, and
# the columns whose form does not depend on schemas.enable).
cdc_check() {
  cat > "$WORK/check.sql" <<SQL
SELECT count(*) FILTER (WHERE l.id IS NULL OR e.id IS NULL OR l.first_name IS DISTINCT FROM e.first_name
         OR l.last_name IS DISTINCT FROM e.last_name OR l.email IS DISTINCT FROM e.email
         OR l.active IS DISTINCT FROM e.active OR l.score IS DISTINCT FROM e.score
         OR l.status IS DISTINCT FROM e.status OR l.tags IS DISTINCT FROM e.tags) AS mismatches,
       count(l.id) AS lake_rows, count(e.id) AS expected_rows
FROM "$2" l FULL OUTER JOIN read_json('$WORK/cdc-expect.jsonl', format = 'newline_delimited',
  columns = {id: 'INTEGER', first_name: 'VARCHAR', last_name: 'VARCHAR', email: 'VARCHAR', balance: 'VARCHAR',
             birth_date: 'VARCHAR', created_at: 'VARCHAR', updated_at: 'VARCHAR', active: 'BOOLEAN', score: 'DOUBLE',
             status: 'VARCHAR', tags: 'VARCHAR', profile: 'VARCHAR', visits: 'VARCHAR', login_time: 'VARCHAR'}) e USING (id);
SQL
  local line
  line=$("$BIN_DIR/ducklake-sink" sql "$WORK/$1.json" "$WORK/check.sql" | grep -E '^[0-9]+ +\| [0-9]+ +\| [0-9]+$' | tr -d '|')
  read -r mismatches lake_rows expected_rows _ <<< "$line x x x"
  if [ "$mismatches" = 0 ] && [ "$lake_rows" = "$expected_rows" ]; then
    echo "bench: (cdc) check: the lake table equals the expected final state ($lake_rows rows; keys and 7 columns compared)"
  else
    echo "bench: (cdc) check FAILED: $mismatches rows differ from the expected state (lake $lake_rows rows, expected $expected_rows)" >&2
    return 1
  fi
}

for mode in $MODES; do
  declare -F "bench_$mode" >/dev/null || { echo "bench: unknown mode \`$mode\` in BENCH_MODES" >&2; exit 2; }
done
for mode in $MODES; do "bench_$mode"; done
summary
