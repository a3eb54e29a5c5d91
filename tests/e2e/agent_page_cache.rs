//! The agent's `ebpf` page-cache method, end to end: the agent counts for
//! "the broker" (a reader process of the test's, named by a pid file), and its /metrics
//! show a cold read as misses and a warm read as hits; an agent without
//! CAP_BPF and CAP_PERFMON says so once, reports the method inactive and
//! keeps collecting the rest.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, start_agent_with_config, start_serving, workspace_binary, Scrape,
};

const FILE_PAGES: f64 = 16384.0; // 64 MiB

/// The probe counts this whole test process: one test at a time, so that
/// the other's file reads do not blur the figures.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn requested(scrape: &Scrape) -> f64 {
    scrape
        .sum("brokerwatch_page_cache_requested_pages_total", &[])
        .expect("the ebpf counters are exported")
}

/// "The broker": a process of its own that reads the segment through, 1 MiB
/// at a time, each time it is asked, and does nothing else, so that what the
/// agent counts for it is exactly those reads.
struct Reader {
    child: std::process::Child,
    said: std::io::BufReader<std::process::ChildStdout>,
}

const READER: &str = "import sys
path = sys.argv[1]
for _ in sys.stdin:
    with open(path, 'rb', buffering=0) as f:
        while f.read(1 << 20):
            pass
    print('read', flush=True)
";

impl Reader {
    fn start(segment: &Path) -> Reader {
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-c", READER])
            .arg(segment)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let said = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Reader { child, said }
    }

    fn read_through(&mut self) {
        use std::io::BufRead as _;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("ask the reader");
        stdin.flush().expect("ask the reader");
        let mut line = String::new();
        self.said.read_line(&mut line).expect("the reader's answer");
        assert_eq!(line, "read\n");
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent's last cycle, told apart by its measured duration (a float that
/// differs from cycle to cycle).
fn cycle_mark(url: &str) -> Option<f64> {
    Scrape::fetch(url).sum("brokerwatch_agent_collect_duration_seconds", &[])
}

/// Reads the file through within one agent interval, then waits for the
/// scrape whose counters include the whole read and returns the hit ratio of
/// that interval. A read split across two intervals would give the second
/// one pages that readahead added in the first: hits, on a cold read.
/// Returns the interval's hit ratio and the file's resident share just before the read.
fn read_and_scrape_ratio(
    url: &str,
    reader: &mut Reader,
    path: &Path,
    prepare: impl Fn(),
) -> (f64, f64) {
    for _attempt in 0..5 {
        prepare();
        // Start just after a cycle, so the read has the whole 2 s interval.
        let mark = cycle_mark(url);
        eventually("a new cycle", Duration::from_secs(10), || {
            (cycle_mark(url) != mark).then_some(())
        });
        let started_in = cycle_mark(url);
        let before = requested(&Scrape::fetch(url));
        let resident = resident_share(path);
        reader.read_through();
        if cycle_mark(url) != started_in {
            eprintln!("the read crossed a cycle; again");
            continue;
        }
        // The gauge is there only for an interval in which reads asked for
        // pages, so poll faster than the interval.
        let ratio = eventually(
            "the interval with the read",
            Duration::from_secs(10),
            || {
                let scrape = Scrape::fetch(url);
                (requested(&scrape) >= before + FILE_PAGES)
                    .then(|| scrape.sum("brokerwatch_page_cache_hit_ratio", &[("method", "ebpf")]))
                    .flatten()
            },
        );
        return (ratio, resident);
    }
    panic!("every read crossed a cycle of the agent");
}

/// The share of the file's pages in the page cache now: the truth a read's
/// hit ratio should match, since this machine reclaims idle page cache.
fn resident_share(path: &Path) -> f64 {
    brokerwatch_tests::resident_pages(path) as f64 / FILE_PAGES
}

#[test]
fn cold_read_is_misses_and_warm_read_is_hits_on_the_agents_metrics() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let segment = dir.path().join("00000000000000000000.log");
    let mut file = File::create(&segment).expect("create");
    let block = vec![0x6bu8; 1 << 20];
    for _ in 0..64 {
        file.write_all(&block).expect("write");
    }
    drop(file);
    let mut reader = Reader::start(&segment);
    let pid_file = dir.path().join("kafka.pid");
    std::fs::write(&pid_file, reader.child.id().to_string()).expect("pid file");
    let config = format!(
        "broker_id = 3\ninterval = \"2s\"\n[broker]\npid_file = \"{}\"\n[page_cache]\ncount = \"broker\"\n",
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

    let (cold, cold_resident) = read_and_scrape_ratio(&url, &mut reader, &segment, || {
        brokerwatch_tests::drop_from_page_cache(&segment)
    });
    let (warm, warm_resident) = read_and_scrape_ratio(&url, &mut reader, &segment, || {});
    eprintln!(
        "hit ratio: cold read {cold} ({cold_resident} resident before), warm read {warm} ({warm_resident} resident before)"
    );
    assert_eq!(cold_resident, 0.0, "the drop left pages in the cache");
    assert!(cold < 0.01, "a cold read reads as hits: {cold}");
    // This machine reclaims idle page cache by itself: the warm read's hit
    // ratio is the share still resident, which cachestat(2) tells.
    assert!(
        warm_resident > 0.5,
        "most of the file was evicted: {warm_resident}"
    );
    assert!(
        (warm - warm_resident).abs() < 0.02,
        "warm read: hit ratio {warm}, but {warm_resident} of the file was resident"
    );
}

#[test]
fn without_bpf_capabilities_the_method_is_off_and_said_once() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
