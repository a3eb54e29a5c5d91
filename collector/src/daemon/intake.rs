//! Report intake: `POST /api/v1/reports` checks the agent's token and
//! decodes its report (the shared codec), then files it in the store under
//! the store's own lock, held only for the insert. A refused report never
//! touches the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brokerwatch_common::codec::{self, Rejection};
use brokerwatch_common::Secret;
use tracing::warn;

use super::Shared;
use crate::clock::unix_now;
use crate::store::Store;

/// What the agents said: the store, and when each last reported (kept
/// across restarts, so that an agent silent before one is still down after).
pub struct Received {
    pub store: Store,
    pub last_report: BTreeMap<i32, f64>,
}

pub struct Intake(Mutex<Received>);

impl Intake {
    pub fn new(store: Store, last_report: BTreeMap<i32, f64>) -> Self {
        Intake(Mutex::new(Received { store, last_report }))
    }

    pub fn lock(&self) -> MutexGuard<'_, Received> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Compares without an early exit, so the time taken says nothing of how
/// much of a token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The bearer token of `authorization` against `tokens` (`None`: anyone).
pub fn check_token(
    authorization: Option<&str>,
    tokens: Option<&[Secret]>,
) -> Result<(), Rejection> {
    let Some(tokens) = tokens else { return Ok(()) };
    let presented = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
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

fn reject(shared: &Shared, rejection: Rejection) -> Response {
    shared
        .metrics
        .reports_rejected
        .with_label_values(&[rejection.reason])
        .inc();
    warn!(
        reason = rejection.reason,
        status = rejection.status,
        "report refused: {}",
        rejection.message
    );
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("{}\n", rejection.message)).into_response()
}

pub async fn receive_report(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response {
    let config = &shared.config;
    let headers = request.headers();
    let tokens = (!config.allow_unauthenticated).then_some(config.tokens.as_slice());
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(rejection) = check_token(authorization, tokens) {
        return reject(&shared, rejection);
    }
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(request.into_body(), config.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            let message = format!(
                "the body is over max_body_bytes ({} bytes)",
                config.max_body_bytes
            );
            return reject(&shared, Rejection::new(413, "too_large", message));
        }
    };
    match codec::decode(&body, encoding.as_deref(), config.max_decoded_bytes) {
        Ok(report) => {
            let now = unix_now();
            let mut received = shared.intake.lock();
            let known = received.last_report.contains_key(&report.broker_id);
            if !known && received.last_report.len() >= config.max_brokers {
                drop(received);
                let message = format!(
                    "broker {} would be one more than ingest.max_brokers ({})",
                    report.broker_id, config.max_brokers
                );
                return reject(&shared, Rejection::new(422, "too_many_brokers", message));
            }
            received.last_report.insert(report.broker_id, now);
            received.store.insert(report, now);
            drop(received);
            shared.metrics.reports_received.inc();
            StatusCode::ACCEPTED.into_response()
        }
        Err(rejection) => reject(&shared, rejection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The scheme is case-insensitive (RFC 9110 11.1).
        assert_eq!(check_token(Some("bearer beta"), Some(&tokens)), Ok(()));
        assert_eq!(check_token(Some("BEARER beta"), Some(&tokens)), Ok(()));
    }
}
