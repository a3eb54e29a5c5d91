//! brokerwatch-agent: reads a broker host every interval and serves what it
//! read on `/metrics` for Prometheus.

pub mod config;
pub mod host;
pub mod identity;
pub mod metrics;
pub mod push;
pub mod server;
pub mod sources;

#[cfg(test)]
#[path = "../tests/fixtures/host.rs"]
mod fixture_host;

// Links mimalloc into whatever uses this crate: `mi_collect` below is its.
extern crate mimalloc;

extern "C" {
    /// mimalloc's collection.
    fn mi_collect(force: bool);
}

/// Returns the allocator's free memory to the OS, after a one-off peak.
pub fn release_free_memory() {
    // SAFETY: mi_collect only purges memory that is free.
    unsafe { mi_collect(true) }
}
