//! Pushing reports to the collector: each interval's report is gzipped into
//! a bounded buffer of the newest reports (the oldest is dropped first when
//! it is full, and counted), and a task sends them in order, retrying with
//! backoff while the collector cannot be reached.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brokerwatch_common::config::redact_url;
use brokerwatch_common::{codec, Secret};
use prometheus::{IntCounter, IntGauge};

use tokio::sync::Notify;
use tracing::{info, warn};

/// The newest reports not yet accepted by the collector, each numbered so
/// that a send that finishes after the full buffer dropped its report does
/// not remove the next one, unsent.
#[derive(Debug)]
struct ReportBuffer {
    queue: VecDeque<(u64, Vec<u8>)>,
    capacity: usize,
    next: u64,
}

impl ReportBuffer {
    fn new(capacity: usize) -> Self {
        ReportBuffer {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            next: 0,
        }
    }

    /// Adds a report; returns how many old ones were dropped to make room.
    fn push(&mut self, body: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.queue.len() >= self.capacity {
            self.queue.pop_front();
            dropped += 1;
        }
        self.queue.push_back((self.next, body));
        self.next += 1;
        dropped
    }

    fn oldest(&self) -> Option<&(u64, Vec<u8>)> {
        self.queue.front()
    }

    /// Removes report `number` if it is still the oldest.
    fn remove(&mut self, number: u64) {
        if self.queue.front().is_some_and(|(n, _)| *n == number) {
            self.queue.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.queue.len()
    }
}

/// The agent's counters of its pushing.
#[derive(Clone)]
pub struct PushCounters {
    pub sent: IntCounter,
    pub failed: IntCounter,
    pub dropped_full: IntCounter,
    pub dropped_refused: IntCounter,
    /// Reports buffered for this collector.
    pub backlog: IntGauge,
}

/// The buffer and the wake-up the main loop and the push task share.
#[derive(Clone)]
pub struct Outbox {
    buffer: Arc<Mutex<ReportBuffer>>,
    ready: Arc<Notify>,
    counters: PushCounters,
}

impl Outbox {
    pub fn new(capacity: usize, counters: PushCounters) -> Self {
        Outbox {
            buffer: Arc::new(Mutex::new(ReportBuffer::new(capacity))),
            ready: Arc::new(Notify::new()),
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReportBuffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an encoded report ([`codec::encode`]).
    pub fn queue(&self, body: Vec<u8>) {
        let (dropped, backlog) = {
            let mut buffer = self.lock();
            (buffer.push(body), buffer.len())
        };
        self.counters.dropped_full.inc_by(dropped);
        self.counters.backlog.set(backlog as i64);
        self.ready.notify_one();
    }

    fn remove(&self, number: u64) {
        let backlog = {
            let mut buffer = self.lock();
            buffer.remove(number);
            buffer.len()
        };
        self.counters.backlog.set(backlog as i64);
    }

    /// Reports waiting for the collector.
    pub fn backlog(&self) -> usize {
        self.lock().len()
    }
}

/// Where and how to push.
pub struct Destination {
    pub url: String,
    pub token: Option<Secret>,
    pub client: reqwest::Client,
}

/// Sends buffered reports, oldest first, forever.
pub async fn push_forever(destination: Destination, outbox: Outbox) {
    const FIRST_RETRY: Duration = Duration::from_secs(1);
    const LAST_RETRY: Duration = Duration::from_secs(60);
    let endpoint = format!("{}/api/v1/reports", destination.url.trim_end_matches('/'));
    // What logs name: no credentials, no query.
    let shown = redact_url(&destination.url);
    let client = &destination.client;
    let mut retry = FIRST_RETRY;
    let mut failing = false;
    loop {
        let Some((number, body)) = outbox.lock().oldest().cloned() else {
            outbox.ready.notified().await;
            continue;
        };
        let mut request = client
            .post(&endpoint)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", codec::CONTENT_ENCODING)
            .body(body);
        if let Some(token) = &destination.token {
            request = request.bearer_auth(token.expose());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                outbox.remove(number);
                outbox.counters.sent.inc();
                if failing {
                    info!(collector = %shown, backlog = outbox.backlog(), "collector reachable again; sending the buffered reports");
                }
                failing = false;
                retry = FIRST_RETRY;
            }
            Ok(response)
                if response.status().is_client_error() && response.status().as_u16() != 429 =>
            {
                // The collector read the report and will never take it
                // (token, schema, size): keeping it would stall every later one.
                let status = response.status();
                let why = response.text().await.unwrap_or_default();
                outbox.remove(number);
                outbox.counters.dropped_refused.inc();
                warn!(collector = %shown, %status, "the collector refused a report: {}", why.trim());
            }
            outcome => {
                outbox.counters.failed.inc();
                if !failing {
                    let why = match outcome {
                        Ok(response) => format!("it answered {}", response.status()),
                        Err(e) => e.without_url().to_string(),
                    };
                    warn!(collector = %shown, "cannot send reports to {}: {why}; buffering the newest and retrying with backoff", redact_url(&endpoint));
                }
                failing = true;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_drops_the_oldest_first() {
        let mut buffer = ReportBuffer::new(3);
        for i in 0..3u8 {
            assert_eq!(buffer.push(vec![i]), 0);
        }
        assert_eq!(buffer.push(vec![3]), 1);
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.oldest(), Some(&(1, vec![1])));
        buffer.remove(1);
        assert_eq!(buffer.oldest(), Some(&(2, vec![2])));
    }

    #[test]
    fn a_report_dropped_while_it_was_being_sent_takes_no_other_with_it() {
        let mut buffer = ReportBuffer::new(2);
        buffer.push(vec![0]);
        buffer.push(vec![1]);
        let (sending, _) = buffer.oldest().cloned().unwrap();
        // The next interval's report arrives while the send is in flight.
        assert_eq!(buffer.push(vec![2]), 1);
        buffer.remove(sending);
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.oldest(), Some(&(1, vec![1])));
    }
}
