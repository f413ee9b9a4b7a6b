//! `[cluster]` at start: the Redis store the ACME manager uses instead of the state
//! directory, with its password, key and node id read here (never in `vigie check`), and
//! the request path's [`link::Link`] to Redis (cluster-wide rate limits) with its
//! [`metrics`].
//!
//! Start-up behaviour:
//! - the key file is unreadable or not a key: vigie does not start;
//! - Redis answers but the cluster's data was sealed with another key: vigie does not start
//!   (it would otherwise never open the certificates and account, and must not order anew);
//! - Redis does not answer: vigie starts, serves the copies kept in the state directory,
//!   places no order until Redis is back, and says so in the log.

pub mod purge;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

pub mod link;
pub mod metrics;
use vigie_acme::store::dir::DirStore;
use vigie_acme::store::redis_store::{RedisSettings, RedisStore};
use vigie_acme::store::sealed::SealKey;
use vigie_acme::{SharedStore, StoreError};
use vigie_config::{Cluster, SecretSource};

/// The node id when none is configured: the host name, reduced to what a node id allows.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let clean: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "vigie".to_string()
    } else {
        clean
    }
}

fn password(source: &SecretSource) -> anyhow::Result<String> {
    match source {
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .with_context(|| format!("[cluster] password_file {}", path.display())),
        SecretSource::Env(name) => std::env::var(name)
            .with_context(|| format!("[cluster] password_env: ${name} is not set")),
    }
}

/// The Redis settings of `cluster`: URL, password (read from its file or variable now),
/// prefix, this node's id (the host name when none is configured), lease and poll.
pub fn settings(cluster: &Cluster) -> anyhow::Result<RedisSettings> {
    Ok(RedisSettings {
        url: cluster.redis.clone(),
        password: cluster.password.as_ref().map(password).transpose()?,
        prefix: cluster.key_prefix.clone(),
        node: cluster.node_id.clone().unwrap_or_else(host_name),
        lease: cluster.lock_lease,
        poll: cluster.poll,
    })
}

/// The Redis store for `cluster` with `settings` (from [`settings`]), checked against Redis
/// (see the module docs for what stops the start).
pub fn store(
    cluster: &Cluster,
    settings: &RedisSettings,
    state_dir: &Path,
) -> anyhow::Result<SharedStore> {
    let key_path = &cluster.encryption_key_file;
    let bytes = std::fs::read(key_path)
        .with_context(|| format!("[cluster] encryption_key_file {}", key_path.display()))?;
    let key = SealKey::from_file_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!("[cluster] encryption_key_file {}: {e}", key_path.display())
    })?;
    let node = settings.node.clone();
    let settings = settings.clone();
    let store = RedisStore::new(settings, key.clone(), DirStore::new(state_dir))
        .map_err(|e| anyhow::anyhow!("[cluster] {e}"))?;
    // A runtime of its own: the store's pooled connection is made later, by the runtime
    // that runs the ACME passes.
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cluster check runtime")?
        .block_on(store.check());
    match checked {
        Ok(()) => tracing::info!(redis = %cluster.redis, node = %node, key = %key.id(),
            "cluster: certificates, the ACME account and order locks are shared through Redis"),
        Err(StoreError::Unavailable(e)) => tracing::error!(redis = %cluster.redis, error = %e,
            "cluster: Redis is unreachable at start: serving the certificates kept in the state \
             directory; no certificate is ordered until Redis answers"),
        Err(e) => anyhow::bail!(
            "[cluster] encryption_key_file {} (key {}): {e}",
            key_path.display(),
            key.id()
        ),
    }
    Ok(Arc::new(store))
}
