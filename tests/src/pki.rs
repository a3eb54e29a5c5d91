//! A throwaway certificate authority for the TLS tests.

use std::path::Path;
use std::time::Duration;

/// A test PKI written into a directory: a CA, a server certificate for
/// 127.0.0.1 and localhost, a client certificate the CA signed, and a client
/// certificate from another CA that nobody trusts. Paths as strings, for configs.
pub struct TestPki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    pub rogue_cert: String,
    pub rogue_key: String,
}

impl TestPki {
    pub fn create(dir: &Path) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path.to_str().expect("UTF-8 path").to_owned()
        };
        let authority = |name: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("CA");
            (cert, key)
        };
        let (ca_cert, ca_key) = authority("brokerwatch test CA");
        let (rogue_ca, rogue_ca_key) = authority("someone else's CA");
        let leaf = |names: &[&str], signer: &rcgen::Certificate, signer_key: &KeyPair| {
            let key = KeyPair::generate().expect("key");
            let params =
                CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                    .expect("params");
            let cert = params.signed_by(&key, signer, signer_key).expect("leaf");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], &ca_cert, &ca_key);
        let (client_cert, client_key) = leaf(&["agent-1.example"], &ca_cert, &ca_key);
        let (rogue_cert, rogue_key) = leaf(&["intruder.example"], &rogue_ca, &rogue_ca_key);
        TestPki {
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server_cert),
            server_key: write("server.key", server_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client.key", client_key),
            rogue_cert: write("rogue.pem", rogue_cert),
            rogue_key: write("rogue.key", rogue_key),
        }
    }

    /// A blocking client trusting the test CA, presenting `identity` (cert, key) if any.
    pub fn client(&self, identity: Option<(&str, &str)>) -> reqwest::blocking::Client {
        let ca = std::fs::read(&self.ca).expect("CA");
        let mut builder = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(10))
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"));
        if let Some((cert, key)) = identity {
            let mut pem = std::fs::read(cert).expect("cert");
            pem.extend(std::fs::read(key).expect("key"));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        builder.build().expect("client")
    }
}
