//! When a certificate is due: the CA's ARI window when it has one, else the lifetime rule.

use std::time::{Duration, SystemTime};

use instant_acme::Account;

use crate::pem::CertInfo;

use super::*;

/// Renewal time by the lifetime rule: a third of the lifetime before expiry, minus up to
/// 1/30 of the lifetime of jitter (stable per serial, so restarts agree).
pub(super) fn lifetime_renewal(info: &CertInfo) -> SystemTime {
    let life = info.lifetime();
    let jitter_span = life / 30;
    let seed = info
        .serial
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let jitter = if jitter_span.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_millis(seed % (jitter_span.as_millis() as u64).max(1))
    };
    info.not_after - life / 3 - jitter
}

impl Manager {
    pub(super) async fn renewal_time(
        &self,
        account: &Account,
        leaf: &rustls::pki_types::CertificateDer<'static>,
        info: &CertInfo,
    ) -> SystemTime {
        let fallback = lifetime_renewal(info);
        let Ok(id) = instant_acme::CertificateIdentifier::try_from(leaf) else {
            return fallback;
        };
        match account.renewal_info(&id).await {
            Ok((ri, _)) => {
                let start: SystemTime = ri.suggested_window.start.into();
                let end: SystemTime = ri.suggested_window.end.into();
                let span = end.duration_since(start).unwrap_or_default();
                start + span.mul_f64(rand::random::<f64>())
            }
            Err(_) => fallback,
        }
    }
}
