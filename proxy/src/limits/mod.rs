//! Per-client rate limits (nginx `limit_req`) and per-client connection caps (`limit_conn`).
//!
//! A [`Zone`] is governor's GCRA over a [`BoundedStore`]: at most `max_clients` keys, kept in
//! sharded LRU maps, so a flood of distinct addresses evicts the least recently seen clients
//! instead of growing memory; keys whose bucket is full again are dropped by
//! [`Zone::retain_recent`] on a timer. Clients are keyed by IPv4 address, or by IPv6 prefix
//! (`/64` by default: one subscriber holds a whole /64).
//!
//! nginx's modes, with `rate = r` and `burst = b`:
//! - no burst: one request per emission interval (1/r); a second one inside it is rejected;
//! - `burst = b, nodelay = true`: up to b requests above the rate pass at once, then rejected;
//! - `burst = b`: requests above the rate are held and released at the rate, up to b waiting;
//! - `burst = b, delay = d`: the first d excess requests pass at once, the rest are held.
//!
//! With `[cluster]`, [`shared::Shared`] decides instead, with the same GCRA run in Redis, so
//! the budget is the cluster's; the zone's counters count either kind of decision, and the
//! local limiter decides when Redis cannot (see [`shared`]).
//!
//! Zones live in the snapshot and are carried over a reload when their definition is
//! unchanged, so a SIGHUP does not reset anyone's budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::{NotUntil, Quota, RateLimiter};
use vigie_config::LimitZone;

mod connections;
pub mod shared;
mod store;
mod top;

pub use connections::{ConnectionCounter, ConnectionSlot};
pub use store::BoundedStore;
pub use top::TopLimited;

type Limiter = RateLimiter<u128, BoundedStore, DefaultClock, StateInformationMiddleware>;

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Pass now.
    Allow,
    /// Pass after waiting this long (nginx's queued excess).
    Delay(Duration),
    /// Refuse; the client may retry after this long.
    Reject(Duration),
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct ZoneCounters {
    /// Requests passed at once.
    pub allowed: AtomicU64,
    /// Requests passed after a delay.
    pub delayed: AtomicU64,
    /// Requests refused.
    pub rejected: AtomicU64,
}

/// A client key in words: the IPv4 address, or the IPv6 prefix (`2001:db8::/64`).
pub fn key_label(key: u128, v6_prefix: u8) -> String {
    if key >> 32 == 0xffff {
        std::net::Ipv4Addr::from((key & 0xffff_ffff) as u32).to_string()
    } else {
        format!("{}/{}", std::net::Ipv6Addr::from(key), v6_prefix.min(128))
    }
}

/// One `[limits.NAME]` zone.
pub struct Zone {
    /// Its definition (compared on reload).
    pub config: LimitZone,
    limiter: Limiter,
    clock: DefaultClock,
    interval: Duration,
    /// Decision counters.
    pub counters: ZoneCounters,
    /// The clients limited most.
    pub top: TopLimited,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.config.name)
            .finish()
    }
}

/// The key of a client: its IPv4 address (as an IPv4-mapped value), or its IPv6 address
/// masked to `v6_prefix` bits.
pub fn client_key(ip: IpAddr, v6_prefix: u8) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let prefix = u32::from(v6_prefix.min(128));
            if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - prefix))
            }
        }
    }
}

impl Zone {
    /// Build a zone from its definition.
    pub fn new(cfg: &LimitZone) -> Zone {
        let interval = emission_interval(cfg);
        let burst = std::num::NonZeroU32::new(cfg.burst.saturating_add(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        let limiter: Limiter =
            RateLimiter::<u128, BoundedStore, DefaultClock, NoOpMiddleware<_>>::new(
                quota,
                BoundedStore::new(cfg.max_clients),
                clock.clone(),
            )
            .with_middleware::<StateInformationMiddleware>();
        Zone {
            config: cfg.clone(),
            limiter,
            clock,
            interval,
            counters: ZoneCounters::default(),
            top: TopLimited::default(),
        }
    }

    /// Whether `ip` is exempt from this zone.
    pub fn exempt(&self, ip: IpAddr) -> bool {
        self.config.exempt.iter().any(|n| n.contains(&ip))
    }

    /// Decide for one request from `ip` with this instance's own limiter (see the module
    /// docs for the modes), and count the decision.
    pub fn check(&self, ip: IpAddr) -> Decision {
        let key = self.key(ip);
        let d = self.local(key);
        self.record(key, d);
        d
    }

    /// The key `ip` is counted under in this zone.
    pub fn key(&self, ip: IpAddr) -> u128 {
        client_key(ip, self.config.ipv6_prefix)
    }

    /// The local limiter's decision for `key`, not counted.
    fn local(&self, key: u128) -> Decision {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => self.admitted(snapshot.remaining_burst_capacity()),
            Err(not_until) => self.refused(&not_until),
        }
    }

    /// The decision for a request the GCRA admitted, given the burst capacity left after it
    /// (governor's `remaining_burst_capacity`, or the same figure from the Redis script):
    /// nodelay passes it; otherwise the excess beyond `delay` waits one interval each.
    pub fn admitted(&self, remaining: u32) -> Decision {
        if self.config.nodelay {
            return Decision::Allow;
        }
        // Requests already queued ahead of this one, this one included beyond the first.
        let excess = self.config.burst.saturating_sub(remaining);
        let free = self.config.delay.unwrap_or(0);
        match excess.saturating_sub(free) {
            0 => Decision::Allow,
            n => Decision::Delay(self.interval * n),
        }
    }

    fn refused(&self, n: &NotUntil<<DefaultClock as Clock>::Instant>) -> Decision {
        Decision::Reject(n.wait_time_from(self.clock.now()))
    }

    /// Count decision `d` for `key` (the counters and the most limited clients).
    pub fn record(&self, key: u128, d: Decision) {
        let counter = match d {
            Decision::Allow => &self.counters.allowed,
            Decision::Delay(_) => &self.counters.delayed,
            Decision::Reject(_) => &self.counters.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if d != Decision::Allow {
            self.top.note(key);
        }
    }

    /// The emission interval: one request per interval at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Drop keys whose bucket is full again (indistinguishable from a new client).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }

    /// Clients tracked now (by this instance's own limiter).
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }

    /// The sustained rate as (count, window seconds), for the `RateLimit-Policy` header.
    pub fn policy(&self) -> (u32, u64) {
        (
            self.config.rate.count,
            self.config.rate.per.as_secs().max(1),
        )
    }
}

/// One request per this long at the zone's sustained rate (at least 1 ns).
fn emission_interval(cfg: &LimitZone) -> Duration {
    let count = cfg.rate.count.max(1);
    (cfg.rate.per / count).max(Duration::from_nanos(1))
}

/// Build the zones of a config, keeping `previous` ones whose definition is unchanged.
pub fn build_zones(
    defs: &std::collections::BTreeMap<String, LimitZone>,
    previous: Option<&HashMap<String, Arc<Zone>>>,
) -> HashMap<String, Arc<Zone>> {
    defs.iter()
        .map(|(name, cfg)| {
            let kept = previous
                .and_then(|p| p.get(name))
                .filter(|z| z.config == *cfg)
                .cloned();
            (
                name.clone(),
                kept.unwrap_or_else(|| Arc::new(Zone::new(cfg))),
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
