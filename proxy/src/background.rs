//! Background tasks that follow the current snapshot: active health checks and SIGHUP reload.
//!
//! Both read the snapshot handle on every turn, so a reload changes which groups are checked
//! without restarting anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::reload::{self, Live, Source};
use crate::snapshot::SnapshotHandle;
use crate::upstream::min_interval;

/// Runs every upstream group's active health check when it is due.
pub struct HealthChecker {
    snapshots: SnapshotHandle,
}

impl HealthChecker {
    /// A checker over the groups of the current snapshot.
    pub fn new(snapshots: SnapshotHandle) -> Self {
        HealthChecker { snapshots }
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let snap = self.snapshots.load_full();
            let mut next = Instant::now() + min_interval(snap.upstreams.values());
            let mut checks = Vec::new();
            for group in snap.upstreams.values() {
                if group.config.health.is_none() {
                    continue;
                }
                let group = group.clone();
                checks.push(tokio::spawn(
                    async move { group.health_check_if_due().await },
                ));
            }
            for check in checks {
                if let Ok(Some(due)) = check.await {
                    next = next.min(due);
                }
            }
            let wait = next
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Reloads the configuration on SIGHUP: a valid one is swapped in, an invalid one is logged
/// and the running one keeps serving.
pub struct Reloader {
    live: Live,
    source: Arc<Source>,
}

impl Reloader {
    /// A reloader that re-reads `source` into `live`.
    pub fn new(live: Live, source: Arc<Source>) -> Self {
        Reloader { live, source }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut hup, mut usr1) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        ) {
            (Ok(h), Ok(u)) => (h, u),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP/SIGUSR1: reload is unavailable");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = usr1.recv() => {
                    if let Some(log) = &self.live.access_log {
                        log.reopen();
                        tracing::info!("access log reopened");
                    }
                }
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    systemd_notify(&[sd_notify::NotifyState::Reloading, monotonic_usec()]);
                    let source = self.source.clone();
                    let live = self.live.clone();
                    // Reading and DNS resolution block: keep them off the async workers.
                    let res = tokio::task::spawn_blocking(move || reload::reload(&source, &live)).await;
                    if let Err(e) = res {
                        tracing::error!(error = %e, "reload task failed");
                    }
                    systemd_notify(&[sd_notify::NotifyState::Ready]);
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Orders and renews the certificates of `tls = "acme"` sites, following the current
/// snapshot's sites and `[acme]` settings.
pub struct AcmeService {
    live: Live,
    manager: Arc<vigie_acme::Manager>,
    wake: Arc<tokio::sync::Notify>,
}

impl AcmeService {
    /// A service driving `manager`; notifying `wake` runs a pass at once.
    pub fn new(
        live: Live,
        manager: Arc<vigie_acme::Manager>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        AcmeService {
            live,
            manager,
            wake,
        }
    }
}

/// The sites with `tls = "acme"`: their names and profile.
pub fn acme_sites(config: &vigie_config::Config) -> Vec<vigie_acme::Wanted> {
    config
        .sites
        .iter()
        .filter(|s| s.tls == Some(vigie_config::SiteTls::Acme))
        .map(|s| vigie_acme::Wanted {
            names: s.names.iter().map(ToString::to_string).collect(),
            profile: s.acme_profile.clone(),
        })
        .collect()
}

#[async_trait]
impl BackgroundService for AcmeService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // In a cluster: a pass whenever another instance stores a certificate.
        self.manager.watch_store(self.wake.clone());
        loop {
            let snap = self.live.snapshots.load_full();
            let wait = match &snap.config.acme {
                Some(acme) => {
                    let sites = acme_sites(&snap.config);
                    self.manager.run_once(acme, &sites).await
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Every 10 s, drops the rate-limit keys of clients whose bucket is full again.
pub struct LimitsHousekeeping {
    snapshots: SnapshotHandle,
}

impl LimitsHousekeeping {
    /// Housekeeping over the zones of the current snapshot.
    pub fn new(snapshots: SnapshotHandle) -> Self {
        LimitsHousekeeping { snapshots }
    }
}

#[async_trait]
impl BackgroundService for LimitsHousekeeping {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = shutdown.changed() => return,
            }
            for zone in self.snapshots.load().limits.values() {
                zone.retain_recent();
            }
        }
    }
}

/// Tell systemd (when run as a `Type=notify` service; a no-op otherwise).
pub fn systemd_notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `MONOTONIC_USEC=`, which systemd 253+ requires after `RELOADING=1`.
fn monotonic_usec() -> sd_notify::NotifyState<'static> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_nsec()) / 1_000
    });
    sd_notify::NotifyState::MonotonicUsec(now)
}

/// Tells systemd `READY=1` once every listener accepts connections, then pings the watchdog
/// at half its interval while the process serves.
pub struct SystemdNotify {
    listeners: Vec<std::net::SocketAddr>,
}

impl SystemdNotify {
    /// Readiness of `listeners` (unspecified addresses are probed on loopback).
    pub fn new(listeners: Vec<std::net::SocketAddr>) -> Self {
        SystemdNotify { listeners }
    }
}

#[async_trait]
impl BackgroundService for SystemdNotify {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        for addr in &self.listeners {
            let mut probe = *addr;
            if probe.ip().is_unspecified() {
                probe.set_ip(match probe {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            for _ in 0..600 {
                if tokio::net::TcpStream::connect(probe).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        systemd_notify(&[sd_notify::NotifyState::Ready]);
        tracing::info!("vigie is ready");
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval / 2) => systemd_notify(&[sd_notify::NotifyState::Watchdog]),
                _ = shutdown.changed() => {
                    systemd_notify(&[sd_notify::NotifyState::Stopping]);
                    return;
                }
            }
        }
    }
}
