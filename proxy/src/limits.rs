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
//! Zones live in the snapshot and are carried over a reload when their definition is
//! unchanged, so a SIGHUP does not reset anyone's budget.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware, StateSnapshot};
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::{NotUntil, Quota, RateLimiter};
use lru::LruCache;
use vigie_config::LimitZone;

const SHARDS: usize = 16;

/// A keyed GCRA state store with a hard bound on the number of keys (see the module docs).
pub struct BoundedStore {
    shards: Vec<Mutex<LruCache<u128, u64>>>,
}

impl BoundedStore {
    /// A store holding at most `max` keys (rounded up to a multiple of the shard count).
    pub fn new(max: usize) -> Self {
        let per = NonZeroUsize::new(max.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        BoundedStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    fn shard(&self, key: &u128) -> &Mutex<LruCache<u128, u64>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }
}

impl StateStore for BoundedStore {
    type Key = u128;

    fn measure_and_replace<T, F, E>(&self, key: &u128, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let prev = shard.get(key).copied().map(Nanos::from);
        let (t, next) = f(prev)?;
        shard.put(*key, next.into());
        Ok(t)
    }
}

impl ShrinkableKeyedStateStore<u128> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let below: u64 = drop_below.into();
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            let stale: Vec<u128> = s
                .iter()
                .filter(|(_, t)| **t <= below)
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                s.pop(&k);
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::len(self) == 0
    }
}

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

/// How many limited clients [`TopLimited`] remembers.
const TOP_KEYS: usize = 64;

/// The clients a zone delayed or refused most, for the status page: counts per client key
/// over the last [`TOP_KEYS`] distinct clients limited (the least recently limited is
/// forgotten first). Only delayed and refused requests touch it; allowed ones never do.
#[derive(Debug)]
pub struct TopLimited(Mutex<LruCache<u128, u64>>);

impl Default for TopLimited {
    fn default() -> Self {
        TopLimited(Mutex::new(LruCache::new(
            NonZeroUsize::new(TOP_KEYS).unwrap_or(NonZeroUsize::MIN),
        )))
    }
}

impl TopLimited {
    fn note(&self, key: u128) {
        let mut top = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match top.get_mut(&key) {
            Some(n) => *n += 1,
            None => {
                top.put(key, 1);
            }
        }
    }

    /// The `n` most limited client keys and their counts, most limited first.
    pub fn top(&self, n: usize) -> Vec<(u128, u64)> {
        let mut all: Vec<(u128, u64)> = self
            .0
            .lock()
            .map(|t| t.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
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
        let count = cfg.rate.count.max(1);
        let interval = (cfg.rate.per / count).max(Duration::from_nanos(1));
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

    /// Decide for one request from `ip` (see the module docs for the modes).
    pub fn check(&self, ip: IpAddr) -> Decision {
        let key = client_key(ip, self.config.ipv6_prefix);
        let d = match self.limiter.check_key(&key) {
            Ok(snapshot) => self.admitted(&snapshot),
            Err(not_until) => self.refused(&not_until),
        };
        let counter = match d {
            Decision::Allow => &self.counters.allowed,
            Decision::Delay(_) => &self.counters.delayed,
            Decision::Reject(_) => &self.counters.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if d != Decision::Allow {
            self.top.note(key);
        }
        d
    }

    fn admitted(&self, s: &StateSnapshot) -> Decision {
        if self.config.nodelay {
            return Decision::Allow;
        }
        // Requests already queued ahead of this one, this one included beyond the first.
        let excess = self
            .config
            .burst
            .saturating_sub(s.remaining_burst_capacity());
        let free = self.config.delay.unwrap_or(0);
        match excess.saturating_sub(free) {
            0 => Decision::Allow,
            n => Decision::Delay(self.interval * n),
        }
    }

    fn refused(&self, n: &NotUntil<<DefaultClock as Clock>::Instant>) -> Decision {
        Decision::Reject(n.wait_time_from(self.clock.now()))
    }

    /// Drop keys whose bucket is full again (indistinguishable from a new client).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }

    /// Clients tracked now.
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

/// Concurrent connections per client address, counted from accept to close.
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; the count drops when this drops.
#[derive(Debug)]
pub struct ConnectionSlot {
    counter: Arc<ConnectionCounter>,
    ip: IpAddr,
}

impl ConnectionCounter {
    /// Take a slot for `ip` if it has fewer than `max` open; `None` when it is at the cap.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            counter: self.clone(),
            ip,
        })
    }

    /// Open connections of `ip`.
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .map_or(0, |o| o.get(&ip).copied().unwrap_or(0))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vigie_config::Rate;

    fn zone(
        count: u32,
        per: u64,
        burst: u32,
        nodelay: bool,
        delay: Option<u32>,
        max: usize,
    ) -> Zone {
        Zone::new(&LimitZone {
            name: "t".into(),
            rate: Rate {
                count,
                per: Duration::from_secs(per),
            },
            burst,
            nodelay,
            delay,
            max_clients: max,
            status: 429,
            exempt: vec![],
            ipv6_prefix: 64,
            max_connections: None,
        })
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn nginx_modes() {
        // No burst: one per interval.
        let z = zone(1, 60, 0, false, None, 100);
        assert_eq!(z.check(ip(1)), Decision::Allow);
        assert!(matches!(z.check(ip(1)), Decision::Reject(d) if d > Duration::from_secs(58)));
        // Burst + nodelay: 1 + 5 at once.
        let z = zone(1, 60, 5, true, None, 100);
        let allowed = (0..10)
            .filter(|_| z.check(ip(1)) == Decision::Allow)
            .count();
        assert_eq!(allowed, 6);
        // Burst, delayed: the first passes, the next 5 wait 1, 2 ... 5 intervals, the rest go.
        let z = zone(10, 1, 5, false, None, 100);
        let d: Vec<Decision> = (0..8).map(|_| z.check(ip(1))).collect();
        assert_eq!(d[0], Decision::Allow);
        for (i, dec) in d[1..6].iter().enumerate() {
            let expect = Duration::from_millis(100) * (i as u32 + 1);
            assert!(
                matches!(dec, Decision::Delay(x) if x.abs_diff(expect) < Duration::from_millis(5)),
                "{i}: {dec:?}"
            );
        }
        assert!(matches!(d[6], Decision::Reject(_)));
        // Two-stage: delay = 2 passes 2 excess at once, then delays.
        let z = zone(10, 1, 5, false, Some(2), 100);
        let d: Vec<Decision> = (0..5).map(|_| z.check(ip(1))).collect();
        assert_eq!(
            &d[..3],
            &[Decision::Allow, Decision::Allow, Decision::Allow]
        );
        assert!(matches!(d[3], Decision::Delay(_)));
    }

    #[test]
    fn ipv6_is_keyed_by_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a, 64), client_key(b, 64));
        assert_ne!(client_key(a, 64), client_key(c, 64));
        assert_ne!(client_key(a, 128), client_key(b, 128));
        assert_ne!(client_key(ip(1), 64), client_key(ip(2), 64));
    }

    #[test]
    fn a_million_distinct_clients_stay_within_max_clients() {
        let z = zone(100, 60, 20, true, None, 10_000);
        for n in 0..1_000_000u32 {
            z.check(ip(n));
        }
        let tracked = z.tracked();
        assert!(tracked <= 10_000 + SHARDS, "{tracked}");
        assert!(tracked >= 9_000, "{tracked}");
        // The most recent client is still tracked: it is refused after its burst.
        let last = ip(999_999);
        let refused = (0..30)
            .filter(|_| matches!(z.check(last), Decision::Reject(_)))
            .count();
        assert_eq!(refused, 10);
    }

    #[test]
    fn the_most_limited_clients_are_listed_first() {
        let z = zone(1, 60, 0, false, None, 100);
        for _ in 0..4 {
            z.check(ip(7));
        }
        for _ in 0..2 {
            z.check(ip(8));
        }
        z.check(ip(9));
        let top: Vec<(String, u64)> = z
            .top
            .top(5)
            .into_iter()
            .map(|(k, n)| (key_label(k, 64), n))
            .collect();
        let (a, b) = (ip(7).to_string(), ip(8).to_string());
        assert_eq!(
            top,
            vec![(a, 3), (b, 1)],
            "the first request of each passes"
        );
        let v6 = client_key("2001:db8:1:2:3:4:5:6".parse().unwrap(), 64);
        assert_eq!(key_label(v6, 64), "2001:db8:1:2::/64");
    }

    #[test]
    fn idle_clients_are_dropped() {
        let z = zone(1000, 1, 0, false, None, 100);
        z.check(ip(1));
        z.check(ip(2));
        assert_eq!(z.tracked(), 2);
        std::thread::sleep(Duration::from_millis(5));
        z.retain_recent();
        assert_eq!(z.tracked(), 0);
    }

    #[test]
    fn connection_slots_are_counted_and_released() {
        let c = Arc::new(ConnectionCounter::default());
        let a = c.try_acquire(ip(1), 2).unwrap();
        let _b = c.try_acquire(ip(1), 2).unwrap();
        assert!(c.try_acquire(ip(1), 2).is_none());
        assert!(c.try_acquire(ip(2), 2).is_some());
        drop(a);
        assert_eq!(c.open(ip(1)), 1);
        assert!(c.try_acquire(ip(1), 2).is_some());
    }
}
