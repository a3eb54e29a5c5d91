//! The one wire codec of reports: an agent encodes (JSON, gzipped), the
//! collector decodes and checks, and the demo and the tests post the same
//! bytes. Decoding says why a body is refused: an HTTP status, a `reason`
//! label for the collector's rejection counter, and a one-line message for
//! the agent.

use std::io::{Read, Write};

use crate::{Report, SCHEMA_VERSION};

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
pub const REASONS: [&str; 7] = [
    "unauthenticated",
    "forbidden",
    "too_large",
    "bad_encoding",
    "malformed",
    "unsupported_schema",
    "invalid",
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
    let json = match content_encoding.map(str::trim) {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip") => {
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
        Some(other) => {
            return Err(Rejection::new(
                415,
                "bad_encoding",
                format!("Content-Encoding {other:?} is not supported; send gzip or identity"),
            ))
        }
    };
    let envelope: Envelope = serde_json::from_slice(&json).map_err(|e| {
        Rejection::new(
            400,
            "malformed",
            format!("the body is not a report (JSON with schema_version): {e}"),
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
            format!("the report does not match schema version {SCHEMA_VERSION}: {e}"),
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
