use std::path::PathBuf;
use std::process::ExitCode;

use brokerwatch_collector::config::{self, Flags};
use brokerwatch_collector::{catalogue, daemon, load_report};
use clap::{Parser, Subcommand, ValueEnum};

/// The per-cluster collector of brokerwatch: takes the agents' reports,
/// computes each broker's share of the load, and alerts through Alertmanager.
#[derive(Parser, Debug)]
#[command(name = "brokerwatch-collector", version)]
struct Cli {
    /// TOML config file (see brokerwatch-collector.example.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address for reports, the API and /metrics [default: 0.0.0.0:9798].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the alert catalogue as Prometheus alerting rules
    /// (rules/brokerwatch.alerts.yml is this output).
    Rules {
        /// Print the README's alert tables and the example config's rule
        /// list instead (scripts/sync-catalogue.py puts them in place).
        #[arg(long)]
        docs: bool,
    },
    /// The load model on a table of brokers by metrics (CSV or JSON), offline.
    LoadReport {
        /// CSV with a header broker,<metric>,... (optional group column), or a JSON array of objects.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Weights over the default of 1, e.g. partitions=2,cpu_used=0.
        #[arg(long, value_name = "METRIC=W,...")]
        weights: Option<String>,
        /// r, the deviation a broker may have: 0.1 or 10% [default: 10%].
        #[arg(long, value_name = "R", default_value = "0.1")]
        deviation: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    if brokerwatch_collector::kafka::probe::run_child_if_asked() {
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::LoadReport {
            input,
            weights,
            deviation,
            format,
        }) => run_load_report(&input, weights.as_deref(), &deviation, format),
        Some(Command::Rules { docs: false }) => {
            print!("{}", catalogue::prometheus_rules());
            Ok(())
        }
        Some(Command::Rules { docs: true }) => {
            print!(
                "{}\n{}\n{}",
                catalogue::readme_table(catalogue::Origin::Agents),
                catalogue::readme_table(catalogue::Origin::Cluster),
                catalogue::example_rules_comment()
            );
            Ok(())
        }
        None => run_collector(cli.config, cli.listen, cli.check_config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokerwatch-collector: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_load_report(
    input: &std::path::Path,
    weights: Option<&str>,
    deviation: &str,
    format: Format,
) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| {
        format!(
            "load-report --input {}: cannot read it ({e})",
            input.display()
        )
    })?;
    let table = load_report::parse_table(&text)
        .map_err(|e| format!("load-report {}: {e}", input.display()))?;
    let weights = load_report::parse_weights(weights)?;
    let deviation =
        load_report::parse_deviation(deviation).map_err(|e| format!("--deviation: {e}"))?;
    let groups = load_report::compute_table(&table, &weights, deviation);
    match format {
        Format::Table => print!("{}", load_report::to_table(&groups, deviation)),
        Format::Json => println!("{}", load_report::to_json(&groups)),
    }
    Ok(())
}

fn run_collector(
    config: Option<PathBuf>,
    listen: Option<String>,
    check_only: bool,
) -> Result<(), String> {
    let path = config.ok_or(
        "--config FILE is required to run the collector (see brokerwatch-collector.example.toml)",
    )?;
    let config = config::load(&path, &Flags { listen })?;
    if check_only {
        println!(
            "config OK: cluster={} listen={} groups={} alertmanagers={}",
            config.cluster,
            config.listen,
            config.groups.len(),
            config.alertmanagers.len()
        );
        return Ok(());
    }
    brokerwatch_common::daemon::init_logging(tracing::Level::INFO);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(daemon::run(
        config,
        brokerwatch_common::daemon::shutdown_signal(),
    ))
}
