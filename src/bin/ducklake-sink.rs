//! The worker's command line: parse, set up logging and signals, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ducklake_sink::config::ConnectorConfig;
use ducklake_sink::{inspect, RunOptions};
use tokio::sync::watch;

/// mimalloc: the pipeline allocates per record on one thread and frees on another (the
/// poll thread's message copies, the lake thread's batches); glibc's arenas made that
/// ≈ 20 % of the process's CPU (see the README's performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ducklake-sink",
    version,
    about = "Stream Kafka/Redpanda topics into DuckLake tables, exactly once"
)]
struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object per line: timestamp, level,
    /// message, connector and the other fields) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DUCKLAKE_SINK_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run connectors until SIGTERM/SIGINT (then flush, commit and exit 0; exit 1 naming the
    /// connectors that were FAILED then).
    Run {
        /// Kafka bootstrap servers [default: $KAFKA_BOOTSTRAP_SERVERS, then localhost:9092]
        #[arg(long)]
        bootstrap_servers: Option<String>,
        /// Exit (after the final flush) once every assigned partition has caught up with its
        /// high watermark — for batch jobs, demos and benchmarks.
        /// Implies --exit-on-failure.
        #[arg(long)]
        until_caught_up: bool,
        /// Stop every connector (each flushes and commits) and exit 1 at the first connector
        /// failure, instead of Kafka Connect's way: the failed connector stays FAILED (see
        /// /health), the others keep running, and `POST /connectors/<name>/restart` restarts
        /// it. Implied by --until-caught-up and by --http-addr off.
        #[arg(long, env = "DUCKLAKE_SINK_EXIT_ON_FAILURE")]
        exit_on_failure: bool,
        /// HTTP listener: Kafka Connect's REST API (/connectors, status, config, pause,
        /// resume, restart), /health and /metrics (Prometheus); `off` for none. Port 0 picks a
        /// free port (logged).
        #[arg(long, default_value = "0.0.0.0:8083")]
        http_addr: String,
        /// Connector files (Kafka Connect JSON).
        #[arg(required = true)]
        connectors: Vec<PathBuf>,
    },
    /// Check connector files; prints what is wrong and exits 1 if any is bad.
    Validate {
        #[arg(required = true)]
        connectors: Vec<PathBuf>,
    },
    /// Run a SQL file against a connector's lake (attached as `lake`) and print the results.
    Sql { connector: PathBuf, file: PathBuf },
    /// Show a connector's offsets in the lake, its tables and recent snapshots with lineage.
    Status { connector: PathBuf },
    /// Forget (or set) the offsets stored in the lake for a topic, e.g. after the topic was
    /// deleted and recreated. Stop the connector's workers first.
    Reset {
        connector: PathBuf,
        #[arg(long)]
        topic: String,
        /// Only this partition (default: every stored partition of the topic).
        #[arg(long)]
        partition: Option<i32>,
        /// Set the next offset to read instead of forgetting it.
        #[arg(long)]
        to_offset: Option<i64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields flattened beside `message`, as log collectors expect one level of keys.
        LogFormat::Json => {
            LOG_JSON.store(true, std::sync::atomic::Ordering::Relaxed);
            logs.json()
                .flatten_event(true)
                .with_current_span(false)
                .init()
        }
    }
    match cli.command {
        Command::Validate { connectors } => {
            let mut bad = false;
            for path in connectors {
                match ConnectorConfig::load(&path) {
                    Ok(c) => println!(
                        "{}: ok (connector `{}`, group `{}`)",
                        path.display(),
                        c.name,
                        c.group_id()
                    ),
                    Err(e) => {
                        eprintln!("{e}");
                        bad = true;
                    }
                }
            }
            if bad {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Sql { connector, file } => report(
            ConnectorConfig::load(&connector)
                .map_err(anyhow::Error::from)
                .and_then(|c| {
                    Ok(inspect::run_sql_file(
                        &c,
                        &file,
                        &mut std::io::stdout().lock(),
                    )?)
                }),
        ),
        Command::Status { connector } => report(
            ConnectorConfig::load(&connector)
                .map_err(anyhow::Error::from)
                .and_then(|c| Ok(inspect::status(&c, &mut std::io::stdout().lock())?)),
        ),
        Command::Reset {
            connector,
            topic,
            partition,
            to_offset,
        } => report(
            ConnectorConfig::load(&connector)
                .map_err(anyhow::Error::from)
                .and_then(|c| {
                    Ok(inspect::reset(
                        &c,
                        &topic,
                        partition,
                        to_offset,
                        &mut std::io::stdout().lock(),
                    )?)
                }),
        ),
        Command::Run {
            bootstrap_servers,
            until_caught_up,
            exit_on_failure,
            http_addr,
            connectors,
        } => {
            let configs: Result<Vec<_>, _> = connectors
                .iter()
                .map(|p| ConnectorConfig::load(p))
                .collect();
            let configs = match configs {
                Ok(c) => c,
                Err(e) => {
                    fail(&e);
                    return ExitCode::FAILURE;
                }
            };
            let options = RunOptions {
                bootstrap_servers: bootstrap_servers
                    .unwrap_or_else(ducklake_sink::default_bootstrap_servers),
                until_caught_up,
                exit_on_failure,
                http_addr: (http_addr != "off").then_some(http_addr),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    fail(&format!("cannot start the async runtime: {e}"));
                    return ExitCode::FAILURE;
                }
            };
            report(runtime.block_on(async {
                let (stop, stopped) = watch::channel(false);
                tokio::spawn(forward_signals(stop));
                let summaries = ducklake_sink::run(configs, options, stopped).await?;
                for s in summaries {
                    tracing::info!(
                        records = s.records,
                        bytes = s.bytes,
                        rows = s.rows,
                        deleted = s.deleted,
                        redelivered = s.redelivered,
                        flushes = s.flushes,
                        active_ms = s.active.as_millis() as u64,
                        snapshot = ?s.last_snapshot,
                        "run summary"
                    );
                }
                Ok(())
            }))
        }
    }
}

/// First SIGTERM/SIGINT: graceful stop. Second: exit at once (nothing is lost: offsets only
/// move with committed data).
async fn forward_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received: flushing and stopping (send again to exit at once)");
            let _ = stop.send(true);
        } else {
            tracing::warn!("second signal: exiting without the final flush");
            std::process::exit(130);
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fail(&e);
            ExitCode::FAILURE
        }
    }
}

/// The error that ends the command: `error: …` on stderr, or, with `--log-format json`, a log
/// object like every other line.
fn fail(e: &dyn std::fmt::Display) {
    if LOG_JSON.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(error = %e, "stopped with an error");
    } else {
        eprintln!("error: {e}");
    }
}

static LOG_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
