//! How both daemons serve HTTP: plain, or behind TLS (optionally requiring
//! client certificates) and basic auth, configured by a `web-config` file in
//! the format Prometheus exporters use (exporter-toolkit's
//! `tls_server_config` and `basic_auth_users` with bcrypt hashes), so that
//! operators reuse what they already wrote for node_exporter.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

mod limit;

/// How long in-flight requests may take to finish once shutdown begins.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, counted from when
/// the connection is ready for one: a connection idle (or slow) longer is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Wrong credentials remembered, so that the same wrong header costs no
/// second bcrypt.
const REJECTED_CACHE: usize = 256;
/// Credentials already checked: bcrypt is slow by design, and a scraper sends
/// the same header every time.
const VERIFIED_CACHE: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
}

/// A daemon's listener settings from its web-config file (none: plain HTTP,
/// open to whoever can reach the address).
#[derive(Clone, Default)]
pub struct WebConfig {
    tls: Option<Arc<ServerConfig>>,
    basic_auth: Arc<BasicAuth>,
}

#[derive(Default)]
struct BasicAuth {
    /// user -> bcrypt hash
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<String>>,
    rejected: Mutex<HashSet<String>>,
    /// One bcrypt at a time.
    checking: Mutex<()>,
}

impl std::fmt::Debug for WebConfig {
    // Never the hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("basic_auth_users", &self.basic_auth.users.len())
            .finish()
    }
}

impl WebConfig {
    /// Reads a web-config file; `key` names the config key in errors.
    pub fn load(path: &Path, key: &str) -> Result<WebConfig, String> {
        let fail = |problem: String| format!("{key}: {}: {problem}", path.display());
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it ({e})")))?;
        let file: WebConfigFile =
            serde_norway::from_str(&text).map_err(|e| fail(crate::one_line(&e.to_string())))?;
        for (user, hash) in &file.basic_auth_users {
            if bcrypt::verify("", hash).is_err() {
                return Err(fail(format!(
                    "basic_auth_users.{user}: not a bcrypt hash; make one with htpasswd -nBC 10 {user}"
                )));
            }
        }
        let tls = file
            .tls_server_config
            .map(|tls| server_config(&tls).map_err(fail))
            .transpose()?;
        Ok(WebConfig {
            tls: tls.map(Arc::new),
            basic_auth: Arc::new(BasicAuth {
                users: file.basic_auth_users,
                ..BasicAuth::default()
            }),
        })
    }

    /// [`WebConfig::load`] when a file is configured, plain HTTP otherwise;
    /// `origin` (the daemon's config file) prefixes an error.
    pub fn load_configured(path: Option<&Path>, origin: &str) -> Result<WebConfig, String> {
        path.map_or_else(
            || Ok(WebConfig::default()),
            |path| WebConfig::load(path, "web_config_file").map_err(|e| format!("{origin}: {e}")),
        )
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Puts `router`'s routes behind basic auth when users are configured.
    pub fn with_basic_auth<S: Clone + Send + Sync + 'static>(
        &self,
        router: Router<S>,
    ) -> Router<S> {
        if self.basic_auth.users.is_empty() {
            return router;
        }
        router.layer(axum::middleware::from_fn_with_state(
            self.basic_auth.clone(),
            check_basic_auth,
        ))
    }

    /// Serves `router` on `listener` until `shutdown` completes, then lets
    /// in-flight requests finish (up to 10 s).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = listener.into_std()?;
        let handle = axum_server::Handle::new();
        let stopping = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        });
        let service = router.into_make_service();
        let limit = limit::connection_limit();
        // HTTP/1 only: no protocol sniffing before the header-read timeout
        // starts, so a connection that sends nothing is cut like a slow one.
        let configure = |builder: &mut hyper_util::server::conn::auto::Builder<_>| {
            *builder = builder.clone().http1_only();
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
        };
        match &self.tls {
            Some(config) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_config(config.clone());
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                    .handshake_timeout(HEADER_READ_TIMEOUT)
                    .acceptor(limit::Limited::new(
                        axum_server::accept::DefaultAcceptor,
                        limit,
                    ));
                let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
                configure(server.http_builder());
                server.handle(handle).serve(service).await
            }
            None => {
                let mut server = axum_server::from_tcp(listener).acceptor(limit::Limited::new(
                    axum_server::accept::DefaultAcceptor,
                    limit,
                ));
                configure(server.http_builder());
                server.handle(handle).serve(service).await
            }
        }
    }
}

fn server_config(tls: &TlsServerConfig) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certificates(&tls.cert_file, "tls_server_config.cert_file")?;
    let key = {
        let mut reader =
            std::io::BufReader::new(std::fs::File::open(&tls.key_file).map_err(|e| {
                format!(
                    "tls_server_config.key_file: cannot read {} ({e})",
                    tls.key_file.display()
                )
            })?);
        rustls_pemfile::private_key(&mut reader)
            .map_err(|e| {
                format!(
                    "tls_server_config.key_file: {}: {e}",
                    tls.key_file.display()
                )
            })?
            .ok_or_else(|| {
                format!(
                    "tls_server_config.key_file: {} holds no PEM private key",
                    tls.key_file.display()
                )
            })?
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let auth_type = tls.client_auth_type.as_deref();
    let builder = match (&tls.client_ca_file, auth_type) {
        (None, None | Some("NoClientCert")) => builder.with_no_client_auth(),
        (Some(_), Some("NoClientCert")) => builder.with_no_client_auth(),
        (Some(ca), None | Some("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca, "tls_server_config.client_ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_server_config.client_ca_file: {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth_type == Some("VerifyClientCertIfGiven") {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?,
            )
        }
        (None, Some(other)) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other:?} needs client_ca_file"
            ))
        }
        (Some(_), Some(other)) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ))
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!("tls_server_config: the certificate and key do not go together ({e})")
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certificates(
    path: &Path,
    key: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("{key}: cannot read {} ({e})", path.display()))?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key}: {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key}: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

async fn check_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(header) = given {
        // bcrypt is slow by design: on a blocking thread, one at a time,
        // so wrong passwords cost one core at most, never the async workers.
        let checking = auth.clone();
        let accepted = tokio::task::spawn_blocking(move || checking.accepts(&header))
            .await
            .unwrap_or(false);
        if accepted {
            return next.run(request).await;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"brokerwatch\"")],
        "basic auth required\n",
    )
        .into_response()
}

impl BasicAuth {
    fn accepts(&self, header: &str) -> bool {
        let lock = |set: &Mutex<HashSet<String>>| {
            set.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(header)
        };
        if lock(&self.verified) {
            return true;
        }
        if lock(&self.rejected) {
            return false;
        }
        let Some(decoded) = header
            .strip_prefix("Basic ")
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        let ok = {
            let _one_at_a_time = self.checking.lock().unwrap_or_else(PoisonError::into_inner);
            self.users
                .get(user)
                .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
        };
        let (cache, bound) = if ok {
            (&self.verified, VERIFIED_CACHE)
        } else {
            (&self.rejected, REJECTED_CACHE)
        };
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= bound {
            cache.clear();
        }
        cache.insert(header.to_owned());
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        BasicAuth {
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), bcrypt::hash(p, 4).unwrap()))
                .collect(),
            ..BasicAuth::default()
        }
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn basic_auth_accepts_only_a_configured_user_with_the_right_password() {
        let auth = auth(&[("prometheus", "scrape-me")]);
        assert!(auth.accepts(&basic("prometheus", "scrape-me")));
        assert!(auth.accepts(&basic("prometheus", "scrape-me")), "cached");
        assert!(!auth.accepts(&basic("prometheus", "wrong")));
        assert!(
            !auth.accepts(&basic("prometheus", "wrong")),
            "remembered as wrong"
        );
        assert!(!auth.accepts(&basic("grafana", "scrape-me")));
        assert!(!auth.accepts("Bearer scrape-me"));
        assert!(!auth.accepts("Basic !!!not-base64"));
        assert!(!auth.accepts(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("no-colon")
        )));
    }

    #[test]
    fn bad_web_configs_get_one_line_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cases = [
            ("tls_server_config: [", "web_config_file: "),
            ("tls_sever_config: {}", "unknown field `tls_sever_config`"),
            (
                "basic_auth_users:\n  prometheus: plaintext",
                "basic_auth_users.prometheus: not a bcrypt hash",
            ),
            (
                "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key",
                "tls_server_config.cert_file: cannot read /nonexistent.crt",
            ),
        ];
        for (text, expected) in cases {
            let path = write("web.yml", text);
            let error = WebConfig::load(&path, "web_config_file").unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
        let missing =
            WebConfig::load(Path::new("/nonexistent/web.yml"), "web_config_file").unwrap_err();
        assert!(
            missing.starts_with("web_config_file: /nonexistent/web.yml: cannot read it"),
            "{missing}"
        );
    }
}
