//! The rate limiter's cost on the request path: one `Zone::check` with 100k distinct clients
//! tracked (the key space cycles, so every check finds an existing entry), against the cost
//! of resolving nothing at all. Run with `cargo bench -p vigie --bench limiter`.

#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigie::limits::Zone;
use vigie_config::{LimitZone, Rate};

fn zone(max_clients: usize) -> Zone {
    Zone::new(&LimitZone {
        name: "bench".into(),
        // Never reached: the bench measures the accounting, not rejections.
        rate: Rate {
            count: 1_000_000,
            per: Duration::from_secs(1),
        },
        burst: 1_000_000,
        nodelay: true,
        delay: None,
        max_clients,
        status: 429,
        exempt: vec![],
        ipv6_prefix: 64,
        max_connections: None,
    })
}

fn bench(c: &mut Criterion) {
    let clients: Vec<IpAddr> = (0..100_000u32)
        .map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
        .collect();
    let mut g = c.benchmark_group("limiter");
    g.throughput(Throughput::Elements(1));
    let z = zone(160_000);
    for ip in &clients {
        z.check(*ip);
    }
    let mut i = 0usize;
    g.bench_function("check_100k_clients", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            z.check(clients[i])
        })
    });
    // A full store: every new client evicts the least recently seen one.
    let small = zone(10_000);
    let mut j = 0u32;
    g.bench_function("check_evicting", |b| {
        b.iter(|| {
            j = j.wrapping_add(1);
            small.check(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + j)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
