//! Process assembly: pingora server configuration, listeners and services for one snapshot.

use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::access_log::AccessLog;
use crate::admin::Admin;
use crate::background::{AcmeService, HealthChecker, LimitsHousekeeping, Reloader, SystemdNotify};
use crate::cluster::link::{Link, LinkWatch};
use crate::cluster::metrics::ClusterMetrics;
use crate::limits::shared::Shared;
use crate::limits::ConnectionCounter;
use crate::listener::Front;
use crate::metrics::Metrics;
use crate::reload::{Live, Source};
use crate::service::Vigie;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::status::StatusPage;
use crate::tls;
use vigie_acme::{CertResolver, Http01Tokens, Manager};

fn tcp_options(addr: &std::net::SocketAddr) -> TcpSocketOptions {
    let mut opts = TcpSocketOptions::default();
    if addr.is_ipv6() {
        // [::]:80 and 0.0.0.0:80 are two listeners, as in the reference configuration.
        opts.ipv6_only = Some(true);
    }
    opts
}

/// A client-facing TCP listener. pingora's default wraps each accepted connection in a 64 KiB
/// read buffer (plus a 1460-byte write buffer); that buffer is most of what an idle keep-alive
/// connection costs, and every request header read through it is copied once more. vigie's
/// connections read unbuffered, straight into pingora's (or rustls's) own buffers: 108 KB
/// down to 44 KB per idle keep-alive connection, the same CPU per request
/// (`benches/RESULTS.md`).
fn listener(addr: &std::net::SocketAddr) -> ListenerConfig {
    ListenerConfig::tcp(addr.to_string())
        .tcp_socket_options(tcp_options(addr))
        .l4_buffer(L4BufferSettings::new(
            0,
            pingora::listeners::DEFAULT_L4_WRITE_BUFFER_SIZE,
        ))
}

fn server_conf(snap: &Snapshot) -> ServerConf {
    let server = &snap.config.server;
    let state = &server.state_dir;
    let threads = server
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ServerConf {
        threads,
        pid_file: state.join("vigie.pid").display().to_string(),
        upgrade_sock: state.join("vigie-upgrade.sock").display().to_string(),
        // On SIGTERM (and after an upgrade hand-off) the listeners stop accepting at once;
        // requests in flight get `grace_period` to finish before the runtimes stop.
        grace_period_seconds: Some(server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    }
}

/// Build the pingora server for `snap` and run it until shutdown. Never returns.
/// With `upgrade`, the listening sockets are taken over from the running process (which is
/// then told to quit with SIGQUIT): pingora's zero-downtime binary upgrade.
pub fn run(snap: Snapshot, source: Source, upgrade: bool) -> anyhow::Result<()> {
    let state = snap.config.server.state_dir.clone();
    std::fs::create_dir_all(&state).map_err(|e| {
        anyhow::anyhow!("cannot create the state directory {}: {e}", state.display())
    })?;
    let conf = server_conf(&snap);
    let pid_file = state.join("vigie.pid");
    if let Err(e) = vigie_acme::store::write_atomic(
        &pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
        false,
    ) {
        tracing::warn!(path = %pid_file.display(), error = %e, "cannot write the pid file");
    }
    let server_cfg = snap.config.server.clone();
    for w in &snap.config.warnings {
        tracing::warn!(line = w.line, col = w.col, "{}", w.message);
    }
    let tokens = Arc::new(Http01Tokens::default());
    let certs = Arc::new(CertResolver::new());
    certs.set_configured(snap.certs.clone());
    let min_tls = snap.config.tls.min_version;
    let metrics = Metrics::new();
    metrics.config_loaded(&snap);
    let access_log = match &snap.config.log.access {
        Some(target) => Some(Arc::new(
            AccessLog::start(target.clone(), snap.config.log.access_format).map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the access log {}: {e}",
                    crate::access_log::target_name(target)
                )
            })?,
        )),
        None => None,
    };
    // [cluster]: read at start (a reload does not change it).
    let cluster = match &snap.config.cluster {
        Some(c) => Some((c.clone(), crate::cluster::settings(c)?)),
        None => None,
    };
    let link = match &cluster {
        Some((c, settings)) => Some(Link::new(
            settings,
            c.redis_timeout,
            ClusterMetrics::register(&metrics),
        )?),
        None => None,
    };
    let shared_limits = cluster.as_ref().zip(link.as_ref()).map(|((c, _), link)| {
        Arc::new(Shared::new(
            link.clone(),
            &c.key_prefix,
            c.limits_on_redis_failure,
        ))
    });
    let handle: SnapshotHandle = Arc::new(ArcSwap::from_pointee(snap));
    let acme_wake = Arc::new(tokio::sync::Notify::new());
    let live = Live {
        snapshots: handle.clone(),
        certs: certs.clone(),
        acme_wake: acme_wake.clone(),
        metrics: metrics.clone(),
        access_log: access_log.clone(),
        last_reload: Default::default(),
    };
    let vigie = || {
        Vigie::new(
            handle.clone(),
            tokens.clone(),
            metrics.clone(),
            access_log.clone(),
        )
        .with_shared_limits(shared_limits.clone())
    };
    let mut manager = Manager::new(&state, certs.clone(), tokens.clone());
    // First retry delay after a failed order (doubling, capped at 8x); for tests and for
    // operators who want a faster first retry than the default minute.
    if let Some(base) = std::env::var("VIGIE_ACME_RETRY_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(std::time::Duration::from_secs_f64)
    {
        manager = manager.with_retry(base, base * 8);
    }
    let mut purges = None;
    if let Some((cluster, settings)) = &cluster {
        let store = crate::cluster::store(cluster, settings, &state)?;
        manager = manager.with_store(store, &settings.node);
        purges = Some(Arc::new(crate::cluster::purge::Fanout::new(
            settings,
            metrics.registry(),
        )?));
    }
    // Deadline of each request to a CA (a CA that hangs counts as unreachable, so a site
    // falls back to the next CA of [[acme.ca]]); default 30 s.
    if let Some(timeout) = std::env::var("VIGIE_ACME_TIMEOUT_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(std::time::Duration::from_secs_f64)
    {
        manager = manager.with_timeout(timeout);
    }
    {
        let snap = handle.load();
        if snap.config.acme.is_some() {
            let sites = crate::background::acme_sites(&snap.config);
            let names: Vec<Vec<String>> = sites.into_iter().map(|w| w.names).collect();
            manager.load_stored_now(&names);
        }
    }
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    let connections = Arc::new(ConnectionCounter::default());
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    let mut app = pingora::proxy::http_proxy(&server.configuration, vigie());
    app.server_options = Some(options);
    let front = Front::new(
        None,
        app,
        handle.clone(),
        connections.clone(),
        metrics.clone(),
    );
    let mut http = Service::new("vigie http".to_string(), front);
    for addr in &server_cfg.http {
        http.endpoints().add_listener(listener(addr));
    }
    server.add_service(http);

    if !server_cfg.https.is_empty() {
        let tls_config = tls::server_config(min_tls, certs.clone())
            .map_err(|e| anyhow::anyhow!("cannot build the TLS configuration: {e}"))?;
        let app = pingora::proxy::http_proxy(&server.configuration, vigie());
        let front = Front::new(
            Some(tls_config),
            app,
            handle.clone(),
            connections,
            metrics.clone(),
        )
        .with_cluster_challenges(certs);
        let mut https = Service::new("vigie https".to_string(), front);
        for addr in &server_cfg.https {
            https.endpoints().add_listener(listener(addr));
        }
        server.add_service(https);
    }

    if let Some(addr) = server_cfg.admin {
        let page = StatusPage::new(
            live.clone(),
            Some(manager.clone()),
            metrics.clone(),
            Some(addr),
        );
        server.add_service(background_service("vigie status history", page.sampler()));
        let mut admin_app =
            Admin::new(live.clone(), Some(manager.clone()), metrics.clone()).with_status(page);
        if let Some(fanout) = &purges {
            admin_app = admin_app.with_purge_fanout(fanout.clone());
        }
        let mut admin = Service::new("vigie admin".to_string(), admin_app);
        admin.add_tcp_with_settings(&addr.to_string(), tcp_options(&addr));
        server.add_service(admin);
    }
    server.add_service(background_service(
        "vigie health checks",
        HealthChecker::new(handle.clone()),
    ));
    if let Some(fanout) = purges {
        server.add_service(background_service(
            "vigie cluster purges",
            crate::cluster::purge::Listener::new(fanout, handle.clone()),
        ));
    }
    if let Some(link) = link {
        server.add_service(background_service("vigie cluster link", LinkWatch(link)));
    }
    server.add_service(background_service(
        "vigie limits housekeeping",
        LimitsHousekeeping::new(handle.clone()),
    ));
    server.add_service(background_service(
        "vigie acme",
        AcmeService::new(live.clone(), manager, acme_wake),
    ));
    server.add_service(background_service(
        "vigie reload",
        Reloader::new(live, Arc::new(source)),
    ));
    let mut listeners = server_cfg.http.clone();
    listeners.extend(server_cfg.https.iter().copied());
    server.add_service(background_service(
        "vigie systemd",
        SystemdNotify::new(listeners),
    ));
    exit_when_idle(
        server.watch_execution_phase(),
        metrics.clone(),
        server_cfg.grace_period,
    );
    tracing::info!(http = ?server_cfg.http, https = ?server_cfg.https, admin = ?server_cfg.admin,
        "vigie starting");
    server.run_forever()
}

/// How long no request must be in flight before a shutting-down vigie exits: longer than the
/// access log's flush interval (200 ms without a line), so its last lines are on disk.
const IDLE_EXIT: std::time::Duration = std::time::Duration::from_millis(300);

/// pingora sleeps the whole `grace_period` after SIGTERM (or an upgrade hand-off) even when
/// nothing is left to finish. This watcher waits for that grace period to start, then exits
/// the process as soon as no request has been in flight for [`IDLE_EXIT`] (idle keep-alive
/// connections are closed, as nginx does); a request still in flight keeps pingora's
/// behaviour: it gets the rest of the grace period.
fn exit_when_idle(
    mut phases: tokio::sync::broadcast::Receiver<pingora::server::ExecutionPhase>,
    metrics: Arc<Metrics>,
    grace: std::time::Duration,
) {
    use pingora::server::ExecutionPhase;
    use tokio::sync::broadcast::error::RecvError;
    let watch = move || {
        loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownGracePeriod) => break,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
        let start = std::time::Instant::now();
        let mut idle_since: Option<std::time::Instant> = None;
        while start.elapsed() < grace {
            if metrics.requests_in_flight() > 0 {
                idle_since = None;
            } else if idle_since
                .get_or_insert_with(std::time::Instant::now)
                .elapsed()
                >= IDLE_EXIT
            {
                tracing::info!("no request in flight: exiting before the grace period ends");
                std::process::exit(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("vigie-idle-exit".into())
        .spawn(watch)
    {
        tracing::warn!(error = %e, "cannot watch for an idle shutdown: SIGTERM waits the grace period");
    }
}
