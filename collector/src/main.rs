//! brokerwatch-collector: one per cluster. For now it only names itself; the
//! report intake, load model and alerting land with the collector core.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--version") | Some("-V") => {
            println!("brokerwatch-collector {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "brokerwatch-collector {}: this build has no collector yet; run brokerwatch-agent on each broker host",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
