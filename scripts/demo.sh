#!/usr/bin/env bash
# The main job on the embedded default, from nothing: installs and builds what is missing,
# starts a local tansu broker, produces sample orders with ducklake-gen, runs ducklake-sink
# with connector-config/orders.json (DuckDB-file catalog in metadata/, Parquet in data/)
# until they are all in the lake, then shows what landed: rows, snapshots, lineage.
#
#   DEMO_COUNT=100000   orders to produce
#   DEMO_PARTITIONS=3   partitions of the `orders` topic
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

COUNT=${DEMO_COUNT:-100000}
PARTITIONS=${DEMO_PARTITIONS:-3}
CONNECTOR=connector-config/orders.json

bash scripts/setup.sh
# setup.sh may just have fetched the prebuilt libduckdb: pick the build path it used.
duckdb_build_path

# The broker keeps its log in memory, so every demo starts a fresh topic; the lake of a
# previous demo run (whose offsets point into that old topic) is moved aside first.
if [ -e metadata/orders.ducklake ] || [ -e data/orders ]; then
  old=.demo/previous-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$old"
  mv metadata/orders.ducklake* "$old"/ 2>/dev/null || true
  mv data/orders "$old"/ 2>/dev/null || true
  echo "demo: previous demo lake moved to $old"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT
mkdir -p .demo
"$TANSU_BIN" broker --listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" --advertised-listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" \
  --storage-engine memory://tansu/ > .demo/tansu.log 2>&1 &
TANSU_PID=$!
trap 'kill $TANSU_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "demo: tansu broker on $KAFKA_BOOTSTRAP_SERVERS"

"$BIN_DIR/ducklake-sink" validate "$CONNECTOR"
"$BIN_DIR/ducklake-gen" orders --topic orders --partitions "$PARTITIONS" --count "$COUNT"

echo "demo: running ducklake-sink until the topic is drained"
start=$(date +%s.%N)
"$BIN_DIR/ducklake-sink" run --until-caught-up --http-addr 127.0.0.1:0 "$CONNECTOR"
end=$(date +%s.%N)
python3 -c "print(f'demo: sink drained $COUNT orders in {$end-$start:.1f}s (including the consumer group join)')"

echo
"$BIN_DIR/ducklake-sink" status "$CONNECTOR"

check=$(mktemp --suffix=.sql)
trap 'kill $TANSU_PID 2>/dev/null || true; rm -f "$check"' EXIT
cat > "$check" <<SQL
SELECT count(*) AS orders, count(DISTINCT order_id) AS distinct_order_ids,
       min(order_id) AS first_id, max(order_id) AS last_id,
       (count(*) = $COUNT AND count(DISTINCT order_id) = $COUNT) AS exactly_once
FROM orders;
SELECT status, count(*) AS orders, round(sum(price * quantity), 2) AS revenue FROM orders GROUP BY status ORDER BY status;
SQL
out=$("$BIN_DIR/ducklake-sink" sql "$CONNECTOR" "$check")
echo "$out"
if echo "$out" | grep -Eq "^$COUNT +\| $COUNT +\|.*\| true$"; then
  echo "demo: OK: $COUNT orders in the lake, each exactly once"
else
  echo "demo: FAILED: the lake does not hold exactly $COUNT distinct orders" >&2
  exit 1
fi
echo "demo: explore it with: $BIN_DIR/ducklake-sink sql $CONNECTOR sql/03_time_travel.sql"
