//! Challenge material: the DNS-01 hook, and cleaning up after an order whatever its outcome
//! (the TLS-ALPN-01 certificate is [`crate::alpn01`]'s).

use std::time::Duration;

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
            m.store.publish_alpn01(&n, None).await;
        }
        for (record, value) in self.dns {
            if let Err(e) = run_hook(acme, "cleanup", &record, &value).await {
                tracing::warn!(record = %record, error = %e, "DNS-01 cleanup hook failed");
            }
        }
    }
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
