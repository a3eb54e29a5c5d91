//! TCP from /proc/net/snmp (segments sent and retransmitted, established
//! connections) and /proc/net/sockstat (sockets in use, TIME_WAIT). Rising
//! retransmits on a broker host are the first sign of a lossy NIC or a
//! congested top-of-rack switch; TIME_WAIT piles up under client churn.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::HostReport;
use brokerwatch_common::TcpReport;

use super::{clamp_ratio, elapsed, rate, HostPaths, KernelFile, Source, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SnmpTcp {
    pub segments_sent: u64,
    pub retransmitted_segments: u64,
    pub established_connections: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sockstat {
    pub sockets_in_use: u64,
    pub orphan_sockets: u64,
    pub time_wait_sockets: u64,
    pub allocated_sockets: u64,
}

/// Parses the `Tcp:` lines of /proc/net/snmp (a header line of names, then
/// a line of values). procfs's `Snmp` parses all ~120 IP/ICMP/TCP/UDP
/// counters into a map of owned strings, which was a seventh of a whole
/// collection cycle for the three values needed here; it stays the reference
/// these values are tested against.
pub fn parse_snmp(text: &str) -> Result<SnmpTcp, String> {
    let mut tcp_lines = text.lines().filter_map(|l| l.strip_prefix("Tcp:"));
    let (names, values) = match (tcp_lines.next(), tcp_lines.next()) {
        (Some(names), Some(values)) => (names, values),
        _ => return Err("no Tcp: header and value lines".into()),
    };
    let names: Vec<&str> = names.split_whitespace().collect();
    let values: Vec<&str> = values.split_whitespace().collect();
    if names.len() != values.len() {
        return Err(format!(
            "Tcp: has {} names but {} values",
            names.len(),
            values.len()
        ));
    }
    let field = |name: &str| -> Result<u64, String> {
        let at = names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("Tcp: has no {name} field"))?;
        values[at]
            .parse()
            .map_err(|_| format!("Tcp: {name} value {:?} is not a count", values[at]))
    };
    Ok(SnmpTcp {
        segments_sent: field("OutSegs")?,
        retransmitted_segments: field("RetransSegs")?,
        established_connections: field("CurrEstab")?,
    })
}

/// Parses the `TCP:` line of /proc/net/sockstat:
/// `TCP: inuse 4187 orphan 3 tw 18231 alloc 4312 mem 91231`.
pub fn parse_sockstat(text: &str) -> Result<Sockstat, String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .ok_or("no TCP: line")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let field = |key: &str| -> Result<u64, String> {
        let at = fields
            .iter()
            .position(|f| *f == key)
            .ok_or_else(|| format!("TCP: line has no {key:?} field"))?;
        let value = fields
            .get(at + 1)
            .ok_or_else(|| format!("TCP: line has no value after {key:?}"))?;
        value
            .parse()
            .map_err(|_| format!("TCP: {key} value {value:?} is not a count"))
    };
    Ok(Sockstat {
        sockets_in_use: field("inuse")?,
        orphan_sockets: field("orphan")?,
        time_wait_sockets: field("tw")?,
        allocated_sockets: field("alloc")?,
    })
}

pub fn interval(
    previous: &SnmpTcp,
    current: &SnmpTcp,
    sockets: &Sockstat,
    elapsed_seconds: f64,
) -> TcpReport {
    let sent = current.segments_sent.saturating_sub(previous.segments_sent);
    let retransmitted = current
        .retransmitted_segments
        .saturating_sub(previous.retransmitted_segments);
    TcpReport {
        segments_sent_per_second: rate(
            previous.segments_sent,
            current.segments_sent,
            elapsed_seconds,
        ),
        retransmitted_segments_per_second: rate(
            previous.retransmitted_segments,
            current.retransmitted_segments,
            elapsed_seconds,
        ),
        retransmit_ratio: if sent == 0 {
            0.0
        } else {
            clamp_ratio(retransmitted as f64 / sent as f64)
        },
        established_connections: current.established_connections,
        sockets_in_use: sockets.sockets_in_use,
        time_wait_sockets: sockets.time_wait_sockets,
    }
}

/// The TCP source: /proc/net/snmp and /proc/net/sockstat every cycle.
pub struct TcpSource {
    snmp: KernelFile,
    sockstat: KernelFile,
    buffer: Vec<u8>,
    last: Option<(Instant, SnmpTcp, Sockstat)>,
    interval: Option<TcpReport>,
}

impl TcpSource {
    pub fn new(paths: &HostPaths) -> Self {
        TcpSource {
            snmp: KernelFile::new(paths.proc_file("net/snmp")),
            sockstat: KernelFile::new(paths.proc_file("net/sockstat")),
            buffer: Vec::new(),
            last: None,
            interval: None,
        }
    }
}

impl Source for TcpSource {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn collect(&mut self, at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let previous = self.last.take();
        self.interval = None;
        let snmp = self.snmp.read_parsed(&mut self.buffer, parse_snmp)?;
        let sockets = self
            .sockstat
            .read_parsed(&mut self.buffer, parse_sockstat)?;
        self.interval = previous.map(|(before_at, before, _)| {
            interval(&before, &snmp, &sockets, elapsed(before_at, at))
        });
        report.tcp = self.interval.clone();
        self.last = Some((at, snmp, sockets));
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        if let Some((_, snmp, sockets)) = &self.last {
            f.counter(
                "brokerwatch_tcp_segments_sent_total",
                "TCP segments sent (Tcp: OutSegs).",
            )
            .value(snmp.segments_sent as f64);
            f.counter(
                "brokerwatch_tcp_retransmitted_segments_total",
                "TCP segments retransmitted (Tcp: RetransSegs).",
            )
            .value(snmp.retransmitted_segments as f64);
            f.gauge(
                "brokerwatch_tcp_established_connections",
                "TCP connections in ESTABLISHED or CLOSE_WAIT.",
            )
            .value(snmp.established_connections as f64);
            f.gauge("brokerwatch_tcp_sockets_in_use", "TCP sockets in use.")
                .value(sockets.sockets_in_use as f64);
            f.gauge(
                "brokerwatch_tcp_time_wait_sockets",
                "TCP sockets in TIME_WAIT.",
            )
            .value(sockets.time_wait_sockets as f64);
            f.gauge(
                "brokerwatch_tcp_orphan_sockets",
                "TCP sockets no longer attached to a process.",
            )
            .value(sockets.orphan_sockets as f64);
        }
        if let Some(tcp) = &self.interval {
            f.gauge(
                "brokerwatch_tcp_retransmit_ratio",
                "Retransmitted over sent TCP segments in the last interval.",
            )
            .value(tcp.retransmit_ratio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    /// procfs's full parser is the reference for the three values.
    fn procfs_reference(text: &str) -> SnmpTcp {
        use procfs::{net::Snmp, FromRead};
        let snmp = Snmp::from_read(text.as_bytes()).unwrap();
        SnmpTcp {
            segments_sent: snmp.tcp_out_segs,
            retransmitted_segments: snmp.tcp_retrans_segs,
            established_connections: snmp.tcp_curr_estab,
        }
    }

    #[test]
    fn parses_a_real_snmp() {
        let text = fixture("net_snmp");
        let tcp = parse_snmp(&text).unwrap();
        assert_eq!(
            tcp,
            SnmpTcp {
                segments_sent: 1_128,
                retransmitted_segments: 0,
                established_connections: 0,
            }
        );
        assert_eq!(tcp, procfs_reference(&text));
    }

    #[test]
    fn parses_a_broker_hosts_snmp() {
        let text = fixture("net_snmp_broker");
        let tcp = parse_snmp(&text).unwrap();
        assert_eq!(tcp.segments_sent, 87_012_387_123);
        assert_eq!(tcp.retransmitted_segments, 41_238_761);
        assert_eq!(tcp.established_connections, 4_123);
        assert_eq!(tcp, procfs_reference(&text));
    }

    #[test]
    fn agrees_with_procfs_on_this_machines_snmp() {
        let text = std::fs::read_to_string("/proc/net/snmp").unwrap();
        let ours = parse_snmp(&text).unwrap();
        let reference = procfs_reference(&text);
        assert_eq!(ours, reference);
    }

    #[test]
    fn a_garbled_snmp_is_an_error_that_says_what_is_wrong() {
        let text = fixture("net_snmp");
        let without_tcp: String = text
            .lines()
            .filter(|l| !l.starts_with("Tcp:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            parse_snmp(&without_tcp).unwrap_err(),
            "no Tcp: header and value lines"
        );
        let cut = text.replace(
            "Tcp: 1 200 120000 -1 19 2 0 7 0 1865 1128 0 0 9 0",
            "Tcp: 1 200 120000",
        );
        assert_eq!(
            parse_snmp(&cut).unwrap_err(),
            "Tcp: has 15 names but 3 values"
        );
        let garbled = text.replace("1865 1128 0", "1865 11x8 0");
        assert_eq!(
            parse_snmp(&garbled).unwrap_err(),
            "Tcp: OutSegs value \"11x8\" is not a count"
        );
        let renamed = text.replace("RetransSegs", "Retrans");
        assert_eq!(
            parse_snmp(&renamed).unwrap_err(),
            "Tcp: has no RetransSegs field"
        );
    }

    #[test]
    fn parses_sockstat() {
        assert_eq!(
            parse_sockstat(&fixture("net_sockstat_broker")).unwrap(),
            Sockstat {
                sockets_in_use: 4_187,
                orphan_sockets: 3,
                time_wait_sockets: 18_231,
                allocated_sockets: 4_312,
            }
        );
        assert_eq!(
            parse_sockstat(&fixture("net_sockstat"))
                .unwrap()
                .sockets_in_use,
            1
        );
    }

    #[test]
    fn garbled_sockstat_is_an_error_that_names_the_field() {
        assert_eq!(
            parse_sockstat("sockets: used 3\n").unwrap_err(),
            "no TCP: line"
        );
        let err = parse_sockstat("TCP: inuse 4 orphan 0 tw x alloc 1\n").unwrap_err();
        assert_eq!(err, "TCP: tw value \"x\" is not a count");
        let err = parse_sockstat("TCP: inuse 4 orphan 0 alloc 1\n").unwrap_err();
        assert_eq!(err, "TCP: line has no \"tw\" field");
    }

    #[test]
    fn interval_gives_retransmit_rate_and_ratio() {
        let before = SnmpTcp {
            segments_sent: 1_000_000,
            retransmitted_segments: 1_000,
            established_connections: 10,
        };
        let after = SnmpTcp {
            segments_sent: 1_200_000,
            retransmitted_segments: 3_000,
            established_connections: 12,
        };
        let sockets = Sockstat {
            sockets_in_use: 40,
            time_wait_sockets: 7,
            ..Sockstat::default()
        };
        let report = interval(&before, &after, &sockets, 10.0);
        assert_eq!(report.segments_sent_per_second, 20_000.0);
        assert_eq!(report.retransmitted_segments_per_second, 200.0);
        assert_eq!(report.retransmit_ratio, 0.01);
        assert_eq!(report.established_connections, 12);
        assert_eq!(report.time_wait_sockets, 7);
        assert_eq!(
            interval(&after, &after, &sockets, 10.0).retransmit_ratio,
            0.0
        );
    }
}
