#!/usr/bin/env bash
# Benchmark (not a test): pre-loads N JSON orders into a topic on a local tansu broker, then
# measures in the same run
#   (a) the raw consume rate of those records with no sink work (ducklake-gen consume), and
#   (b) ducklake-sink draining them into a fresh DuckLake end to end,
# and prints records/s, MB/s, peak RSS and the ratio b/a.
#
#   scripts/bench.sh [N]          N defaults to 1,000,000
#   BENCH_PARTITIONS=4 BENCH_FLUSH_RECORDS=100000 BENCH_INLINING=0 scripts/bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

N=${1:-${BENCH_COUNT:-1000000}}
PARTITIONS=${BENCH_PARTITIONS:-4}
FLUSH_RECORDS=${BENCH_FLUSH_RECORDS:-100000}
INLINING=${BENCH_INLINING:-0}

bash scripts/setup.sh
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT
"$TANSU_BIN" broker --listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" --advertised-listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" \
  --storage-engine memory://tansu/ > "$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
trap 'kill $TANSU_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

echo "bench: machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $N orders, $PARTITIONS partitions, flush.max.records=$FLUSH_RECORDS, inlining limit $INLINING"
"$BIN_DIR/ducklake-gen" orders --topic bench --partitions "$PARTITIONS" --count "$N" | sed 's/^/bench: produce: /'

raw=$("$BIN_DIR/ducklake-gen" consume --topic bench --count "$N")
echo "bench: (a) $raw"

cat > "$WORK/bench.json" <<JSON
{"name": "bench", "config": {
  "connector.class": "DuckLakeSink", "topics": "bench",
  "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
  "ducklake.catalog": "$WORK/metadata/bench.ducklake", "ducklake.data.path": "$WORK/data/",
  "ducklake.data.inlining.row.limit": "$INLINING",
  "auto.create": "true", "auto.evolve": "true",
  "flush.max.records": "$FLUSH_RECORDS", "flush.interval.ms": "5000",
  "consumer.override.session.timeout.ms": "6000"}}
JSON
/usr/bin/time -f 'peak_rss_kb=%M wall_s=%e' -o "$WORK/time.txt" \
  "$BIN_DIR/ducklake-sink" run --until-caught-up --http-addr 127.0.0.1:0 "$WORK/bench.json" 2> "$WORK/sink.log" || {
  echo "bench: the sink failed:" >&2; tail -20 "$WORK/sink.log" >&2; exit 1; }
summary=$(grep "run summary" "$WORK/sink.log" | tail -1)
flushes=$(grep -c "flushed" "$WORK/sink.log" || true)

python3 - "$raw" "$summary" "$(cat "$WORK/time.txt")" "$N" "$flushes" <<'PY'
import re, sys
raw, summary, timing, n, flushes = sys.argv[1:]
def field(text, name):
    m = re.search(rf"{name}=([0-9.]+)", text)
    if not m:
        sys.exit(f"bench: cannot find {name} in: {text}")
    return float(m.group(1))
n = int(n)
raw_rate = field(raw, "records_per_s"); raw_mb = field(raw, "mb_per_s")
records = field(summary, "records"); active = field(summary, "active_ms") / 1000
bytes_ = field(summary, "bytes")
wall = field(timing, "wall_s"); rss = field(timing, "peak_rss_kb") / 1024
if int(records) != n:
    sys.exit(f"bench: the sink consumed {int(records)} records, expected {n}")
sink_rate = records / active
print(f"bench: (b) ducklake-sink end to end: {sink_rate:,.0f} records/s, {bytes_ / active / 1e6:.1f} MB/s "
      f"(first record to last commit {active:.2f}s; process wall {wall:.2f}s incl. group join; "
      f"{flushes} flushes; peak RSS {rss:.0f} MiB)")
print(f"bench: (a) raw consume: {raw_rate:,.0f} records/s, {raw_mb:.1f} MB/s")
print(f"bench: ratio b/a = {sink_rate / raw_rate:.2f} (target >= 0.70)")
PY
