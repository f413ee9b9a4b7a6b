//! Raw TOML -> validated [`Config`], collecting every error with its position.

mod acme;
mod cache;
mod checked;
mod cluster;
mod compress;
mod details;
mod headers;
mod limits;
mod rules;
mod server;
mod sites;
mod tls;
mod unknown;
#[cfg(test)]
pub(crate) use unknown::suggestion;
mod upstreams;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{line_col, ConfigError, ConfigErrors};
use crate::model::{
    ChallengeKind, Compression, Config, ErrorPages, HeaderOps, HostPattern, Site, SiteTls, Warning,
};
use crate::raw::RawConfig;
use tls::default_acme;

pub(crate) use values::parse_duration;
#[cfg(test)]
pub(crate) use values::{parse_rate, parse_size};

/// The upper bound of integers that end up in a `u32`.
const U32_MAX: i64 = u32::MAX as i64;

/// Parses and validates `text`; `origin` names the file in messages.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let (raw, unknown) = unknown::deserialize(text);
    let positioned = |at: usize, message: String| {
        let (line, col) = line_col(text, at);
        ConfigError {
            origin: origin.to_owned(),
            line,
            col,
            message,
        }
    };
    let mut errors: Vec<ConfigError> = unknown
        .into_iter()
        .map(|u| positioned(u.at, u.message))
        .collect();
    let raw = match raw {
        Ok(raw) => raw,
        Err(e) => {
            if let Some(e) = e {
                let at = e.span().map_or(0, |s| s.start);
                errors.push(positioned(at, toml_message(&e)));
            }
            errors.sort_by_key(|e| (e.line, e.col));
            return Err(ConfigErrors(errors));
        }
    };
    let mut v = Validator {
        text,
        origin,
        errors,
        warnings: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        v.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(v.errors))
    }
}

/// toml's message on one line, in the words of this file format (keys, tables, arrays).
fn toml_message(e: &toml::de::Error) -> String {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    [
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
        ("expected i64", "expected an integer"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ]
    .iter()
    .fold(message, |m, (from, to)| m.replace(from, to))
}

/// Names other sections define, so that references can be checked.
struct Refs {
    upstreams: BTreeSet<String>,
    limits: BTreeSet<String>,
    caches: BTreeSet<String>,
    header_sets: BTreeMap<String, HeaderOps>,
    https_listeners: bool,
    challenge: ChallengeKind,
    /// `[acme] profile`, which sites inherit.
    profile: Option<String>,
    /// Top-level error pages, which sites inherit.
    error_pages: ErrorPages,
}

/// Settings a site or a route sets, before inheritance.
#[derive(Default)]
struct Layer {
    /// `Some(None)`: set to unlimited (`0`).
    max_body: Option<Option<u64>>,
    /// `Some(None)`: set to `"off"`.
    limit: Option<Option<String>>,
    response_sets: HeaderOps,
    response: HeaderOps,
    request: HeaderOps,
    /// `Some(None)`: `compress = false`.
    compress: Option<Option<Compression>>,
    /// `pass_headers`, lower-case.
    pass_headers: Option<Vec<String>>,
    /// `access` rules.
    access: Option<Vec<crate::model::AccessRule>>,
    /// `basic_auth`.
    basic_auth: Option<crate::model::BasicAuth>,
}

struct Validator<'t> {
    text: &'t str,
    origin: &'t str,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Validator<'_> {
    // ---- sections ----

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(raw.server.as_ref());
        let error_pages = self.error_pages(raw.error_pages.as_ref(), &BTreeMap::new());
        let acme = raw.acme.as_ref().map(|a| self.acme(a));
        let cluster = raw.cluster.as_ref().map(|c| self.cluster(c));
        let limits = self.limits(&raw.limits);
        let caches = self.caches(&raw.cache);
        let header_sets = self.header_sets(&raw.headers);
        let upstreams = self.upstreams(&raw.upstreams);
        let client_ip = self.client_ip(raw.client_ip.as_ref());
        let log = self.log(raw.log.as_ref());

        let refs = Refs {
            upstreams: raw.upstreams.keys().map(|k| k.get_ref().clone()).collect(),
            limits: raw.limits.keys().map(|k| k.get_ref().clone()).collect(),
            caches: raw.cache.keys().map(|k| k.get_ref().clone()).collect(),
            header_sets,
            https_listeners: !server.https.is_empty(),
            challenge: acme.as_ref().map_or(ChallengeKind::Http01, |a| a.challenge),
            profile: acme.as_ref().and_then(|a| a.profile.clone()),
            error_pages,
        };
        let mut seen_names: HashMap<HostPattern, usize> = HashMap::new();
        let sites: Vec<Site> = raw
            .sites
            .iter()
            .map(|s| self.site(s, &refs, &mut seen_names))
            .collect();

        let tls = self.tls(raw.tls.as_ref(), &sites);
        let uses_acme = sites.iter().any(|s| s.tls == Some(SiteTls::Acme));
        let acme = acme.or_else(|| uses_acme.then(default_acme));

        Config {
            server,
            tls,
            acme,
            cluster,
            client_ip,
            limits,
            caches,
            upstreams,
            sites,
            log,
            error_pages: refs.error_pages,
            warnings: {
                let mut w = std::mem::take(&mut self.warnings);
                w.sort_by_key(|w| (w.line, w.col));
                w
            },
        }
    }
}
