//! Cluster-wide rate limits: with `[cluster]`, each limited request is decided by the
//! zone's GCRA run in Redis (`gcra.lua`, one `EVALSHA` — one round trip — per request), so
//! every instance draws from one budget per client.
//!
//! - The script is the local limiter's algorithm (governor's GCRA: the same emission interval,
//!   the same burst tolerance, the same burst capacity left), on Redis's clock (`TIME`), so
//!   the instances' clocks do not matter. It answers "admitted, with this much burst left" or
//!   "refused, retry in this long"; [`Zone::admitted`] turns the first into pass or delay,
//!   the very code the local limiter uses, so nginx's modes (no burst; burst + nodelay;
//!   burst; burst + delay) decide alike in both.
//! - The key is `{prefix}limit:{zone}:{client}` (client: the IPv4 address or the IPv6
//!   prefix, as the status page shows it); it expires when the client's bucket is full again.
//! - The client is the one the local limiter would key: the peer, or the address a trusted
//!   proxy forwarded (`[client_ip]`); a forwarded address from anyone else changes nothing.
//! - While Redis cannot decide (breaker open, error, timeout: see [`crate::cluster::link`]),
//!   `limits_on_redis_failure` decides: `fail_open`, this instance's own limiter (each
//!   instance then grants the whole rate); `fail_closed`, a refusal with the zone's status.
//!   Either is counted in `vigie_cluster_limiter_fallback_total`.
//!
//! All instances must define a zone alike: each call carries its caller's rate and burst.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use vigie_config::RedisFailure;

use super::{key_label, Decision, Zone};
use crate::cluster::link::{Link, LinkError};

/// How long a client refused because Redis is unreachable (`fail_closed`) is told to wait.
const CLOSED_RETRY: Duration = Duration::from_secs(1);

/// The cluster-wide limiter (see the module docs); one per process.
pub struct Shared {
    link: Arc<Link>,
    script: Script,
    prefix: String,
    on_failure: RedisFailure,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("link", &self.link)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

impl Shared {
    /// Limits decided through `link`, under keys starting with `prefix`, with `on_failure`
    /// deciding while Redis cannot.
    pub fn new(link: Arc<Link>, prefix: &str, on_failure: RedisFailure) -> Shared {
        Shared {
            link,
            script: Script::new(include_str!("gcra.lua")),
            prefix: prefix.to_owned(),
            on_failure,
        }
    }

    /// Decide for one request from `ip` in `zone` and count the decision in the zone.
    pub async fn check(&self, zone: &Zone, ip: IpAddr) -> Decision {
        let key = zone.key(ip);
        let d = match self.remote(zone, key).await {
            Ok(d) => d,
            Err(_) => self.fallback(zone, key),
        };
        zone.record(key, d);
        d
    }

    /// The Redis key of `key` in `zone`.
    pub fn redis_key(&self, zone: &Zone, key: u128) -> String {
        format!(
            "{}limit:{}:{}",
            self.prefix,
            zone.config.name,
            key_label(key, zone.config.ipv6_prefix)
        )
    }

    /// The script's decision, not counted.
    async fn remote(&self, zone: &Zone, key: u128) -> Result<Decision, LinkError> {
        let redis_key = self.redis_key(zone, key);
        let interval = u64::try_from(zone.interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let burst = zone.config.burst;
        let script = &self.script;
        let (admitted, value): (i64, i64) = self
            .link
            .run(|mut conn| async move {
                script
                    .key(redis_key)
                    .arg(interval)
                    .arg(burst)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(if admitted == 1 {
            zone.admitted(u32::try_from(value).unwrap_or(u32::MAX))
        } else {
            Decision::Reject(Duration::from_micros(value))
        })
    }

    /// What decides while Redis cannot: `limits_on_redis_failure`.
    fn fallback(&self, zone: &Zone, key: u128) -> Decision {
        let m = self.link.metrics();
        match self.on_failure {
            RedisFailure::FailOpen => {
                m.fallback_local.inc();
                zone.local(key)
            }
            RedisFailure::FailClosed => {
                m.fallback_refused.inc();
                Decision::Reject(CLOSED_RETRY)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
