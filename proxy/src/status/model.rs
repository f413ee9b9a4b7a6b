//! The shape of `/status.json`: plain serde structs, one per object of the document (the
//! README's "Status page" section lists their fields). `json` fills them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::history;

/// The whole status document.
#[derive(Debug, Serialize)]
pub struct Status {
    /// When it was built.
    pub generated_at: u64,
    /// Seconds between two history points.
    pub history_step_seconds: u64,
    /// The process.
    pub process: Process,
    /// Sites in configuration order.
    pub sites: Vec<Site>,
    /// Upstream groups by name.
    pub upstreams: Vec<Upstream>,
    /// One entry per TLS site.
    pub certificates: Vec<Certificate>,
    /// Rate-limit zones by name.
    pub limits: Vec<Limit>,
    /// Cache zones by name.
    pub caches: Vec<Cache>,
}

/// The process and its configuration.
#[derive(Debug, Serialize)]
pub struct Process {
    /// vigie's version.
    pub version: &'static str,
    /// Process id.
    pub pid: u32,
    /// When it started.
    pub started_at: u64,
    /// Seconds since then.
    pub uptime_seconds: u64,
    /// Client connections open now.
    pub connections: i64,
    /// Requests being served now.
    pub requests_in_flight: i64,
    /// Resident memory (Linux `VmRSS`), `null` where unknown.
    pub memory_rss_bytes: Option<u64>,
    /// When the running configuration was loaded.
    pub config_loaded_at: u64,
    /// Its hash (as `vigie_config_info` labels it).
    pub config_hash: String,
    /// Reloads applied since start.
    pub reloads_applied: u64,
    /// Reloads refused since start.
    pub reloads_refused: u64,
    /// The last reload, `null` before the first.
    pub last_reload: Option<Reload>,
    /// Whether reading this needs the admin token (non-loopback admin address).
    pub token_required: bool,
}

/// How a reload ended.
#[derive(Debug, Serialize)]
pub struct Reload {
    /// When.
    pub at: u64,
    /// `applied` or `refused`.
    pub result: &'static str,
    /// Why it was refused.
    pub error: Option<String>,
}

/// Requests per status class.
#[derive(Debug, Default, Serialize)]
pub struct Classes {
    /// 1xx.
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// 5xx.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
    /// No response sent (client gone, connection closed).
    pub none: u64,
    /// The sum.
    pub total: u64,
}

impl From<history::Classes> for Classes {
    fn from(c: history::Classes) -> Self {
        Classes {
            c1xx: c[0],
            c2xx: c[1],
            c3xx: c[2],
            c4xx: c[3],
            c5xx: c[4],
            none: c[5],
            total: c.iter().sum(),
        }
    }
}

/// One site.
#[derive(Debug, Serialize)]
pub struct Site {
    /// Its label in metrics and logs: its first name.
    pub name: String,
    /// Every name it serves.
    pub names: Vec<String>,
    /// `acme`, `internal`, `files` or `none`.
    pub tls: &'static str,
    /// Requests answered since start.
    pub requests: Classes,
    /// Requests per second over the last minute of history.
    pub rate_per_second: f64,
    /// Requests per history step, oldest first (up to 5 minutes).
    pub history: Vec<Point>,
    /// Routes in matching order.
    pub routes: Vec<Route>,
}

/// One history step of a site.
#[derive(Debug, Serialize)]
pub struct Point {
    /// End of the step.
    pub at: u64,
    /// Requests answered in it.
    pub requests: Classes,
}

/// One route.
#[derive(Debug, Serialize)]
pub struct Route {
    /// Its path (prefix, exact path or expression).
    pub path: String,
    /// `prefix`, `exact` or `regex`.
    #[serde(rename = "match")]
    pub matcher: &'static str,
    /// `proxy`, `redirect`, `respond` or `static`.
    pub kind: &'static str,
    /// Upstream group of a proxy route.
    pub upstream: Option<String>,
    /// Rate-limit zone.
    pub limit: Option<String>,
    /// Cache zone.
    pub cache: Option<String>,
    /// Requests answered since start.
    pub requests: Classes,
}

/// One upstream group.
#[derive(Debug, Serialize)]
pub struct Upstream {
    /// Its name.
    pub name: String,
    /// `round_robin`, `least_conn`, `hash` or `random_two`.
    pub balance: &'static str,
    /// The active health check, `null` without one.
    pub health_check: Option<HealthCheck>,
    /// Failures that mark a server down (0: never).
    pub max_fails: u32,
    /// For how long, seconds.
    pub fail_timeout_seconds: f64,
    /// Servers in configuration order.
    pub servers: Vec<Server>,
}

/// An active health check's settings.
#[derive(Debug, Serialize)]
pub struct HealthCheck {
    /// Path requested.
    pub path: String,
    /// Seconds between checks.
    pub interval_seconds: f64,
    /// Successes that bring a server back.
    pub rise: u32,
    /// Failures that take it out.
    pub fall: u32,
}

/// One server of a group.
#[derive(Debug, Serialize)]
pub struct Server {
    /// `IP:PORT`.
    pub address: String,
    /// `up` or `down`.
    pub state: &'static str,
    /// Why it is down: `health_check` or `failures`.
    pub down_by: Option<&'static str>,
    /// Since when it is in this state (`null`: since the group was built, for `up`).
    pub since: Option<u64>,
    /// When a server marked down by failures is tried again.
    pub down_until: Option<u64>,
    /// Why the last health check failed, when it did.
    pub last_check_error: Option<String>,
    /// Requests in flight to it now.
    pub in_flight: usize,
    /// Responses since start.
    pub responses: u64,
    /// 5xx responses since start.
    pub responses_5xx: u64,
    /// Connection failures, timeouts and broken exchanges since start.
    pub failures: u64,
    /// Time to response header over the last minute.
    pub latency: Latency,
}

/// Latency quantiles over a window.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Length of the window, seconds.
    pub window_seconds: u64,
    /// Responses in it.
    pub count: u64,
    /// Median, milliseconds (`null` without a response).
    pub p50_ms: Option<f64>,
    /// 99th percentile, milliseconds.
    pub p99_ms: Option<f64>,
}

/// The certificate of one TLS site.
#[derive(Debug, Serialize)]
pub struct Certificate {
    /// The site's names.
    pub names: Vec<String>,
    /// `acme`, `internal` or `files`.
    pub source: &'static str,
    /// Issuer of the certificate served now.
    pub issuer: Option<String>,
    /// Its serial number (hex).
    pub serial: Option<String>,
    /// Its expiry.
    pub not_after: Option<u64>,
    /// When vigie renews it (ACME), `null` otherwise.
    pub renew_at: Option<u64>,
    /// How it is renewed, in words.
    pub renewal: String,
    /// The last ACME outcome: `ok`, `failed` or `pending` (none yet); `null` off ACME.
    pub last_outcome: Option<&'static str>,
    /// The last ACME error.
    pub last_error: Option<String>,
    /// Consecutive ACME failures.
    pub failures: u32,
    /// The CA's suggested renewal window (ARI), when it gave one.
    pub ari_window: Option<Window>,
    /// In a cluster: the node holding the site's order lock, as this instance last saw it.
    pub lock_holder: Option<String>,
    /// In a cluster: the node that ordered the certificate served now.
    pub ordered_by: Option<String>,
    /// In a cluster: when that node stored it.
    pub ordered_at: Option<u64>,
}

/// A time window.
#[derive(Debug, Serialize)]
pub struct Window {
    /// Start.
    pub start: u64,
    /// End.
    pub end: u64,
}

/// One rate-limit zone.
#[derive(Debug, Serialize)]
pub struct Limit {
    /// Its name.
    pub name: String,
    /// The rate, `N/s`, `N/m` or `N/h`.
    pub rate: String,
    /// Burst.
    pub burst: u32,
    /// Clients tracked now.
    pub tracked_clients: usize,
    /// Most clients tracked.
    pub max_clients: usize,
    /// Requests passed at once since start.
    pub allowed: u64,
    /// Requests passed after a delay.
    pub delayed: u64,
    /// Requests refused.
    pub rejected: u64,
    /// The clients delayed or refused most lately, most first.
    pub top_limited: Vec<Limited>,
}

/// A limited client.
#[derive(Debug, Serialize)]
pub struct Limited {
    /// Its address (IPv6: its prefix).
    pub client: String,
    /// Requests delayed or refused.
    pub limited: u64,
}

/// One cache zone.
#[derive(Debug, Serialize)]
pub struct Cache {
    /// Its name.
    pub name: String,
    /// Lookups answered from the cache (HIT, STALE, UPDATING, REVALIDATED) over all lookups
    /// but BYPASS; `null` before the first.
    pub hit_ratio: Option<f64>,
    /// Requests by cache status since start.
    pub requests: BTreeMap<String, u64>,
    /// Bytes in memory.
    pub memory_bytes: u64,
    /// The memory bound.
    pub memory_max: u64,
    /// Entries in memory.
    pub memory_entries: usize,
    /// Bytes on disk, `null` without a disk tier.
    pub disk_bytes: Option<u64>,
    /// The disk bound.
    pub disk_max: Option<u64>,
    /// Entries on disk.
    pub disk_entries: Option<usize>,
    /// Entries dropped to stay within the bounds, since start.
    pub evictions: u64,
}
