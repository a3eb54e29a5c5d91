use std::path::PathBuf;
use std::process::ExitCode;

use brokerwatch_collector::load_report;
use clap::{Parser, Subcommand, ValueEnum};

/// The per-cluster collector of brokerwatch.
#[derive(Parser, Debug)]
#[command(name = "brokerwatch-collector", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::LoadReport {
            input,
            weights,
            deviation,
            format,
        }) => run_load_report(&input, weights.as_deref(), &deviation, format),
        None => Err("no collector in this build yet: use the load-report command".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokerwatch-collector: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_load_report(input: &std::path::Path, weights: Option<&str>, deviation: &str, format: Format) -> Result<(), String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("load-report --input {}: cannot read it ({e})", input.display()))?;
    let table = load_report::parse_table(&text).map_err(|e| format!("load-report {}: {e}", input.display()))?;
    let weights = load_report::parse_weights(weights)?;
    let deviation = load_report::parse_deviation(deviation).map_err(|e| format!("--deviation: {e}"))?;
    let groups = load_report::compute_table(&table, &weights, deviation);
    match format {
        Format::Table => print!("{}", load_report::to_table(&groups, deviation)),
        Format::Json => println!("{}", load_report::to_json(&groups)),
    }
    Ok(())
}
