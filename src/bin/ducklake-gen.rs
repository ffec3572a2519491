//! Traffic generator: sample records into Kafka for the demo, the tests and the benchmark.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ducklake_sink::gen::{consume_raw, produce_orders, OrdersOptions};

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
