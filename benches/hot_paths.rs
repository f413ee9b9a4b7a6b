//! vigie's own work per request and per reload, on the reference deployment
//! (`dist/examples/stack.toml`):
//! - `route`: what a request does to find its route, through `vigie::plan::routing` (the
//!   module the service routes with) — the site for its host (`Plan::site_for`), the
//!   normalised path (`normalize_path`), the longest-prefix route (`SitePlan::route_for`),
//!   and the three together (`Plan::route`);
//! - `cache_key`: the key of a request on the cached `/api/cv` route, plain and with
//!   `header:`/`cookie:`/`query:` key parts;
//! - `config`: `vigie_config::parse` of the whole file (the first step of `vigie check` and
//!   of a SIGHUP reload);
//! - `snapshot`: `Plan::compile` alone (what `vigie check` adds to parsing), and
//!   `Snapshot::build` (compile + acquire) from that config, cold (startup) and with the
//!   previous snapshot (a reload, which keeps upstream groups, limiter and cache zones).
//!
//! The config's `state_dir` is pointed at a temporary directory: the `tls = "acme"` sites get
//! stand-in certificates from the local CA kept there, as they do before ACME has issued
//! theirs. Nothing touches the network. Run with `cargo bench -p vigie --bench hot_paths`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use pingora::http::RequestHeader;
use vigie::filters::cache;
use vigie::plan::paths::normalize_path;
use vigie::plan::Plan;
use vigie::snapshot::Snapshot;
use vigie_config::{Config, RequestPart, RouteCache};

const STACK: &str = include_str!("../dist/examples/stack.toml");
const ORIGIN: &str = "dist/examples/stack.toml";

/// The reference config with its state directory moved to `state_dir`.
fn stack_text(state_dir: &std::path::Path) -> String {
    let from = r#"state_dir = "/var/lib/vigie""#;
    assert!(STACK.contains(from), "stack.toml no longer sets {from}");
    STACK.replace(
        from,
        &format!("state_dir = {:?}", state_dir.display().to_string()),
    )
}

/// A group whose benches each take about 2.5 s.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    g
}

fn route(c: &mut Criterion, snap: &Snapshot) {
    let mut g = group(c, "route");
    for host in [
        "example.com",
        "analytics.example.com",
        "unknown.example.org",
    ] {
        g.bench_with_input(BenchmarkId::new("site_for", host), host, |b, h| {
            b.iter(|| black_box(snap.site_for(black_box(h))).is_some())
        });
    }
    const STATIC: &str = "/_next/static/chunks/pages/_app-3f2a1b9c.js";
    for path in ["/", "/api/x/y", STATIC] {
        g.bench_with_input(BenchmarkId::new("normalize_path", path), path, |b, p| {
            b.iter(|| normalize_path(black_box(p)))
        });
    }
    // The apex site's routes, longest first: /api/cv, /api/, /.
    let site = snap.site_for("example.com").expect("apex site");
    for path in ["/api/cv", "/api/x/y", STATIC] {
        g.bench_with_input(BenchmarkId::new("prefix_search", path), path, |b, p| {
            b.iter(|| site.route_for(black_box(p)).is_some())
        });
    }
    for (host, path) in [("www.example.com", STATIC), ("analytics.example.com", "/")] {
        let id = BenchmarkId::new("request", format!("{host}{path}"));
        assert!(snap.route(host, path).is_some(), "{host}{path} unrouted");
        g.bench_function(id, |b| {
            b.iter(|| snap.route(black_box(host), black_box(path)).is_some())
        });
    }
    g.finish();
}

fn cache_key(c: &mut Criterion, snap: &Snapshot) {
    let site = snap.site_for("example.com").expect("apex site");
    let plain: RouteCache = site
        .routes
        .iter()
        .find(|r| r.path == "/api/cv")
        .and_then(|r| r.cache.as_ref().map(|(rc, _)| rc.clone()))
        .expect("/api/cv caches");
    let mut parts = plain.clone();
    parts.key = vec![
        RequestPart::Header(http::header::ACCEPT_LANGUAGE),
        RequestPart::Cookie("lang".into()),
        RequestPart::Query("page".into()),
    ];
    let mut req = RequestHeader::build("GET", b"/api/cv?page=2&sort=date", None).unwrap();
    for (name, value) in [
        ("host", "example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101",
        ),
        ("accept", "application/json"),
        ("accept-language", "fr-FR,fr;q=0.9,en;q=0.8"),
        (
            "cookie",
            "_ga=GA1.2.1234567890.1700000000; lang=fr; session=5f1c9e2a",
        ),
    ] {
        req.append_header(name, value).unwrap();
    }
    let mut g = group(c, "cache_key");
    g.bench_function("plain", |b| {
        b.iter(|| cache::key_for(black_box(&req), true, "example.com", &plain))
    });
    g.bench_function("header_cookie_query", |b| {
        b.iter(|| cache::key_for(black_box(&req), true, "example.com", &parts))
    });
    g.finish();
}

fn config_and_snapshot(c: &mut Criterion, text: &str, config: &Config, first: &Snapshot) {
    let mut g = group(c, "config");
    g.bench_function("parse_stack", |b| {
        b.iter(|| vigie_config::parse(black_box(text), ORIGIN).is_ok())
    });
    g.finish();

    let mut g = group(c, "snapshot");
    // A cold build takes milliseconds: 3 s lets criterion take its 20 samples.
    g.measurement_time(Duration::from_secs(3));
    // Each cold build opens its cache zone afresh (freed with the snapshot it belongs to).
    g.bench_function("compile", |b| {
        b.iter_batched(
            || config.clone(),
            |cfg| Plan::compile(cfg).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("build_cold", |b| {
        b.iter_batched(
            || config.clone(),
            |cfg| Snapshot::build(cfg, None).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("build_reload", |b| {
        b.iter_batched(
            || config.clone(),
            |cfg| Snapshot::build(cfg, Some(first)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let text = stack_text(dir.path());
    let config = vigie_config::parse(&text, ORIGIN).unwrap();
    let snap = Snapshot::build(config.clone(), None).unwrap();
    route(c, &snap);
    cache_key(c, &snap);
    config_and_snapshot(c, &text, &config, &snap);
}

criterion_group!(benches, bench);
criterion_main!(benches);
