//! Upstream groups: servers, selection algorithms, active health and passive failure state.
//!
//! A group is built at acquisition (`resources`, never in `vigie check`: names are resolved
//! there) and shared (`Arc`) by every snapshot whose definition of that group and resolved
//! addresses are unchanged, so health state, in-flight counts and round-robin position survive
//! a reload. Selection and health come from pingora-load-balancing; least
//! connections and random-two-choices are layered on its backend set and health registry.
//!
//! Invariants: a group always has at least one server; in-flight counters are only changed
//! through [`InflightGuard`], so they return to zero when requests end.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingora::http::RequestHeader;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::consistent::KetamaHashing;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use rand::Rng;
use vigie_config::{Balance, ServerAddr, Upstream};

mod stats;
pub use self::stats::{quantile_ms, LatencyCounts, ServerStats};

/// Why an upstream group could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A server name did not resolve.
    #[error("upstream \"{group}\": cannot resolve server \"{server}\": {source}")]
    Resolve {
        /// Group name.
        group: String,
        /// Server as written.
        server: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The health-check request could not be built.
    #[error("upstream \"{group}\": invalid health check: {reason}")]
    Health {
        /// Group name.
        group: String,
        /// What was wrong.
        reason: String,
    },
}

/// Per-server counters shared by every request that uses the server.
#[derive(Debug, Default)]
pub struct ServerState {
    inflight: AtomicUsize,
    weight: usize,
    /// Failures counted in the current window.
    fails: AtomicU32,
    /// Start of the current failure window, in ms since the group's epoch.
    window_start_ms: AtomicU64,
    /// Marked down passively until this time, in ms since the group's epoch (0 = not down).
    down_until_ms: AtomicU64,
    /// Latency, errors and health notes, for the status page.
    pub stats: ServerStats,
}

impl ServerState {
    /// Requests in flight to this server now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// Holds one in-flight slot on a server; the slot is released on drop.
#[derive(Debug)]
pub struct InflightGuard(Arc<ServerState>);

impl InflightGuard {
    /// The server's response header arrived `elapsed` after it was chosen (see
    /// [`ServerStats::response`]).
    pub fn response(&self, elapsed: Duration, status: u16) {
        self.0.stats.response(elapsed, status);
    }

    /// The exchange with the server broke (see [`ServerStats::failure`]).
    pub fn failure(&self) {
        self.0.stats.failure();
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Selector {
    RoundRobin(LoadBalancer<RoundRobin>),
    Hash(LoadBalancer<KetamaHashing>),
}

/// One upstream group, ready to pick servers.
pub struct UpstreamGroup {
    /// The definition it was built from (compared on reload to decide whether to keep it).
    pub config: Upstream,
    selector: Selector,
    servers: HashMap<SocketAddr, Arc<ServerState>>,
    order: Vec<SocketAddr>,
    rotation: AtomicUsize,
    epoch: Instant,
    next_health_check: Mutex<Instant>,
}

impl std::fmt::Debug for UpstreamGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamGroup")
            .field("name", &self.config.name)
            .field("servers", &self.order)
            .finish()
    }
}

fn resolve(group: &str, addr: &ServerAddr) -> Result<Vec<SocketAddr>, UpstreamError> {
    match addr {
        ServerAddr::Ip(a) => Ok(vec![*a]),
        ServerAddr::Name { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map(|it| it.collect())
            .map_err(|source| UpstreamError::Resolve {
                group: group.to_string(),
                server: addr.to_string(),
                source,
            }),
    }
}

/// The servers of a group, names resolved (blocking DNS, at acquisition only: never in
/// `vigie check`), duplicates dropped, in configuration order.
pub fn resolve_backends(cfg: &Upstream) -> Result<Vec<Backend>, UpstreamError> {
    let mut out: Vec<Backend> = Vec::new();
    for server in &cfg.servers {
        for addr in resolve(&cfg.name, &server.addr)? {
            if out.iter().any(|b| b.as_inet() == Some(&addr)) {
                continue;
            }
            out.push(Backend {
                addr: PSocketAddr::Inet(addr),
                weight: server.weight as usize,
                ext: Default::default(),
            });
        }
    }
    Ok(out)
}

fn load_balancer<S>(backends: &[Backend]) -> LoadBalancer<S>
where
    S: pingora::lb::selection::BackendSelection + 'static,
    S::Iter: pingora::lb::selection::BackendIter,
{
    let discovery = pingora::lb::discovery::Static::new(backends.iter().cloned().collect());
    LoadBalancer::from_backends(Backends::new(discovery))
}

fn health_check(
    cfg: &Upstream,
    servers: &HashMap<SocketAddr, Arc<ServerState>>,
) -> Result<Option<stats::ObservedCheck>, UpstreamError> {
    let Some(h) = &cfg.health else {
        return Ok(None);
    };
    let err = |reason: String| UpstreamError::Health {
        group: cfg.name.clone(),
        reason,
    };
    let host = h.host.clone().unwrap_or_else(|| cfg.name.clone());
    let mut check = HttpHealthCheck::new(&host, cfg.tls.is_some());
    if let Some(tls) = &cfg.tls {
        // The same TLS as requests: name, CA file, client certificate, verification.
        let peer_tls =
            crate::plan::rules::peer_tls(&cfg.name, tls).map_err(|e| err(e.to_string()))?;
        let name = tls.server_name.clone().unwrap_or_else(|| host.clone());
        check.peer_template.sni = if tls.sni { name } else { String::new() };
        check.peer_template.options.verify_cert = tls.verify;
        check.peer_template.options.verify_hostname = tls.verify;
        check.peer_template.options.ca = peer_tls.ca.clone();
        check.peer_template.client_cert_key = peer_tls.client.clone();
    }
    let mut req =
        RequestHeader::build("GET", h.path.as_bytes(), None).map_err(|e| err(e.to_string()))?;
    req.insert_header("Host", host.as_str())
        .map_err(|e| err(e.to_string()))?;
    req.insert_header(
        "User-Agent",
        concat!("vigie-health/", env!("CARGO_PKG_VERSION")),
    )
    .map_err(|e| err(e.to_string()))?;
    check.req = req;
    check.consecutive_success = h.rise as usize;
    check.consecutive_failure = h.fall as usize;
    check.peer_template.options.connection_timeout = Some(h.timeout);
    check.peer_template.options.read_timeout = Some(h.timeout);
    check.peer_template.options.total_connection_timeout = Some(h.timeout);
    check.validator = Some(Box::new(|resp| {
        let s = resp.status.as_u16();
        if (200..400).contains(&s) {
            Ok(())
        } else {
            pingora::Error::e_explain(
                pingora::ErrorType::CustomCode("unhealthy status", s),
                format!("health check answered {s}"),
            )
        }
    }));
    Ok(Some(stats::ObservedCheck {
        inner: check,
        servers: servers.clone(),
    }))
}

impl UpstreamGroup {
    /// Build a group over `backends` (from [`resolve_backends`]): the selector and the
    /// health check.
    pub fn new(cfg: &Upstream, backends: Vec<Backend>) -> Result<Self, UpstreamError> {
        let mut servers = HashMap::new();
        let mut order = Vec::new();
        for b in &backends {
            if let Some(addr) = b.as_inet() {
                order.push(*addr);
                servers.insert(
                    *addr,
                    Arc::new(ServerState {
                        weight: b.weight.max(1),
                        ..Default::default()
                    }),
                );
            }
        }
        let hc = health_check(cfg, &servers)?;
        let selector = match cfg.balance {
            Balance::Hash(_) => {
                let mut lb = load_balancer::<KetamaHashing>(&backends);
                if let Some(hc) = hc {
                    lb.set_health_check(Box::new(hc));
                }
                Selector::Hash(lb)
            }
            _ => {
                let mut lb = load_balancer::<RoundRobin>(&backends);
                if let Some(hc) = hc {
                    lb.set_health_check(Box::new(hc));
                }
                Selector::RoundRobin(lb)
            }
        };
        // Static discovery never blocks or fails: run its first update right here.
        let updated = match &selector {
            Selector::RoundRobin(lb) => futures_now(lb.update()),
            Selector::Hash(lb) => futures_now(lb.update()),
        };
        if let Err(reason) = updated {
            return Err(UpstreamError::Health {
                group: cfg.name.clone(),
                reason,
            });
        }
        Ok(UpstreamGroup {
            config: cfg.clone(),
            selector,
            servers,
            order,
            rotation: AtomicUsize::new(0),
            epoch: Instant::now(),
            next_health_check: Mutex::new(Instant::now()),
        })
    }

    fn backends(&self) -> &Backends {
        match &self.selector {
            Selector::RoundRobin(lb) => lb.backends(),
            Selector::Hash(lb) => lb.backends(),
        }
    }

    /// Whether `backends` are this group's servers (same addresses, order and weights): part
    /// of a group's identity on reload.
    pub fn same_backends(&self, backends: &[Backend]) -> bool {
        backends.len() == self.order.len()
            && backends.iter().zip(&self.order).all(|(b, addr)| {
                b.as_inet() == Some(addr)
                    && self.servers.get(addr).map(|s| s.weight) == Some(b.weight.max(1))
            })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn passively_down(&self, addr: &SocketAddr) -> bool {
        self.servers
            .get(addr)
            .is_some_and(|s| s.down_until_ms.load(Ordering::Relaxed) > self.now_ms())
    }

    /// Whether a server is healthy for the active check (always true without one).
    pub fn is_healthy(&self, addr: &SocketAddr) -> bool {
        self.backends().ready(&Backend {
            addr: PSocketAddr::Inet(*addr),
            weight: self.servers.get(addr).map_or(1, |s| s.weight),
            ext: Default::default(),
        })
    }

    /// The latency, error and health notes of `addr`.
    pub fn server_stats(&self, addr: &SocketAddr) -> Option<&ServerStats> {
        self.servers.get(addr).map(|s| &s.stats)
    }

    /// How much longer `addr` stays marked down after failures (`None`: it is not).
    pub fn passively_down_for(&self, addr: &SocketAddr) -> Option<Duration> {
        let until = self
            .servers
            .get(addr)?
            .down_until_ms
            .load(Ordering::Relaxed);
        let now = self.now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Requests in flight to `addr` now.
    pub fn inflight(&self, addr: &SocketAddr) -> usize {
        self.servers.get(addr).map_or(0, |s| s.inflight())
    }

    /// The group's servers in configuration order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.order
    }

    /// Pick a server for a request, skipping `exclude` (servers already tried), unhealthy ones
    /// and, while another is left, ones marked down passively. `key` feeds hash balancing.
    pub fn select(&self, key: &[u8], exclude: &[SocketAddr]) -> Option<SocketAddr> {
        // One server (a frontend, Grafana): whatever the method, it is the pick when healthy
        // and not tried yet; a passive mark only matters where another server is left.
        if let [only] = self.order.as_slice() {
            return (!exclude.contains(only) && self.is_healthy(only)).then_some(*only);
        }
        let usable = |addr: &SocketAddr, healthy: bool, strict: bool| {
            healthy && !exclude.contains(addr) && !(strict && self.passively_down(addr))
        };
        // First pass honours passive marks; the second ignores them so that a group whose
        // every server failed recently still gets a chance (as nginx does).
        for strict in [true, false] {
            let picked = match (&self.config.balance, &self.selector) {
                (Balance::LeastConn, _) => self.pick_least_conn(|a, h| usable(a, h, strict)),
                (Balance::RandomTwo, _) => self.pick_two_choices(|a, h| usable(a, h, strict)),
                (_, Selector::RoundRobin(lb)) => lb
                    .select_with(key, 256, |b, h| {
                        b.as_inet().is_some_and(|a| usable(a, h, strict))
                    })
                    .and_then(|b| b.as_inet().copied()),
                (_, Selector::Hash(lb)) => lb
                    .select_with(key, 256, |b, h| {
                        b.as_inet().is_some_and(|a| usable(a, h, strict))
                    })
                    .and_then(|b| b.as_inet().copied()),
            };
            if picked.is_some() {
                return picked;
            }
        }
        None
    }

    fn candidates(&self, ok: impl Fn(&SocketAddr, bool) -> bool) -> Vec<SocketAddr> {
        self.order
            .iter()
            .filter(|a| ok(a, self.is_healthy(a)))
            .copied()
            .collect()
    }

    /// Load of a server scaled by its weight (lower is better), compared without division.
    fn load_key(&self, addr: &SocketAddr) -> (usize, usize) {
        self.servers
            .get(addr)
            .map_or((usize::MAX, 1), |s| (s.inflight(), s.weight))
    }

    fn less_loaded(&self, a: &SocketAddr, b: &SocketAddr) -> bool {
        let (ia, wa) = self.load_key(a);
        let (ib, wb) = self.load_key(b);
        // ia/wa < ib/wb  <=>  ia*wb < ib*wa
        (ia as u128) * (wb as u128) < (ib as u128) * (wa as u128)
    }

    fn pick_least_conn(&self, ok: impl Fn(&SocketAddr, bool) -> bool) -> Option<SocketAddr> {
        let cands = self.candidates(ok);
        if cands.is_empty() {
            return None;
        }
        // Start at a rotating offset so ties are shared round robin.
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % cands.len();
        let mut best = cands[start];
        for i in 1..cands.len() {
            let c = cands[(start + i) % cands.len()];
            if self.less_loaded(&c, &best) {
                best = c;
            }
        }
        Some(best)
    }

    fn pick_two_choices(&self, ok: impl Fn(&SocketAddr, bool) -> bool) -> Option<SocketAddr> {
        let cands = self.candidates(ok);
        match cands.len() {
            0 => None,
            1 => Some(cands[0]),
            n => {
                let mut rng = rand::thread_rng();
                let i = rng.gen_range(0..n);
                let mut j = rng.gen_range(0..n - 1);
                if j >= i {
                    j += 1;
                }
                let (a, b) = (cands[i], cands[j]);
                Some(if self.less_loaded(&b, &a) { b } else { a })
            }
        }
    }

    /// Count a request in flight on `addr` until the guard drops.
    pub fn begin(&self, addr: &SocketAddr) -> Option<InflightGuard> {
        let state = self.servers.get(addr)?;
        state.inflight.fetch_add(1, Ordering::Relaxed);
        Some(InflightGuard(state.clone()))
    }

    /// Record a connect failure or timeout; after `max_fails` within `fail_timeout` the
    /// server is skipped for `fail_timeout`.
    pub fn report_failure(&self, addr: &SocketAddr) {
        let Some(state) = self.servers.get(addr) else {
            return;
        };
        state.stats.failure();
        if self.config.max_fails == 0 {
            return;
        }
        let now = self.now_ms();
        let window = self.config.fail_timeout.as_millis() as u64;
        let start = state.window_start_ms.load(Ordering::Relaxed);
        if now.saturating_sub(start) > window {
            state.window_start_ms.store(now, Ordering::Relaxed);
            state.fails.store(0, Ordering::Relaxed);
        }
        let fails = state.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails >= self.config.max_fails {
            state
                .down_until_ms
                .store(now + window.max(1), Ordering::Relaxed);
            state.fails.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.config.name, server = %addr,
                down_for = ?self.config.fail_timeout, "server marked down after failures");
        }
    }

    /// Run the active health check if one is configured and it is due; returns when the
    /// next one is due.
    pub async fn health_check_if_due(&self) -> Option<Instant> {
        let interval = self.config.health.as_ref()?.interval;
        let due = {
            let mut next = self
                .next_health_check
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if *next > now {
                return Some(*next);
            }
            *next = now + interval;
            *next
        };
        self.backends().run_health_check(true).await;
        Some(due)
    }
}

/// Poll a future that is known to complete without waiting (static discovery).
fn futures_now<F: std::future::Future<Output = pingora::Result<()>>>(f: F) -> Result<(), String> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(())) => Ok(()),
        std::task::Poll::Ready(Err(e)) => Err(e.to_string()),
        std::task::Poll::Pending => Err("backend discovery did not complete".into()),
    }
}

/// Shortest health-check interval among groups, used to bound the checker's sleep.
pub fn min_interval<'a>(groups: impl Iterator<Item = &'a Arc<UpstreamGroup>>) -> Duration {
    groups
        .filter_map(|g| g.config.health.as_ref().map(|h| h.interval))
        .min()
        .unwrap_or(Duration::from_secs(1))
}
