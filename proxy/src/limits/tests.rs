//! The local limiter: nginx's modes, IPv6 prefixes, the bound on keys, the most limited
//! clients, idle keys dropped, connection slots.

use super::store::SHARDS;
use super::*;
use vigie_config::Rate;

fn zone(count: u32, per: u64, burst: u32, nodelay: bool, delay: Option<u32>, max: usize) -> Zone {
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
