//! SASL over the Kafka protocol (SaslHandshake v1, then SaslAuthenticate):
//! PLAIN, and SCRAM-SHA-256/512 as RFC 5802 and RFC 7677 describe it.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

use super::security::{Mechanism, Sasl};
use super::{failed, Connection, WireError};

pub(super) fn authenticate(connection: &mut Connection, sasl: &Sasl) -> Result<(), WireError> {
    let address = connection.address.clone();
    let mechanism = sasl.mechanism.name();
    let handshake = connection.send(
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )?;
    if handshake.error_code != 0 {
        let offered: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(failed(format!(
            "{address}: SASL {mechanism} is not enabled on this listener (it offers {}); set sasl.mechanism to one of them",
            offered.join(", ")
        )));
    }
    let step = |connection: &mut Connection, bytes: Vec<u8>| {
        let answer = connection
            .send(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)))?;
        if answer.error_code != 0 {
            return Err(failed(format!(
                "{address}: SASL {mechanism} authentication failed for {:?}: {}; check sasl.username and sasl.password",
                sasl.username,
                answer.error_message.as_deref().unwrap_or("refused")
            )));
        }
        Ok(answer.auth_bytes.to_vec())
    };
    match sasl.mechanism {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", sasl.username, sasl.password.expose());
            step(connection, token.into_bytes()).map(drop)
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let mut scram = Scram::new(sasl, nonce()?);
            let server_first = step(connection, scram.client_first())?;
            let client_final = scram
                .client_final(&server_first)
                .map_err(|e| failed(format!("{address}: SASL {mechanism}: {e}")))?;
            let server_final = step(connection, client_final)?;
            scram
                .verify_server(&server_final)
                .map_err(|e| failed(format!("{address}: SASL {mechanism}: {e}")))
        }
    }
}

fn nonce() -> Result<String, WireError> {
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| failed("SASL: no random numbers for a nonce"))?;
    Ok(STANDARD.encode(bytes))
}

/// One SCRAM exchange, from the client's side.
pub(super) struct Scram {
    sha512: bool,
    username: String,
    password: String,
    nonce: String,
    auth_message: String,
    server_key: Vec<u8>,
}

impl Scram {
    pub(super) fn new(sasl: &Sasl, nonce: String) -> Scram {
        Scram {
            sha512: sasl.mechanism == Mechanism::ScramSha512,
            username: sasl.username.replace('=', "=3D").replace(',', "=2C"),
            password: sasl.password.expose().to_owned(),
            nonce,
            auth_message: String::new(),
            server_key: Vec::new(),
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.nonce)
    }

    pub(super) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    fn hmac(&self, key: &[u8], message: &[u8]) -> Vec<u8> {
        let algorithm = if self.sha512 {
            hmac::HMAC_SHA512
        } else {
            hmac::HMAC_SHA256
        };
        hmac::sign(&hmac::Key::new(algorithm, key), message)
            .as_ref()
            .to_vec()
    }

    /// The proof, from the server's salt, iterations and nonce.
    pub(super) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "the server's first message is not text")?;
        let field = |name: char| {
            text.split(',')
                .find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')))
        };
        let nonce = field('r').ok_or("the server's first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = STANDARD
            .decode(field('s').ok_or("the server's first message has no salt")?)
            .map_err(|_| "the server's salt is not base64")?;
        let iterations: u32 = field('i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=1_000_000).contains(i))
            .ok_or("the server's iteration count is missing or absurd")?;
        let (algorithm, digest_algorithm, length) = if self.sha512 {
            (pbkdf2::PBKDF2_HMAC_SHA512, &digest::SHA512, 64)
        } else {
            (pbkdf2::PBKDF2_HMAC_SHA256, &digest::SHA256, 32)
        };
        let mut salted = vec![0u8; length];
        pbkdf2::derive(
            algorithm,
            NonZeroU32::new(iterations).expect("checked above"),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = digest::digest(digest_algorithm, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!("{},{text},{without_proof}", self.client_first_bare());
        let signature = self.hmac(stored_key.as_ref(), self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.server_key = self.hmac(&salted, b"Server Key");
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// That the server knows the password too.
    pub(super) fn verify_server(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "the server's last message is not text")?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {error}"));
        }
        let expected = STANDARD.encode(self.hmac(&self.server_key, self.auth_message.as_bytes()));
        match text.strip_prefix("v=") {
            Some(v) if v == expected => Ok(()),
            _ => {
                Err("the server's signature is wrong: it does not know this user's password".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerwatch_common::Secret;

    /// RFC 7677's SCRAM-SHA-256 example, exchange for exchange.
    #[test]
    fn scram_sha_256_gives_rfc_7677s_proof_and_checks_its_server_signature() {
        let sasl = Sasl {
            mechanism: Mechanism::ScramSha256,
            username: "user".into(),
            password: Secret::new("pencil"),
        };
        let mut scram = Scram::new(&sasl, "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = scram.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            scram.verify_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert!(scram
            .verify_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(scram
            .verify_server(b"e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
    }

    #[test]
    fn a_server_nonce_that_does_not_extend_ours_is_refused() {
        let sasl = Sasl {
            mechanism: Mechanism::ScramSha512,
            username: "a,b=c".into(),
            password: Secret::new("x"),
        };
        let mut scram = Scram::new(&sasl, "abc".into());
        assert_eq!(scram.client_first(), b"n,,n=a=2Cb=3Dc,r=abc");
        assert!(scram.client_final(b"r=xyz123,s=AAAA,i=4096").is_err());
        assert!(scram.client_final(b"r=abc,s=AAAA,i=4096").is_err());
        assert!(scram.client_final(b"r=abcdef,s=AAAA,i=0").is_err());
        assert!(scram.client_final(b"r=abcdef,s=AAAA,i=4096").is_ok());
    }
}
