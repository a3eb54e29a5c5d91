//! Connections served at once, bounded below the process's file-descriptor
//! limit, and closed when idle. A connection that sends nothing for 10 s
//! after it opens, or moves no byte for 2 minutes between requests, is
//! closed; at the bound, a new connection closes the one that has been quiet
//! longest. Idle or slow clients can then neither take every descriptor
//! (leaving none for the state file or Kafka) nor keep `/healthz` and report
//! intake out.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Descriptors kept for everything but client connections (files, Kafka,
/// Alertmanager, the state file): this many, or a quarter if more.
const RESERVED_FDS: u64 = 128;
/// At most this many connections, whatever the descriptor limit.
const MOST_CONNECTIONS: u64 = 4096;
/// How long a new connection may take to send its first byte (hyper's
/// header-read timeout takes over from there).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may move no byte once it has sent a request:
/// longer than any scrape or push interval in use, and than reqwest's pool
/// (90 s), so that the client, not a race, ends a kept-alive connection.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections told to close but not yet gone may take the count this far
/// past the bound before a new one is refused outright.
const CLOSING_ALLOWANCE: usize = 32;

/// The bound for this process: its soft `RLIMIT_NOFILE` less what else it needs.
pub fn connection_limit() -> usize {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    bound_for(nofile)
}

fn bound_for(nofile: u64) -> usize {
    let reserved = RESERVED_FDS.max(nofile / 4) + CLOSING_ALLOWANCE as u64;
    nofile.saturating_sub(reserved).clamp(16, MOST_CONNECTIONS) as usize
}

/// An acceptor that keeps at most `limit` connections open: at the bound a
/// new one closes the quietest.
#[derive(Clone)]
pub struct Limited<A> {
    inner: A,
    open: Arc<Open>,
}

impl<A> Limited<A> {
    pub fn new(inner: A, limit: usize) -> Self {
        Limited {
            inner,
            open: Arc::new(Open {
                limit,
                epoch: Instant::now(),
                next_id: AtomicU64::new(0),
                connections: Mutex::default(),
            }),
        }
    }
}

/// The connections open now.
struct Open {
    limit: usize,
    epoch: Instant,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// One connection: when it last moved a byte, and whether it was chosen to
/// make room.
#[derive(Default)]
struct Activity {
    /// Milliseconds since [`Open::epoch`].
    last_active_ms: AtomicU64,
    closing: AtomicBool,
    /// The task waiting to read, woken to see `closing`.
    reader: Mutex<Option<Waker>>,
}

impl Activity {
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        if let Some(waker) = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            waker.wake();
        }
    }
}

impl Open {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection, closing the quietest one at the bound;
    /// `None` when even the allowance for closing ones is used up.
    fn admit(self: &Arc<Self>) -> Option<(u64, Arc<Activity>)> {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connections.len() >= self.limit + CLOSING_ALLOWANCE {
            return None;
        }
        let live = || {
            connections
                .values()
                .filter(|a| !a.closing.load(Ordering::Acquire))
        };
        if live().count() >= self.limit {
            if let Some(quietest) = live().min_by_key(|a| a.last_active_ms.load(Ordering::Acquire))
            {
                quietest.close();
            }
        }
        let activity = Arc::new(Activity {
            last_active_ms: AtomicU64::new(self.now_ms()),
            ..Activity::default()
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        connections.insert(id, activity.clone());
        Some((id, activity))
    }

    fn forget(&self, id: u64) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

impl<A, I, S> Accept<I, S> for Limited<A>
where
    A: Accept<Counted<I>, S> + Clone + Send + 'static,
    A::Future: Send,
    A::Stream: Send,
    A::Service: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Some((id, activity)) = self.open.admit() else {
            // Dropping the stream closes it.
            return Box::pin(std::future::ready(Err(io::Error::other(
                "over the connection limit",
            ))));
        };
        let counted = Counted {
            inner: stream,
            id,
            activity,
            open: self.open.clone(),
            has_read: false,
            idle: Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT)),
        };
        let inner = self.inner.clone();
        Box::pin(async move { inner.accept(counted, service).await })
    }
}

/// A connection that notes when it moves bytes, ends when idle too long or
/// chosen to make room, and deregisters when dropped.
pub struct Counted<I> {
    inner: I,
    id: u64,
    activity: Arc<Activity>,
    open: Arc<Open>,
    /// Whether the client has sent anything yet.
    has_read: bool,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<I> Counted<I> {
    fn moved(&self, bytes: usize) {
        if bytes > 0 {
            self.activity
                .last_active_ms
                .store(self.open.now_ms(), Ordering::Release);
        }
    }

    fn closing(&self) -> bool {
        self.activity.closing.load(Ordering::Acquire)
    }

    /// Whether the connection has been quiet past its timeout, polling the
    /// timer so that the task is woken when it would be.
    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        let quiet_since =
            Duration::from_millis(self.activity.last_active_ms.load(Ordering::Acquire));
        let allowed = if self.has_read {
            KEEP_ALIVE_TIMEOUT
        } else {
            FIRST_BYTE_TIMEOUT
        };
        let deadline = tokio::time::Instant::from_std(self.open.epoch + quiet_since + allowed);
        if self.idle.deadline() != deadline {
            self.idle.as_mut().reset(deadline);
        }
        self.idle.as_mut().poll(cx).is_ready()
    }
}

impl<I> Drop for Counted<I> {
    fn drop(&mut self) {
        self.open.forget(self.id);
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room for a new connection",
    )
}

fn idle() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "closed after no traffic")
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.closing() {
            return Poll::Ready(Err(closed()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                self.has_read |= read > 0;
                self.moved(read);
            }
            Poll::Pending => {
                if self.idle_too_long(cx) {
                    return Poll::Ready(Err(idle()));
                }
                *self
                    .activity
                    .reader
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
                // Chosen between the check above and the waker stored.
                if self.closing() {
                    return Poll::Ready(Err(closed()));
                }
            }
            Poll::Ready(Err(_)) => {}
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.closing() {
            return Poll::Ready(Err(closed()));
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.moved(*written);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_descriptors_for_everything_else() {
        assert_eq!(bound_for(1024), 1024 - 256 - 32);
        assert_eq!(bound_for(400), 400 - 128 - 32);
        assert_eq!(bound_for(65536), 4096);
        assert_eq!(bound_for(100), 16);
    }

    #[test]
    fn at_the_bound_the_quietest_connection_makes_room() {
        let open = Arc::new(Open {
            limit: 3,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            connections: Mutex::default(),
        });
        let admitted: Vec<_> = (0..3).map(|_| open.admit().unwrap().1).collect();
        for (activity, at) in admitted.iter().zip([50, 10, 30]) {
            activity.last_active_ms.store(at, Ordering::Release);
        }
        let (_, fourth) = open.admit().unwrap();
        let closing: Vec<bool> = admitted
            .iter()
            .map(|a| a.closing.load(Ordering::Acquire))
            .collect();
        assert_eq!(closing, [false, true, false]);
        assert!(!fourth.closing.load(Ordering::Acquire));
        fourth.last_active_ms.store(100, Ordering::Release);
        // The next one closes the next quietest, not the one already closing.
        open.admit().unwrap();
        assert!(admitted[2].closing.load(Ordering::Acquire));
        assert!(!admitted[0].closing.load(Ordering::Acquire));
    }

    #[test]
    fn past_the_allowance_a_connection_is_refused() {
        let open = Arc::new(Open {
            limit: 2,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            connections: Mutex::default(),
        });
        let kept: Vec<_> = (0..2 + CLOSING_ALLOWANCE)
            .map(|_| open.admit().expect("within the allowance"))
            .collect();
        assert!(open.admit().is_none());
        open.forget(kept[0].0);
        assert!(open.admit().is_some());
    }
}
