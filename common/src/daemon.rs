//! What both daemons do alike at their edges: log, bind their listener,
//! watch their tasks, and stop on Ctrl-C or SIGTERM (or when a task failed).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// The daemon's long-running tasks. One that ends while the daemon is not
/// stopping (a panic, or a loop that returned) makes it unhealthy: the
/// failure is logged, `/healthz` answers 503 naming the task, the listener
/// stops, and the daemon's `run` returns the error, so that the process exits
/// non-zero and systemd restarts it. A daemon that answers HTTP while nothing
/// evaluates or collects behind it would be worse than one that restarts.
#[derive(Clone)]
pub struct Supervisor {
    failure: Arc<watch::Sender<Option<String>>>,
    stopping: Arc<AtomicBool>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            failure: Arc::new(watch::channel(None).0),
            stopping: Arc::default(),
        }
    }
}

impl Supervisor {
    /// Runs `task` on the runtime; its output, or `None` if it panicked.
    pub fn spawn<F>(&self, name: &'static str, task: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = tokio::spawn(task);
        let supervisor = self.clone();
        tokio::spawn(async move {
            match running.await {
                Ok(output) => {
                    supervisor.ended(name);
                    Some(output)
                }
                Err(e) => {
                    supervisor.fail(name, &panic_message(e.try_into_panic().ok()));
                    None
                }
            }
        })
    }

    /// Runs `body` on a thread of its own (for blocking clients such as
    /// rdkafka's).
    pub fn spawn_thread(
        &self,
        name: &'static str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), String> {
        let supervisor = self.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(
                move || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
                    Ok(()) => supervisor.ended(name),
                    Err(panic) => supervisor.fail(name, &panic_message(Some(panic))),
                },
            )
            .map(drop)
            .map_err(|e| format!("cannot start the {name} thread: {e}"))
    }

    /// From now on a task may end: the daemon is stopping.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Why the daemon is unhealthy, if it is.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Resolves once a task has failed.
    pub fn failed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut failure = self.failure.subscribe();
        async move {
            let _ = failure.wait_for(Option::is_some).await;
        }
    }

    fn ended(&self, name: &str) {
        if !self.stopping.load(Ordering::Acquire) {
            self.fail(name, "it stopped");
        }
    }

    fn fail(&self, name: &str, why: &str) {
        let failure = format!("the {name} task failed ({why})");
        tracing::error!("{failure}; stopping so that the service manager restarts the daemon");
        self.failure.send_if_modified(|first| {
            // The first failure is the cause; later ones follow from it.
            first.get_or_insert(failure);
            true
        });
    }
}

fn panic_message(payload: Option<Box<dyn std::any::Any + Send>>) -> String {
    let message = payload.and_then(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
    });
    match message {
        Some(message) => format!("a panic: {}", crate::one_line(&message)),
        None => "cancelled".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_ends_early_is_a_failure_and_the_first_is_kept() {
        let supervisor = Supervisor::default();
        assert_eq!(supervisor.failure(), None);
        let failed = supervisor.failed();
        let panicked = supervisor.spawn("evaluation", async { panic!("cannot convert\nfloat") });
        assert_eq!(panicked.await.unwrap(), None::<()>);
        tokio::time::timeout(std::time::Duration::from_secs(5), failed)
            .await
            .expect("failed() resolves");
        assert_eq!(
            supervisor.failure().as_deref(),
            Some("the evaluation task failed (a panic: cannot convert float)")
        );
        supervisor.spawn("persister", async {}).await.unwrap();
        assert_eq!(
            supervisor.failure().as_deref(),
            Some("the evaluation task failed (a panic: cannot convert float)")
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_early_is_a_failure_one_that_ends_on_stop_is_not() {
        let early = Supervisor::default();
        assert_eq!(early.spawn("collect", async { 7 }).await.unwrap(), Some(7));
        assert_eq!(
            early.failure().as_deref(),
            Some("the collect task failed (it stopped)")
        );
        let stopping = Supervisor::default();
        stopping.stopping();
        assert_eq!(
            stopping.spawn("collect", async { 7 }).await.unwrap(),
            Some(7)
        );
        assert_eq!(stopping.failure(), None);
    }

    #[tokio::test]
    async fn a_thread_that_panics_is_a_failure() {
        let supervisor = Supervisor::default();
        let failed = supervisor.failed();
        supervisor
            .spawn_thread("kafka", || panic!("librdkafka said no"))
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), failed)
            .await
            .expect("failed() resolves");
        assert_eq!(
            supervisor.failure().as_deref(),
            Some("the kafka task failed (a panic: librdkafka said no)")
        );
    }
}
