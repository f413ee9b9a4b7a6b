//! ACME issuance and renewal: one order per site (its names as one SAN list), challenges
//! answered by vigie itself, certificates stored atomically and swapped into the resolver.
//!
//! Invariants:
//! - a certificate is installed only after the whole chain and its key have been parsed and
//!   matched; a failed or half-finished order never replaces the certificate being served;
//! - the account is created once per directory and reused (credentials 0600 in the state
//!   directory); a corrupt credentials file is set aside and a new account is made;
//! - failures back off exponentially (with jitter, capped), so a CA outage or a rate limit
//!   never turns into a retry storm;
//! - renewal is due inside the CA's ARI window when the directory offers `renewalInfo`,
//!   otherwise when a third of the lifetime remains (minus a small per-certificate jitter).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use vigie_config::{Acme, ChallengeKind};

use crate::pem::{certified_key, certs_from_pem, info, CertInfo};
use crate::resolver::{CertResolver, CertTable};
use crate::store::{private_dir, write_atomic};

/// HTTP-01 tokens being validated: token → key authorization.
#[derive(Debug, Default)]
pub struct Http01Tokens(ArcSwap<HashMap<String, String>>);

impl Http01Tokens {
    /// The key authorization for `token`, while its challenge is open.
    pub fn get(&self, token: &str) -> Option<String> {
        self.0.load().get(token).cloned()
    }

    fn set(&self, token: &str, value: Option<String>) {
        self.0.rcu(|cur| {
            let mut next = HashMap::clone(cur);
            match &value {
                Some(v) => next.insert(token.to_string(), v.clone()),
                None => next.remove(token),
            };
            next
        });
    }
}

/// The path prefix HTTP-01 validation requests use.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// What `vigie cert list` shows for one managed site.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The site's names.
    pub names: Vec<String>,
    /// The certificate being served from ACME, if any.
    pub cert: Option<CertInfo>,
    /// When renewal is due.
    pub renew_at: Option<SystemTime>,
    /// Earliest next attempt after a failure.
    pub retry_at: Option<SystemTime>,
    /// Consecutive failures.
    pub failures: u32,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Certificates obtained since start.
    pub issued: u64,
    /// Orders failed since start.
    pub failed: u64,
}

struct Managed {
    ck: Arc<CertifiedKey>,
    info: CertInfo,
    renew_at: SystemTime,
}

#[derive(Default)]
struct State {
    account: Option<(String, Account)>,
    certs: HashMap<String, Managed>,
    status: BTreeMap<String, Status>,
    forced: HashSet<String>,
}

/// Drives issuance and renewal for the sites with `tls = "acme"`.
pub struct Manager {
    state_dir: PathBuf,
    resolver: Arc<CertResolver>,
    tokens: Arc<Http01Tokens>,
    state: tokio::sync::Mutex<State>,
    status: Mutex<BTreeMap<String, Status>>,
    retry_base: Duration,
    retry_cap: Duration,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server or the protocol said no.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The account could not be stored or read.
    #[error("account storage: {0}")]
    Storage(String),
    /// A challenge could not be prepared.
    #[error("challenge: {0}")]
    Challenge(String),
    /// The order ended in an unexpected state.
    #[error("order {0}")]
    Order(String),
    /// The issued certificate was unusable.
    #[error(transparent)]
    Cert(#[from] crate::pem::CertError),
}

/// The directory name for a site's files: its first name, `*` spelled out.
fn site_key(names: &[String]) -> String {
    names
        .first()
        .map(|n| n.replace('*', "_wildcard"))
        .unwrap_or_else(|| "site".to_string())
}

fn directory_key(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let a: HashSet<String> = a.iter().map(|n| n.to_ascii_lowercase()).collect();
    let b: HashSet<String> = b.iter().map(|n| n.to_ascii_lowercase()).collect();
    a == b
}

/// Renewal time by the lifetime rule: a third of the lifetime before expiry, minus up to
/// 1/30 of the lifetime of jitter (stable per serial, so restarts agree).
fn lifetime_renewal(info: &CertInfo) -> SystemTime {
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
    /// A manager storing under `state_dir`, serving through `resolver` and `tokens`.
    pub fn new(
        state_dir: &Path,
        resolver: Arc<CertResolver>,
        tokens: Arc<Http01Tokens>,
    ) -> Arc<Manager> {
        Arc::new(Manager {
            state_dir: state_dir.to_path_buf(),
            resolver,
            tokens,
            state: tokio::sync::Mutex::new(State::default()),
            status: Mutex::new(BTreeMap::new()),
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(6 * 3600),
        })
    }

    /// The same manager with another first retry delay (doubling up to the cap).
    pub fn with_retry(mut self: Arc<Self>, base: Duration, cap: Duration) -> Arc<Self> {
        if let Some(m) = Arc::get_mut(&mut self) {
            m.retry_base = base;
            m.retry_cap = cap;
        }
        self
    }

    /// The HTTP-01 tokens being answered.
    pub fn tokens(&self) -> &Arc<Http01Tokens> {
        &self.tokens
    }

    /// Status of every managed site.
    pub fn status(&self) -> Vec<Status> {
        self.status
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    fn cert_dir(&self, names: &[String]) -> PathBuf {
        self.state_dir.join("certs").join(site_key(names))
    }

    /// Load a stored certificate for `names`; `None` if missing, unreadable, for other names
    /// or expired (each logged).
    fn load_stored(&self, names: &[String]) -> Option<Managed> {
        let dir = self.cert_dir(names);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() {
            return None;
        }
        let loaded = std::fs::read(&cert)
            .and_then(|c| std::fs::read(&key).map(|k| (c, k)))
            .map_err(|e| e.to_string())
            .and_then(|(c, k)| {
                let what = cert.display().to_string();
                let ck = certified_key(&c, &k, &what).map_err(|e| e.to_string())?;
                let leaf = certs_from_pem(&c, &what).map_err(|e| e.to_string())?;
                let info = info(&leaf[0], &what).map_err(|e| e.to_string())?;
                Ok((ck, info))
            });
        match loaded {
            Ok((ck, info))
                if same_names(&info.names, names) && info.not_after > SystemTime::now() =>
            {
                let renew_at = lifetime_renewal(&info);
                Some(Managed { ck, info, renew_at })
            }
            Ok((_, info)) => {
                tracing::warn!(dir = %dir.display(), names = ?info.names,
                    "stored certificate is expired or for other names: a new one will be ordered");
                None
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "stored certificate is unusable: a new one will be ordered");
                None
            }
        }
    }

    /// Load the stored certificates of `sites` and serve them at once. Called at start, before
    /// the listeners open, so that a restart never answers a handshake with a stand-in
    /// certificate while the background pass has not run yet.
    pub fn load_stored_now(&self, sites: &[Vec<String>]) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        for names in sites {
            let key = site_key(names);
            if state.certs.contains_key(&key) {
                continue;
            }
            if let Some(m) = self.load_stored(names) {
                tracing::info!(site = %key, not_after = ?m.info.not_after, "using the stored certificate");
                state.certs.insert(key, m);
            }
        }
        self.install(&state);
    }

    fn install(&self, state: &State) {
        let mut table = CertTable::default();
        for m in state.certs.values() {
            for name in &m.info.names {
                table.insert(name, m.ck.clone());
            }
        }
        self.resolver.set_managed(table);
        if let Ok(mut s) = self.status.lock() {
            *s = state.status.clone();
        }
    }

    /// Ask for renewal of `name` (or every site) at the next run; `force` renews even a
    /// certificate that is not due.
    pub async fn request(&self, name: Option<&str>, force: bool) {
        let mut state = self.state.lock().await;
        let keys: Vec<String> = state
            .status
            .iter()
            .filter(|(_, s)| name.is_none_or(|n| s.names.iter().any(|x| x.eq_ignore_ascii_case(n))))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if force {
                state.forced.insert(k.clone());
            }
            if let Some(s) = state.status.get_mut(&k) {
                s.retry_at = None;
            }
        }
    }

    /// One pass: load stored certificates, order what is missing or due (and allowed by the
    /// back-off). Returns how long until something is due again.
    pub async fn run_once(&self, acme: &Acme, sites: &[Vec<String>]) -> Duration {
        let mut state = self.state.lock().await;
        let now = SystemTime::now();
        let keys: HashSet<String> = sites.iter().map(|n| site_key(n)).collect();
        state.certs.retain(|k, _| keys.contains(k));
        state.status.retain(|k, _| keys.contains(k));
        let mut next = Duration::from_secs(3600);
        for names in sites {
            let key = site_key(names);
            let status = state.status.entry(key.clone()).or_default();
            status.names = names.clone();
            if !state.certs.contains_key(&key) {
                if let Some(m) = self.load_stored(names) {
                    tracing::info!(site = %key, not_after = ?m.info.not_after, "using the stored certificate");
                    state.certs.insert(key.clone(), m);
                }
            }
            let forced = state.forced.contains(&key);
            let due = match state.certs.get(&key) {
                None => true,
                Some(m) => forced || now >= m.renew_at,
            };
            let status = state.status.entry(key.clone()).or_default();
            let blocked = status.retry_at.is_some_and(|t| now < t);
            if due && !blocked {
                self.order_site(&mut state, acme, names, &key).await;
            }
            let retry_at = state.status.get(&key).and_then(|s| s.retry_at);
            let current = state.certs.get(&key).map(|m| (m.info.clone(), m.renew_at));
            let wake = match (retry_at, &current) {
                (Some(r), _) => r,
                (None, Some((_, renew_at))) => *renew_at,
                (None, None) => now + self.retry_base,
            };
            next = next.min(
                wake.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
            if let (Some((info, renew_at)), Some(st)) = (current, state.status.get_mut(&key)) {
                st.cert = Some(info);
                st.renew_at = Some(renew_at);
            }
        }
        self.install(&state);
        next.max(Duration::from_millis(200))
    }

    async fn order_site(&self, state: &mut State, acme: &Acme, names: &[String], key: &str) {
        tracing::info!(site = %key, names = ?names, directory = %acme.directory, "ordering a certificate");
        match self.order(state, acme, names, true).await {
            Ok(m) => {
                tracing::info!(site = %key, serial = %m.info.serial, not_after = ?m.info.not_after,
                    renew_at = ?m.renew_at, "certificate issued and installed");
                state.certs.insert(key.to_string(), m);
                state.forced.remove(key);
                let st = state.status.entry(key.to_string()).or_default();
                st.failures = 0;
                st.retry_at = None;
                st.last_error = None;
                st.issued += 1;
            }
            Err(e) => {
                let st = state.status.entry(key.to_string()).or_default();
                st.failures += 1;
                st.failed += 1;
                let exp = st.failures.saturating_sub(1).min(16);
                let delay = self
                    .retry_base
                    .saturating_mul(1u32 << exp)
                    .min(self.retry_cap);
                let jitter = delay.mul_f64(rand::random::<f64>() * 0.1);
                st.retry_at = Some(SystemTime::now() + delay + jitter);
                st.last_error = Some(e.to_string());
                tracing::error!(site = %key, error = %e, failures = st.failures, retry_in = ?(delay + jitter),
                    "certificate order failed; the current certificate keeps serving");
            }
        }
    }

    fn account_path(&self, acme: &Acme) -> PathBuf {
        self.state_dir
            .join("acme")
            .join(directory_key(&acme.directory))
            .join("account.json")
    }

    /// Move the stored credentials aside (kept for the operator, never deleted).
    fn set_aside_account(&self, acme: &Acme) -> PathBuf {
        let path = self.account_path(acme);
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = path.with_file_name(format!("account.json.old-{stamp}"));
        let _ = std::fs::rename(&path, &aside);
        aside
    }

    async fn account(&self, state: &mut State, acme: &Acme) -> Result<Account, AcmeError> {
        if let Some((dir, account)) = &state.account {
            if *dir == acme.directory {
                return Ok(account.clone());
            }
        }
        let dir = self
            .state_dir
            .join("acme")
            .join(directory_key(&acme.directory));
        let path = dir.join("account.json");
        let builder = || match &acme.ca_roots {
            Some(roots) => Account::builder_with_root(roots),
            None => Account::builder(),
        };
        if path.exists() {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<AccountCredentials>(&b).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(creds) => {
                    let account = builder()?.from_credentials(creds).await?;
                    tracing::info!(path = %path.display(), "reusing the ACME account");
                    state.account = Some((acme.directory.clone(), account.clone()));
                    return Ok(account);
                }
                Err(e) => {
                    let aside = self.set_aside_account(acme);
                    tracing::error!(path = %path.display(), error = %e, aside = %aside.display(),
                        "ACME account credentials are unreadable: set aside, creating a new account");
                }
            }
        }
        let contact = acme.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = match &acme.eab {
            Some(eab) => {
                use base64::Engine;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(eab.hmac_key.trim_end_matches('='))
                    .map_err(|e| {
                        AcmeError::Storage(format!("eab hmac_key is not base64url: {e}"))
                    })?;
                Some(ExternalAccountKey::new(eab.kid.clone(), &key))
            }
            None => None,
        };
        let (account, creds) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                acme.directory.clone(),
                eab.as_ref(),
            )
            .await?;
        let json =
            serde_json::to_vec_pretty(&creds).map_err(|e| AcmeError::Storage(e.to_string()))?;
        private_dir(&dir).map_err(|e| AcmeError::Storage(format!("{}: {e}", dir.display())))?;
        write_atomic(&path, &json, true)
            .map_err(|e| AcmeError::Storage(format!("{}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), "created an ACME account");
        state.account = Some((acme.directory.clone(), account.clone()));
        Ok(account)
    }

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

    async fn order(
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

    async fn renewal_time(
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

    async fn validate_and_finalize(
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

/// Challenge material to remove once an order is over, whatever its outcome.
#[derive(Default)]
struct Cleanup {
    tokens: Vec<String>,
    alpn: Vec<String>,
    dns: Vec<(String, String)>,
}

impl Cleanup {
    async fn run(self, m: &Manager, acme: &Acme) {
        for t in self.tokens {
            m.tokens.set(&t, None);
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
fn alpn_challenge_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
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
async fn run_hook(acme: &Acme, action: &str, record: &str, value: &str) -> Result<(), AcmeError> {
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
