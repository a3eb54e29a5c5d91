//! The agent's `ebpf` page-cache method, end to end: the agent counts for
//! "the broker" (this test process, named by a pid file), and its /metrics
//! show a cold read as misses and a warm read as hits; an agent without
//! CAP_BPF and CAP_PERFMON says so once, reports the method inactive and
//! keeps collecting the rest.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, start_agent_with_config, start_serving, workspace_binary, Scrape,
};

const FILE_PAGES: f64 = 16384.0; // 64 MiB

fn requested(scrape: &Scrape) -> f64 {
    scrape
        .sum("brokerwatch_page_cache_requested_pages_total", &[])
        .expect("the ebpf counters are exported")
}

/// Reads the file through, then waits for the scrape whose counters include
/// the whole read and returns the hit ratio of that interval.
fn read_and_scrape_ratio(url: &str, path: &Path) -> f64 {
    let before = requested(&Scrape::fetch(url));
    let mut file = File::open(path).expect("open");
    let mut buffer = vec![0u8; 1 << 20];
    while file.read(&mut buffer).expect("read") > 0 {}
    // The gauge is there only for an interval in which reads asked for
    // pages, so poll faster than the 1 s interval.
    eventually(
        "the interval with the read",
        Duration::from_secs(10),
        || {
            let scrape = Scrape::fetch(url);
            (requested(&scrape) >= before + FILE_PAGES)
                .then(|| scrape.sum("brokerwatch_page_cache_hit_ratio", &[("method", "ebpf")]))
                .flatten()
        },
    )
}

fn drop_from_page_cache(path: &Path) {
    let file = File::open(path).expect("open");
    file.sync_all().expect("fsync");
    // SAFETY: a valid fd, whole file, advice only.
    let done = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(done, 0, "posix_fadvise");
}

#[test]
fn cold_read_is_misses_and_warm_read_is_hits_on_the_agents_metrics() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let pid_file = dir.path().join("kafka.pid");
    std::fs::write(&pid_file, std::process::id().to_string()).expect("pid file");
    let segment = dir.path().join("00000000000000000000.log");
    let mut file = File::create(&segment).expect("create");
    let block = vec![0x6bu8; 1 << 20];
    for _ in 0..64 {
        file.write_all(&block).expect("write");
    }
    drop(file);
    let config = format!(
        "broker_id = 3\ninterval = \"1s\"\n[broker]\npid_file = \"{}\"\n[page_cache]\ncount = \"broker\"\n",
        pid_file.display()
    );
    let (mut agent, url) = start_agent_with_config(&config, dir);
    agent.wait_for_log("ebpf method running", Duration::from_secs(10));
    eventually("the counters", Duration::from_secs(10), || {
        Scrape::fetch(&url).sum("brokerwatch_page_cache_requested_pages_total", &[])
    });
    assert_eq!(
        Scrape::fetch(&url).sum("brokerwatch_page_cache_ebpf_active", &[]),
        Some(1.0)
    );

    drop_from_page_cache(&segment);
    let cold = read_and_scrape_ratio(&url, &segment);
    let warm = read_and_scrape_ratio(&url, &segment);
    eprintln!("hit ratio: cold read {cold}, warm read {warm}");
    assert!(cold < 0.05, "a cold read reads as hits: {cold}");
    assert!(warm > 0.95, "a warm read reads as misses: {warm}");
}

#[test]
fn without_bpf_capabilities_the_method_is_off_and_said_once() {
    let agent = workspace_binary("brokerwatch-agent");
    let setpriv = brokerwatch_tests::system_binary("setpriv");
    let (mut daemon, url) = start_serving(
        &setpriv,
        &[
            "--bounding-set=-bpf,-perfmon,-sys_admin",
            "--",
            agent.to_str().expect("UTF-8 path"),
            "--broker-id",
            "4",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "300ms",
        ],
    );
    let line = daemon.wait_for_log("ebpf method off", Duration::from_secs(10));
    assert!(line.contains("CAP_BPF and CAP_PERFMON"), "{line}");
    let scrape = eventually("a few cycles", Duration::from_secs(10), || {
        let scrape = Scrape::fetch(&url);
        scrape
            .sum("brokerwatch_cpu_seconds_total", &[])
            .filter(|_| daemon.log().contains("ebpf method off"))
            .map(|_| scrape)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        scrape.sum("brokerwatch_page_cache_ebpf_active", &[]),
        Some(0.0)
    );
    assert_eq!(
        daemon.log().matches("ebpf method off").count(),
        1,
        "said once, not every cycle"
    );
    assert!(Scrape::fetch(&url)
        .sum("brokerwatch_page_cache_requested_pages_total", &[])
        .is_none());
}
