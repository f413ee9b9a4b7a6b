//! Prometheus metrics: one registry, owned by [`Metrics`] and passed to whoever records.
//!
//! Request metrics are recorded once per request in the `logging` phase. Values that live
//! elsewhere (upstream health and in-flight counts, limiter decisions, certificates) are read
//! from the current snapshot and the ACME manager when `/metrics` is scraped, so the request
//! path pays nothing for them. Labels stay small: site (its first name), route (the prefix as
//! configured), method, status class, upstream, server address. Never raw paths or clients.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::snapshot::Snapshot;

mod acme;
pub mod reads;

pub use acme::AcmeFigures;

/// Latency buckets, seconds: 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// All of vigie's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_duration: HistogramVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    in_flight: IntGauge,
    connections: IntGauge,
    retries: IntCounterVec,
    tls_handshakes: IntCounterVec,
    reloads: IntCounterVec,
    config_info: IntGaugeVec,
    config_loaded: IntGauge,
    server_up: IntGaugeVec,
    server_in_flight: IntGaugeVec,
    limit_requests: IntCounterVec,
    limit_clients: IntGaugeVec,
    cert_not_after: IntGaugeVec,
    acme: acme::AcmeMetrics,
    connections_refused: IntCounter,
    cache_requests: IntCounterVec,
    cache_bytes: IntGaugeVec,
    cache_entries: IntGaugeVec,
    cache_evictions: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| {
        unreachable!("metric {name} is well-formed: {e}");
    });
    let _ = r.register(Box::new(c.clone()));
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| {
        unreachable!("metric {name} is well-formed: {e}");
    });
    let _ = r.register(Box::new(g.clone()));
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable!("metric {name} is well-formed: {e}"));
    let _ = r.register(Box::new(h.clone()));
    h
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One finished request, as the `logging` phase saw it.
#[derive(Debug)]
pub struct RequestRecord<'a> {
    /// Site label (`-` when no site matched).
    pub site: &'a str,
    /// Route label (`-` when no route matched).
    pub route: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Response status (0 when none was sent).
    pub status: u16,
    /// Whole request time.
    pub duration: Duration,
    /// Upstream group and time to its response header, when proxied.
    pub upstream: Option<(&'a str, Duration)>,
    /// Request body bytes read.
    pub bytes_in: usize,
    /// Response body bytes sent.
    pub bytes_out: usize,
    /// Extra attempts on other servers.
    pub retries: u32,
    /// Cache zone and what the cache did (`HIT`, `MISS`...), on caching routes.
    pub cache: Option<(&'a str, &'static str)>,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        let m = Metrics {
            requests: counter(
                &r,
                "vigie_requests_total",
                "Requests answered.",
                &["site", "route", "method", "status_class"],
            ),
            duration: histogram(
                &r,
                "vigie_request_duration_seconds",
                "Time from request start to the end of the response.",
                &["site", "route"],
            ),
            upstream_duration: histogram(
                &r,
                "vigie_upstream_duration_seconds",
                "Time from choosing a server to its response header.",
                &["upstream"],
            ),
            bytes_in: counter(
                &r,
                "vigie_request_body_bytes_total",
                "Request body bytes received.",
                &["site"],
            ),
            bytes_out: counter(
                &r,
                "vigie_response_body_bytes_total",
                "Response body bytes sent.",
                &["site"],
            ),
            in_flight: {
                let g = IntGauge::new("vigie_requests_in_flight", "Requests being served now.")
                    .unwrap_or_else(|e| unreachable!("{e}"));
                let _ = r.register(Box::new(g.clone()));
                g
            },
            connections: {
                let g = IntGauge::new(
                    "vigie_downstream_connections",
                    "Client connections open now.",
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                let _ = r.register(Box::new(g.clone()));
                g
            },
            retries: counter(
                &r,
                "vigie_upstream_retries_total",
                "Requests retried on another server.",
                &["upstream"],
            ),
            tls_handshakes: counter(
                &r,
                "vigie_tls_handshakes_total",
                "TLS handshakes by result.",
                &["result"],
            ),
            reloads: counter(
                &r,
                "vigie_config_reloads_total",
                "Configuration reloads by result.",
                &["result"],
            ),
            config_info: gauge(
                &r,
                "vigie_config_info",
                "The loaded configuration (1), by hash.",
                &["hash"],
            ),
            config_loaded: {
                let g = IntGauge::new(
                    "vigie_config_loaded_timestamp_seconds",
                    "When the loaded configuration was loaded.",
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                let _ = r.register(Box::new(g.clone()));
                g
            },
            server_up: gauge(
                &r,
                "vigie_upstream_server_up",
                "1 when the server is healthy for the active check.",
                &["upstream", "server"],
            ),
            server_in_flight: gauge(
                &r,
                "vigie_upstream_server_in_flight",
                "Requests in flight to the server.",
                &["upstream", "server"],
            ),
            limit_requests: counter(
                &r,
                "vigie_limit_requests_total",
                "Rate-limit decisions.",
                &["zone", "decision"],
            ),
            limit_clients: gauge(
                &r,
                "vigie_limit_tracked_clients",
                "Clients tracked by the zone.",
                &["zone"],
            ),
            cert_not_after: gauge(
                &r,
                "vigie_certificate_not_after_timestamp_seconds",
                "Expiry of the certificate served for a name.",
                &["name", "source"],
            ),
            acme: acme::AcmeMetrics::new(&r),
            connections_refused: {
                let c = IntCounter::new(
                    "vigie_connections_refused_total",
                    "Connections closed by the per-client connection cap.",
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                let _ = r.register(Box::new(c.clone()));
                c
            },
            cache_requests: counter(
                &r,
                "vigie_cache_requests_total",
                "Requests on caching routes, by what the cache did (HIT, MISS, STALE...).",
                &["zone", "status"],
            ),
            cache_bytes: gauge(
                &r,
                "vigie_cache_bytes",
                "Bytes held by a cache zone, per tier (memory, disk).",
                &["zone", "tier"],
            ),
            cache_entries: gauge(
                &r,
                "vigie_cache_entries",
                "Entries held by a cache zone, per tier (memory, disk).",
                &["zone", "tier"],
            ),
            cache_evictions: counter(
                &r,
                "vigie_cache_evictions_total",
                "Entries a cache zone dropped to stay within its bounds.",
                &["zone"],
            ),
            registry: r,
        };
        // Series with known labels start at 0, so `increase()` and alerts see them at once.
        for result in ["ok", "failed"] {
            m.reloads.with_label_values(&[result]);
        }
        for result in ["ok", "failed", "timeout", "acme"] {
            m.tls_handshakes.with_label_values(&[result]);
        }
        Arc::new(m)
    }

    /// The registry, for modules that keep their own metrics in it (the cluster's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A request started.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// Requests being served now (`vigie_requests_in_flight`).
    pub fn requests_in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// A request ended: count it once.
    pub fn request_done(&self, r: &RequestRecord<'_>) {
        self.in_flight.dec();
        let class = match r.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "none",
        };
        self.requests
            .with_label_values(&[r.site, r.route, r.method, class])
            .inc();
        self.duration
            .with_label_values(&[r.site, r.route])
            .observe(r.duration.as_secs_f64());
        if let Some((up, d)) = r.upstream {
            self.upstream_duration
                .with_label_values(&[up])
                .observe(d.as_secs_f64());
            if r.retries > 0 {
                self.retries
                    .with_label_values(&[up])
                    .inc_by(u64::from(r.retries));
            }
        }
        if let Some((zone, status)) = r.cache {
            self.cache_requests.with_label_values(&[zone, status]).inc();
        }
        self.bytes_in
            .with_label_values(&[r.site])
            .inc_by(r.bytes_in as u64);
        self.bytes_out
            .with_label_values(&[r.site])
            .inc_by(r.bytes_out as u64);
    }

    /// A client connection opened; it counts until the guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGauge {
        self.connections.inc();
        ConnectionGauge(self.clone())
    }

    /// A TLS handshake ended (`ok`, `failed`, `timeout`, `acme`).
    pub fn tls_handshake(&self, result: &str) {
        self.tls_handshakes.with_label_values(&[result]).inc();
    }

    /// A connection was refused by the connection cap.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// A reload ended.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// A configuration became live.
    pub fn config_loaded(&self, snap: &Snapshot) {
        self.config_info.reset();
        self.config_info
            .with_label_values(&[&config_hash(snap)])
            .set(1);
        self.config_loaded.set(unix(snap.loaded_at));
    }

    /// Refresh the values read from elsewhere, then encode everything as Prometheus text.
    pub fn render(
        &self,
        snap: &Snapshot,
        certs: &[(String, &'static str, SystemTime)],
        acme: &AcmeFigures,
    ) -> Vec<u8> {
        self.server_up.reset();
        self.server_in_flight.reset();
        for (name, group) in &snap.upstreams {
            for server in group.servers() {
                let s = server.to_string();
                self.server_up
                    .with_label_values(&[name.as_str(), s.as_str()])
                    .set(i64::from(group.is_healthy(server)));
                self.server_in_flight
                    .with_label_values(&[name.as_str(), s.as_str()])
                    .set(group.inflight(server) as i64);
            }
        }
        for (name, zone) in &snap.limits {
            let c = &zone.counters;
            for (decision, v) in [
                ("allowed", &c.allowed),
                ("delayed", &c.delayed),
                ("rejected", &c.rejected),
            ] {
                let m = self
                    .limit_requests
                    .with_label_values(&[name.as_str(), decision]);
                m.reset();
                m.inc_by(v.load(std::sync::atomic::Ordering::Relaxed));
            }
            self.limit_clients
                .with_label_values(&[name.as_str()])
                .set(zone.tracked() as i64);
        }
        for (name, zone) in &snap.caches {
            let (mem, disk, evictions) = zone.usage();
            let (mem_n, disk_n) = zone.entries();
            let n = name.as_str();
            self.cache_bytes
                .with_label_values(&[n, "memory"])
                .set(mem as i64);
            self.cache_entries
                .with_label_values(&[n, "memory"])
                .set(mem_n as i64);
            if zone.config.disk.is_some() {
                self.cache_bytes
                    .with_label_values(&[n, "disk"])
                    .set(disk as i64);
                self.cache_entries
                    .with_label_values(&[n, "disk"])
                    .set(disk_n as i64);
            }
            let m = self.cache_evictions.with_label_values(&[n]);
            m.reset();
            m.inc_by(evictions);
        }
        self.cert_not_after.reset();
        for (name, source, not_after) in certs {
            self.cert_not_after
                .with_label_values(&[name.as_str(), source])
                .set(unix(*not_after));
        }
        self.acme.refresh(acme);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// A stable hash of the configuration (its structured form), for `vigie_config_info`.
pub fn config_hash(snap: &Snapshot) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}", snap.config).hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Counts one open client connection in `vigie_downstream_connections` while alive.
pub struct ConnectionGauge(Arc<Metrics>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}
