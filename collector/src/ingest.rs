//! Report intake: checks a `POST /api/v1/reports` request and decodes its
//! report, or says why not. Pure: the HTTP handler only moves bytes here
//! and the verdict back out; a refused request never reaches the store.

use std::io::Read;

use brokerwatch_common::{Report, Secret, SCHEMA_VERSION};
use serde::Deserialize;

/// Why a report was refused: the HTTP status, a `reason` label for
/// `brokerwatch_collector_reports_rejected_total`, and a message for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The `reason` labels, so that each counter exists from the start.
pub const REASONS: [&str; 7] = [
    "unauthenticated",
    "forbidden",
    "too_large",
    "bad_encoding",
    "malformed",
    "unsupported_schema",
    "invalid",
];

pub struct Limits<'a> {
    /// Accepted bearer tokens; `None` when the collector accepts anyone.
    pub tokens: Option<&'a [Secret]>,
    pub max_decoded_bytes: usize,
}

/// Compares without an early exit, so the time taken says nothing of how
/// much of a token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

pub fn check_token(
    authorization: Option<&str>,
    tokens: Option<&[Secret]>,
) -> Result<(), Rejection> {
    let Some(tokens) = tokens else { return Ok(()) };
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Rejection::new(
                401,
                "unauthenticated",
                "no bearer token: send Authorization: Bearer TOKEN",
            )
        })?;
    // Checks every token, again so that timing does not tell which matched.
    let matched = tokens.iter().fold(false, |found, t| {
        found | same(t.expose().as_bytes(), presented.as_bytes())
    });
    if matched {
        Ok(())
    } else {
        Err(Rejection::new(
            403,
            "forbidden",
            "the bearer token is not one this collector accepts",
        ))
    }
}

#[derive(Deserialize)]
struct Envelope {
    schema_version: u32,
}

/// Decodes a body (gzip when `content_encoding` says so) into a report.
pub fn decode(
    body: &[u8],
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Report, Rejection> {
    let json = match content_encoding.map(str::trim) {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(limits.max_decoded_bytes as u64 + 1)
                .read_to_end(&mut decoded)
                .map_err(|e| {
                    Rejection::new(
                        400,
                        "bad_encoding",
                        format!("the gzip body does not decompress: {e}"),
                    )
                })?;
            if decoded.len() > limits.max_decoded_bytes {
                return Err(Rejection::new(
                    413,
                    "too_large",
                    format!(
                        "the report decompresses to more than {} bytes",
                        limits.max_decoded_bytes
                    ),
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
    use crate::store::tests::report;
    use std::io::Write;

    const LIMITS: Limits = Limits {
        tokens: None,
        max_decoded_bytes: 64 * 1024,
    };

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzipped_or_plain_report_decodes() {
        let json = serde_json::to_vec(&report(3, 1.0)).unwrap();
        assert_eq!(
            decode(&gzip(&json), Some("gzip"), &LIMITS).unwrap(),
            report(3, 1.0)
        );
        assert_eq!(decode(&json, None, &LIMITS).unwrap().broker_id, 3);
    }

    #[test]
    fn bad_bodies_are_refused_with_a_status_and_a_reason() {
        let json = serde_json::to_vec(&report(3, 1.0)).unwrap();
        let refuse =
            |body: &[u8], encoding: Option<&str>| decode(body, encoding, &LIMITS).unwrap_err();

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

    #[test]
    fn tokens_are_checked() {
        let tokens = [Secret::new("alpha"), Secret::new("beta")];
        assert_eq!(check_token(Some("Bearer beta"), Some(&tokens)), Ok(()));
        assert_eq!(check_token(None, None), Ok(()), "allow_unauthenticated");
        let r = check_token(None, Some(&tokens)).unwrap_err();
        assert_eq!((r.status, r.reason), (401, "unauthenticated"));
        let r = check_token(Some("Basic YWxwaGE="), Some(&tokens)).unwrap_err();
        assert_eq!(r.status, 401);
        let r = check_token(Some("Bearer alph"), Some(&tokens)).unwrap_err();
        assert_eq!((r.status, r.reason), (403, "forbidden"));
    }
}
