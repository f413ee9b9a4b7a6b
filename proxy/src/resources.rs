//! Resource acquisition for `vigie run` and reload: what a compiled plan names, made live.
//!
//! The registry is the running snapshot: each resource is handed over from it when its
//! identity is unchanged, and goes (dropped with the last snapshot or request holding it)
//! when the new configuration no longer has it. Identities:
//! - upstream group: its definition and its resolved addresses (names are resolved here, on
//!   every load), so health, in-flight counts and rotation survive a reload;
//! - rate-limit zone: its definition (`limits::build_zones`), so counters survive;
//! - cache zone: name, directory and bounds (`cache::acquire`), entries kept;
//!   its directory rules are checked by `cache::check`, in `vigie check` too;
//! - local CA: its directory (`STATE/ca`), loaded or created once; leaf certificates are
//!   issued on every load.
//!
//! `vigie check` never comes here: [`preview`] says, without doing it, what acquisition
//! would do that a check cannot verify.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vigie_acme::{CertError, CertTable, LocalCa};
use vigie_config::{Config, ServerAddr};

use crate::plan::{Acquired, CertPlan, Compiled, Live, Plan, PlanError, SiteCert};
use crate::upstream::{UpstreamError, UpstreamGroup};

/// A live plan (the snapshot the request path reads).
type Snapshot = Plan<Live>;

/// Why a snapshot could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration could not be compiled into a plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An upstream group could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A certificate or key could not be loaded or issued.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Cache zones whose disk directory cannot be used (each with its position).
    #[error(transparent)]
    Cache(#[from] crate::cache::ZoneErrors),
}

/// Acquire what `plan` names, reusing `previous`'s unchanged resources, and bind the plan
/// to them.
pub(crate) fn acquire(
    plan: Plan<Compiled>,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, BuildError> {
    let config = &plan.config;
    let upstreams = upstream_groups(config, previous)?;
    let limits = crate::limits::build_zones(&config.limits, previous.map(|p| &p.limits));
    crate::cache::check(config)?;
    let caches = crate::cache::acquire(&config.caches, previous.map(|p| &p.caches))?;
    let local_ca = if plan.certs.needs_local_ca() {
        Some(local_ca(&config.server.state_dir, previous)?)
    } else {
        None
    };
    let certs = cert_table(&plan.certs, local_ca.as_deref())?;
    let acquired = Acquired {
        upstreams,
        limits,
        caches,
        certs,
        local_ca,
    };
    Ok(plan.bind(acquired)?)
}

/// Each group of `config`, resolved; the previous group when its definition and addresses
/// are the same.
fn upstream_groups(
    config: &Config,
    previous: Option<&Snapshot>,
) -> Result<BTreeMap<String, Arc<UpstreamGroup>>, BuildError> {
    let mut out = BTreeMap::new();
    for (name, cfg) in &config.upstreams {
        let backends = crate::upstream::resolve_backends(cfg)?;
        let kept = previous
            .and_then(|p| p.upstreams.get(name))
            .filter(|g| g.config == *cfg && g.same_backends(&backends))
            .cloned();
        let group = match kept {
            Some(g) => g,
            None => Arc::new(UpstreamGroup::new(cfg, backends)?),
        };
        out.insert(name.clone(), group);
    }
    Ok(out)
}

/// The local CA of `state_dir`: the previous one when it lives in the same directory, else
/// loaded, or created when there is none yet.
fn local_ca(state_dir: &Path, previous: Option<&Snapshot>) -> Result<Arc<LocalCa>, CertError> {
    let dir = LocalCa::dir_in(state_dir);
    if let Some(ca) = previous
        .and_then(|p| p.local_ca.as_ref())
        .filter(|ca| ca.dir() == dir)
    {
        return Ok(ca.clone());
    }
    Ok(Arc::new(LocalCa::load_or_create(state_dir)?))
}

/// The certificate table: loaded certificates as they are, local-CA ones issued now. The
/// default certificate is `[tls] default_name`'s, else the first TLS site's.
fn cert_table(plan: &CertPlan, ca: Option<&LocalCa>) -> Result<CertTable, CertError> {
    let mut table = CertTable::default();
    for (names, cert) in &plan.sites {
        let ck = match (cert, ca) {
            (SiteCert::Loaded(ck), _) => ck.clone(),
            (SiteCert::LocalCa, Some(ca)) => ca.issue(names)?.0,
            (SiteCert::LocalCa, None) => continue,
        };
        for name in names {
            table.insert(name, ck.clone());
        }
        if table.default.is_none() {
            table.default = Some(ck);
        }
    }
    if let Some(name) = &plan.default_name {
        if let Some(ck) = table.lookup(name) {
            table.default = Some(ck.clone());
        }
    }
    Ok(table)
}

/// What acquiring `plan` would do that `vigie check` does not verify, one note a line: the
/// local CA to be created, server names to be resolved. Reads only: an existing local CA is
/// loaded (an unreadable or corrupt one is an error, as it would be at start).
pub(crate) fn preview(plan: &Plan<Compiled>) -> Result<Vec<String>, BuildError> {
    crate::cache::check(&plan.config)?;
    let mut notes = Vec::new();
    let state_dir = &plan.config.server.state_dir;
    if plan.certs.needs_local_ca() && LocalCa::load(state_dir)?.is_none() {
        notes.push(format!(
            "the local CA does not exist yet: it will be created in {} at start",
            LocalCa::dir_in(state_dir).display()
        ));
    }
    for (name, group) in &plan.upstreams {
        for server in &group.servers {
            if let ServerAddr::Name { .. } = server.addr {
                notes.push(format!(
                    "upstream \"{name}\": server \"{}\" will be resolved at start (not here)",
                    server.addr
                ));
            }
        }
    }
    Ok(notes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(servers: &str, rate: &str) -> Config {
        let text = format!(
            r#"
[server]
admin = false
state_dir = "/nonexistent/vigie-test-state"
[limits.ip]
rate = "{rate}"
[cache.pages]
memory = "1MiB"
[upstreams.app]
servers = [{servers}]
[[sites]]
names = ["a.test"]
  [[sites.routes]]
  path = "/api/"
  upstream = "app"
  limit = "ip"
  cache = {{ zone = "pages" }}
  [[sites.routes]]
  path = "/"
  respond = {{ body = "x" }}
"#
        );
        vigie_config::parse(&text, "t.toml").unwrap()
    }

    /// Routes hold the very resources of their snapshot, found without a name.
    #[test]
    fn routes_hold_their_resources() {
        let snap = Snapshot::build(config("\"127.0.0.1:9\"", "10/s"), None).unwrap();
        let (_, api) = snap.route("a.test", "/api/x").unwrap();
        assert!(Arc::ptr_eq(
            api.upstream.as_ref().unwrap(),
            &snap.upstreams["app"]
        ));
        assert!(Arc::ptr_eq(api.limit.as_ref().unwrap(), &snap.limits["ip"]));
        let (_, zone) = api.cache.as_ref().unwrap();
        assert!(Arc::ptr_eq(zone, &snap.caches["pages"]));
        let (_, root) = snap.route("a.test", "/other").unwrap();
        assert!(root.upstream.is_none() && root.limit.is_none() && root.cache.is_none());
        assert!(snap.local_ca.is_none());
    }

    /// A reload hands over what did not change and replaces what did.
    #[test]
    fn unchanged_resources_are_kept_over_a_reload() {
        let first = Snapshot::build(config("\"127.0.0.1:9\"", "10/s"), None).unwrap();
        let same = Snapshot::build(config("\"127.0.0.1:9\"", "10/s"), Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&same.upstreams["app"], &first.upstreams["app"]));
        assert!(Arc::ptr_eq(&same.limits["ip"], &first.limits["ip"]));
        assert!(Arc::ptr_eq(&same.caches["pages"], &first.caches["pages"]));
        let moved = Snapshot::build(config("\"127.0.0.1:10\"", "20/s"), Some(&same)).unwrap();
        assert!(!Arc::ptr_eq(
            &moved.upstreams["app"],
            &same.upstreams["app"]
        ));
        assert_eq!(
            moved.upstreams["app"].servers(),
            ["127.0.0.1:10".parse().unwrap()]
        );
        assert!(!Arc::ptr_eq(&moved.limits["ip"], &same.limits["ip"]));
        let (_, api) = moved.route("a.test", "/api/").unwrap();
        assert!(Arc::ptr_eq(
            api.upstream.as_ref().unwrap(),
            &moved.upstreams["app"]
        ));
    }

    /// Compiling resolves nothing: a name that cannot resolve compiles, and only acquiring
    /// it fails.
    #[test]
    fn names_are_resolved_at_acquisition_only() {
        let cfg = config("\"vigie-test-never-resolves.invalid:80\"", "10/s");
        let plan = Plan::compile(cfg.clone()).unwrap();
        let notes = preview(&plan).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        let err = Snapshot::build(cfg, None).unwrap_err().to_string();
        assert!(
            err.starts_with("upstream \"app\": cannot resolve server"),
            "{err}"
        );
    }
}
