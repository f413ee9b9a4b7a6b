//! A year without an operator (issue 16): Pebble issues 20-second certificates and vigie
//! renews them at least 12 times by itself — a year of monthly renewals — while a client
//! makes a new verified TLS connection every 200 ms, the CA goes away three times (dropped
//! connections; `503` with `Retry-After: 3600`; `rateLimited` with `Retry-After: 3600`), each
//! time for longer than the certificate has left at its renewal time, and vigie is stopped
//! with SIGTERM and started again on its state. Nobody touches anything.
//!
//! The CA is a real Pebble behind [`CaProxy`], a scripted fault injector that also counts
//! the requests vigie sends (Pebble can neither be made to answer 503 nor count).
//!
//! `cargo test -p vigie --test e2e acme_year:: -- --nocapture` prints the figures; the soak
//! (`VIGIE_SOAK_CYCLES`, default 100) is `... acme_year:: -- --ignored --nocapture`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::acme::config;
use crate::support::ca_proxy::{CaProxy, Fault};
use crate::support::pebble::Pebble;
use crate::support::{Ports, Vigie};

const NAME: &str = "year.example.com";
/// The client's pace: one new TLS connection this often.
const PACE: Duration = Duration::from_millis(200);

/// One certificate as the client first saw it.
#[derive(Debug, Clone)]
struct Served {
    serial: String,
    not_after: SystemTime,
    seen: Instant,
    seen_at: SystemTime,
}

/// What the client saw.
#[derive(Debug, Default)]
struct Seen {
    handshakes: u64,
    /// Failed or invalid handshakes after the first issuance (must stay empty).
    failures: Vec<String>,
    /// Failed connections while vigie was being restarted (no process listening).
    while_restarting: u64,
    /// Distinct certificates, in the order they were first served.
    certs: Vec<Served>,
    least_left: Option<Duration>,
}

/// A client trusting only Pebble's root; verification includes the validity period.
fn verifying_client(root_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in vigie_acme::pem::certs_from_pem(root_pem.as_bytes(), "pebble root").unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One new connection and a verified handshake; the leaf's facts.
async fn verified(addr: &str, config: &Arc<rustls::ClientConfig>) -> Result<Served, String> {
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let sni = rustls::pki_types::ServerName::try_from(NAME).unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(sni, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let info =
        vigie_acme::pem::info(leaf.ok_or("no certificate")?, "leaf").map_err(|e| e.to_string())?;
    Ok(Served {
        serial: info.serial,
        not_after: info.not_after,
        seen: Instant::now(),
        seen_at: SystemTime::now(),
    })
}

/// Note one handshake's outcome.
fn record(s: &mut Seen, result: Result<Served, String>, excused: bool) {
    s.handshakes += 1;
    match result {
        Ok(c) => match c.not_after.duration_since(SystemTime::now()) {
            Ok(left) => {
                s.least_left = Some(s.least_left.map_or(left, |l| l.min(left)));
                if s.certs.last().is_none_or(|l| l.serial != c.serial) {
                    s.certs.push(c);
                }
            }
            Err(_) => s.failures.push(format!("expired certificate {}", c.serial)),
        },
        Err(_) if excused => s.while_restarting += 1,
        // Before the first issuance vigie has no certificate for the name yet.
        Err(_) if s.certs.is_empty() => {}
        Err(e) => s.failures.push(e),
    }
}

/// Every `PACE`, a new verified connection; records into `seen` until `stop`.
async fn client(
    addr: String,
    config: Arc<rustls::ClientConfig>,
    seen: Arc<Mutex<Seen>>,
    restarting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + PACE;
        let excused = restarting.load(Ordering::Relaxed);
        let result = verified(&addr, &config).await;
        let excused = excused || restarting.load(Ordering::Relaxed);
        record(&mut seen.lock().unwrap(), result, excused);
        tokio::time::sleep_until(next.into()).await;
    }
}

/// What happens after a given certificate was first served (by its index, modulo 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Nothing,
    Outage(Fault),
    Restart,
}

fn event(index: usize) -> Event {
    match index % 12 {
        2 => Event::Outage(Fault::Unreachable),
        5 => Event::Restart,
        7 => Event::Outage(Fault::Unavailable { secs: 3600 }),
        9 => Event::Outage(Fault::RateLimited { secs: 3600 }),
        _ => Event::Nothing,
    }
}

/// Figures of one outage.
#[derive(Debug)]
struct Outage {
    fault: Fault,
    window: (Instant, Instant),
    length: Duration,
    requests: usize,
    orders: usize,
    /// From the CA's return to the new certificate being served.
    back_to_new: Duration,
    /// What the old certificate had left when the new one was first served.
    old_left: Duration,
}

impl Outage {
    fn during(&self, at: Instant) -> bool {
        self.window.0 <= at && at < self.window.1
    }
}

struct Year {
    pebble: Pebble,
    proxy: CaProxy,
    vigie: Vigie,
    life: Duration,
    seen: Arc<Mutex<Seen>>,
    restarting: Arc<AtomicBool>,
}

impl Year {
    fn certs(&self) -> Vec<Served> {
        self.seen.lock().unwrap().certs.clone()
    }

    /// Wait until certificate number `index` is served (at most until the previous one has
    /// expired, plus a little); returns it.
    async fn wait_cert(&self, index: usize) -> Served {
        let limit = match self.certs().last() {
            Some(last) => last
                .not_after
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
            None => Duration::from_secs(60),
        } + Duration::from_secs(5);
        let start = Instant::now();
        loop {
            if let Some(c) = self.certs().get(index) {
                return c.clone();
            }
            assert!(
                start.elapsed() < limit,
                "certificate #{index} not served in time; client saw {:?}\n{}\n{}",
                self.seen.lock().unwrap(),
                self.vigie.log(),
                self.pebble.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The CA misbehaves as `fault` says from now (just after an issuance) until 30 % of the
    /// certificate's lifetime is left: over its renewal time (half of the lifetime) and for
    /// longer than the half it then has left, so a schedule that waited out the 60 s back-off
    /// or the 1 h `Retry-After` would serve it expired.
    async fn outage(&self, fault: Fault, index: usize, old: &Served) -> Outage {
        let end = old.not_after - self.life.mul_f64(0.3);
        let length = end
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .max(self.life / 2 + Duration::from_secs(1));
        let start = Instant::now();
        self.proxy.set(fault);
        tokio::time::sleep(length).await;
        self.proxy.set(Fault::None);
        let back = Instant::now();
        let requests = self.proxy.count_since(start) - self.proxy.count_since(back);
        let orders = self.proxy.orders_since(start).len() - self.proxy.orders_since(back).len();
        assert_eq!(self.certs().len(), index + 1, "renewed during the outage?");
        let new = self.wait_cert(index + 1).await;
        let old_left = old
            .not_after
            .duration_since(new.seen_at)
            .unwrap_or_default();
        Outage {
            fault,
            window: (start, back),
            length,
            requests,
            orders,
            back_to_new: new.seen.duration_since(back),
            old_left,
        }
    }

    /// SIGTERM, start again on the same state: the stored certificate is served at once and
    /// no order is sent before its renewal time.
    async fn restart(&mut self, current: &Served) -> Restart {
        self.restarting.store(true, Ordering::Relaxed);
        let stopped = Instant::now();
        self.vigie.restart_after("TERM").await;
        self.restarting.store(false, Ordering::Relaxed);
        let ready = Instant::now();
        let root = self.pebble.root().await;
        let served = verified(&self.vigie.https, &verifying_client(&root))
            .await
            .unwrap_or_else(|e| panic!("after the restart: {e}\n{}", self.vigie.log()));
        assert_eq!(
            served.serial, current.serial,
            "the stored certificate is served at once"
        );
        // The lifetime rule's earliest time for this certificate: half of the lifetime, minus
        // at most 1/30 of jitter (and a second of slack for the certificate's whole seconds).
        let earliest = current.not_after - self.life / 2 - self.life / 30 - Duration::from_secs(1);
        let earliest = ready
            + earliest
                .duration_since(SystemTime::now())
                .unwrap_or_default();
        let next = self.wait_cert(self.certs().len()).await;
        let orders = self.proxy.orders_since(ready);
        let first = orders.first().expect("an order after the restart");
        assert!(
            first.at >= earliest,
            "an order {:?} before the stored certificate's renewal time\n{}",
            earliest.duration_since(first.at),
            self.vigie.log()
        );
        assert!(next.seen > first.at);
        Restart {
            down: ready - stopped,
            requests_before_order: self.proxy.count_since(ready) - self.proxy.count_since(first.at),
            order_after: first.at - ready,
            old_left: current
                .not_after
                .duration_since(next.seen_at)
                .unwrap_or_default(),
        }
    }
}

/// Figures of the restart.
#[derive(Debug)]
struct Restart {
    /// From SIGTERM to the new process being ready.
    down: Duration,
    /// Requests to the CA from the start to the first order (the account and directory).
    requests_before_order: usize,
    /// From the start to the first order.
    order_after: Duration,
    /// What the stored certificate had left when its successor was first served.
    old_left: Duration,
}

/// Run `renewals` renewals; returns the printed report.
async fn year(renewals: usize) -> String {
    let began = Instant::now();
    let ports = Ports::new();
    let life = Duration::from_secs(20);
    let pebble = Pebble::start(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        Some(life),
    )
    .await;
    let proxy = CaProxy::start(&pebble.directory, &pebble.api_ca).await;
    let cfg = config(&pebble, "http-01", &format!("\"{NAME}\""), "")
        .replace(&pebble.directory, &proxy.directory)
        .replace(
            &pebble.api_ca.display().to_string(),
            &proxy.ca_roots.display().to_string(),
        );
    // Default retry settings: no VIGIE_ACME_RETRY_SECONDS, the product's own back-off.
    let vigie = Vigie::start_on(&cfg, ports, &[]).await;
    // Pebble keeps running (the outages are the proxy's), so its root stays the same.
    let tls = verifying_client(&pebble.root().await);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (restarting, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let task = tokio::spawn(client(
        vigie.https.clone(),
        tls,
        seen.clone(),
        restarting.clone(),
        stop.clone(),
    ));
    let mut y = Year {
        pebble,
        proxy,
        vigie,
        life,
        seen,
        restarting,
    };
    let first = y.wait_cert(0).await;
    let first_requests = y.proxy.seen().iter().filter(|s| s.at <= first.seen).count();
    let mut outages = Vec::new();
    let mut per_renewal = Vec::new();
    let mut restarts = Vec::new();
    for index in 0..renewals {
        let current = y.wait_cert(index).await;
        match event(index) {
            Event::Outage(fault) => outages.push(y.outage(fault, index, &current).await),
            Event::Restart => restarts.push(y.restart(&current).await),
            Event::Nothing => {
                let next = y.wait_cert(index + 1).await;
                let n = y.proxy.count_since(current.seen) - y.proxy.count_since(next.seen);
                per_renewal.push(n);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    let seen = y.seen.lock().unwrap();
    let done = seen.certs.len() - 1;
    let orders = y.proxy.orders_since(began).len();
    let least = seen.least_left.unwrap_or_default();
    let oldest = seen
        .certs
        .iter()
        .filter_map(|c| c.seen_at.duration_since(c.not_after - life).ok())
        .max()
        .unwrap_or_default();
    let mean = per_renewal.iter().sum::<usize>() as f64 / per_renewal.len().max(1) as f64;
    let mut report = format!(
        "a year without an operator: {done} renewals of {life:?} certificates in {:.0?}\n\
         - client: {} new TLS connections, {} failed or invalid after the first issuance, \
         {} refused while vigie restarted (SIGTERM + start)\n\
         - least remaining validity ever served: {least:.1?}; a new certificate was first \
         served at most {oldest:.1?} after its notBefore\n\
         - requests to the CA: {} in all, {first_requests} for the first issuance (account \
         included), {mean:.1} per renewal (min {}, max {}) in quiet cycles; {orders} newOrder\n",
        began.elapsed(),
        seen.handshakes,
        seen.failures.len(),
        seen.while_restarting,
        y.proxy.count_since(began),
        per_renewal.iter().min().unwrap_or(&0),
        per_renewal.iter().max().unwrap_or(&0),
    );
    for o in &outages {
        report += &format!(
            "- outage {:?} for {:.1?}: {} requests ({} newOrder) during it; new certificate \
             {:.1?} after the CA came back, the old one then had {:.1?} left\n",
            o.fault, o.length, o.requests, o.orders, o.back_to_new, o.old_left
        );
    }
    for r in &restarts {
        report += &format!(
            "- restart (SIGTERM, start on the same state): ready {:.1?} after the signal, the \
             stored certificate served at once; {} requests (account, directory) then the first \
             order {:.1?} after the start, at its renewal time; it had {:.1?} left when replaced\n",
            r.down, r.requests_before_order, r.order_after, r.old_left
        );
    }
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for e in y.proxy.seen() {
        if e.status >= 400 && !outages.iter().any(|o| o.during(e.at)) {
            // `POST /authZ/ID` -> `POST /authZ`: one entry per kind of request.
            let kind: String = e.what.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
            *errors.entry(format!("{kind} {}", e.status)).or_default() += 1;
        }
    }
    report += &format!(
        "- error answers from Pebble outside the outages (retried by instant-acme, e.g. the \
         5 % of nonces Pebble rejects as `badNonce` by design): {errors:?}\n"
    );
    println!("{report}");
    assert!(
        seen.failures.is_empty(),
        "{report}{:?}\n{}",
        seen.failures,
        y.vigie.log()
    );
    assert!(done >= renewals, "{report}");
    assert!(!restarts.is_empty() && outages.len() >= 3, "{report}");
    assert!(least > Duration::ZERO, "{report}");
    for o in &outages {
        // vigie tried while the CA was away (its renewal time fell inside the outage), and
        // did not hammer it: the halving waits allow about log2(10) failed orders here.
        assert!(o.orders >= 1 || o.requests >= 1, "{report}");
        assert!(o.orders <= 6 && o.requests <= 30, "{report}");
    }
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn twelve_renewals_through_outages_and_a_restart_never_serve_an_expired_certificate() {
    year(12).await;
}

/// The soak: `VIGIE_SOAK_CYCLES` renewals (default 100, about 20 minutes).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak of many renewals; run with --ignored"]
async fn soak_many_renewals() {
    let cycles = std::env::var("VIGIE_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    year(cycles).await;
}
