//! The one wire codec of reports: an agent encodes (JSON, gzipped), the
//! collector decodes and checks, and the demo and the tests post the same
//! bytes. Decoding says why a body is refused: an HTTP status, a `reason`
//! label for the collector's rejection counter, and a one-line message for
//! the agent.

use std::io::{Read, Write};

use crate::config::quote_limited;
use crate::{Report, SCHEMA_VERSION};

mod limits;
pub use limits::{MAX_ITEMS, MAX_NAME, MAX_RATE};

/// The `Content-Encoding` of an encoded report.
pub const CONTENT_ENCODING: &str = "gzip";

/// A report as it goes over the wire: JSON, gzipped.
pub fn encode(report: &Report) -> Vec<u8> {
    let json = serde_json::to_vec(report).expect("a report serialises");
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(&json).expect("writing into memory");
    encoder.finish().expect("writing into memory")
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Every `reason` a refusal can give, so that each counter exists from the start.
pub const REASONS: [&str; 10] = [
    "unauthenticated",
    "forbidden",
    "too_large",
    "bad_encoding",
    "malformed",
    "unsupported_schema",
    "invalid",
    "out_of_range",
    "too_many_items",
    "too_many_brokers",
];

#[derive(serde::Deserialize)]
struct Envelope {
    schema_version: u32,
}

/// Decodes a body (gzip when `content_encoding` says so, inflating to at
/// most `max_decoded_bytes`) into a report of this schema version.
pub fn decode(
    body: &[u8],
    content_encoding: Option<&str>,
    max_decoded_bytes: usize,
) -> Result<Report, Rejection> {
    // Content codings are case-insensitive; x-gzip is gzip (RFC 9110 8.4.1.3).
    let coding = content_encoding.map(|c| c.trim().to_ascii_lowercase());
    let json = match coding.as_deref() {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip" | "x-gzip") => {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(max_decoded_bytes as u64 + 1)
                .read_to_end(&mut decoded)
                .map_err(|e| {
                    Rejection::new(
                        400,
                        "bad_encoding",
                        format!("the gzip body does not decompress: {e}"),
                    )
                })?;
            if decoded.len() > max_decoded_bytes {
                return Err(Rejection::new(
                    413,
                    "too_large",
                    format!("the report decompresses to more than {max_decoded_bytes} bytes"),
                ));
            }
            decoded
        }
        Some(_) => {
            return Err(Rejection::new(
                415,
                "bad_encoding",
                format!(
                    "Content-Encoding {:?} is not supported; send gzip or identity",
                    quote_limited(content_encoding.unwrap_or_default())
                ),
            ))
        }
    };
    let envelope: Envelope = serde_json::from_slice(&json).map_err(|e| {
        Rejection::new(
            400,
            "malformed",
            format!(
                "the body is not a report (JSON with schema_version): {}",
                quote_limited(&e.to_string())
            ),
        )
    })?;
    if envelope.schema_version != SCHEMA_VERSION {
        return Err(Rejection::new(
            400,
            "unsupported_schema",
            format!(
                "schema_version {} is not supported; this collector reads version {SCHEMA_VERSION}: run agent and collector of the same release",
                envelope.schema_version
            ),
        ));
    }
    let report: Report = serde_json::from_slice(&json).map_err(|e| {
        Rejection::new(
            400,
            "malformed",
            format!(
                "the report does not match schema version {SCHEMA_VERSION}: {}",
                quote_limited(&e.to_string())
            ),
        )
    })?;
    if report.broker_id < 0 {
        return Err(Rejection::new(
            422,
            "invalid",
            format!("broker_id {} is not a Kafka broker id", report.broker_id),
        ));
    }
    if !(report.interval_seconds.is_finite() && report.interval_seconds > 0.0) {
        return Err(Rejection::new(
            422,
            "invalid",
            format!(
                "interval_seconds {} is not a positive duration",
                report.interval_seconds
            ),
        ));
    }
    limits::check(&report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuReport, HostReport};

    const MAX: usize = 64 * 1024;

    fn report(broker: i32) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            broker_id: broker,
            agent_version: "test".into(),
            timestamp_ms: 0,
            interval_seconds: 10.0,
            host: HostReport {
                cpu: Some(CpuReport {
                    cpus: 8,
                    utilization_ratio: 0.05,
                    iowait_ratio: 0.01,
                }),
                ..HostReport::default()
            },
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn an_encoded_report_decodes_to_itself_and_plain_json_too() {
        assert_eq!(
            decode(&encode(&report(3)), Some(CONTENT_ENCODING), MAX).unwrap(),
            report(3)
        );
        let json = serde_json::to_vec(&report(3)).unwrap();
        assert_eq!(decode(&json, None, MAX).unwrap().broker_id, 3);
    }

    #[test]
    fn figures_out_of_range_are_refused_naming_the_field() {
        let refuse = |edit: &dyn Fn(&mut Report)| {
            let mut r = report(3);
            r.host.disks = vec![crate::DiskReport {
                device: "sdb".into(),
                utilization_ratio: 0.5,
                reads_per_second: 1.0,
                writes_per_second: 1.0,
                read_bytes_per_second: 1e6,
                written_bytes_per_second: 1e6,
                read_await_seconds: 0.001,
                write_await_seconds: 0.001,
                queue_length: 0.5,
            }];
            edit(&mut r);
            decode(&serde_json::to_vec(&r).unwrap(), None, MAX).unwrap_err()
        };
        let r = refuse(&|r| r.host.disks[0].utilization_ratio = -0.5);
        assert_eq!((r.status, r.reason), (422, "out_of_range"));
        assert_eq!(
            r.message,
            "host.disks[0].utilization_ratio: -0.5 is out of range (0 to 1)"
        );
        let r = refuse(&|r| r.host.disks[0].read_bytes_per_second = 1e308);
        assert_eq!(
            r.message,
            "host.disks[0].read_bytes_per_second: 1e308 is out of range (0 to 1e15)"
        );
        let r = refuse(&|r| r.host.cpu.as_mut().unwrap().cpus = 0);
        assert!(
            r.message.starts_with("host.cpu.cpus: 0 is out of range"),
            "{}",
            r.message
        );
        let r = refuse(&|r| r.host.page_cache_hit_ratio_ebpf = Some(1.5));
        assert!(
            r.message.starts_with("host.page_cache_hit_ratio_ebpf: 1.5"),
            "{}",
            r.message
        );
        // Too many of a thing, and names too long.
        let r = refuse(&|r| r.host.disks = vec![r.host.disks[0].clone(); MAX_ITEMS + 1]);
        assert_eq!((r.status, r.reason), (422, "too_many_items"));
        assert_eq!(r.message, "host.disks: 257 items, at most 256");
        let r = refuse(&|r| r.host.disks[0].device = "d".repeat(300));
        assert_eq!((r.status, r.reason), (422, "too_many_items"));
        assert_eq!(r.message, "host.disks[0].device: 300 bytes, at most 255");
        // Topics: names bounded, counters never negative.
        let r = refuse(&|r| {
            r.host.broker_metrics = Some(crate::BrokerMetricsReport {
                topics: vec![crate::TopicTraffic {
                    topic: "orders".into(),
                    bytes_in_total: Some(-1.0),
                    ..Default::default()
                }],
                ..Default::default()
            })
        });
        assert_eq!(
            r.message,
            "host.broker_metrics.topics[0].bytes_in_total: -1 is out of range (0 to 1e20)"
        );
        let r = refuse(&|r| {
            r.host.broker_metrics = Some(crate::BrokerMetricsReport {
                topics: vec![crate::TopicTraffic::default(); limits::MAX_TOPICS + 1],
                ..Default::default()
            })
        });
        assert_eq!(
            r.message,
            "host.broker_metrics.topics: 100001 items, at most 100000"
        );
        // Within range: accepted.
        assert!(decode(&serde_json::to_vec(&report(3)).unwrap(), None, MAX).is_ok());
    }

    #[test]
    fn a_wrong_type_is_quoted_short() {
        let long = "A".repeat(15_000);
        let body = format!(
            "{{\"schema_version\":1,\"broker_id\":1,\"agent_version\":\"x\",\"timestamp_ms\":0,\"interval_seconds\":\"{long}\",\"host\":{{}}}}"
        );
        let r = decode(body.as_bytes(), None, MAX).unwrap_err();
        assert_eq!(r.reason, "malformed");
        assert!(r.message.len() < 400, "{} bytes", r.message.len());
    }

    #[test]
    fn content_encoding_is_case_insensitive() {
        let body = encode(&report(3));
        for encoding in ["gzip", "GZIP", "x-gzip", "X-Gzip"] {
            assert_eq!(
                decode(&body, Some(encoding), MAX).unwrap().broker_id,
                3,
                "{encoding}"
            );
        }
        let json = serde_json::to_vec(&report(3)).unwrap();
        assert!(decode(&json, Some("IDENTITY"), MAX).is_ok());
    }

    #[test]
    fn bad_bodies_are_refused_with_a_status_and_a_reason() {
        let json = serde_json::to_vec(&report(3)).unwrap();
        let refuse = |body: &[u8], encoding: Option<&str>| decode(body, encoding, MAX).unwrap_err();

        let r = refuse(b"{\"schema_version\": 1, \"broker_id\": ", None);
        assert_eq!((r.status, r.reason), (400, "malformed"));
        assert!(
            r.message.starts_with("the body is not a report"),
            "{}",
            r.message
        );

        let future = String::from_utf8(json.clone())
            .unwrap()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        let r = refuse(future.as_bytes(), None);
        assert_eq!((r.status, r.reason), (400, "unsupported_schema"));
        assert!(r
            .message
            .starts_with("schema_version 2 is not supported; this collector reads version 1"));

        let r = refuse(b"{\"schema_version\": 1, \"broker_id\": 1}", None);
        assert_eq!((r.status, r.reason), (400, "malformed"));
        assert!(r.message.contains("missing field"), "{}", r.message);

        let r = refuse(b"not gzip at all", Some("gzip"));
        assert_eq!((r.status, r.reason), (400, "bad_encoding"));
        let r = refuse(&json, Some("br"));
        assert_eq!((r.status, r.reason), (415, "bad_encoding"));

        let bomb = gzip(&vec![b' '; 1 << 20]);
        let r = refuse(&bomb, Some("gzip"));
        assert_eq!(
            (r.status, r.reason),
            (413, "too_large"),
            "a small body that inflates past the limit"
        );

        let negative = String::from_utf8(json)
            .unwrap()
            .replace("\"broker_id\":3", "\"broker_id\":-1");
        let r = refuse(negative.as_bytes(), None);
        assert_eq!((r.status, r.reason), (422, "invalid"));
    }
}
