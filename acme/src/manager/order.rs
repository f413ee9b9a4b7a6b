//! One order: new order, challenges answered, finalize, chain checked and stored.

use std::time::Duration;

use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use vigie_config::{Acme, ChallengeKind};

use crate::pem::{certified_key, certs_from_pem, info, CertInfo};
use crate::store::{private_dir, write_atomic};

use super::*;

impl Manager {
    /// Order a certificate for `names` from `acme`'s directory (typically a staging one)
    /// with the running listeners answering the challenges, without storing or serving it.
    /// Returns the facts of the certificate the CA issued.
    pub async fn dry_run(&self, acme: &Acme, names: &[String]) -> Result<CertInfo, AcmeError> {
        let mut state = self.state.lock().await;
        let previous = state.account.take();
        let result = self.order(&mut state, acme, names, false).await;
        // The dry run's account stays on disk for next time; the cached one is restored.
        state.account = previous;
        result.map(|m| m.info)
    }

    pub(super) async fn order(
        &self,
        state: &mut State,
        acme: &Acme,
        names: &[String],
        store: bool,
    ) -> Result<Managed, AcmeError> {
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let account = self.account(state, acme).await?;
        let (account, mut order) = match account.new_order(&NewOrder::new(&ids)).await {
            Ok(order) => (account, order),
            Err(instant_acme::Error::Api(p))
                if p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
            {
                // The CA no longer knows the account (deactivated, or a test CA restarted):
                // set the credentials aside and register again, once.
                tracing::warn!(
                    "the ACME server does not know the stored account: registering a new one"
                );
                state.account = None;
                self.set_aside_account(acme);
                let account = self.account(state, acme).await?;
                let order = account.new_order(&NewOrder::new(&ids)).await?;
                (account, order)
            }
            Err(e) => return Err(e.into()),
        };
        let mut cleanup = Cleanup::default();
        let result = self
            .validate_and_finalize(&mut order, acme, &mut cleanup)
            .await;
        cleanup.run(self, acme).await;
        let (chain, key) = result?;
        let ck = certified_key(chain.as_bytes(), key.as_bytes(), "issued certificate")?;
        let leaf = certs_from_pem(chain.as_bytes(), "issued certificate")?;
        let info = info(&leaf[0], "issued certificate")?;
        let renew_at = self.renewal_time(&account, &leaf[0], &info).await;
        if !store {
            return Ok(Managed { ck, info, renew_at });
        }
        let dir = self.cert_dir(names);
        private_dir(&dir).map_err(|e| AcmeError::Storage(format!("{}: {e}", dir.display())))?;
        write_atomic(&dir.join("key.pem"), key.as_bytes(), true)
            .and_then(|_| write_atomic(&dir.join("cert.pem"), chain.as_bytes(), false))
            .map_err(|e| AcmeError::Storage(format!("{}: {e}", dir.display())))?;
        Ok(Managed { ck, info, renew_at })
    }

    pub(super) async fn validate_and_finalize(
        &self,
        order: &mut instant_acme::Order,
        acme: &Acme,
        cleanup: &mut Cleanup,
    ) -> Result<(String, String), AcmeError> {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(AcmeError::Order(format!("authorization is {other:?}"))),
            }
            let name = authz.identifier().to_string();
            let kind = if name.starts_with("*.") {
                ChallengeKind::Dns01
            } else {
                acme.challenge
            };
            let ty = match kind {
                ChallengeKind::Http01 => ChallengeType::Http01,
                ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
                ChallengeKind::Dns01 => ChallengeType::Dns01,
            };
            let mut challenge = authz.challenge(ty.clone()).ok_or_else(|| {
                AcmeError::Challenge(format!("the CA offers no {ty:?} challenge for {name}"))
            })?;
            let key_auth = challenge.key_authorization();
            tracing::info!(name = %name, challenge = ?ty, "answering the ACME challenge");
            match kind {
                ChallengeKind::Http01 => {
                    let token = challenge.token.clone();
                    self.tokens.set(&token, Some(key_auth.as_str().to_string()));
                    cleanup.tokens.push(token);
                }
                ChallengeKind::TlsAlpn01 => {
                    let bare = name.trim_start_matches("*.").to_string();
                    let ck = alpn_challenge_cert(&bare, key_auth.digest().as_ref())?;
                    self.resolver.set_challenge(&bare, Some(ck));
                    cleanup.alpn.push(bare);
                }
                ChallengeKind::Dns01 => {
                    let record = format!("_acme-challenge.{}", name.trim_start_matches("*."));
                    let value = key_auth.dns_value();
                    run_hook(acme, "present", &record, &value).await?;
                    cleanup.dns.push((record, value));
                }
            }
            challenge.set_ready().await?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(90));
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Order(format!("is {status:?} after validation")));
        }
        let key = order.finalize().await?;
        let chain = order.poll_certificate(&retry).await?;
        Ok((chain, key))
    }
}
