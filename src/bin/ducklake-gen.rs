//! Traffic generator: sample records into Kafka for the demo, the tests and the benchmark.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ducklake_sink::gen::{
    consume_raw, produce_cdc, produce_orders, CdcFormat, CdcOptions, OrdersOptions,
};

#[derive(Parser)]
#[command(
    name = "ducklake-gen",
    version,
    about = "Produce sample traffic for ducklake-sink"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// JSON orders (order id, customer id, product, quantity, price, status, timestamp), keyed
    /// by customer.
    Orders {
        /// Kafka bootstrap servers [default: $KAFKA_BOOTSTRAP_SERVERS, then localhost:9092]
        #[arg(long)]
        bootstrap_servers: Option<String>,
        #[arg(long, default_value = "orders")]
        topic: String,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Records per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Create the topic with this many partitions first (an existing topic is kept).
        #[arg(long)]
        partitions: Option<i32>,
        /// First order id; ids run from here, one per record.
        #[arg(long, default_value_t = 1)]
        start_id: u64,
        #[arg(long, default_value_t = 1000)]
        customers: u64,
        /// Write JsonConverter envelopes with a Connect schema (schemas.enable=true); price
        /// becomes a Connect Decimal and timestamp a Connect Timestamp.
        #[arg(long)]
        with_schema: bool,
        /// Write values with Confluent's AvroConverter instead (the --with-schema Connect
        /// schema in Avro form, registered as `<topic>-value` at this schema registry).
        #[arg(long)]
        schema_registry: Option<String>,
    },
    /// Debezium MySQL change events of an `inventory.users` table, as Debezium's MySQL
    /// connector writes them through Kafka Connect's JsonConverter: a snapshot (op=r) of
    /// KEYS rows, then COUNT random inserts, updates, deletes (each followed by a tombstone)
    /// and primary-key changes (a delete + tombstone of the old key, then a create).
    Cdc {
        /// Kafka bootstrap servers [default: $KAFKA_BOOTSTRAP_SERVERS, then localhost:9092]
        #[arg(long)]
        bootstrap_servers: Option<String>,
        #[arg(long, default_value = "dbserver1.inventory.users")]
        topic: String,
        /// Create the topic with this many partitions (an existing topic is kept).
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// json: JsonConverter, schemas.enable=false; json-schema: schemas.enable=true; avro:
        /// Confluent AvroConverter (registers `<topic>-key` / `<topic>-value` with
        /// --schema-registry).
        #[arg(long, value_enum)]
        format: Format,
        /// Schema registry URL (for --format avro).
        #[arg(long)]
        schema_registry: Option<String>,
        /// Change events after the snapshot: c, u and d (a primary-key change counts as its
        /// d and its c). Snapshot reads and tombstones are not counted.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Rows in the initial snapshot (ids from 1001).
        #[arg(long, default_value_t = 100)]
        keys: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Change events per second, snapshot reads included (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Write the final table state the events imply here (JSON Lines, sorted by id).
        #[arg(long)]
        expect: Option<std::path::PathBuf>,
        /// Percent of the change events that are updates (with --deletes; the rest are
        /// inserts). Default mix: ≈ 32 % inserts, 41 % updates, 27 % deletes.
        #[arg(long, requires = "deletes")]
        updates: Option<f64>,
        /// Percent of the change events that are deletes, a third of them primary-key
        /// changes (with --updates).
        #[arg(long, requires = "updates")]
        deletes: Option<f64>,
        /// Midway through the changes, add a nullable `nickname` column (ALTER TABLE … ADD
        /// COLUMN): later events carry the new row schema (a second `-value` schema version
        /// in Avro).
        #[arg(long)]
        evolve: bool,
    },
    /// Benchmark baseline: read COUNT records of a topic with a fresh group and do nothing
    /// with them; prints the raw consume rate.
    Consume {
        #[arg(long)]
        bootstrap_servers: Option<String>,
        #[arg(long, default_value = "orders")]
        topic: String,
        #[arg(long)]
        count: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    JsonSchema,
    Avro,
}

impl From<Format> for CdcFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Json => CdcFormat::Json,
            Format::JsonSchema => CdcFormat::JsonSchema,
            Format::Avro => CdcFormat::Avro,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Consume {
            bootstrap_servers,
            topic,
            count,
            timeout_secs,
        } => {
            let bootstrap =
                bootstrap_servers.unwrap_or_else(ducklake_sink::default_bootstrap_servers);
            let result = tokio::task::spawn_blocking(move || {
                consume_raw(
                    &bootstrap,
                    &topic,
                    count,
                    std::time::Duration::from_secs(timeout_secs),
                )
            })
            .await;
            match result {
                Ok(Ok(r)) if r.records == count => {
                    let secs = r.active.as_secs_f64().max(1e-9);
                    println!(
                        "raw consume: records={} bytes={} active_ms={} wall_ms={} records_per_s={:.0} mb_per_s={:.1}",
                        r.records,
                        r.bytes,
                        r.active.as_millis(),
                        r.wall.as_millis(),
                        r.records as f64 / secs,
                        r.bytes as f64 / secs / 1e6
                    );
                    ExitCode::SUCCESS
                }
                Ok(Ok(r)) => {
                    eprintln!(
                        "error: read only {} of {count} records before the timeout",
                        r.records
                    );
                    ExitCode::FAILURE
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cdc {
            bootstrap_servers,
            topic,
            partitions,
            format,
            schema_registry,
            count,
            keys,
            seed,
            rate,
            expect,
            evolve,
            updates,
            deletes,
        } => {
            let opts = CdcOptions {
                bootstrap_servers: bootstrap_servers
                    .unwrap_or_else(ducklake_sink::default_bootstrap_servers),
                topic,
                partitions,
                format: format.into(),
                schema_registry,
                count,
                keys,
                seed,
                rate,
                expect,
                evolve,
                mix: updates.zip(deletes),
            };
            match produce_cdc(&opts).await {
                Ok(report) => {
                    println!("{}", report.summary());
                    if let Some(path) = &opts.expect {
                        println!("expected state: {} rows in {}", report.rows, path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Orders {
            bootstrap_servers,
            topic,
            count,
            rate,
            seed,
            partitions,
            start_id,
            customers,
            with_schema,
            schema_registry,
        } => {
            let opts = OrdersOptions {
                bootstrap_servers: bootstrap_servers
                    .unwrap_or_else(ducklake_sink::default_bootstrap_servers),
                topic,
                count,
                rate,
                seed,
                partitions,
                start_id,
                customers,
                with_schema,
                schema_registry,
            };
            match produce_orders(&opts).await {
                Ok(report) => {
                    println!(
                        "{}; order ids {}..{}",
                        report.summary(),
                        opts.start_id,
                        opts.start_id + count.saturating_sub(1)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
