//! TCP from /proc/net/snmp (segments sent and retransmitted, established
//! connections) and /proc/net/sockstat (sockets in use, TIME_WAIT). Rising
//! retransmits on a broker host are the first sign of a lossy NIC or a
//! congested top-of-rack switch; TIME_WAIT piles up under client churn.

use brokerwatch_common::TcpReport;
use procfs::{net::Snmp, FromRead};

use super::{clamp_ratio, rate};

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

/// Parses /proc/net/snmp (all of it must be well-formed: the kernel writes
/// it in one piece, so a bad line means a bad file).
pub fn parse_snmp(text: &str) -> Result<SnmpTcp, String> {
    let snmp = Snmp::from_read(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(SnmpTcp {
        segments_sent: snmp.tcp_out_segs,
        retransmitted_segments: snmp.tcp_retrans_segs,
        established_connections: snmp.tcp_curr_estab,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    #[test]
    fn parses_a_real_snmp() {
        let tcp = parse_snmp(&fixture("net_snmp")).unwrap();
        assert_eq!(
            tcp,
            SnmpTcp {
                segments_sent: 1_128,
                retransmitted_segments: 0,
                established_connections: 0,
            }
        );
    }

    #[test]
    fn parses_a_broker_hosts_snmp() {
        let tcp = parse_snmp(&fixture("net_snmp_broker")).unwrap();
        assert_eq!(tcp.segments_sent, 87_012_387_123);
        assert_eq!(tcp.retransmitted_segments, 41_238_761);
        assert_eq!(tcp.established_connections, 4_123);
    }

    #[test]
    fn an_snmp_without_its_tcp_lines_is_an_error() {
        let text = fixture("net_snmp");
        let cut: String = text
            .lines()
            .filter(|l| !l.starts_with("Tcp:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_snmp(&cut).is_err());
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
