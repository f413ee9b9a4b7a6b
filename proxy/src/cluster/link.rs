//! The request path's link to the cluster's Redis: one multiplexed connection (redis-rs's
//! `ConnectionManager`, which reconnects by itself), a breaker in front of it, and its health
//! in metrics. The rate limiter uses it; a later cache-purge fan-out can share it.
//!
//! Behaviour:
//! - [`Link::run`] does one operation on Redis within `[cluster] redis_timeout`, and records
//!   its round trip in `vigie_cluster_redis_rtt_seconds`;
//! - the first failure (an error or no answer in time) opens the breaker: from then on
//!   [`Link::run`] answers [`LinkError::Down`] at once, without touching Redis, so a dead or
//!   slow Redis costs a request nothing;
//! - [`Link::watch`] (a background service) probes with `PING` every [`PROBE_DOWN`] while the
//!   link is down and every [`PROBE_UP`] while it is up; the first answer in time closes the
//!   breaker again;
//! - each change is logged once (down: a warning with the error; up: info) and shown by
//!   `vigie_cluster_redis_up` (1 or 0).
//!
//! The link starts down and comes up at the first probe that answers, a few milliseconds
//! after start when Redis is there.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;
use vigie_acme::store::redis_store::{client, RedisSettings};

use super::metrics::ClusterMetrics;

/// How often a down link is probed.
pub const PROBE_DOWN: Duration = Duration::from_millis(250);
/// How often an up link is probed (so the gauge is right on an idle instance too).
pub const PROBE_UP: Duration = Duration::from_secs(1);

/// Why [`Link::run`] did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The breaker is open (Redis failed earlier and no probe has answered since): nothing
    /// was sent.
    #[error("Redis is down (waiting for a probe to answer)")]
    Down,
    /// Redis did not answer within the timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis (or the connection to it) answered with an error.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The link to the cluster's Redis (see the module docs). Shared by `Arc`.
pub struct Link {
    client: redis::Client,
    url: String,
    conn: OnceLock<ConnectionManager>,
    up: AtomicBool,
    timeout: Duration,
    wake: tokio::sync::Notify,
    metrics: ClusterMetrics,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("redis", &self.url)
            .field("up", &self.is_up())
            .finish()
    }
}

impl Link {
    /// A link to the Redis of `settings`, each operation bounded by `timeout`, recording
    /// into `metrics`. Nothing is connected until [`Link::watch`] runs.
    pub fn new(
        settings: &RedisSettings,
        timeout: Duration,
        metrics: ClusterMetrics,
    ) -> anyhow::Result<Arc<Link>> {
        let client = client(settings).map_err(|e| anyhow::anyhow!("[cluster] {e}"))?;
        metrics.redis_up.set(0);
        Ok(Arc::new(Link {
            client,
            url: settings.url.clone(),
            conn: OnceLock::new(),
            up: AtomicBool::new(false),
            timeout,
            wake: tokio::sync::Notify::new(),
            metrics,
        }))
    }

    /// Whether the breaker is closed: operations go to Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The link's metrics (for the users of the link that add their own).
    pub fn metrics(&self) -> &ClusterMetrics {
        &self.metrics
    }

    /// Run `op` on the connection, bounded by the link's timeout; [`LinkError::Down`] at once
    /// when the breaker is open. A failure opens it (see the module docs).
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, LinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = match self.conn.get() {
            Some(c) if self.is_up() => c.clone(),
            _ => return Err(LinkError::Down),
        };
        let result = self.timed(op(conn)).await;
        if let Err(e) = &result {
            self.mark_down(e);
        }
        result
    }

    /// `fut` within the timeout, its round trip observed when it answered.
    async fn timed<T>(&self, fut: impl Future<Output = RedisResult<T>>) -> Result<T, LinkError> {
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => {
                self.metrics
                    .redis_rtt
                    .observe(start.elapsed().as_secs_f64());
                Ok(v)
            }
            Ok(Err(e)) => Err(LinkError::Redis(e)),
            Err(_) => Err(LinkError::Timeout(self.timeout)),
        }
    }

    fn mark_down(&self, why: &LinkError) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.metrics.redis_up.set(0);
            tracing::warn!(redis = %self.url, error = %why,
                "cluster: Redis does not answer: rate limits fall back to the cluster's \
                 failure mode (limits_on_redis_failure) until it does");
            self.wake.notify_one();
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            self.metrics.redis_up.set(1);
            tracing::info!(redis = %self.url, "cluster: Redis answers: rate limits are cluster-wide");
        }
    }

    /// Connect, then probe until `shutdown` (see the module docs). The connection is made
    /// here, so it lives in the runtime of the service that runs this.
    pub async fn watch(&self, mut shutdown: ShutdownWatch) {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(self.timeout))
            // One attempt per reconnection: the probe is the retry loop.
            .set_number_of_retries(0);
        let conn = match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(c) => self.conn.get_or_init(|| c).clone(),
            Err(e) => {
                tracing::error!(redis = %self.url, error = %e, "cluster: cannot set up the Redis link");
                return;
            }
        };
        let mut logged_start = false;
        loop {
            let mut c = conn.clone();
            let ping = self
                .timed(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
                .await;
            match ping {
                Ok(_) => self.mark_up(),
                Err(e) if self.is_up() => self.mark_down(&e),
                Err(e) if !logged_start => {
                    tracing::warn!(redis = %self.url, error = %e,
                        "cluster: Redis does not answer at start: rate limits use the cluster's \
                         failure mode (limits_on_redis_failure) until it does");
                }
                Err(_) => {}
            }
            logged_start = true;
            let every = if self.is_up() { PROBE_UP } else { PROBE_DOWN };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The background service that runs [`Link::watch`].
pub struct LinkWatch(pub Arc<Link>);

#[async_trait]
impl BackgroundService for LinkWatch {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.watch(shutdown).await;
    }
}
