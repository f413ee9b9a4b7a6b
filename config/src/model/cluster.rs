//! `[cluster]`: several vigie instances acting as one edge, sharing state through Redis.

use std::path::PathBuf;
use std::time::Duration;

/// `[cluster]`: the shared Redis and this node's place in the cluster. Without it, vigie
/// needs no Redis and keeps everything in its state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The Redis URL without a password: `redis://host:port/db` or `rediss://` (TLS).
    pub redis: String,
    /// Where the Redis password comes from; `None`: no password (or in the URL's user only).
    pub password: Option<SecretSource>,
    /// Prefix of every key vigie writes. Default `vigie:`.
    pub key_prefix: String,
    /// This node's name in locks and logs; `None`: the host name, read at start.
    pub node_id: Option<String>,
    /// The 32-byte key private keys and the ACME account key are encrypted with in Redis.
    pub encryption_key_file: PathBuf,
    /// How long an order lock lives without being renewed (a dead holder's lock expires
    /// after this). Default 30s.
    pub lock_lease: Duration,
    /// How often certificates are re-read from Redis when no notification came. Default 30s.
    pub poll: Duration,
    /// How long a rate-limit decision (or a health probe) waits for Redis before it counts as
    /// a failure. Default 100ms.
    pub redis_timeout: Duration,
    /// What rate limits do while Redis cannot decide. Default [`RedisFailure::FailOpen`].
    pub limits_on_redis_failure: RedisFailure,
}

/// `limits_on_redis_failure`: who decides a limited request while Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisFailure {
    /// `fail_open`: this instance's own limiter decides (each instance then grants the whole
    /// rate by itself).
    #[default]
    FailOpen,
    /// `fail_closed`: limited routes refuse with the zone's status; unlimited routes serve.
    FailClosed,
}

/// A secret kept out of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Read from this file (trailing newline removed) at start.
    File(PathBuf),
    /// Read from this environment variable at start.
    Env(String),
}
