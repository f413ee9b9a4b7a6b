//! Where certificates, the ACME account and order locks live: one [`Store`] trait, two
//! implementations.
//!
//! - [`dir::DirStore`]: the state directory, for an instance acting alone (the default);
//! - [`redis_store::RedisStore`]: a Redis shared by every instance of a `[cluster]`, with private
//!   keys and account credentials sealed ([`sealed`]), a cluster-wide order lock per site
//!   ([`lock`]), HTTP-01 tokens any instance can answer, and a notification on every new
//!   certificate. It keeps a copy of each certificate in the state directory, so that a
//!   restart while Redis is down still serves the last valid one.
//!
//! The ACME manager talks only to the trait and never knows which one it has.

use std::sync::Arc;

use async_trait::async_trait;

use crate::alpn01::Answer;

pub mod dir;
mod files;
pub mod lock;
pub mod redis_store;
pub mod sealed;

pub use files::{private_dir, write_atomic};

/// A certificate as stored: the chain and key in PEM, the profile it was ordered under and,
/// in a cluster, who ordered it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredCert {
    /// The leaf first, then the intermediates, PEM.
    pub chain_pem: String,
    /// The private key, PEM (kept only in memory and in sealed or 0600 form at rest).
    pub key_pem: String,
    /// The ACME profile it was ordered under; `None`: the CA's default (or not recorded).
    pub profile: Option<String>,
    /// The node that ordered it and the fencing token of its lock (cluster only).
    pub ordered_by: Option<(String, u64)>,
    /// Directory URL of the CA that issued it (`None`: not recorded).
    pub ca: Option<String>,
    /// When it was stored by the node that ordered it (cluster only).
    pub ordered_at: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for StoredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCert")
            .field("profile", &self.profile)
            .field("ordered_by", &self.ordered_by)
            .field("ordered_at", &self.ordered_at)
            .finish_non_exhaustive()
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// Stored data exists but is unusable (unreadable file, bad JSON): a new one may be made.
    #[error("{0}")]
    Corrupt(String),
    /// Stored secrets cannot be opened with the configured key: never replaced silently.
    #[error("{0}")]
    Key(String),
    /// The shared store cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// Writing failed.
    #[error("{0}")]
    Write(String),
    /// The order lock was lost before the certificate was stored (another node holds it).
    #[error("{0}")]
    LockLost(String),
}

/// What asking for a site's order lock gave.
pub enum LockOutcome {
    /// This node holds the lock until the guard is released or dropped.
    Acquired(Box<dyn Held>),
    /// Another node holds it (its id); wait for its result.
    HeldBy(String),
}

/// A held order lock.
#[async_trait]
pub trait Held: Send + Sync {
    /// The lock's value (`node fence random`), used to fence writes; `None` for a local lock.
    fn token(&self) -> Option<&str>;
    /// The fencing token: one more than the previous holder's.
    fn fence(&self) -> u64;
    /// Give the lock back at once (a dropped guard lets the lease expire instead).
    async fn release(self: Box<Self>);
}

/// Certificates, account credentials, order locks and shared challenge answers.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Whether other instances share this store (then it is re-read on every pass).
    fn shared(&self) -> bool;
    /// How often to re-read a shared store when no notification came.
    fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// Wake `wake` whenever another instance stores a certificate (runs in the background).
    fn watch(&self, _wake: Arc<tokio::sync::Notify>) {}
    /// Where a site's certificate is kept, for messages.
    fn cert_location(&self, site: &str) -> String;
    /// Where a directory's account is kept, for messages.
    fn account_location(&self, directory: &str) -> String;
    /// The stored certificate of `site`; `Ok(None)` when there is none.
    async fn load_cert(&self, site: &str) -> Result<Option<StoredCert>, StoreError>;
    /// Store the certificate of `site`, ordered under `lock`.
    async fn save_cert(
        &self,
        site: &str,
        cert: &StoredCert,
        lock: &dyn Held,
    ) -> Result<(), StoreError>;
    /// The stored account credentials (JSON) for ACME `directory`.
    async fn load_account(&self, directory: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store account credentials (JSON) for `directory`.
    async fn save_account(&self, directory: &str, json: &[u8]) -> Result<(), StoreError>;
    /// Move the stored credentials aside, kept for the operator; returns where.
    async fn set_aside_account(&self, directory: &str) -> Result<String, StoreError>;
    /// Take the order lock of `site`, or say who holds it.
    async fn lock(&self, site: &str) -> Result<LockOutcome, StoreError>;
    /// Publish (or with `None` withdraw) an HTTP-01 answer so every instance can give it.
    async fn publish_http01(&self, token: &str, key_auth: Option<&str>);
    /// An HTTP-01 answer another instance published.
    async fn http01(&self, token: &str) -> Option<String>;
    /// Publish (or with `None` withdraw) what any instance needs to answer the TLS-ALPN-01
    /// challenge for `sni` (see [`crate::alpn01`]); nothing to do for a store of one.
    async fn publish_alpn01(&self, _sni: &str, _answer: Option<&Answer>) {}
    /// The TLS-ALPN-01 answer another instance published for `sni`.
    async fn alpn01(&self, _sni: &str) -> Result<Option<Answer>, StoreError> {
        Ok(None)
    }
    /// The node holding each site's order lock now (`None`: nobody), in the order of
    /// `sites`; a store of one has no cluster-wide lock.
    async fn lock_holders(&self, sites: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        Ok(vec![None; sites.len()])
    }
}

/// The lock of a store that nobody else uses: the manager's own mutex already serialises
/// orders.
pub struct LocalLock;

#[async_trait]
impl Held for LocalLock {
    fn token(&self) -> Option<&str> {
        None
    }
    fn fence(&self) -> u64 {
        0
    }
    async fn release(self: Box<Self>) {}
}

/// A shared handle to whichever store is in use.
pub type SharedStore = Arc<dyn Store>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
mod test_redis;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
