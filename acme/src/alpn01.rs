//! TLS-ALPN-01 (RFC 8737): the challenge certificate, and in a cluster, answering another
//! instance's challenge.
//!
//! The certificate is self-signed for the name being validated and carries, in a critical
//! acmeIdentifier extension, the SHA-256 digest of the key authorization. That digest is
//! all the CA checks, and anyone who connects with `acme-tls/1` sees it: it is not a secret.
//!
//! In a cluster the CA may connect to any instance. The instance that orders publishes, while
//! the challenge is open, only what the certificate proves: an [`Answer`] (the name and the
//! digest) under `{prefix}alpn01:{sni}` in Redis. An instance that gets an `acme-tls/1`
//! ClientHello for a name without a challenge of its own reads that answer before the
//! handshake goes on (see [`crate::CertResolver::fetch_challenge`]) and signs its own
//! challenge certificate with a throwaway key of its own. So no private key is ever moved
//! or stored, sealed or not, and an instance that starts in the middle of a challenge
//! answers it too.

use std::sync::Arc;

use base64::Engine;
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

/// What the ordering instance publishes for a TLS-ALPN-01 challenge it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The name the certificate must carry (a DNS name, or an IP address whose reverse
    /// name is the SNI).
    pub name: String,
    /// SHA-256 of the key authorization, base64url without padding.
    pub digest: String,
}

impl Answer {
    /// The answer for `name` and the raw `digest`.
    pub fn new(name: &str, digest: &[u8]) -> Answer {
        Answer {
            name: name.to_string(),
            digest: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        }
    }

    /// The raw digest; `None` when it is not 32 bytes of base64url.
    pub fn digest_bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.digest)
            .ok()
            .filter(|d| d.len() == 32)
    }
}

/// The challenge certificate for `name` proving `digest`, on a new key. rustls's
/// `CertifiedKey::from_der` rejects the critical acmeIdentifier extension, so the key is
/// built by hand.
pub fn challenge_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let err = |e: rcgen::Error| e.to_string();
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(err)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(err)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// Whether `sni` may be looked up in the shared store: a host name of letters, digits, `-`
/// and `.` (reverse names of IP addresses included), 253 characters at most.
pub fn valid_sni(sni: &str) -> bool {
    !sni.is_empty()
        && sni.len() <= 253
        && sni
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_names_are_checked() {
        let a = Answer::new("a.example", &[7; 32]);
        let json = serde_json::to_string(&a).unwrap();
        let back: Answer = serde_json::from_str(&json).unwrap();
        assert_eq!(back.digest_bytes().unwrap(), vec![7; 32]);
        assert!(Answer::new("a", &[1; 31]).digest_bytes().is_none());
        assert!(challenge_cert("a.example", &[7; 32]).is_ok());
        assert!(valid_sni("7.2.0.192.in-addr.arpa"));
        assert!(!valid_sni("a b"));
        assert!(!valid_sni("a:b"));
        assert!(!valid_sni(""));
    }
}
