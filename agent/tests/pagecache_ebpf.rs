//! The `ebpf` page-cache method against the real kernel: a file dropped from
//! the page cache and read twice reads as all misses, then all hits; writing
//! a new file adds pages that are not misses. Needs root (or CAP_BPF and
//! CAP_PERFMON) and tracefs, which the test command provides; one test
//! function, since the probe counts for this whole process and parallel
//! tests would add their own reads.

use std::fs::File;
use std::io::{Read, Write};

use brokerwatch_agent::sources::pagecache::{ebpf_hit_ratio, PageCounts};
use brokerwatch_agent::sources::pagecache_ebpf::PageCacheProbe;

const FILE_BYTES: usize = 64 << 20;
const FILE_PAGES: u64 = (FILE_BYTES / 4096) as u64;

fn read_all(path: &std::path::Path) {
    let mut file = File::open(path).expect("open");
    let mut buffer = vec![0u8; 1 << 20];
    while file.read(&mut buffer).expect("read") > 0 {}
}

fn delta(before: PageCounts, after: PageCounts) -> PageCounts {
    PageCounts {
        requested: after.requested - before.requested,
        added: after.added - before.added,
        dirtied: after.dirtied - before.dirtied,
        buffers_dirtied: after.buffers_dirtied - before.buffers_dirtied,
    }
}

#[test]
fn cold_read_misses_warm_read_hits_and_writes_are_not_misses() {
    let mut probe = PageCacheProbe::attach().unwrap_or_else(|e| panic!("{e}"));
    probe.count_only(Some(std::process::id())).expect("target");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");

    let path = dir.path().join("segment.log");
    let mut file = File::create(&path).expect("create");
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..FILE_BYTES / block.len() {
        file.write_all(&block).expect("write");
    }
    drop(file);
    brokerwatch_tests::drop_from_page_cache(&path);

    assert_eq!(brokerwatch_tests::resident_pages(&path), 0, "dropped");
    let before = probe.read().expect("read counters");
    read_all(&path);
    let cold = probe.read().expect("read counters");
    // This machine reclaims idle page cache by itself: a warm read misses
    // what was evicted since, which cachestat(2) tells.
    let resident = brokerwatch_tests::resident_pages(&path);
    read_all(&path);
    let warm = probe.read().expect("read counters");

    let first = delta(before, cold);
    let second = delta(cold, warm);
    eprintln!("cold read: {first:?}, warm read: {second:?}");
    // Each read asks for the file's pages once (plus the empty read at EOF).
    for d in [first, second] {
        assert!(
            (FILE_PAGES..=FILE_PAGES + 16).contains(&d.requested),
            "requested {} pages for a {FILE_PAGES}-page file",
            d.requested
        );
    }
    assert!(
        first.added >= FILE_PAGES && first.added <= FILE_PAGES + 1024,
        "a cold read adds the file's pages (plus readahead): {first:?}"
    );
    let cold_ratio = ebpf_hit_ratio(before, cold).expect("reads happened");
    let warm_ratio = ebpf_hit_ratio(cold, warm).expect("reads happened");
    assert!(cold_ratio < 0.01, "cold read hit ratio {cold_ratio}");
    assert!(
        resident > FILE_PAGES / 2,
        "evicted before the warm read: {resident}"
    );
    // Within 1 %: the machine may evict a few more pages during the read.
    assert!(
        second.added.abs_diff(FILE_PAGES - resident) <= FILE_PAGES / 100,
        "a warm read adds the pages evicted since the cold one ({} of {FILE_PAGES}): {second:?}",
        FILE_PAGES - resident
    );
    assert!(warm_ratio > 0.5, "warm read hit ratio {warm_ratio}");

    // Writing a new file adds its pages to the cache, dirtied: not misses.
    let written = dir.path().join("new-segment.log");
    let mut file = File::create(&written).expect("create");
    for _ in 0..FILE_BYTES / block.len() {
        file.write_all(&block).expect("write");
    }
    let after_write = probe.read().expect("read counters");
    let write = delta(warm, after_write);
    eprintln!("write: {write:?}");
    assert!(
        write.added >= FILE_PAGES,
        "the write added its pages: {write:?}"
    );
    let misses = write.added.saturating_sub(write.dirtied);
    assert!(
        misses <= FILE_PAGES / 100,
        "a write counted {misses} pages as misses: {write:?}"
    );
    drop(file);

    // Another process's reads are not counted while counting for this one,
    // and are once counting for every process.
    let cat = || {
        let status = std::process::Command::new("cat")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("cat");
        assert!(status.success());
    };
    let before_other = probe.read().expect("read counters");
    cat();
    let other = delta(before_other, probe.read().expect("read counters"));
    assert_eq!(other.requested, 0, "another process counted: {other:?}");
    probe.count_only(None).expect("target");
    let before_all = probe.read().expect("read counters");
    cat();
    let all = delta(before_all, probe.read().expect("read counters"));
    assert!(all.requested >= FILE_PAGES, "every process: {all:?}");
}
