//! The Lua GCRA against a real `redis-server`: for each of nginx's modes, the same requests
//! get the same decisions from Redis as from the local limiter; idle keys expire; with Redis
//! gone, `fail_open` hands the decision to the local limiter.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_acme::store::redis_store::RedisSettings;
use vigie_config::{LimitZone, Rate, RedisFailure};

use super::Shared;
use crate::cluster::link::Link;
use crate::cluster::metrics::ClusterMetrics;
use crate::limits::{Decision, Zone};
use crate::metrics::Metrics;

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
struct TestRedis {
    child: Child,
    url: String,
}

impl TestRedis {
    fn start() -> TestRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (is the redis-server package installed? `make deps`)");
        TestRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A link to `redis` whose probe runs in this test's runtime, returned once it is up.
async fn link(redis: &TestRedis) -> (Arc<Link>, tokio::sync::watch::Sender<bool>) {
    let settings = RedisSettings {
        url: redis.url.clone(),
        password: None,
        prefix: "t:".into(),
        node: "t".into(),
        lease: Duration::from_secs(30),
        poll: Duration::from_secs(30),
    };
    let metrics = ClusterMetrics::register(&Metrics::new());
    let link = Link::new(&settings, Duration::from_secs(2), metrics).unwrap();
    let (stop, watch) = tokio::sync::watch::channel(false);
    let probe = link.clone();
    tokio::spawn(async move { probe.watch(watch).await });
    let start = Instant::now();
    while !link.is_up() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the link never came up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (link, stop)
}

fn zone(count: u32, burst: u32, nodelay: bool, delay: Option<u32>) -> Zone {
    Zone::new(&LimitZone {
        name: "z".into(),
        rate: Rate {
            count,
            per: Duration::from_secs(1),
        },
        burst,
        nodelay,
        delay,
        max_clients: 100,
        status: 429,
        exempt: vec![],
        ipv6_prefix: 64,
        max_connections: None,
    })
}

/// Decisions alike: the same kind, waits within `slack` of each other.
fn alike(a: Decision, b: Decision, slack: Duration) -> bool {
    match (a, b) {
        (Decision::Allow, Decision::Allow) => true,
        (Decision::Delay(x), Decision::Delay(y)) | (Decision::Reject(x), Decision::Reject(y)) => {
            x.abs_diff(y) <= slack
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lua_gcra_decides_as_the_local_limiter_in_every_mode() {
    let redis = TestRedis::start();
    let (link, _stop) = link(&redis).await;
    let shared = Shared::new(link.clone(), "t:", RedisFailure::FailOpen);
    // 10/s: 100 ms per request, far above the few milliseconds the requests take here.
    let modes = [
        ("no burst", 10, 0, false, None),
        ("burst + nodelay", 10, 5, true, None),
        ("burst", 10, 5, false, None),
        ("burst + delay", 10, 5, false, Some(2)),
    ];
    for (n, (mode, rate, burst, nodelay, delay)) in modes.into_iter().enumerate() {
        let (local, remote) = (
            zone(rate, burst, nodelay, delay),
            zone(rate, burst, nodelay, delay),
        );
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8));
        let mut l = Vec::new();
        let mut r = Vec::new();
        for _ in 0..9 {
            l.push(local.check(ip));
            r.push(shared.check(&remote, ip).await);
        }
        let slack = Duration::from_millis(20);
        assert!(
            l.iter().zip(&r).all(|(a, b)| alike(*a, *b, slack)),
            "{mode}:\nlocal {l:?}\nredis {r:?}"
        );
        // Both counted their decisions alike.
        let c = |z: &Zone| {
            use std::sync::atomic::Ordering::Relaxed;
            let c = &z.counters;
            (
                c.allowed.load(Relaxed),
                c.delayed.load(Relaxed),
                c.rejected.load(Relaxed),
            )
        };
        assert_eq!(c(&local), c(&remote), "{mode}");
        // An interval later, one more request passes again without burst.
        if burst == 0 {
            tokio::time::sleep(Duration::from_millis(110)).await;
            assert_eq!(shared.check(&remote, ip).await, Decision::Allow, "{mode}");
            assert!(matches!(
                shared.check(&remote, ip).await,
                Decision::Reject(_)
            ));
        }
    }
    // The expected figures themselves, for the delayed modes (the local unit tests' own).
    let z = zone(10, 5, false, None);
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
    let mut d = Vec::new();
    for _ in 0..7 {
        d.push(shared.check(&z, ip).await);
    }
    assert_eq!(d[0], Decision::Allow);
    for (i, dec) in d[1..6].iter().enumerate() {
        let expect = Duration::from_millis(100) * (i as u32 + 1);
        assert!(
            alike(*dec, Decision::Delay(expect), Duration::from_millis(5)),
            "{i}: {dec:?}"
        );
    }
    assert!(
        matches!(d[6], Decision::Reject(w) if w > Duration::from_millis(50)),
        "{d:?}"
    );
    // Its key lives until the bucket is full again: 6 intervals ahead, at most.
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(shared.redis_key(&z, z.key(ip)))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 400 && ttl <= 600, "PTTL {ttl}");
    assert!(link.is_up());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_fail_open_lets_the_local_limiter_decide() {
    let redis = TestRedis::start();
    let (link, _stop) = link(&redis).await;
    let open = Shared::new(link.clone(), "t:", RedisFailure::FailOpen);
    let closed = Shared::new(link.clone(), "t:", RedisFailure::FailClosed);
    let z = zone(1, 2, true, None);
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1));
    for _ in 0..3 {
        assert_eq!(open.check(&z, ip).await, Decision::Allow);
    }
    assert!(matches!(open.check(&z, ip).await, Decision::Reject(_)));
    drop(redis);
    // The request that meets the dead Redis is decided locally (a fresh local budget), and
    // opens the breaker: the next ones do not wait for Redis.
    assert_eq!(open.check(&z, ip).await, Decision::Allow);
    assert!(!link.is_up());
    let start = Instant::now();
    assert_eq!(open.check(&z, ip).await, Decision::Allow);
    assert_eq!(open.check(&z, ip).await, Decision::Allow);
    assert!(matches!(open.check(&z, ip).await, Decision::Reject(_)));
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        closed
            .check(&z, IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)))
            .await,
        Decision::Reject(Duration::from_secs(1))
    );
    let m = link.metrics();
    assert_eq!((m.fallback_local.get(), m.fallback_refused.get()), (4, 1));
    assert_eq!(m.redis_up.get(), 0);
}
