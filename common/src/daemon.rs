//! What both daemons do alike at their edges: log, bind their listener, and
//! stop on Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds `listen`; the error says what to change. Port 0 picks a free port:
/// the returned address has the real one.
pub async fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        format!("listen {listen}: {e}; choose a free address with --listen or the listen key")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listen {listen}: {e}"))?;
    Ok((listener, local))
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends on stop).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Logs to standard error (journald keeps it under systemd), in colour only
/// on a terminal, and panics as one error line.
pub fn init_logging(level: tracing::Level) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    log_panics_as_errors();
}

/// Logs a panic as one error line through `tracing` instead of the default
/// multi-line message: the daemons catch the few that third-party parsers
/// raise on garbled input, and carry on.
pub fn log_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!("internal error{location}: {}", crate::one_line(&message));
    }));
}
