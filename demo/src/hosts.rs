//! Brokers 2-4's hosts: the four brokers share this one machine, so their
//! reports are broker 1's real report (from the embedded agent) scaled by
//! their share of the partition leaders, the traffic each serves. Each
//! simulated host has two data disks sharing its I/O 70/30, a log dir on
//! each, so the disk model inside a broker has something to show.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::{codec, Report};

use crate::cluster::LEADERS;
use crate::TOKEN;

/// Every 5 s, broker 1's real report (from the embedded agent) is sent again
/// for brokers 2-4, scaled by their share of the leaders relative to broker 1.
pub async fn simulate_other_hosts(agent: String, collector: String, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::new();
    let leaders = |broker: i32| LEADERS.iter().filter(|l| **l == broker).count() as f64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Ok(response) = client.get(format!("{agent}/api/v1/report")).send().await else {
            continue;
        };
        let Ok(report) = response.json::<Report>().await else {
            continue;
        };
        for broker in 2..=4 {
            let scale = leaders(broker) / leaders(1);
            let mut copy = report.clone();
            copy.broker_id = broker;
            if let Some(cpu) = &mut copy.host.cpu {
                cpu.utilization_ratio *= scale;
                cpu.iowait_ratio *= scale;
            }
            // Each simulated host has two data disks (JBOD) sharing the I/O 70/30.
            copy.host.disks = copy
                .host
                .disks
                .first()
                .into_iter()
                .flat_map(|disk| {
                    [("data0", 0.7), ("data1", 0.3)].map(|(device, part)| {
                        let mut d = disk.clone();
                        d.device = device.to_owned();
                        d.read_bytes_per_second *= scale * part * 2.0;
                        d.written_bytes_per_second *= scale * part * 2.0;
                        d.utilization_ratio = (d.utilization_ratio * scale * part * 2.0).min(1.0);
                        d
                    })
                })
                .collect();
            // A log dir on each data disk, so the disk model compares them.
            copy.host.log_dirs = copy
                .host
                .log_dirs
                .first()
                .into_iter()
                .flat_map(|dir| {
                    ["data0", "data1"].map(|device| {
                        let mut d = dir.clone();
                        d.log_dir = format!("/{device}/kafka-logs");
                        d.mount_point = format!("/{device}");
                        d.device = Some(device.to_owned());
                        d.disks = vec![device.to_owned()];
                        d
                    })
                })
                .collect();
            for link in &mut copy.host.interfaces {
                link.receive_bytes_per_second *= scale;
                link.transmit_bytes_per_second *= scale;
            }
            if let Some(fd) = &mut copy.host.file_descriptors {
                fd.allocated = (fd.allocated as f64 * scale) as u64;
            }
            if let Some(memory) = &mut copy.host.memory {
                let used = (memory.total_bytes - memory.available_bytes) as f64 * scale;
                memory.available_bytes = memory.total_bytes.saturating_sub(used as u64);
            }
            let _ = client
                .post(format!("{collector}/api/v1/reports"))
                .bearer_auth(TOKEN)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", codec::CONTENT_ENCODING)
                .body(codec::encode(&copy))
                .send()
                .await;
        }
    }
}
