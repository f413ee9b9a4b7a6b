//! One order: new order, challenges answered, finalize, chain checked and stored.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewOrder,
    OrderStatus, RetryPolicy,
};
use vigie_config::{Acme, ChallengeKind};

use crate::alpn01;
use crate::pem::{certified_key, certs_from_pem, info, CertInfo};
use crate::store::{Held, StoreError, StoredCert};

use super::schedule::ari_id;
use super::*;

/// The ACME identifier of a site name: an IP address (RFC 8738, IPv6 written `[::1]` in the
/// config) or a DNS name.
fn identifier(name: &str) -> Identifier {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Identifier::Ip(ip),
        Err(_) => Identifier::Dns(name.to_string()),
    }
}

/// The SNI a TLS-ALPN-01 validation of an IP address carries (RFC 8738 §6): the address's
/// reverse-DNS name, `4.3.2.1.in-addr.arpa` or the nibbles of an IPv6 under `ip6.arpa`.
pub(super) fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut out = String::new();
            for b in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// `newOrder`, naming the certificate it replaces when there is one and the CA has ARI
/// (instant-acme refuses `replaces` locally, before sending anything, when the directory has
/// no `renewalInfo`: the order then goes without it). A CA that offers renewal information
/// but answers without echoing `replaces` (RFC 9773 says it must; instant-acme then refuses
/// the order) also gets the order again without it, rather than a renewal that never
/// succeeds.
async fn place_order(
    account: &Account,
    ids: &[Identifier],
    profile: Option<&str>,
    replaces: Option<&CertificateIdentifier<'static>>,
) -> Result<instant_acme::Order, instant_acme::Error> {
    let new = || match profile {
        Some(p) => NewOrder::new(ids).profile(p),
        None => NewOrder::new(ids),
    };
    if let Some(r) = replaces {
        match account.new_order(&new().replaces(r.clone())).await {
            Err(instant_acme::Error::Unsupported(_)) => {
                tracing::info!("the CA has no ARI: renewal order sent without `replaces`");
            }
            Err(instant_acme::Error::Api(p))
                if p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":alreadyReplaced")) =>
            {
                tracing::warn!(problem = %p, "the CA says the certificate was already replaced: ordering without `replaces`");
            }
            Err(instant_acme::Error::Other(e))
                if e.to_string().starts_with("replaces field mismatch") =>
            {
                tracing::warn!(error = %e, "the CA did not keep `replaces` in its order (RFC 9773 says it must): ordering without `replaces`");
            }
            other => {
                if other.is_ok() {
                    tracing::info!(replaces = %r, "renewal order names the certificate it replaces");
                }
                return other;
            }
        }
    }
    account.new_order(&new()).await
}

/// The profile must be one the directory advertises (checked before any order is sent).
fn check_profile(account: &Account, acme: &Acme, profile: &str) -> Result<(), AcmeError> {
    let mut offered: Vec<&str> = account.profiles().map(|p| p.name).collect();
    if offered.contains(&profile) {
        return Ok(());
    }
    offered.sort_unstable();
    let offered = if offered.is_empty() {
        "the directory advertises no profiles (leave `profile` out)".to_string()
    } else {
        format!("it offers {}", offered.join(", "))
    };
    Err(AcmeError::Profile {
        profile: profile.to_string(),
        directory: acme.directory.clone(),
        offered,
    })
}

impl Manager {
    /// Order a certificate for `names` from `acme`'s directory (typically a staging one)
    /// with the running listeners answering the challenges, without storing or serving it.
    /// Returns the facts of the certificate the CA issued.
    pub async fn dry_run(&self, acme: &Acme, names: &[String]) -> Result<CertInfo, AcmeError> {
        let mut state = self.state.lock().await;
        // The dry run's account (one per directory, like any other) stays for next time.
        let result = self.order(&mut state, acme, names, None, None).await;
        result.map(|m| m.info)
    }

    /// One order for `names`; with `lock` (the site's order lock, held) the certificate is
    /// stored under it, without it (a dry run) it is only returned.
    pub(super) async fn order(
        &self,
        state: &mut State,
        acme: &Acme,
        names: &[String],
        profile: Option<&str>,
        lock: Option<&dyn Held>,
    ) -> Result<Managed, AcmeError> {
        let store = lock.is_some();
        let ids: Vec<Identifier> = names.iter().map(|n| identifier(n)).collect();
        // A renewal names the certificate it replaces (RFC 9773), when the CA has ARI.
        let replaces = match store {
            true => state
                .certs
                .get(&site_key(names))
                .and_then(|m| m.ck.cert.first())
                .and_then(ari_id),
            false => None,
        };
        let account = self.account(state, acme).await?;
        if let Some(p) = profile {
            check_profile(&account, acme, p)?;
        }
        let (account, mut order) =
            match place_order(&account, &ids, profile, replaces.as_ref()).await {
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
                    state.accounts.remove(&acme.directory);
                    self.set_aside_account(acme).await;
                    let account = self.account(state, acme).await?;
                    let order = place_order(&account, &ids, profile, replaces.as_ref()).await?;
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
        let mut m = Managed::loaded(ck, info);
        m.profile = profile.map(str::to_string);
        m.ca = Some(acme.directory.clone());
        self.refresh_schedule(&account, &mut m).await;
        let Some(lock) = lock else { return Ok(m) };
        let stored = StoredCert {
            chain_pem: chain,
            key_pem: key,
            profile: profile.map(str::to_string),
            ordered_by: None,
            ca: Some(acme.directory.clone()),
            ordered_at: None,
        };
        if let Err(e) = self.store.save_cert(&site_key(names), &stored, lock).await {
            if matches!(e, StoreError::LockLost(_)) {
                self.locks.lost(&site_key(names));
            }
            return Err(AcmeError::Storage(e.to_string()));
        }
        m.ordered_by = lock.token().map(|_| (self.node.clone(), lock.fence()));
        m.ordered_at = lock.token().map(|_| std::time::SystemTime::now());
        Ok(m)
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
            let kind = if authz.identifier().wildcard {
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
                    self.store
                        .publish_http01(&token, Some(key_auth.as_str()))
                        .await;
                    cleanup.tokens.push(token);
                }
                ChallengeKind::TlsAlpn01 => {
                    let bare = name.trim_start_matches("*.").to_string();
                    let digest = key_auth.digest();
                    let ck = alpn01::challenge_cert(&bare, digest.as_ref())
                        .map_err(AcmeError::Challenge)?;
                    // An IP address is validated with its reverse-DNS name as SNI (RFC 8738),
                    // the certificate naming the address itself.
                    let sni = match bare.parse::<std::net::IpAddr>() {
                        Ok(ip) => reverse_name(ip),
                        Err(_) => bare.to_ascii_lowercase(),
                    };
                    self.resolver.set_challenge(&sni, Some(ck));
                    // Any instance of a cluster may be asked: they make their own certificate
                    // from the name and digest (no key is shared; see `alpn01`).
                    let answer = alpn01::Answer::new(&bare, digest.as_ref());
                    self.store.publish_alpn01(&sni, Some(&answer)).await;
                    cleanup.alpn.push(sni);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ip_names_become_ip_identifiers_with_their_reverse_names() {
        assert_eq!(
            identifier("192.0.2.7"),
            Identifier::Ip("192.0.2.7".parse().unwrap())
        );
        assert_eq!(identifier("[::1]"), Identifier::Ip("::1".parse().unwrap()));
        assert_eq!(identifier("a.example"), Identifier::Dns("a.example".into()));
        assert_eq!(
            reverse_name("192.0.2.7".parse().unwrap()),
            "7.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::567:89ab".parse().unwrap());
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
