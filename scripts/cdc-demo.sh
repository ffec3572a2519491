#!/usr/bin/env bash
# Change data capture from PostgreSQL into DuckLake, locally, without Docker:
#  1. a private PostgreSQL 15 cluster (wal_level=logical) with a table inventory.customers, a
#     tansu broker, and real Debezium (scripts/debezium_bridge.py, embedded) streaming the table
#     to dbserver1.inventory.customers (Connect JSON with schemas, truncates included);
#  2. ducklake-sink with an upsert connector (pk.mode=record_key, deletes and truncates applied,
#     table per ${source.table}); its catalog is the database `lake` of the same cluster, so the
#     lake can be read while the sink writes;
#  3. INSERT, UPDATE, DELETE, a primary-key change, TRUNCATE, INSERT — after each, a wait until
#     the lake table equals the PostgreSQL table;
#  4. the sink stopped (final flush), both tables printed and compared once more: exit 1 if not
#     equal. All runs in a temporary folder; all started here is stopped on exit (DEMO_KEEP=1
#     keeps the folder: logs, connector file, lake files). DEMO_TIMEOUT=90: seconds per step.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
TIMEOUT=${DEMO_TIMEOUT:-90}

bash scripts/setup.sh
# setup.sh may just have fetched the prebuilt libduckdb: pick the build path it used.
duckdb_build_path

log() { printf 'cdc-demo: %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
# PostgreSQL refuses to run as root: run the server as `postgres` then.
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi

WORK=$(mktemp -d /tmp/cdc-demo.XXXXXX) && chmod 755 "$WORK" && mkdir "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg"
alive() { kill -0 "$2" 2>/dev/null || { log "FAILED: $1 exited" >&2; exit 1; }; }
SINK_PID= BRIDGE_PID= TANSU_PID=
cleanup() {
  local rc=$?
  for pid in $SINK_PID $BRIDGE_PID; do kill "$pid" 2>/dev/null || true; done
  for pid in $SINK_PID $BRIDGE_PID; do timeout 20 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$TANSU_PID" ] && kill "$TANSU_PID" 2>/dev/null || true
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ "$rc" = 0 ] || for f in sink.log bridge.log; do [ -s "$WORK/$f" ] && { echo "--- $f:"; tail -n 15 "$WORK/$f"; }; done >&2
  if [ "${DEMO_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# 1. PostgreSQL, the source table, the broker, Debezium.
PG_PORT=$(free_port)
"${AS_PG[@]}" "$PG_BIN/initdb" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 -D "$WORK/pg/data" >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/pg.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg -c fsync=off -c wal_level=logical -c TimeZone=UTC" >/dev/null
pg() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
pg -d postgres -c 'CREATE DATABASE inventory' -c 'CREATE DATABASE lake'
pg -d inventory <<'SQL'
CREATE SCHEMA inventory;
CREATE TABLE inventory.customers (id integer PRIMARY KEY, name text NOT NULL, email varchar(100),
  balance numeric(10,2) NOT NULL DEFAULT 0, birth_date date, vip boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO inventory.customers (id, name, email, balance, birth_date) VALUES
  (1001, 'Sally Thomas', 'sally.thomas@acme.com', 120.50, '1981-03-14'),
  (1002, 'George Bailey', 'gbailey@foobar.com', 0, '1975-11-02'),
  (1003, 'Edward Walker', 'ed@walker.com', -35.25, NULL);
SQL
log "PostgreSQL 15 on 127.0.0.1:$PG_PORT: inventory.customers with 3 rows"

BROKER_PORT=$(free_port)
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$BROKER_PORT
"$TANSU_BIN" broker --listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" --advertised-listener-url "tcp://$KAFKA_BOOTSTRAP_SERVERS" \
  --storage-engine memory://tansu/ > "$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && break; sleep 0.1; done
log "tansu broker on $KAFKA_BOOTSTRAP_SERVERS"

"$DBZ_PYTHON" scripts/debezium_bridge.py --pg-port "$PG_PORT" --pg-dbname inventory --slot cdc_demo \
  --topic-prefix dbserver1 --tables inventory.customers --offset-file "$WORK/debezium-offsets.dat" \
  --format json --prop skipped.operations=none > "$WORK/bridge.out" 2> "$WORK/bridge.log" &
BRIDGE_PID=$!
log "starting Debezium (embedded, ~5 s)"
until grep -qs '^ready' "$WORK/bridge.out"; do alive "the Debezium bridge" "$BRIDGE_PID"; sleep 0.2; done
log "Debezium: $(head -n1 "$WORK/bridge.out") (snapshot of the 3 rows done)"

# 2. The sink.
CONNECTOR=$WORK/cdc-demo.json
cat > "$CONNECTOR" <<JSON
{"name": "cdc-demo", "config": {
  "connector.class": "DuckLakeSink", "topics.regex": "dbserver1\\\\.inventory\\\\..*",
  "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "true",
  "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "true",
  "ducklake.catalog": "postgres:dbname=lake host=127.0.0.1 port=$PG_PORT user=postgres",
  "ducklake.data.path": "$WORK/lake-data/", "table.name.format": "\${source.table}",
  "auto.create": "true", "auto.evolve": "true",
  "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true", "truncate.enabled": "true",
  "flush.interval.ms": "500", "consumer.override.session.timeout.ms": "6000"}}
JSON
"$BIN_DIR/ducklake-sink" validate "$CONNECTOR" >/dev/null
"$BIN_DIR/ducklake-sink" run --http-addr 127.0.0.1:0 "$CONNECTOR" 2> "$WORK/sink.log" &
SINK_PID=$!
# Its lake is open (and the catalog created) once it logs this; reading before would race that.
until grep -qs 'connector started' "$WORK/sink.log"; do alive ducklake-sink "$SINK_PID"; sleep 0.2; done
log "ducklake-sink running (log: $WORK/sink.log)"

# 3. Changes, each followed by a wait until the lake equals the source. The check reads the
# source table through DuckDB's postgres extension and compares as multisets, both ways.
COLS="id, name, email, balance, birth_date, vip, updated_at"
SRC="postgres_scan('dbname=inventory host=127.0.0.1 port=$PG_PORT user=postgres', 'inventory', 'customers')"
cat > "$WORK/compare.sql" <<SQL
SELECT (SELECT count(*) FROM ((SELECT $COLS FROM customers EXCEPT ALL SELECT $COLS FROM $SRC)
                        UNION ALL (SELECT $COLS FROM $SRC EXCEPT ALL SELECT $COLS FROM customers))) AS differing_rows,
       (SELECT count(*) FROM customers) AS lake_rows, (SELECT count(*) FROM $SRC) AS postgres_rows;
SQL
compare() {  # prints "DIFFERING LAKE_ROWS PG_ROWS", or nothing while the lake has no table
  "$BIN_DIR/ducklake-sink" sql "$CONNECTOR" "$WORK/compare.sql" 2>/dev/null \
    | grep -E '^[0-9]+ +\| [0-9]+ +\| [0-9]+$' | tr -s ' |' ' ' | tail -n1 || true
}
step() {
  local name=$1 sql=$2 start=$SECONDS result
  if [ -n "$sql" ]; then pg -d inventory -c "$sql"; fi
  while :; do
    result=$(compare)
    if [ "${result%% *}" = 0 ]; then
      read -r _ lake_rows _ <<< "$result"
      log "$(printf '%-22s' "$name") lake = PostgreSQL ($lake_rows rows) after $((SECONDS - start)) s"
      return
    fi
    alive ducklake-sink "$SINK_PID"; alive "the Debezium bridge" "$BRIDGE_PID"
    if (( SECONDS - start >= TIMEOUT )); then
      log "FAILED: after '$name' the lake still differs from PostgreSQL after $TIMEOUT s (differing, lake, postgres rows: ${result:-no table})" >&2
      exit 1
    fi
    sleep 0.5
  done
}
step "snapshot (3 rows)" ""
step "INSERT 2 rows" "INSERT INTO inventory.customers (id, name, email, balance, birth_date, vip) VALUES
  (1004, 'Anne Kretchmar', 'annek@noanswer.org', 999.99, '1990-07-01', true),
  (1005, 'Zoë Müller', NULL, 12.00, '1968-01-31', false)"
step "UPDATE 2 rows" "UPDATE inventory.customers SET balance = balance + 100.50, vip = true, updated_at = now() WHERE id = 1001;
  UPDATE inventory.customers SET email = NULL, name = 'George B. Bailey', updated_at = now() WHERE id = 1002"
step "DELETE 1 row" "DELETE FROM inventory.customers WHERE id = 1003"
step "key change 1004->2004" "UPDATE inventory.customers SET id = 2004 WHERE id = 1004"
step "TRUNCATE" "TRUNCATE inventory.customers"
step "INSERT 2 rows" "INSERT INTO inventory.customers (id, name, email, balance, birth_date, vip) VALUES
  (1001, 'Sally Thomas', 'sally@new.example', 7.77, '1981-03-14', false), (3001, 'Li Nakamura', NULL, -0.01, NULL, true)"

# 4. A clean stop (final flush and commit), then both tables and the check once more.
kill -TERM "$SINK_PID"
if wait "$SINK_PID"; then SINK_PID=; else log "FAILED: ducklake-sink did not stop cleanly" >&2; exit 1; fi
echo; log "PostgreSQL inventory.customers:"
pg -d inventory -P footer=off -c "SELECT $COLS FROM inventory.customers ORDER BY id"
log "DuckLake lake.main.customers (ducklake-sink sql):"
echo "SELECT $COLS FROM customers ORDER BY id;" > "$WORK/show.sql"
"$BIN_DIR/ducklake-sink" sql "$CONNECTOR" "$WORK/show.sql" | tail -n +4
echo; "$BIN_DIR/ducklake-sink" status "$CONNECTOR" | sed -n '/^newest commits/,$p' | head -n 8; echo
read -r differing lake_rows pg_rows _ <<< "$(compare) x x x"
if [ "$differing" = 0 ]; then
  log "OK: the lake table equals the PostgreSQL table ($lake_rows rows)"
else
  log "FAILED: the tables differ (differing rows: $differing; lake $lake_rows rows, PostgreSQL $pg_rows)" >&2
  exit 1
fi
