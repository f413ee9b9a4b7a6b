//! ACME issuance and renewal: one order per site (its names as one SAN list), challenges
//! answered by vigie itself, certificates stored atomically and swapped into the resolver.
//!
//! Invariants:
//! - a certificate is installed only after the whole chain and its key have been parsed and
//!   matched; a failed or half-finished order never replaces the certificate being served;
//! - the account is created once per directory and reused (credentials 0600 in the state
//!   directory); a corrupt credentials file is set aside and a new account is made;
//! - failures back off exponentially (with jitter, capped), and a `Retry-After` or
//!   `rateLimited` answer from the CA is honoured, so a CA outage or a rate limit never turns
//!   into a retry storm — except that no wait outlives the certificate being served: while
//!   it is valid, the next attempt is at most halfway to its expiry (see `schedule`);
//! - one order at a time: every order runs under the manager's state lock, so a name never
//!   has two orders in flight; with a shared store ([`crate::store`]) also under the site's
//!   cluster-wide lock, and the other instances wait and pick the result up from the store;
//! - the manager talks to its [`Store`] only, never knowing whether that is the state
//!   directory or Redis; a store that is down, or secrets that do not open with the key,
//!   never lead to a new order or a new account: the served certificate stays;
//! - renewal is due inside the CA's ARI window when the directory offers `renewalInfo`,
//!   otherwise at half of the lifetime (10 days or less) or with a third left (longer); see
//!   `schedule` for the rules. Renewal orders name the certificate they replace when the
//!   CA has ARI.
//! - with several CAs (`[[acme.ca]]`), a site whose CA keeps failing moves to the next one;
//!   see [`fallback`] for the rule. Each CA has its own account.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use instant_acme::Account;
use rustls::sign::CertifiedKey;
use vigie_config::Acme;

use crate::pem::CertInfo;
use crate::resolver::{CertResolver, CertTable};
use crate::store::dir::DirStore;
use crate::store::{LockOutcome, SharedStore};

mod account;
mod challenge;
mod error;
mod fallback;
mod http;
mod lock_stats;
mod locked;
mod order;
mod schedule;
mod stored;
mod tokens;

use challenge::{run_hook, Cleanup};
use http::CaTraffic;
use schedule::{backoff, lifetime_renewal, retry_time, Schedule};
use stored::Loaded;

pub use error::AcmeError;
pub use lock_stats::LockCounts;
pub use tokens::Http01Tokens;

/// How often an instance waiting for another's order looks at the lock again.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// The path prefix HTTP-01 validation requests use.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// A site whose certificate the manager keeps: its names and the ACME profile to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wanted {
    /// The site's names (one certificate for all).
    pub names: Vec<String>,
    /// The profile (`None`: the CA's default).
    pub profile: Option<String>,
}

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
    /// Why nothing is happening now: the renewal rule and time, or the back-off, rate limit
    /// or `Retry-After` the next attempt waits for.
    pub waiting: Option<String>,
    /// The profile the served certificate was ordered under.
    pub profile: Option<String>,
    /// The CA's suggested renewal window (ARI, RFC 9773) when it gave one: start and end.
    pub ari_window: Option<(SystemTime, SystemTime)>,
    /// Certificates obtained since start.
    pub issued: u64,
    /// Orders failed since start.
    pub failed: u64,
    /// In a cluster: the node that ordered the served certificate and its lock's fence.
    pub ordered_by: Option<(String, u64)>,
    /// In a cluster: when that node stored it.
    pub ordered_at: Option<SystemTime>,
    /// In a cluster: the node holding the site's order lock (as last seen by this one, or
    /// read from the store by [`Manager::status_now`]).
    pub lock_holder: Option<String>,
    /// Directory URL of the CA that issued the served certificate (`None`: not recorded).
    pub ca: Option<String>,
}

struct Managed {
    ck: Arc<CertifiedKey>,
    info: CertInfo,
    renew_at: SystemTime,
    schedule: Schedule,
    profile: Option<String>,
    ordered_by: Option<(String, u64)>,
    ordered_at: Option<SystemTime>,
    /// Directory of the CA that issued it.
    ca: Option<String>,
}

impl Managed {
    /// A certificate loaded from storage: the lifetime rule until the CA's ARI (if any) has
    /// been asked, which the next pass does.
    fn loaded(ck: Arc<CertifiedKey>, info: CertInfo) -> Managed {
        let renew_at = lifetime_renewal(&info);
        let schedule = Schedule {
            ari_recheck: Some(SystemTime::UNIX_EPOCH),
            ..Schedule::default()
        };
        Managed {
            ck,
            info,
            renew_at,
            schedule,
            profile: None,
            ordered_by: None,
            ordered_at: None,
            ca: None,
        }
    }
}

/// Why the next attempt waits, kept with the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Backoff,
    RetryAfter,
    RateLimited,
    /// Another node holds the site's order lock.
    Waiting,
    /// The store is unreachable (or its secrets do not open): no order is placed.
    Store,
}

#[derive(Default)]
struct State {
    /// Accounts by directory URL.
    accounts: HashMap<String, Account>,
    positions: fallback::Positions,
    certs: HashMap<String, Managed>,
    status: BTreeMap<String, Status>,
    forced: HashSet<String>,
    holds: HashMap<String, Hold>,
    /// Sites whose order lock another node holds: that node's id.
    waiting: HashMap<String, String>,
}

/// Drives issuance and renewal for the sites with `tls = "acme"`.
pub struct Manager {
    state_dir: PathBuf,
    store: SharedStore,
    local: DirStore,
    node: String,
    resolver: Arc<CertResolver>,
    tokens: Arc<Http01Tokens>,
    state: tokio::sync::Mutex<State>,
    status: Mutex<BTreeMap<String, Status>>,
    retry_base: Duration,
    retry_cap: Duration,
    traffic: Arc<CaTraffic>,
    timeout: Duration,
    fallbacks: fallback::Counts,
    locks: lock_stats::LockStats,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

/// The directory name for a site's files: its first name, `*` spelled out.
fn site_key(names: &[String]) -> String {
    names
        .first()
        .map(|n| n.replace('*', "_wildcard"))
        .unwrap_or_else(|| "site".to_string())
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let a: HashSet<String> = a.iter().map(|n| n.to_ascii_lowercase()).collect();
    let b: HashSet<String> = b.iter().map(|n| n.to_ascii_lowercase()).collect();
    a == b
}

impl Manager {
    /// A manager storing under `state_dir`, serving through `resolver` and `tokens`.
    pub fn new(
        state_dir: &Path,
        resolver: Arc<CertResolver>,
        tokens: Arc<Http01Tokens>,
    ) -> Arc<Manager> {
        let local = DirStore::new(state_dir);
        Arc::new(Manager {
            state_dir: state_dir.to_path_buf(),
            store: Arc::new(local.clone()),
            local,
            node: String::new(),
            resolver,
            tokens,
            state: tokio::sync::Mutex::new(State::default()),
            status: Mutex::new(BTreeMap::new()),
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(6 * 3600),
            traffic: Arc::new(CaTraffic::default()),
            timeout: Duration::from_secs(30),
            fallbacks: fallback::Counts::default(),
            locks: lock_stats::LockStats::default(),
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

    /// The same manager storing in `store` (shared by a cluster) as node `node`; the state
    /// directory keeps serving at start and stays the store's local copy.
    pub fn with_store(mut self: Arc<Self>, store: SharedStore, node: &str) -> Arc<Self> {
        if let Some(m) = Arc::get_mut(&mut self) {
            if store.shared() {
                let _ = m.tokens.1.set(store.clone());
                m.resolver.share_challenges(store.clone());
            }
            m.store = store;
            m.node = node.to_string();
        }
        self
    }

    /// Wake `wake` when another instance stores a certificate (call from the runtime that
    /// runs the passes).
    pub fn watch_store(&self, wake: Arc<tokio::sync::Notify>) {
        self.store.watch(wake);
    }

    /// Requests sent to ACME servers since start (directory, nonces, orders, ARI…).
    pub fn ca_requests(&self) -> u64 {
        self.traffic.requests()
    }

    /// The HTTP-01 tokens being answered.
    pub fn tokens(&self) -> &Arc<Http01Tokens> {
        &self.tokens
    }

    /// Status of every managed site; in a cluster the lock holder is this node while it
    /// holds the lock, else the one last seen holding it.
    pub fn status(&self) -> Vec<Status> {
        let mut list: Vec<(String, Status)> = self
            .status
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (key, st) in &mut list {
            if self.locks.holds(key) {
                st.lock_holder = Some(self.node.clone());
            }
        }
        list.into_iter().map(|(_, s)| s).collect()
    }

    /// [`Manager::status`] with the lock holders read from the shared store now (when it
    /// cannot be read, as last seen).
    pub async fn status_now(&self) -> Vec<Status> {
        let mut list = self.status();
        if !self.store.shared() {
            return list;
        }
        let keys: Vec<String> = list.iter().map(|s| site_key(&s.names)).collect();
        if let Ok(holders) = self.store.lock_holders(&keys).await {
            for (st, holder) in list.iter_mut().zip(holders) {
                st.lock_holder = holder;
            }
        }
        list
    }

    /// Order-lock figures of every site (cluster only; empty for an instance alone).
    pub fn lock_counts(&self) -> Vec<LockCounts> {
        self.locks.all()
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

    /// One pass: load stored certificates, ask the CA's ARI where it is due, order what is
    /// missing or due (and allowed by the back-off). Returns how long until something is due
    /// again.
    pub async fn run_once(&self, acme: &Acme, sites: &[Wanted]) -> Duration {
        let mut state = self.state.lock().await;
        let keys: HashSet<String> = sites.iter().map(|w| site_key(&w.names)).collect();
        state.certs.retain(|k, _| keys.contains(k));
        state.status.retain(|k, _| keys.contains(k));
        let mut next = Duration::from_secs(3600);
        for wanted in sites {
            let wake = self.run_site(&mut state, acme, wanted).await;
            next = next.min(
                wake.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
        self.install(&state);
        if let Some(poll) = self.store.poll_interval() {
            next = next.min(poll);
        }
        next.max(Duration::from_millis(200))
    }

    /// One site's turn; returns when it next needs attention.
    async fn run_site(&self, state: &mut State, acme: &Acme, wanted: &Wanted) -> SystemTime {
        let names = &wanted.names[..];
        let key = site_key(names);
        let now = SystemTime::now();
        state.status.entry(key.clone()).or_default().names = names.to_vec();
        if !state.certs.contains_key(&key) || self.store.shared() {
            self.refresh_from_store(state, names, &key).await;
        }
        let blocked = state
            .status
            .get(&key)
            .and_then(|s| s.retry_at)
            .is_some_and(|t| now < t);
        let ari_due = state
            .certs
            .get(&key)
            .and_then(|m| m.schedule.ari_recheck)
            .is_some_and(|t| now >= t);
        if ari_due && !blocked {
            self.refresh_site_schedule(state, acme, &key).await;
        }
        let forced = state.forced.contains(&key);
        let due = match state.certs.get(&key) {
            None => true,
            Some(m) if m.profile != wanted.profile => {
                if !blocked {
                    tracing::info!(site = %key, from = ?m.profile, to = ?wanted.profile,
                        "the configured profile changed: ordering a new certificate");
                }
                true
            }
            Some(m) => forced || SystemTime::now() >= m.renew_at,
        };
        if due && !blocked {
            self.order_site(state, acme, wanted, &key).await;
        }
        let retry_at = state.status.get(&key).and_then(|s| s.retry_at);
        let hold = state.holds.get(&key).copied();
        let current = state.certs.get(&key);
        let wake = match (retry_at, current) {
            (Some(r), _) => r,
            (None, Some(m)) => m
                .schedule
                .ari_recheck
                .map_or(m.renew_at, |t| t.min(m.renew_at)),
            (None, None) => SystemTime::now() + self.retry_base,
        };
        let waiting = match (retry_at, current) {
            (Some(r), _) => Some(
                Self::hold_words(hold, r, state.status.get(&key), state.waiting.get(&key))
                    + &fallback::next_ca_words(state, acme, &key),
            ),
            (None, Some(m)) => Some(Self::schedule_words(m)),
            (None, None) => None,
        };
        let current = current.map(|m| {
            let by = (m.ordered_by.clone(), m.ordered_at);
            let ari = match m.schedule.source {
                schedule::Source::Ari { start, end } => Some((start, end)),
                schedule::Source::Lifetime => None,
            };
            (
                m.info.clone(),
                m.renew_at,
                m.profile.clone(),
                by,
                ari,
                m.ca.clone(),
            )
        });
        if let Some(st) = state.status.get_mut(&key) {
            if let Some((info, renew_at, profile, by, ari, ca)) = current {
                st.cert = Some(info);
                st.renew_at = Some(renew_at);
                st.profile = profile;
                (st.ordered_by, st.ordered_at) = by;
                st.ari_window = ari;
                st.ca = ca;
            }
            st.waiting = waiting;
            st.lock_holder = state.waiting.get(&key).cloned();
        }
        wake
    }

    /// Ask the CA's ARI endpoint about the site's certificate (the account is needed for the
    /// directory; if it cannot be had, the schedule stays and is asked again later).
    async fn refresh_site_schedule(&self, state: &mut State, acme: &Acme, key: &str) {
        let Some(mut m) = state.certs.remove(key) else {
            return;
        };
        let acme = Self::issuer_view(acme, m.ca.as_deref());
        match self.account(state, &acme).await {
            Ok(account) => self.refresh_schedule(&account, &mut m).await,
            Err(e) => {
                tracing::warn!(site = %key, error = %e,
                    "cannot reach the ACME server for renewal information; keeping the schedule");
                m.schedule.ari_recheck = Some(SystemTime::now() + self.retry_base);
            }
        }
        state.certs.insert(key.to_string(), m);
    }

    fn hold_words(
        hold: Option<Hold>,
        until: SystemTime,
        st: Option<&Status>,
        holder: Option<&String>,
    ) -> String {
        let at = httpdate::fmt_http_date(until);
        let failures = st.map_or(0, |s| s.failures);
        match hold {
            Some(Hold::Waiting) => format!(
                "node {} holds the order lock: waiting for its certificate",
                holder.map_or("?", |h| h.as_str())
            ),
            Some(Hold::Store) => format!(
                "the certificate store is unavailable: no order until it is back; next look \
                 at {at}"
            ),
            Some(Hold::RateLimited) => format!("rate limited by the CA: next attempt at {at}"),
            Some(Hold::RetryAfter) => {
                format!("the CA asked to wait (Retry-After): next attempt at {at}")
            }
            _ => format!("back-off after {failures} failed order(s): next attempt at {at}"),
        }
    }
}
