//! Challenge material: the TLS-ALPN-01 certificate, the DNS-01 hook, and cleaning up after
//! an order whatever its outcome.

use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use vigie_config::Acme;

use super::*;

/// Challenge material to remove once an order is over, whatever its outcome.
#[derive(Default)]
pub(super) struct Cleanup {
    pub(super) tokens: Vec<String>,
    pub(super) alpn: Vec<String>,
    pub(super) dns: Vec<(String, String)>,
}

impl Cleanup {
    pub(super) async fn run(self, m: &Manager, acme: &Acme) {
        for t in self.tokens {
            m.tokens.set(&t, None);
            m.store.publish_http01(&t, None).await;
        }
        for n in self.alpn {
            m.resolver.set_challenge(&n, None);
        }
        for (record, value) in self.dns {
            if let Err(e) = run_hook(acme, "cleanup", &record, &value).await {
                tracing::warn!(record = %record, error = %e, "DNS-01 cleanup hook failed");
            }
        }
    }
}

/// The TLS-ALPN-01 certificate (RFC 8737): self-signed for `name`, with the critical
/// acmeIdentifier extension holding the SHA-256 of the key authorization. rustls's
/// `CertifiedKey::from_der` rejects that critical extension, so the key is built by hand.
pub(super) fn alpn_challenge_cert(
    name: &str,
    digest: &[u8],
) -> Result<Arc<CertifiedKey>, AcmeError> {
    let err = |e: rcgen::Error| AcmeError::Challenge(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(err)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(err)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| AcmeError::Challenge(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// Run the DNS-01 hook as `HOOK present|cleanup RECORD VALUE` (60 s at most).
pub(super) async fn run_hook(
    acme: &Acme,
    action: &str,
    record: &str,
    value: &str,
) -> Result<(), AcmeError> {
    let Some(hook) = &acme.dns_hook else {
        return Err(AcmeError::Challenge("DNS-01 needs [acme] dns_hook".into()));
    };
    let run = tokio::process::Command::new(hook)
        .args([action, record, value])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| {
            AcmeError::Challenge(format!("{} {action} timed out after 60s", hook.display()))
        })?
        .map_err(|e| AcmeError::Challenge(format!("cannot run {}: {e}", hook.display())))?;
    if !out.status.success() {
        return Err(AcmeError::Challenge(format!(
            "{} {action} {record} failed ({}): {}",
            hook.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
