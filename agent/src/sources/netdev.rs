//! Network interfaces from /proc/net/dev, with the link speed from
//! /sys/class/net/IFACE/speed so that throughput becomes a share of the link.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::Families;
use brokerwatch_common::HostReport;
use brokerwatch_common::InterfaceReport;
use procfs::{net::InterfaceDeviceStatus, FromRead};

pub use procfs::net::DeviceStatus;

use super::{clamp_ratio, elapsed, rate, HostPaths, KernelFile, NameFilter, Source, SourceError};

#[derive(Debug, Clone)]
pub struct Interface {
    pub counters: DeviceStatus,
    /// `None` where the kernel does not know it: loopback, most virtual
    /// links, and a physical link that is down (the file then says -1).
    pub speed_bytes_per_second: Option<f64>,
}

/// Parses /proc/net/dev into the accepted interfaces, sorted by name.
pub fn parse_net_dev(text: &str, filter: &NameFilter) -> Result<Vec<DeviceStatus>, String> {
    let all = super::with_procfs(text, false, |t| {
        InterfaceDeviceStatus::from_read(t.as_bytes())
    })?;
    let mut kept: Vec<DeviceStatus> = all
        .0
        .into_values()
        .filter(|d| filter.accepts(&d.name))
        .collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(kept)
}

/// Parses /sys/class/net/IFACE/speed (megabits per second) into bytes per second.
pub fn parse_speed(text: &str) -> Option<f64> {
    let mbits: i64 = text.trim().parse().ok()?;
    (mbits > 0).then(|| mbits as f64 * 1_000_000.0 / 8.0)
}

/// Rates per interface between two readings, and each direction's share of
/// the link speed (full duplex: receive and transmit each have the whole link).
pub fn interval(
    previous: &[Interface],
    current: &[Interface],
    elapsed_seconds: f64,
) -> Vec<InterfaceReport> {
    if elapsed_seconds <= 0.0 {
        return Vec::new();
    }
    current
        .iter()
        .filter_map(|now| {
            let before = previous
                .iter()
                .find(|i| i.counters.name == now.counters.name)?;
            let (b, n) = (&before.counters, &now.counters);
            let receive = rate(b.recv_bytes, n.recv_bytes, elapsed_seconds);
            let transmit = rate(b.sent_bytes, n.sent_bytes, elapsed_seconds);
            let share = |bytes_per_second: f64| {
                now.speed_bytes_per_second
                    .map(|speed| clamp_ratio(bytes_per_second / speed))
            };
            Some(InterfaceReport {
                interface: n.name.clone(),
                receive_bytes_per_second: receive,
                transmit_bytes_per_second: transmit,
                receive_drops_per_second: rate(b.recv_drop, n.recv_drop, elapsed_seconds),
                transmit_drops_per_second: rate(b.sent_drop, n.sent_drop, elapsed_seconds),
                receive_errors_per_second: rate(b.recv_errs, n.recv_errs, elapsed_seconds),
                transmit_errors_per_second: rate(b.sent_errs, n.sent_errs, elapsed_seconds),
                speed_bytes_per_second: now.speed_bytes_per_second,
                receive_utilization_ratio: share(receive),
                transmit_utilization_ratio: share(transmit),
            })
        })
        .collect()
}

/// Link speeds change only on renegotiation, and reading one can make the
/// NIC driver query its firmware, so they are re-read this often (and when
/// an interface appears), not every cycle.
const SPEED_REFRESH: Duration = Duration::from_secs(30);

/// The network source: /proc/net/dev every cycle, link speeds from
/// /sys/class/net/IFACE/speed every [`SPEED_REFRESH`].
pub struct NetworkSource {
    paths: HostPaths,
    net_dev: KernelFile,
    filter: NameFilter,
    /// Bytes per second assumed where the kernel reports no speed (loopback
    /// aside): cloud and virtual NICs have a cap the kernel does not know.
    assumed_speed: Option<f64>,
    speeds_read_at: Option<Instant>,
    speeds: HashMap<String, Option<f64>>,
    buffer: Vec<u8>,
    last: Option<(Instant, Vec<Interface>)>,
    interval: Vec<InterfaceReport>,
}

impl NetworkSource {
    pub fn new(paths: &HostPaths, filter: NameFilter, assumed_speed: Option<f64>) -> Self {
        NetworkSource {
            paths: paths.clone(),
            net_dev: KernelFile::new(paths.proc_file("net/dev")),
            filter,
            assumed_speed,
            speeds_read_at: None,
            speeds: HashMap::new(),
            buffer: Vec::new(),
            last: None,
            interval: Vec::new(),
        }
    }

    fn read_interfaces(&mut self) -> Result<Vec<Interface>, SourceError> {
        let filter = &self.filter;
        let counters = self
            .net_dev
            .read_parsed(&mut self.buffer, |text| parse_net_dev(text, filter))?;
        let stale = self
            .speeds_read_at
            .is_none_or(|at| at.elapsed() >= SPEED_REFRESH)
            || counters.iter().any(|c| !self.speeds.contains_key(&c.name));
        if stale {
            self.speeds_read_at = Some(Instant::now());
            self.speeds = counters
                .iter()
                .map(|c| {
                    let path = self.paths.sys_file(&format!("class/net/{}/speed", c.name));
                    // No speed file (or -1, or EINVAL) is normal for virtual links: not an error.
                    let speed = KernelFile::new(path)
                        .read(&mut self.buffer)
                        .ok()
                        .and_then(parse_speed);
                    (c.name.clone(), speed)
                })
                .collect();
        }
        Ok(counters
            .into_iter()
            .map(|counters| Interface {
                speed_bytes_per_second: self
                    .speeds
                    .get(&counters.name)
                    .copied()
                    .flatten()
                    .or(self.assumed_speed.filter(|_| counters.name != "lo")),
                counters,
            })
            .collect())
    }
}

impl Source for NetworkSource {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let previous = self.last.take();
        self.interval = Vec::new();
        let current = self.read_interfaces()?;
        if let Some((before_at, before)) = &previous {
            self.interval = interval(before, &current, elapsed(*before_at, at));
        }
        report.interfaces = self.interval.clone();
        self.last = Some((at, current));
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        let interfaces = self.last.as_ref().map_or(&[][..], |(_, i)| i.as_slice());
        type Field = fn(&procfs::net::DeviceStatus) -> u64;
        let counters: [(&str, &str, Field); 8] = [
            (
                "brokerwatch_network_receive_bytes_total",
                "Bytes received.",
                |c| c.recv_bytes,
            ),
            (
                "brokerwatch_network_receive_packets_total",
                "Packets received.",
                |c| c.recv_packets,
            ),
            (
                "brokerwatch_network_receive_errors_total",
                "Bad packets received.",
                |c| c.recv_errs,
            ),
            (
                "brokerwatch_network_receive_drop_total",
                "Received packets dropped.",
                |c| c.recv_drop,
            ),
            (
                "brokerwatch_network_transmit_bytes_total",
                "Bytes transmitted.",
                |c| c.sent_bytes,
            ),
            (
                "brokerwatch_network_transmit_packets_total",
                "Packets transmitted.",
                |c| c.sent_packets,
            ),
            (
                "brokerwatch_network_transmit_errors_total",
                "Transmit errors.",
                |c| c.sent_errs,
            ),
            (
                "brokerwatch_network_transmit_drop_total",
                "Packets dropped on transmit.",
                |c| c.sent_drop,
            ),
        ];
        for (name, help, field) in counters {
            let mut family = f.counter(name, help);
            for i in interfaces {
                family.add(
                    &[("interface", &i.counters.name)],
                    field(&i.counters) as f64,
                );
            }
        }
        let mut speed = f.gauge(
            "brokerwatch_network_speed_bytes",
            "Link speed in bytes per second, where the kernel knows it.",
        );
        for i in interfaces {
            if let Some(bytes_per_second) = i.speed_bytes_per_second {
                speed.add(&[("interface", &i.counters.name)], bytes_per_second);
            }
        }
        type Share = fn(&brokerwatch_common::InterfaceReport) -> Option<f64>;
        let shares: [(&str, &str, Share); 2] = [
            (
                "brokerwatch_network_receive_utilization_ratio",
                "Receive throughput over link speed in the last interval.",
                |i| i.receive_utilization_ratio,
            ),
            (
                "brokerwatch_network_transmit_utilization_ratio",
                "Transmit throughput over link speed in the last interval.",
                |i| i.transmit_utilization_ratio,
            ),
        ];
        for (name, help, share) in shares {
            let mut family = f.gauge(name, help);
            for i in &self.interval {
                if let Some(value) = share(i) {
                    family.add(&[("interface", &i.interface)], value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    fn all() -> NameFilter {
        NameFilter::default()
    }

    #[test]
    fn parses_a_real_net_dev() {
        let interfaces = parse_net_dev(&fixture("net_dev"), &all()).unwrap();
        let names: Vec<&str> = interfaces.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["eth0", "ifb0", "ifb1", "lo"]);
        let eth0 = &interfaces[0];
        assert_eq!(eth0.recv_bytes, 70_252_677);
        assert_eq!(eth0.recv_packets, 1_876);
        assert_eq!(eth0.sent_bytes, 102_835);
        assert_eq!(eth0.sent_packets, 1_138);
        assert_eq!(interfaces[3].recv_bytes, 3_193);
    }

    #[test]
    fn parses_a_broker_host_with_drops_and_errors() {
        let filter = NameFilter::new(None, Some("^(lo|docker.*)$"), "network").unwrap();
        let interfaces = parse_net_dev(&fixture("net_dev_broker"), &filter).unwrap();
        let names: Vec<&str> = interfaces.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["bond0", "ens1f0", "ens1f1"]);
        let bond = &interfaces[0];
        assert_eq!(bond.recv_bytes, 912_873_612_309_871);
        assert_eq!(bond.recv_packets, 612_387_123_987);
        assert_eq!(bond.recv_errs, 12);
        assert_eq!(bond.recv_drop, 91_823);
        assert_eq!(bond.sent_bytes, 2_712_387_123_987_123);
        assert_eq!(bond.sent_drop, 0);
        assert_eq!(bond.sent_errs, 3);
    }

    #[test]
    fn a_truncated_net_dev_is_an_error() {
        let text = "Inter-|\n face |\n  eth0: 1 2 3\n";
        assert!(parse_net_dev(text, &all()).is_err());
    }

    #[test]
    fn speed_is_megabits_and_unknown_when_not_positive() {
        assert_eq!(parse_speed("25000\n"), Some(3_125_000_000.0));
        assert_eq!(parse_speed("-1\n"), None);
        assert_eq!(parse_speed(""), None);
        assert_eq!(parse_speed("fast"), None);
    }

    fn iface(name: &str, rx: u64, tx: u64, rx_drop: u64, speed: Option<f64>) -> Interface {
        let text = format!("h1\nh2\n{name}: {rx} 0 0 {rx_drop} 0 0 0 0 {tx} 0 0 0 0 0 0 0\n");
        let counters = parse_net_dev(&text, &NameFilter::default())
            .unwrap()
            .remove(0);
        Interface {
            counters,
            speed_bytes_per_second: speed,
        }
    }

    #[test]
    fn interval_gives_rates_and_link_shares() {
        let speed = Some(1_250_000_000.0); // 10 Gbit/s
        let before = [
            iface("ens1f0", 1_000, 5_000, 10, speed),
            iface("lo", 0, 0, 0, None),
        ];
        let after = [
            iface(
                "ens1f0",
                1_000 + 6_250_000_000,
                5_000 + 12_500_000_000,
                30,
                speed,
            ),
            iface("lo", 400, 400, 0, None),
        ];
        let reports = interval(&before, &after, 10.0);
        let eth = &reports[0];
        assert_eq!(eth.receive_bytes_per_second, 625_000_000.0);
        assert_eq!(eth.transmit_bytes_per_second, 1_250_000_000.0);
        assert_eq!(eth.receive_drops_per_second, 2.0);
        assert_eq!(eth.receive_utilization_ratio, Some(0.5));
        assert_eq!(eth.transmit_utilization_ratio, Some(1.0));
        let lo = &reports[1];
        assert_eq!(lo.receive_bytes_per_second, 40.0);
        assert_eq!(lo.receive_utilization_ratio, None);
    }
}
