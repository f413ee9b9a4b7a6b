//! Cache purge fan-out in a `[cluster]`: a purge taken by one instance (`POST /cache/purge`,
//! `vigie cache purge`) is published on the Redis channel `PREFIXpurge`, and every other
//! instance removes the same URL (or prefix) from its own cache zones.
//!
//! Pub/sub delivers to whoever listens at that moment. An instance cut off from Redis when
//! the purge is published does not get it, so the instance that took the purge says how
//! many other instances received it ([`Fanout::publish`] returns Redis's own count), and
//! says so plainly when Redis could not be reached: the local purge is done either way.
//! [`Listener`] subscribes again by itself once Redis answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use vigie_acme::store::redis_store::{client, RedisSettings};

use crate::snapshot::SnapshotHandle;

/// How long publishing a purge may take before Redis counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);

/// One purge, as published.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Message {
    /// The publishing process (random per start), so an instance skips its own purges even
    /// if two nodes were given the same node id.
    origin: u64,
    /// The publishing node's id, for the log.
    node: String,
    url: String,
    prefix: bool,
}

/// Publishes this instance's purges; shared with the [`Listener`], which says whether this
/// instance is subscribed (so it is not counted among the others).
pub struct Fanout {
    client: redis::Client,
    channel: String,
    node: String,
    origin: u64,
    subscribed: AtomicBool,
    counts: IntCounterVec,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("channel", &self.channel)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Fanout {
    /// A fan-out for `settings`, counting in `registry`'s `vigie_cluster_purges_total`
    /// (`direction`: `sent`, `received`, `failed`). Nothing is connected yet.
    pub fn new(settings: &RedisSettings, registry: &prometheus::Registry) -> anyhow::Result<Self> {
        let client = client(settings).map_err(|e| anyhow::anyhow!("[cluster] {e}"))?;
        let counts = IntCounterVec::new(
            Opts::new(
                "vigie_cluster_purges_total",
                "Cache purges shared through Redis: sent to the cluster, received from \
                 another instance, or failed to send (Redis unreachable).",
            ),
            &["direction"],
        )?;
        // Registered once per process; a second fan-out (none today) would count unlisted.
        let _ = registry.register(Box::new(counts.clone()));
        Ok(Fanout {
            client,
            channel: format!("{}purge", settings.prefix),
            node: settings.node.clone(),
            origin: rand::random(),
            subscribed: AtomicBool::new(false),
            counts,
        })
    }

    /// Publish a purge of `url` (every URL under it with `prefix`) to the other instances;
    /// how many received it, or why Redis could not be reached.
    pub async fn publish(&self, url: &str, prefix: bool) -> Result<usize, String> {
        let message = Message {
            origin: self.origin,
            node: self.node.clone(),
            url: url.to_string(),
            prefix,
        };
        let payload = serde_json::to_string(&message).map_err(|e| e.to_string())?;
        let sent = tokio::time::timeout(TIMEOUT, async {
            let mut c = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(&payload)
                .query_async::<usize>(&mut c)
                .await
        })
        .await;
        let result = match sent {
            Ok(Ok(n)) => Ok(n.saturating_sub(usize::from(self.subscribed.load(Ordering::Relaxed)))),
            Ok(Err(e)) => Err(format!("Redis: {e}")),
            Err(_) => Err(format!(
                "Redis did not answer within {}s",
                TIMEOUT.as_secs()
            )),
        };
        match &result {
            Ok(_) => self.counts.with_label_values(&["sent"]).inc(),
            Err(e) => {
                self.counts.with_label_values(&["failed"]).inc();
                tracing::warn!(error = %e, url = %url,
                    "cache purge: purged here only; the other instances were not told");
            }
        }
        result
    }
}

/// Listens on the purge channel and purges what other instances published from this
/// instance's cache zones (those of the snapshot current when the message arrives).
pub struct Listener {
    fanout: Arc<Fanout>,
    snapshots: SnapshotHandle,
}

impl Listener {
    /// A listener for `fanout`'s channel, purging the caches of `snapshots`.
    pub fn new(fanout: Arc<Fanout>, snapshots: SnapshotHandle) -> Self {
        Listener { fanout, snapshots }
    }

    fn apply(&self, payload: &[u8]) {
        let message: Message = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cache purge from the cluster: not a purge message; ignored");
                return;
            }
        };
        if message.origin == self.fanout.origin {
            return;
        }
        let snap = self.snapshots.load_full();
        let purged: usize = snap
            .caches
            .values()
            .map(|z| z.purge(&message.url, message.prefix))
            .sum();
        self.fanout.counts.with_label_values(&["received"]).inc();
        tracing::info!(from = %message.node, url = %message.url, prefix = message.prefix,
            purged, "cache purge from the cluster");
    }

    /// Subscribe and apply messages until the connection drops or `shutdown`; whether the
    /// subscription was made.
    async fn listen(&self, shutdown: &mut ShutdownWatch) -> Result<(), redis::RedisError> {
        let mut ps = self.fanout.client.get_async_pubsub().await?;
        ps.subscribe(&self.fanout.channel).await?;
        self.fanout.subscribed.store(true, Ordering::Relaxed);
        tracing::info!(channel = %self.fanout.channel, "listening for cache purges from the cluster");
        let mut messages = ps.on_message();
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(m) => self.apply(m.get_payload_bytes()),
                    None => break,
                },
                _ = shutdown.changed() => break,
            }
        }
        self.fanout.subscribed.store(false, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for Listener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut logged = false;
        loop {
            match self.listen(&mut shutdown).await {
                Ok(()) => logged = false,
                Err(e) if !logged => {
                    tracing::warn!(error = %e,
                        "cannot listen for cache purges from the cluster; trying again every second");
                    logged = true;
                }
                Err(_) => {}
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
