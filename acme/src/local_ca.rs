//! vigie's local certificate authority, for `tls = "internal"` (like Caddy's internal issuer).
//!
//! The CA key and certificate are created once under `STATE/ca/` (key 0600) and reused, so a
//! browser or system trust store told to trust `root.pem` keeps trusting vigie across
//! restarts. Leaf certificates are issued in memory at load and reload, valid for 30 days
//! (a long-running process reissues them on reload; the CA itself is valid for 10 years).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use crate::pem::{certified_key, CertError};
use crate::store::{private_dir, write_atomic};

const CA_NAME: &str = "vigie local CA";

/// The local CA: its certificate (PEM) and signing key.
pub struct LocalCa {
    cert_pem: String,
    params: CertificateParams,
    key: KeyPair,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").field("dir", &self.dir).finish()
    }
}

fn gen_err(e: rcgen::Error) -> CertError {
    CertError::Generate(e.to_string())
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "vigie");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl LocalCa {
    /// The directory of the CA of `state_dir`: `state_dir/ca/`.
    pub fn dir_in(state_dir: &Path) -> PathBuf {
        state_dir.join("ca")
    }

    /// The directory this CA lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA in `state_dir/ca/` if there is one; reads only (`vigie check` uses this).
    /// A present but unreadable or corrupt CA is an error.
    pub fn load(state_dir: &Path) -> Result<Option<LocalCa>, CertError> {
        let dir = Self::dir_in(state_dir);
        let cert_path = dir.join("root.pem");
        let key_path = dir.join("root.key");
        if !cert_path.exists() && !key_path.exists() {
            return Ok(None);
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| CertError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        // Both must parse and belong together.
        certified_key(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            &cert_path.display().to_string(),
        )?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Key {
            what: key_path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Some(LocalCa {
            cert_pem,
            params: ca_params(),
            key,
            dir,
        }))
    }

    /// The CA in `state_dir/ca/`, created there if missing. A present but unreadable or
    /// corrupt CA is an error (never silently replaced: clients trust it).
    pub fn load_or_create(state_dir: &Path) -> Result<LocalCa, CertError> {
        if let Some(ca) = Self::load(state_dir)? {
            return Ok(ca);
        }
        let dir = Self::dir_in(state_dir);
        let cert_path = dir.join("root.pem");
        let key_path = dir.join("root.key");
        let params = ca_params();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut p = params.clone();
        let now = OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(3650);
        let cert = p.self_signed(&key).map_err(gen_err)?;
        let io = |path: &Path, source| CertError::Read {
            path: path.display().to_string(),
            source,
        };
        private_dir(&dir).map_err(|e| io(&dir, e))?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), true)
            .map_err(|e| io(&key_path, e))?;
        write_atomic(&cert_path, cert.pem().as_bytes(), false).map_err(|e| io(&cert_path, e))?;
        tracing::info!(path = %cert_path.display(), "created the local CA");
        Ok(LocalCa {
            cert_pem: cert.pem(),
            params,
            key,
            dir,
        })
    }

    /// The CA certificate in PEM, to be trusted by clients.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is stored.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("root.pem")
    }

    /// Issue a leaf certificate for `names` (DNS names, `*.` wildcards, IP addresses); returns
    /// the rustls identity and the chain in PEM.
    pub fn issue(&self, names: &[String]) -> Result<(Arc<CertifiedKey>, String), CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        for name in names {
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            let san = match bare.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into().map_err(gen_err)?),
            };
            params.subject_alt_names.push(san);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(30);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        let chain = format!("{}{}", cert.pem(), self.cert_pem);
        let ck = certified_key(
            chain.as_bytes(),
            key.serialize_pem().as_bytes(),
            "local CA leaf",
        )?;
        Ok((ck, chain))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalCa::load_or_create(dir.path()).unwrap();
        let b = LocalCa::load_or_create(dir.path()).unwrap();
        assert_eq!(a.cert_pem(), b.cert_pem());
        let (_, chain) = b
            .issue(&["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
            .unwrap();
        let leaf = crate::pem::certs_from_pem(chain.as_bytes(), "t").unwrap();
        let info = crate::pem::info(&leaf[0], "t").unwrap();
        assert_eq!(info.names, vec!["localhost", "127.0.0.1", "::1"]);
        assert!(info.issuer.contains(CA_NAME));
        std::fs::write(dir.path().join("ca/root.key"), "garbage").unwrap();
        let err = LocalCa::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no private key found"), "{err}");
    }
}
