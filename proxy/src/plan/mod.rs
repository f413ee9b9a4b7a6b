//! The runtime plan: a validated [`Config`] compiled into what the request path reads.
//!
//! Two stages, one shape. [`Plan::compile`] is pure: it turns the configuration into sites
//! and routes whose references are resolved into handles (an `Arc` of their upstream
//! definition, limit zone, cache zone, error pages) and reads certificate files, but writes,
//! creates, resolves and connects nothing. That is all `vigie check` runs. For `run` and
//! reload, `resources` acquires what the plan names (resolved upstream groups, limit
//! and cache zones, the local CA's certificates), reusing the previous plan's unchanged
//! resources, and [`Plan::bind`] swaps each definition for its live resource: a
//! [`Plan<Live>`] (the `Snapshot`) whose routes hold `Arc`s of their upstream group, limit zone
//! and cache zone, so the request path never looks anything up by name.
//!
//! Invariants: a route's handle exists exactly when the route names the resource (validation
//! guarantees the name is defined; compile and bind fail rather than drop a reference); sites
//! and routes are in configuration order, routes longest prefix first.

pub mod htpasswd;
pub mod pages;
pub mod paths;
pub mod routing;
pub mod rules;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::CertifiedKey;
use vigie_acme::{CertError, CertTable, LocalCa};
use vigie_config::{
    Action, CacheZone, Compression, Config, HeaderOps, LimitZone, RouteCache, SiteTls,
    TrailingSlash, Upstream,
};

use self::pages::ErrorPages;
use self::routing::HostIndex;
use crate::upstream::UpstreamGroup;

/// What a plan's handles point to at one stage: definitions once compiled, live resources
/// once acquired.
pub trait Stage: Debug + Send + Sync + 'static {
    /// An upstream group.
    type Upstream: Debug + Send + Sync;
    /// A rate-limit zone.
    type Limit: Debug + Send + Sync;
    /// A cache zone.
    type Cache: Debug + Send + Sync;
    /// The TLS certificates.
    type Certs: Debug + Send + Sync;
    /// The local CA, when a site uses it.
    type Ca: Debug + Send + Sync;
}

/// A compiled plan: handles are the definitions; nothing is acquired.
#[derive(Debug)]
pub enum Compiled {}

impl Stage for Compiled {
    type Upstream = Arc<Upstream>;
    type Limit = Arc<LimitZone>;
    type Cache = Arc<CacheZone>;
    type Certs = CertPlan;
    type Ca = ();
}

/// A live plan: handles are the acquired resources the request path uses.
#[derive(Debug)]
pub enum Live {}

impl Stage for Live {
    type Upstream = Arc<UpstreamGroup>;
    type Limit = Arc<crate::limits::Zone>;
    type Cache = Arc<crate::cache::Zone>;
    type Certs = CertTable;
    type Ca = Option<Arc<LocalCa>>;
}

/// One route, with handles to what it uses.
#[derive(Debug)]
pub struct RoutePlan<S: Stage = Live> {
    /// Path prefix, starting with `/` (see [`routing::prefix_matches`]); the exact path or the
    /// expression of an exact or regex route.
    pub path: String,
    /// How `path` matches.
    pub matcher: routing::Matcher,
    /// Access rules by client address; empty allows everyone.
    pub access: Vec<vigie_config::AccessRule>,
    /// Basic authentication, when the route asks for it.
    pub auth: Option<Arc<rules::AuthPlan>>,
    /// Rewrites, in order.
    pub rewrites: Vec<rules::RewritePlan>,
    /// TLS to the upstream group's servers, when it has `[upstreams.NAME.tls]`.
    pub upstream_tls: Option<Arc<rules::PeerTls>>,
    /// What the route does.
    pub action: Action,
    /// The upstream group of a proxy route.
    pub upstream: Option<S::Upstream>,
    /// The rate-limit zone, when the route is limited.
    pub limit: Option<S::Limit>,
    /// The cache settings and zone, when the route caches.
    pub cache: Option<(RouteCache, S::Cache)>,
    /// Request body limit in bytes; `None` = unlimited.
    pub max_body: Option<u64>,
    /// The route's own `request_buffer` (bytes, `0` = off); `None`: `[server]`'s.
    pub request_buffer: Option<u64>,
    /// Header operations on the request sent upstream.
    pub request_headers: HeaderOps,
    /// Header operations on the response sent to the client.
    pub response_headers: HeaderOps,
    /// Response compression; `None` = off.
    pub compress: Option<Compression>,
    /// Upstream headers passed that vigie hides by default (`pass_headers`).
    pub pass_headers: Vec<String>,
}

/// A site ready for routing.
#[derive(Debug)]
pub struct SitePlan<S: Stage = Live> {
    /// Index of the site in the config.
    pub index: usize,
    /// Label for logs and metrics: the site's first name.
    pub label: String,
    /// Routes, longest prefix first.
    pub routes: Vec<Arc<RoutePlan<S>>>,
    /// Whether the site has a certificate (plain-HTTP requests to it are redirected to HTTPS).
    pub tls: bool,
    /// Names redirected to their canonical twin (`redirect_www`).
    pub host_redirects: BTreeMap<String, String>,
    /// Custom error pages (the site's over the top-level ones).
    pub error_pages: Arc<ErrorPages>,
    /// Trailing-slash normalisation, when the site asks for it.
    pub trailing_slash: Option<TrailingSlash>,
}

impl<S: Stage> SitePlan<S> {
    /// The route for a normalised path, in nginx's order (see [`routing::select`]).
    pub fn route_for(&self, path: &str) -> Option<&Arc<RoutePlan<S>>> {
        routing::select(&self.routes, path, |r| (&r.path, &r.matcher))
    }
}

/// Where a TLS site's certificate comes from, once compiled.
#[derive(Debug, Clone)]
pub enum SiteCert {
    /// Read from the configured files.
    Loaded(Arc<CertifiedKey>),
    /// Issued by the local CA at acquisition (`internal`, and `acme` until ACME has issued).
    LocalCa,
}

/// The certificates a compiled plan names, in site order.
#[derive(Debug, Default)]
pub struct CertPlan {
    /// Each TLS site's names (`*.suffix` for wildcards) and certificate source.
    pub sites: Vec<(Vec<String>, SiteCert)>,
    /// `[tls] default_name`.
    pub default_name: Option<String>,
}

impl CertPlan {
    /// Whether a site needs the local CA.
    pub fn needs_local_ca(&self) -> bool {
        self.sites
            .iter()
            .any(|(_, c)| matches!(c, SiteCert::LocalCa))
    }
}

/// A request's site and route, as [`Plan::route`] finds them.
pub type Routed<'a, S> = (&'a Arc<SitePlan<S>>, &'a Arc<RoutePlan<S>>);

/// Everything a request needs, frozen when built.
#[derive(Debug)]
pub struct Plan<S: Stage = Live> {
    /// The validated config this was compiled from.
    pub config: Arc<Config>,
    /// When it was compiled.
    pub loaded_at: SystemTime,
    sites: Vec<Arc<SitePlan<S>>>,
    hosts: HostIndex,
    /// Upstream groups by name.
    pub upstreams: BTreeMap<String, S::Upstream>,
    /// The TLS certificates.
    pub certs: S::Certs,
    /// The local CA, once acquired.
    pub local_ca: S::Ca,
    /// Port of the first HTTPS listener, for redirects from HTTP.
    pub https_port: Option<u16>,
    /// Rate-limit zones by name.
    pub limits: HashMap<String, S::Limit>,
    /// Per-client connection cap: the smallest `max_connections` of the zones.
    pub connection_cap: Option<u32>,
    /// Cache zones by name.
    pub caches: HashMap<String, S::Cache>,
    /// Top-level custom error pages, for errors before a site is known.
    pub error_pages: Arc<ErrorPages>,
}

/// Why a valid configuration could not be compiled or bound.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A certificate file could not be read or parsed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A route names something that does not exist (validation rules this out; kept as an
    /// error rather than a silent fallback).
    #[error("route \"{route}\" names the {what} \"{name}\", which is not defined")]
    Undefined {
        /// The route's path.
        route: String,
        /// `upstream`, `limit zone` or `cache zone`.
        what: &'static str,
        /// The missing name.
        name: String,
    },
    /// A route's regex does not compile (validation rules this out).
    #[error("route \"{route}\": invalid regex: {reason}")]
    Regex {
        /// The route's path or expression.
        route: String,
        /// The regex crate's message.
        reason: String,
    },
    /// An htpasswd file cannot be used.
    #[error(transparent)]
    Htpasswd(#[from] htpasswd::HtpasswdError),
    /// A realm that cannot be a header value (validation rules this out).
    #[error("invalid basic_auth realm \"{0}\"")]
    Realm(String),
    /// An upstream's TLS files cannot be used.
    #[error("{line}:{col}: upstream \"{upstream}\" tls: {reason}")]
    UpstreamTls {
        /// The group.
        upstream: String,
        /// Where its `tls` table is.
        line: usize,
        /// Its column.
        col: usize,
        /// What is wrong.
        reason: String,
    },
}

/// `map[name]`, or [`PlanError::Undefined`].
fn resolve<T: Clone>(
    map: &impl Lookup<T>,
    name: &str,
    what: &'static str,
    route: &str,
) -> Result<T, PlanError> {
    map.find(name).ok_or_else(|| PlanError::Undefined {
        route: route.to_string(),
        what,
        name: name.to_string(),
    })
}

/// Maps by name, whatever the collection.
trait Lookup<T> {
    fn find(&self, name: &str) -> Option<T>;
}

impl<T: Clone> Lookup<T> for BTreeMap<String, T> {
    fn find(&self, name: &str) -> Option<T> {
        self.get(name).cloned()
    }
}

impl<T: Clone> Lookup<T> for HashMap<String, T> {
    fn find(&self, name: &str) -> Option<T> {
        self.get(name).cloned()
    }
}

impl Plan<Compiled> {
    /// Compile a validated configuration. Pure: certificate files are read, nothing is
    /// written, created, resolved or connected.
    pub fn compile(config: Config) -> Result<Plan<Compiled>, PlanError> {
        let upstreams: BTreeMap<String, Arc<Upstream>> = config
            .upstreams
            .iter()
            .map(|(n, u)| (n.clone(), Arc::new(u.clone())))
            .collect();
        let limits: HashMap<String, Arc<LimitZone>> = config
            .limits
            .iter()
            .map(|(n, z)| (n.clone(), Arc::new(z.clone())))
            .collect();
        let caches: HashMap<String, Arc<CacheZone>> = config
            .caches
            .iter()
            .map(|(n, z)| (n.clone(), Arc::new(z.clone())))
            .collect();
        let mut sites = Vec::with_capacity(config.sites.len());
        let mut certs = CertPlan {
            sites: Vec::new(),
            default_name: config.tls.default_name.clone(),
        };
        let mut upstream_tls = HashMap::new();
        for (name, u) in &config.upstreams {
            if let Some(tls) = &u.tls {
                upstream_tls.insert(name.clone(), Arc::new(rules::peer_tls(name, tls)?));
            }
        }
        let mut htpasswd_files = HashMap::new();
        for (index, site) in config.sites.iter().enumerate() {
            let mut routes = Vec::with_capacity(site.routes.len());
            for r in &site.routes {
                let upstream = match &r.action {
                    Action::Proxy { upstream, .. } => {
                        Some(resolve(&upstreams, upstream, "upstream", &r.path)?)
                    }
                    _ => None,
                };
                let limit = match &r.limit {
                    Some(name) => Some(resolve(&limits, name, "limit zone", &r.path)?),
                    None => None,
                };
                let cache = match &r.cache {
                    Some(rc) => Some((
                        rc.clone(),
                        resolve(&caches, &rc.zone, "cache zone", &r.path)?,
                    )),
                    None => None,
                };
                let upstream_tls = match &r.action {
                    Action::Proxy { upstream, .. } => upstream_tls.get(upstream).cloned(),
                    _ => None,
                };
                routes.push(Arc::new(RoutePlan {
                    path: r.path.clone(),
                    matcher: rules::matcher(r)?,
                    access: r.access.clone(),
                    auth: rules::basic_auth(r, &mut htpasswd_files)?,
                    rewrites: rules::rewrites(r)?,
                    upstream_tls,
                    action: r.action.clone(),
                    upstream,
                    limit,
                    cache,
                    max_body: r.max_body,
                    request_buffer: r.request_buffer,
                    request_headers: r.request_headers.clone(),
                    response_headers: r.response_headers.clone(),
                    compress: r.compress.clone(),
                    pass_headers: r.pass_headers.clone(),
                }));
            }
            let label = match site.names.first() {
                Some(p) => p.to_string(),
                None => format!("site{index}"),
            };
            if let Some(tls) = &site.tls {
                let cert = match tls {
                    SiteTls::Files { cert, key } => {
                        SiteCert::Loaded(vigie_acme::pem::load_files(cert, key)?)
                    }
                    SiteTls::Internal | SiteTls::Acme => SiteCert::LocalCa,
                };
                certs
                    .sites
                    .push((site.names.iter().map(ToString::to_string).collect(), cert));
            }
            sites.push(Arc::new(SitePlan {
                index,
                label,
                routes,
                tls: site.tls.is_some(),
                host_redirects: site.host_redirects.clone(),
                error_pages: pages::ErrorPages::build(&site.error_pages),
                trailing_slash: site.trailing_slash,
            }));
        }
        Ok(Plan {
            hosts: HostIndex::build(&config.sites),
            sites,
            upstreams,
            certs,
            local_ca: (),
            https_port: config.server.https.first().map(|a| a.port()),
            connection_cap: config
                .limits
                .values()
                .filter_map(|z| z.max_connections)
                .min(),
            limits,
            caches,
            error_pages: ErrorPages::build(&config.error_pages),
            loaded_at: SystemTime::now(),
            config: Arc::new(config),
        })
    }

    /// Swap every definition for its acquired resource (see `resources`). Each
    /// name is looked up once, here; a name `acquired` lacks is an error.
    pub fn bind(self, acquired: Acquired) -> Result<Plan<Live>, PlanError> {
        let sites = self
            .sites
            .iter()
            .map(|site| {
                let routes = site
                    .routes
                    .iter()
                    .map(|r| bind_route(r, &acquired).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(SitePlan {
                    index: site.index,
                    label: site.label.clone(),
                    routes,
                    tls: site.tls,
                    host_redirects: site.host_redirects.clone(),
                    error_pages: site.error_pages.clone(),
                    trailing_slash: site.trailing_slash,
                }))
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        Ok(Plan {
            config: self.config,
            loaded_at: self.loaded_at,
            sites,
            hosts: self.hosts,
            upstreams: acquired.upstreams,
            certs: acquired.certs,
            local_ca: acquired.local_ca,
            https_port: self.https_port,
            limits: acquired.limits,
            connection_cap: self.connection_cap,
            caches: acquired.caches,
            error_pages: self.error_pages,
        })
    }
}

fn bind_route(r: &RoutePlan<Compiled>, acquired: &Acquired) -> Result<RoutePlan<Live>, PlanError> {
    let path = &r.path;
    Ok(RoutePlan {
        path: r.path.clone(),
        matcher: r.matcher.clone(),
        access: r.access.clone(),
        auth: r.auth.clone(),
        rewrites: r.rewrites.clone(),
        upstream_tls: r.upstream_tls.clone(),
        action: r.action.clone(),
        upstream: match &r.upstream {
            Some(u) => Some(resolve(&acquired.upstreams, &u.name, "upstream", path)?),
            None => None,
        },
        limit: match &r.limit {
            Some(z) => Some(resolve(&acquired.limits, &z.name, "limit zone", path)?),
            None => None,
        },
        cache: match &r.cache {
            Some((rc, z)) => Some((
                rc.clone(),
                resolve(&acquired.caches, &z.name, "cache zone", path)?,
            )),
            None => None,
        },
        max_body: r.max_body,
        request_buffer: r.request_buffer,
        request_headers: r.request_headers.clone(),
        response_headers: r.response_headers.clone(),
        compress: r.compress.clone(),
        pass_headers: r.pass_headers.clone(),
    })
}

/// The resources acquired for a compiled plan, by name (see `resources`).
#[derive(Debug, Default)]
pub struct Acquired {
    /// Upstream groups.
    pub upstreams: BTreeMap<String, Arc<UpstreamGroup>>,
    /// Rate-limit zones.
    pub limits: HashMap<String, Arc<crate::limits::Zone>>,
    /// Cache zones.
    pub caches: HashMap<String, Arc<crate::cache::Zone>>,
    /// Every TLS site's certificate.
    pub certs: CertTable,
    /// The local CA, when a site uses it.
    pub local_ca: Option<Arc<LocalCa>>,
}

impl<S: Stage> Plan<S> {
    /// The site serving `host` (lower-case, without port), if any: exact names first, then
    /// the longest matching wildcard.
    pub fn site_for(&self, host: &str) -> Option<&Arc<SitePlan<S>>> {
        self.sites.get(self.hosts.find(host)?)
    }

    /// All sites, in config order.
    pub fn sites(&self) -> &[Arc<SitePlan<S>>] {
        &self.sites
    }

    /// Host and raw path to site and route: the three routing steps in the order the service
    /// takes them (without the redirects it may answer in between). The host is lower-case
    /// and without port, as `filters::request_host` hands it over. For benches and tests.
    pub fn route(&self, host: &str, path: &str) -> Option<Routed<'_, S>> {
        let site = self.site_for(host)?;
        let path = paths::normalize_path(path)?;
        Some((site, site.route_for(&path)?))
    }
}

impl Plan<Live> {
    /// Whether `ip` escapes the connection cap: a trusted proxy, or exempt in a zone.
    pub fn connection_cap_exempt(&self, ip: std::net::IpAddr) -> bool {
        self.config
            .client_ip
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
            || self.limits.values().any(|z| z.exempt(ip))
    }
}
