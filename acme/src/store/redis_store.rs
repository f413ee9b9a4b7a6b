//! A Redis shared by the instances of a `[cluster]`.
//!
//! Keys, all under the configured prefix `P`:
//! - `Pcert:SITE`: JSON `{chain, key, profile, ca, node, fence, at}`, the key sealed;
//! - `Paccount:DIRECTORY`: the account credentials, sealed;
//! - `Plock:SITE` and `Pfence:SITE`: the order lock and its fencing counter ([`super::lock`]);
//! - `Phttp01:TOKEN`: an HTTP-01 answer while its challenge is open (10-minute expiry);
//! - `Palpn01:SNI`: JSON `{name, digest}` while a TLS-ALPN-01 challenge is open (10-minute
//!   expiry): what any node needs to make its own challenge certificate ([`crate::alpn01`]);
//! - `Pkeycheck`: a value sealed with the cluster key by the first node, so a node started
//!   with another key fails at start instead of ordering anew;
//! - channel `Pcerts`: the site name, published with each new certificate.
//!
//! Every certificate read from or written to Redis is also written to the state directory
//! ([`DirStore`]), which serves at start while Redis is unreachable.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, IntoConnectionInfo, Script};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::dir::{directory_key, DirStore};
use super::lock::{RedisLock, FENCED_SET};
use super::sealed::{SealError, SealKey};
use super::{Held, LockOutcome, Store, StoreError, StoredCert};
use crate::alpn01::Answer;

/// How long a command (or a connection attempt) may take before Redis counts as down.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long an HTTP-01 answer stays in Redis at most.
const HTTP01_TTL_MS: u64 = 600_000;

/// What to connect to and how to behave.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL, without a password.
    pub url: String,
    /// The password, read from its file or variable.
    pub password: Option<String>,
    /// Prefix of every key.
    pub prefix: String,
    /// This node's id.
    pub node: String,
    /// Lease of an order lock.
    pub lease: Duration,
    /// Re-read interval when no notification came.
    pub poll: Duration,
}

/// The certificates of a cluster in Redis (see the module docs).
pub struct RedisStore {
    client: Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    settings: RedisSettings,
    key: SealKey,
    local: DirStore,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.settings.url)
            .field("node", &self.settings.node)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct CertRecord {
    chain: String,
    key: String,
    profile: Option<String>,
    #[serde(default)]
    ca: Option<String>,
    node: String,
    fence: u64,
    at: u64,
}

fn unavailable(url: &str, e: ::redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("Redis {url}: {e}"))
}

fn sealed(e: SealError) -> StoreError {
    match e {
        SealError::WrongKey(m) | SealError::BadKey(m) => StoreError::Key(m),
        SealError::Format(m) => StoreError::Corrupt(m),
    }
}

/// A Redis client for `settings` (URL and password); nothing is connected yet. The proxy's
/// shared limiter and purge fan-out use the same one.
pub fn client(settings: &RedisSettings) -> Result<Client, StoreError> {
    let mut info = settings
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| StoreError::Unavailable(format!("Redis {}: {e}", settings.url)))?;
    if let Some(p) = &settings.password {
        let redis = info.redis_settings().clone().set_password(p);
        info = info.set_redis_settings(redis);
    }
    Client::open(info).map_err(|e| StoreError::Unavailable(format!("Redis {}: {e}", settings.url)))
}

impl RedisStore {
    /// A store for `settings`, sealing with `key` and caching certificates in `local`.
    /// Nothing is connected yet.
    pub fn new(
        settings: RedisSettings,
        key: SealKey,
        local: DirStore,
    ) -> Result<RedisStore, StoreError> {
        let client = client(&settings)?;
        Ok(RedisStore {
            client,
            conn: tokio::sync::OnceCell::new(),
            settings,
            key,
            local,
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.settings.node
    }

    fn k(&self, what: &str) -> String {
        format!("{}{what}", self.settings.prefix)
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        self.conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
            .map_err(|e| unavailable(&self.settings.url, e))
    }

    /// Check at start, on a connection of its own, that Redis answers and that the cluster's
    /// secrets open with this node's key (the first node leaves a sealed marker for the next).
    pub async fn check(&self) -> Result<(), StoreError> {
        let url = &self.settings.url;
        let mut c =
            tokio::time::timeout(TIMEOUT * 2, self.client.get_multiplexed_async_connection())
                .await
                .map_err(|_| StoreError::Unavailable(format!("Redis {url}: connection timed out")))?
                .map_err(|e| unavailable(url, e))?;
        let name = self.k("keycheck");
        let marker: Option<String> = c.get(&name).await.map_err(|e| unavailable(url, e))?;
        match marker {
            Some(m) => self.key.open(&name, &m).map(|_| ()).map_err(sealed),
            None => {
                let _: bool = c
                    .set_nx(&name, self.key.seal(&name, b"vigie cluster key check"))
                    .await
                    .map_err(|e| unavailable(url, e))?;
                Ok(())
            }
        }
    }

    fn decode(&self, name: &str, json: &str) -> Result<StoredCert, StoreError> {
        let r: CertRecord =
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))?;
        let key = self.key.open(name, &r.key).map_err(sealed)?;
        Ok(StoredCert {
            chain_pem: r.chain,
            key_pem: String::from_utf8(key)
                .map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))?,
            profile: r.profile,
            ordered_by: Some((r.node, r.fence)),
            ca: r.ca,
            ordered_at: (r.at > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(r.at)),
        })
    }

    /// Keep the state directory's copy equal to what Redis has.
    fn cache(&self, site: &str, cert: &StoredCert) {
        let same = self
            .local
            .read_cert(site)
            .ok()
            .flatten()
            .is_some_and(|c| c.chain_pem == cert.chain_pem && c.key_pem == cert.key_pem);
        if !same {
            if let Err(e) = self.local.write_cert(site, cert) {
                tracing::warn!(site = %site, error = %e, "cannot keep the local copy of the certificate");
            }
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    fn shared(&self) -> bool {
        true
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.settings.poll)
    }

    fn cert_location(&self, site: &str) -> String {
        format!("{} {}", self.settings.url, self.k(&format!("cert:{site}")))
    }

    fn account_location(&self, directory: &str) -> String {
        format!(
            "{} {}",
            self.settings.url,
            self.k(&format!("account:{}", directory_key(directory)))
        )
    }

    async fn load_cert(&self, site: &str) -> Result<Option<StoredCert>, StoreError> {
        let name = self.k(&format!("cert:{site}"));
        let json: Option<String> = self
            .conn()
            .await?
            .get(&name)
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        let Some(json) = json else { return Ok(None) };
        let cert = self.decode(&name, &json)?;
        self.cache(site, &cert);
        Ok(Some(cert))
    }

    async fn save_cert(
        &self,
        site: &str,
        cert: &StoredCert,
        lock: &dyn Held,
    ) -> Result<(), StoreError> {
        let name = self.k(&format!("cert:{site}"));
        let record = CertRecord {
            chain: cert.chain_pem.clone(),
            key: self.key.seal(&name, cert.key_pem.as_bytes()),
            profile: cert.profile.clone(),
            ca: cert.ca.clone(),
            node: self.settings.node.clone(),
            fence: lock.fence(),
            at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let json = serde_json::to_string(&record).map_err(|e| StoreError::Write(e.to_string()))?;
        let token = lock.token().unwrap_or("");
        let written: i64 = Script::new(FENCED_SET)
            .key(self.k(&format!("lock:{site}")))
            .key(&name)
            .arg(token)
            .arg(json)
            .arg(self.k("certs"))
            .arg(site)
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        if written != 1 {
            return Err(StoreError::LockLost(format!(
                "the order lock of {site} expired before the certificate was stored \
                 (fence {}): another node holds it now",
                lock.fence()
            )));
        }
        self.cache(site, cert);
        Ok(())
    }

    async fn load_account(&self, directory: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = self.k(&format!("account:{}", directory_key(directory)));
        let v: Option<String> = self
            .conn()
            .await?
            .get(&name)
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        v.map(|v| self.key.open(&name, &v).map_err(sealed))
            .transpose()
    }

    async fn save_account(&self, directory: &str, json: &[u8]) -> Result<(), StoreError> {
        let name = self.k(&format!("account:{}", directory_key(directory)));
        let stored: bool = self
            .conn()
            .await?
            .set_nx(&name, self.key.seal(&name, json))
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        if !stored {
            tracing::info!(key = %name,
                "another node stored its ACME account first: this one is used until restart");
        }
        Ok(())
    }

    async fn set_aside_account(&self, directory: &str) -> Result<String, StoreError> {
        let name = self.k(&format!("account:{}", directory_key(directory)));
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = format!("{name}:old-{stamp}");
        let _: ::redis::RedisResult<()> = self.conn().await?.rename(&name, &aside).await;
        Ok(aside)
    }

    async fn lock(&self, site: &str) -> Result<LockOutcome, StoreError> {
        RedisLock::acquire(
            &self.conn().await?,
            &self.k(&format!("lock:{site}")),
            &self.k(&format!("fence:{site}")),
            &self.settings.node,
            self.settings.lease,
        )
        .await
        .map_err(|e| unavailable(&self.settings.url, e))
    }

    async fn publish_http01(&self, token: &str, key_auth: Option<&str>) {
        let name = self.k(&format!("http01:{token}"));
        let done: Result<(), StoreError> = async {
            let mut c = self.conn().await?;
            let r: ::redis::RedisResult<()> = match key_auth {
                Some(v) => c.pset_ex(&name, v, HTTP01_TTL_MS).await,
                None => c.del(&name).await,
            };
            r.map_err(|e| unavailable(&self.settings.url, e))
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(token = %token, error = %e,
                "cannot share the HTTP-01 answer: only this instance can answer it");
        }
    }

    async fn http01(&self, token: &str) -> Option<String> {
        let name = self.k(&format!("http01:{token}"));
        let mut c = self.conn().await.ok()?;
        c.get(&name).await.ok().flatten()
    }

    async fn publish_alpn01(&self, sni: &str, answer: Option<&Answer>) {
        let name = self.k(&format!("alpn01:{sni}"));
        let done: Result<(), StoreError> = async {
            let mut c = self.conn().await?;
            let r: ::redis::RedisResult<()> = match answer {
                Some(a) => {
                    let json =
                        serde_json::to_string(a).map_err(|e| StoreError::Write(e.to_string()))?;
                    c.pset_ex(&name, json, HTTP01_TTL_MS).await
                }
                None => c.del(&name).await,
            };
            r.map_err(|e| unavailable(&self.settings.url, e))
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(sni = %sni, error = %e,
                "cannot share the TLS-ALPN-01 answer: only this instance can answer it");
        }
    }

    async fn alpn01(&self, sni: &str) -> Result<Option<Answer>, StoreError> {
        let name = self.k(&format!("alpn01:{sni}"));
        let json: Option<String> = self
            .conn()
            .await?
            .get(&name)
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
        })
        .transpose()
    }

    async fn lock_holders(&self, sites: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        if sites.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = sites.iter().map(|s| self.k(&format!("lock:{s}"))).collect();
        let values: Vec<Option<String>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn().await?)
            .await
            .map_err(|e| unavailable(&self.settings.url, e))?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| v.split(' ').next().map(str::to_string)))
            .collect())
    }

    fn watch(&self, wake: Arc<tokio::sync::Notify>) {
        let client = self.client.clone();
        let channel = self.k("certs");
        tokio::spawn(async move {
            let mut logged = false;
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            tracing::info!(channel = %channel, "listening for certificates from the cluster");
                            logged = false;
                            // A pass at once: what was published while not listening.
                            wake.notify_one();
                            let mut messages = ps.on_message();
                            while messages.next().await.is_some() {
                                wake.notify_one();
                            }
                        }
                        Err(e) if !logged => {
                            tracing::warn!(error = %e, "cannot subscribe to the cluster's notifications");
                            logged = true;
                        }
                        Err(_) => {}
                    },
                    Err(e) if !logged => {
                        tracing::warn!(error = %e,
                            "cannot subscribe to the cluster's notifications; polling until Redis is back");
                        logged = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
