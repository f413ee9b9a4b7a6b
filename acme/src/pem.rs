//! Certificate chains and keys in PEM: loading them into rustls and reading their dates.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No certificate in the PEM data.
    #[error("{what}: no certificate found (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCertificate {
        /// What was being read.
        what: String,
    },
    /// No private key in the PEM data.
    #[error("{what}: no private key found (expected a PEM PKCS#8, PKCS#1 or SEC1 key)")]
    NoKey {
        /// What was being read.
        what: String,
    },
    /// The PEM data is malformed.
    #[error("{what}: invalid PEM: {reason}")]
    Pem {
        /// What was being read.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The key is of an unsupported type or does not match the certificate.
    #[error("{what}: unusable key: {reason}")]
    Key {
        /// What was being read.
        what: String,
        /// Why.
        reason: String,
    },
    /// The certificate could not be parsed.
    #[error("{what}: invalid certificate: {reason}")]
    X509 {
        /// What was being read.
        what: String,
        /// Why.
        reason: String,
    },
    /// A certificate could not be generated.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// Facts about a certificate, for listings, metrics and renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names and IP addresses it covers.
    pub names: Vec<String>,
    /// Issuer, as a distinguished name string.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl CertInfo {
    /// Total validity period.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }
}

/// Parse the certificates of a PEM chain, leaf first.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let mut reader = pem;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut reader).collect();
    let certs = certs.map_err(|e| CertError::Pem {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            what: what.to_string(),
        });
    }
    Ok(certs)
}

/// Parse the first private key in PEM data.
pub fn key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, CertError> {
    let mut reader = pem;
    rustls_pemfile::private_key(&mut reader)
        .map_err(|e| CertError::Pem {
            what: what.to_string(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| CertError::NoKey {
            what: what.to_string(),
        })
}

/// A rustls signing identity from a PEM chain and key; checks that they belong together.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<Arc<CertifiedKey>, CertError> {
    let certs = certs_from_pem(cert_pem, what)?;
    let key = key_from_pem(key_pem, what)?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).map_err(|e| CertError::Key {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(ck))
}

/// Load a chain and key from files.
pub fn load_files(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| CertError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let what = cert.display().to_string();
    certified_key(&read(cert)?, &read(key)?, &what)
}

fn asn1_time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// Read the facts of a DER certificate.
pub fn info(der: &[u8], what: &str) -> Result<CertInfo, CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::X509 {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    let a: [u8; 4] = [b[0], b[1], b[2], b[3]];
                    names.push(std::net::IpAddr::from(a).to_string());
                }
                GeneralName::IPAddress(b) if b.len() == 16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    names.push(std::net::IpAddr::from(a).to_string());
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        names,
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: asn1_time(cert.validity().not_before),
        not_after: asn1_time(cert.validity().not_after),
    })
}
