//! The data of `/status.json` (and so of the page): one [`Status`] built on demand from what
//! vigie already keeps — the metrics registry, the snapshot (sites, upstream groups and their
//! servers' state, limit and cache zones, configured certificates), the ACME manager's status
//! and the last reload — plus the sampled history. Every time is a Unix timestamp in
//! seconds; every field the README's "Status page" section lists is always present (`null`
//! when unknown).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use vigie_acme::pem::CertInfo;
use vigie_config::{Action, Balance, SiteTls};

use super::history::{self, ServerKey};
use super::model::*;
use super::StatusPage;
use crate::plan::routing::Matcher;
use crate::snapshot::Snapshot;
use crate::upstream::{quantile_ms, LatencyCounts, UpstreamGroup};

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tls_mode(tls: Option<&SiteTls>) -> &'static str {
    match tls {
        Some(SiteTls::Acme) => "acme",
        Some(SiteTls::Internal) => "internal",
        Some(SiteTls::Files { .. }) => "files",
        None => "none",
    }
}

/// Resident memory from `/proc/self/status` (Linux), `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl StatusPage {
    /// Build the status document now.
    pub fn status(&self) -> Status {
        let snap = self.live.snapshots.load_full();
        let totals = self.metrics.request_totals();
        Status {
            generated_at: unix(SystemTime::now()),
            history_step_seconds: history::STEP.as_secs(),
            process: self.process(&snap),
            sites: self.sites(&snap, &totals),
            upstreams: snap
                .upstreams
                .iter()
                .map(|(name, g)| self.upstream(name, g))
                .collect(),
            certificates: self.certificates(&snap),
            limits: limits(&snap),
            caches: self.caches(&snap),
        }
    }

    fn process(&self, snap: &Snapshot) -> Process {
        let (applied, refused) = self.metrics.reload_totals();
        let last = self
            .live
            .last_reload
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        Process {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started_at: unix(self.started),
            uptime_seconds: SystemTime::now()
                .duration_since(self.started)
                .map_or(0, |d| d.as_secs()),
            connections: self.metrics.connections_open(),
            requests_in_flight: self.metrics.requests_in_flight(),
            memory_rss_bytes: rss_bytes(),
            config_loaded_at: unix(snap.loaded_at),
            config_hash: crate::metrics::config_hash(snap),
            reloads_applied: applied,
            reloads_refused: refused,
            last_reload: last.map(|r| Reload {
                at: unix(r.at),
                result: if r.error.is_some() {
                    "refused"
                } else {
                    "applied"
                },
                error: r.error,
            }),
            token_required: self.token_required(),
        }
    }

    fn sites(&self, snap: &Snapshot, totals: &HashMap<(String, String), [u64; 6]>) -> Vec<Site> {
        let mut out = Vec::new();
        for site in snap.sites() {
            let cfg = snap.config.sites.get(site.index);
            let route_total = |path: &str| {
                totals
                    .get(&(site.label.clone(), path.to_string()))
                    .copied()
                    .unwrap_or_default()
            };
            let site_total = totals
                .iter()
                .filter(|((s, _), _)| *s == site.label)
                .fold([0u64; 6], |acc, (_, c)| {
                    std::array::from_fn(|i| acc[i] + c[i])
                });
            let intervals = self.history.site(&site.label);
            let recent: Vec<_> = intervals.iter().rev().take(30).collect();
            let secs: f64 = recent.iter().map(|i| i.length.as_secs_f64()).sum();
            let count: u64 = recent.iter().map(|i| i.classes.iter().sum::<u64>()).sum();
            out.push(Site {
                name: site.label.clone(),
                names: cfg.map_or_else(Vec::new, |c| {
                    c.names.iter().map(ToString::to_string).collect()
                }),
                tls: tls_mode(cfg.and_then(|c| c.tls.as_ref())),
                requests: site_total.into(),
                rate_per_second: if secs > 0.0 { count as f64 / secs } else { 0.0 },
                history: intervals
                    .iter()
                    .map(|i| Point {
                        at: unix(i.at),
                        requests: i.classes.into(),
                    })
                    .collect(),
                routes: site
                    .routes
                    .iter()
                    .map(|r| Route {
                        path: r.path.clone(),
                        matcher: match r.matcher {
                            Matcher::Prefix { .. } => "prefix",
                            Matcher::Exact => "exact",
                            Matcher::Regex(_) => "regex",
                        },
                        kind: match r.action {
                            Action::Proxy { .. } => "proxy",
                            Action::Redirect { .. } => "redirect",
                            Action::Respond { .. } => "respond",
                            Action::Static { .. } => "static",
                        },
                        upstream: r.upstream.as_ref().map(|g| g.config.name.clone()),
                        limit: r.limit.as_ref().map(|z| z.config.name.clone()),
                        cache: r.cache.as_ref().map(|(c, _)| c.zone.clone()),
                        requests: route_total(&r.path).into(),
                    })
                    .collect(),
            });
        }
        out
    }

    fn upstream(&self, name: &str, g: &UpstreamGroup) -> Upstream {
        let cfg = &g.config;
        let now = SystemTime::now();
        let servers = g
            .servers()
            .iter()
            .map(|addr| {
                let stats = g.server_stats(addr);
                let note = stats.map(|s| s.health()).unwrap_or_default();
                let passive = g.passively_down_for(addr);
                let (state, down_by, since, until) = if !g.is_healthy(addr) {
                    (
                        "down",
                        Some("health_check"),
                        note.changed_at.map(unix),
                        None,
                    )
                } else if let Some(left) = passive {
                    let until = now + left;
                    let since = until.checked_sub(cfg.fail_timeout).map(unix);
                    ("down", Some("failures"), since, Some(unix(until)))
                } else {
                    ("up", None, note.changed_at.map(unix), None)
                };
                let counts = stats.map(|s| s.latency_counts()).unwrap_or_default();
                let key: ServerKey = (name.to_string(), *addr);
                let (window, base) = match self.history.latency_base(&key) {
                    Some((at, base)) => (now.duration_since(at).unwrap_or_default(), base),
                    None => (Duration::ZERO, LatencyCounts::default()),
                };
                let recent: LatencyCounts =
                    std::array::from_fn(|i| counts[i].saturating_sub(base[i]));
                Server {
                    address: addr.to_string(),
                    state,
                    down_by,
                    since,
                    down_until: until,
                    last_check_error: note.last_error,
                    in_flight: g.inflight(addr),
                    responses: stats.map_or(0, |s| s.responses()),
                    responses_5xx: stats.map_or(0, |s| s.responses_5xx()),
                    failures: stats.map_or(0, |s| s.failures()),
                    latency: Latency {
                        window_seconds: window.as_secs(),
                        count: recent.iter().sum(),
                        p50_ms: quantile_ms(&recent, 0.5),
                        p99_ms: quantile_ms(&recent, 0.99),
                    },
                }
            })
            .collect();
        Upstream {
            name: name.to_string(),
            balance: match cfg.balance {
                Balance::RoundRobin => "round_robin",
                Balance::LeastConn => "least_conn",
                Balance::Hash(_) => "hash",
                Balance::RandomTwo => "random_two",
            },
            health_check: cfg.health.as_ref().map(|h| HealthCheck {
                path: h.path.clone(),
                interval_seconds: h.interval.as_secs_f64(),
                rise: h.rise,
                fall: h.fall,
            }),
            max_fails: cfg.max_fails,
            fail_timeout_seconds: cfg.fail_timeout.as_secs_f64(),
            servers,
        }
    }

    fn certificates(&self, snap: &Snapshot) -> Vec<Certificate> {
        let acme = self
            .manager
            .as_ref()
            .map(|m| m.status())
            .unwrap_or_default();
        let mut out = Vec::new();
        for site in &snap.config.sites {
            let Some(tls) = &site.tls else { continue };
            let names: Vec<String> = site.names.iter().map(ToString::to_string).collect();
            let served = names.first().and_then(|n| served_info(snap, n));
            let mut cert = Certificate {
                source: tls_mode(Some(tls)),
                issuer: served.as_ref().map(|i| i.issuer.clone()),
                serial: served.as_ref().map(|i| i.serial.clone()),
                not_after: served.as_ref().map(|i| unix(i.not_after)),
                renew_at: None,
                renewal: match tls {
                    SiteTls::Internal => "reissued by the local CA at each reload".into(),
                    SiteTls::Files { .. } => "re-read from its files at each reload".into(),
                    SiteTls::Acme => "waiting for the first order".into(),
                },
                last_outcome: None,
                last_error: None,
                failures: 0,
                ari_window: None,
                lock_holder: None,
                ordered_by: None,
                ordered_at: None,
                names,
            };
            if *tls == SiteTls::Acme {
                let status = acme.iter().find(|s| s.names == cert.names);
                cert.last_outcome = Some("pending");
                if let Some(s) = status {
                    if let Some(info) = &s.cert {
                        cert.issuer = Some(info.issuer.clone());
                        cert.serial = Some(info.serial.clone());
                        cert.not_after = Some(unix(info.not_after));
                        cert.last_outcome = Some("ok");
                    }
                    if s.last_error.is_some() {
                        cert.last_outcome = Some("failed");
                    }
                    cert.renew_at = s.renew_at.map(unix);
                    if let Some(w) = &s.waiting {
                        cert.renewal = w.clone();
                    }
                    cert.last_error = s.last_error.clone();
                    cert.failures = s.failures;
                    cert.ari_window = s.ari_window.map(|(start, end)| Window {
                        start: unix(start),
                        end: unix(end),
                    });
                    cert.lock_holder = s.lock_holder.clone();
                    cert.ordered_by = s.ordered_by.as_ref().map(|(node, _)| node.clone());
                    cert.ordered_at = s.ordered_at.map(unix);
                }
            }
            out.push(cert);
        }
        out
    }

    fn caches(&self, snap: &Snapshot) -> Vec<Cache> {
        let totals = self.metrics.cache_totals();
        let mut names: Vec<&String> = snap.caches.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| snap.caches.get(name).map(|z| (name, z)))
            .map(|(name, zone)| {
                let requests: BTreeMap<String, u64> = totals
                    .iter()
                    .filter(|(z, _, _)| z == name)
                    .map(|(_, s, n)| (s.clone(), *n))
                    .collect();
                let looked: u64 = requests
                    .iter()
                    .filter(|(s, _)| *s != "BYPASS")
                    .map(|(_, n)| n)
                    .sum();
                let hits: u64 = ["HIT", "STALE", "UPDATING", "REVALIDATED"]
                    .iter()
                    .filter_map(|s| requests.get(*s))
                    .sum();
                let (mem, disk, evictions) = zone.usage();
                let (mem_n, disk_n) = zone.entries();
                let disk_max = zone.config.disk.as_ref().map(|d| d.1);
                Cache {
                    name: name.clone(),
                    hit_ratio: (looked > 0).then(|| hits as f64 / looked as f64),
                    requests,
                    memory_bytes: mem,
                    memory_max: zone.config.memory,
                    memory_entries: mem_n,
                    disk_bytes: disk_max.map(|_| disk),
                    disk_max,
                    disk_entries: disk_max.map(|_| disk_n),
                    evictions,
                }
            })
            .collect()
    }
}

/// The certificate the snapshot serves for `name` (`*.suffix` for a wildcard).
fn served_info(snap: &Snapshot, name: &str) -> Option<CertInfo> {
    let ck = match name.strip_prefix("*.") {
        Some(suffix) => snap.certs.wildcard.get(suffix),
        None => snap.certs.exact.get(name),
    }?;
    let der = ck.cert.first()?;
    vigie_acme::pem::info(der, "certificate").ok()
}

fn limits(snap: &Snapshot) -> Vec<Limit> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut names: Vec<&String> = snap.limits.keys().collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| snap.limits.get(name).map(|z| (name, z)))
        .map(|(name, z)| {
            let c = &z.config;
            let unit = match c.rate.per.as_secs() {
                3600 => "h",
                60 => "m",
                _ => "s",
            };
            Limit {
                name: name.clone(),
                rate: format!("{}/{unit}", c.rate.count),
                burst: c.burst,
                tracked_clients: z.tracked(),
                max_clients: c.max_clients,
                allowed: z.counters.allowed.load(Relaxed),
                delayed: z.counters.delayed.load(Relaxed),
                rejected: z.counters.rejected.load(Relaxed),
                top_limited: z
                    .top
                    .top(10)
                    .into_iter()
                    .map(|(key, limited)| Limited {
                        client: crate::limits::key_label(key, c.ipv6_prefix),
                        limited,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The servers' latency counts now, keyed for the history.
pub fn latency_sample(snap: &Snapshot) -> HashMap<ServerKey, LatencyCounts> {
    let mut out = HashMap::new();
    for (name, g) in &snap.upstreams {
        for addr in g.servers() {
            if let Some(s) = g.server_stats(addr) {
                out.insert((name.clone(), *addr), s.latency_counts());
            }
        }
    }
    out
}
