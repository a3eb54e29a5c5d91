//! `[kafka.properties]`'s security settings, as librdkafka reads them,
//! honoured by the Kafka-protocol client: TLS with rustls, SASL PLAIN and
//! SCRAM. What it cannot honour is an error naming the setting.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::Arc;

use brokerwatch_common::Secret;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::{failed, WireError};

/// The SASL mechanisms this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Clone)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Secret,
}

/// How to reach the brokers.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<Sasl>,
}

fn unsupported(key: &str, value: &str) -> String {
    format!("kafka.properties: {key} = {value:?} is not supported by brokerwatch's own Kafka-protocol client; the quorum, reassignment and log-dir checks and the probe's leader elections are off")
}

impl Security {
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<Security, String> {
        let get = |key: &str| properties.get(key).map(String::as_str);
        let protocol = get("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => return Err(unsupported("security.protocol", other)),
        };
        for key in [
            "ssl.key.password",
            "ssl.keystore.location",
            "ssl.ca.pem",
            "ssl.certificate.pem",
            "ssl.key.pem",
            "ssl.engine.location",
        ] {
            if let Some(value) = get(key).filter(|_| tls) {
                return Err(unsupported(
                    key,
                    if key.contains("pass") { "***" } else { value },
                ));
            }
        }
        let tls = tls.then(|| tls_config(&get)).transpose()?;
        let sasl = if sasl {
            let mechanism = get("sasl.mechanism")
                .or(get("sasl.mechanisms"))
                .unwrap_or("GSSAPI");
            let mechanism = match mechanism.to_ascii_uppercase().as_str() {
                "PLAIN" => Mechanism::Plain,
                "SCRAM-SHA-256" => Mechanism::ScramSha256,
                "SCRAM-SHA-512" => Mechanism::ScramSha512,
                _ => return Err(unsupported("sasl.mechanism", mechanism)),
            };
            let username = get("sasl.username").ok_or_else(|| {
                "kafka.properties: sasl.username is not set, and SASL needs it".to_owned()
            })?;
            let password = get("sasl.password").ok_or_else(|| {
                "kafka.properties: sasl.password is not set, and SASL needs it".to_owned()
            })?;
            Some(Sasl {
                mechanism,
                username: username.to_owned(),
                password: Secret::new(password.to_owned()),
            })
        } else {
            None
        };
        Ok(Security { tls, sasl })
    }
}

fn tls_config<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match get("ssl.ca.location") {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                format!("kafka.properties: ssl.ca.location: cannot read {path}: {e}")
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    format!(
                        "kafka.properties: ssl.ca.location: {path} is not PEM certificates: {e}"
                    )
                })?;
                roots
                    .add(cert)
                    .map_err(|e| format!("kafka.properties: ssl.ca.location: {path}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "kafka.properties: ssl.ca.location: {path} holds no certificate"
                ));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("kafka.properties: ssl.ca.location: {e}"))?;
    // librdkafka checks the broker's name unless told "none".
    let check_name = !get("ssl.endpoint.identification.algorithm")
        .is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("kafka: TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            inner: verifier,
            check_name,
        }));
    let config = match (get("ssl.certificate.location"), get("ssl.key.location")) {
        (Some(cert), Some(key)) => {
            let read = |name: &str, path: &str| {
                std::fs::read(path)
                    .map_err(|e| format!("kafka.properties: {name}: cannot read {path}: {e}"))
            };
            let chain = rustls_pemfile::certs(&mut read("ssl.certificate.location", cert)?.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("kafka.properties: ssl.certificate.location: {cert}: {e}"))?;
            let key = rustls_pemfile::private_key(&mut read("ssl.key.location", key)?.as_slice())
                .map_err(|e| format!("kafka.properties: ssl.key.location: {key}: {e}"))?
                .ok_or_else(|| format!("kafka.properties: ssl.key.location: {key} holds no private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("kafka.properties: ssl.certificate.location: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err("kafka.properties: ssl.certificate.location and ssl.key.location go together; set both or neither".into())
        }
    };
    Ok(Arc::new(config))
}

/// The usual chain check; the name check only when librdkafka would make it.
#[derive(Debug)]
struct Verifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS session over `tcp`, handshaken now so that a refusal names the broker.
pub(super) fn wrap(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
    address: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, WireError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| failed(format!("{address}: not a TLS server name: {e}")))?;
    let connection = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| failed(format!("{address}: TLS: {e}")))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| failed(format!("{address}: TLS handshake failed: {e}")))?;
    }
    Ok(stream)
}
