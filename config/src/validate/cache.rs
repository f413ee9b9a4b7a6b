//! `[cache.NAME]` zones and a route's `cache = { ... }`.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderName;
use toml::Spanned;

use super::{parse_duration, Refs, Validator};
use crate::error::line_col;
use crate::model::{CacheZone, Position, RequestPart, RouteCache};
use crate::raw::{HeaderFlag, RawCache, RawRouteCache, Str, StrOr};

/// Default cache-lock wait: how long concurrent misses wait for the one fetching.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `X-Cache-Status` header.
const DEFAULT_STATUS_HEADER: &str = "x-cache-status";
const PART_EXPECTED: &str =
    "expected \"header:NAME\", \"cookie:NAME\" or \"query:NAME\", like \"cookie:session\"";

impl Validator<'_> {
    pub(super) fn caches(
        &mut self,
        raw: &BTreeMap<Str, Spanned<RawCache>>,
    ) -> BTreeMap<String, CacheZone> {
        raw.iter()
            .map(|(name, zone)| {
                let zone = self.cache_zone(name.get_ref(), zone.get_ref());
                (name.get_ref().clone(), zone)
            })
            .collect()
    }

    fn cache_zone(&mut self, name: &str, z: &RawCache) -> CacheZone {
        let memory = self.nonzero_size(&z.memory, "memory").unwrap_or(0);
        let disk_at = z.disk.as_ref().map_or_else(Position::default, |d| {
            let (line, col) = line_col(self.text, self.key_at(d.span().start));
            Position { line, col }
        });
        let disk = match (&z.disk, &z.disk_size) {
            (Some(dir), Some(size)) => {
                let dir = self.path(dir, "disk");
                let size = self.nonzero_size(size, "disk_size");
                size.map(|s| (dir, s))
            }
            (Some(dir), None) => {
                self.error(
                    self.key_at(dir.span().start),
                    "disk has no disk_size: expected disk_size = \"10GiB\" or similar beside disk",
                );
                None
            }
            (None, Some(size)) => {
                self.error(
                    self.key_at(size.span().start),
                    "disk_size without disk: expected disk = \"/path/to/dir\" beside disk_size",
                );
                None
            }
            (None, None) => None,
        };
        let smallest = disk.as_ref().map_or(memory, |(_, d)| memory.min(*d));
        let max_object = match &z.max_object {
            Some(m) => match self.nonzero_size(m, "max_object") {
                Some(n) if n > smallest && smallest > 0 => {
                    self.error(
                        m.span().start,
                        format!(
                            "max_object {n} is larger than the zone ({smallest} bytes): expected \
                             at most the memory (and disk_size) bound"
                        ),
                    );
                    n
                }
                Some(n) => n,
                None => 0,
            },
            None => (smallest / 8).max(1),
        };
        let lock_timeout =
            self.nonzero_duration(&z.lock_timeout, "lock_timeout", DEFAULT_LOCK_TIMEOUT);
        CacheZone {
            name: name.to_owned(),
            memory,
            disk,
            disk_at,
            max_object,
            lock_timeout,
        }
    }

    /// A route's `cache = { ... }`; `has_upstream` says whether the route proxies.
    pub(super) fn route_cache(
        &mut self,
        c: &Spanned<RawRouteCache>,
        path: &str,
        has_upstream: bool,
        refs: &Refs,
    ) -> RouteCache {
        let key = self.key_at(c.span().start);
        if !has_upstream {
            self.error(
                key,
                format!(
                    "cache on route \"{path}\", which has no upstream: expected cache only \
                     beside upstream"
                ),
            );
        }
        let c = c.get_ref();
        self.reference(&c.zone, "cache zone", "cache", &refs.caches);
        RouteCache {
            zone: c.zone.get_ref().clone(),
            valid: self.valid(c),
            key: c.key.iter().filter_map(|p| self.request_part(p)).collect(),
            bypass: c
                .bypass
                .iter()
                .filter_map(|p| self.request_part(p))
                .collect(),
            stale_while_revalidate: self.duration(&c.stale_while_revalidate, Duration::ZERO),
            stale_if_error: self.duration(&c.stale_if_error, Duration::ZERO),
            store_set_cookie: c.store_set_cookie.unwrap_or(false),
            store_authorized: c.store_authorized.unwrap_or(false),
            status_header: self.status_header(c),
        }
    }

    /// `valid = { "200" = "5m", "any" = "1m" }`, in file order; `"any"` is status 0.
    fn valid(&mut self, c: &RawRouteCache) -> Vec<(u16, Duration)> {
        let mut valid: Vec<(u16, Duration, usize)> = Vec::new();
        for (status, d) in &c.valid {
            let code = self.check(status, |s| {
                if s == "any" {
                    return Ok(0);
                }
                s.parse::<u16>()
                    .ok()
                    .filter(|n| (200..=599).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "invalid status \"{s}\" in valid: expected a status code from 200 to \
                             599, like \"200\", or \"any\""
                        )
                    })
            });
            let d = self.check(d, parse_duration);
            if let (Some(code), Some(d)) = (code, d) {
                valid.push((code, d, status.span().start));
            }
        }
        valid.sort_by_key(|v| v.2);
        valid.into_iter().map(|(s, d, _)| (s, d)).collect()
    }

    fn request_part(&mut self, s: &Str) -> Option<RequestPart> {
        self.check(s, |text| {
            let (kind, name) = text
                .split_once(':')
                .filter(|(_, n)| !n.trim().is_empty())
                .ok_or_else(|| format!("invalid request part \"{text}\": {PART_EXPECTED}"))?;
            let name = name.trim();
            match kind.trim().to_ascii_lowercase().as_str() {
                "header" => HeaderName::from_bytes(name.as_bytes())
                    .map(RequestPart::Header)
                    .map_err(|_| format!("invalid header name \"{name}\" in \"{text}\"")),
                "cookie" => Ok(RequestPart::Cookie(name.to_owned())),
                "query" => Ok(RequestPart::Query(name.to_owned())),
                _ => Err(format!("invalid request part \"{text}\": {PART_EXPECTED}")),
            }
        })
    }

    fn status_header(&mut self, c: &RawRouteCache) -> Option<HeaderName> {
        match c.status_header.as_ref().map(|s| (s, s.get_ref())) {
            None | Some((_, StrOr::Other(HeaderFlag(true)))) => {
                Some(HeaderName::from_static(DEFAULT_STATUS_HEADER))
            }
            Some((_, StrOr::Other(HeaderFlag(false)))) => None,
            Some((s, StrOr::Str(name))) => {
                let spanned = Spanned::new(s.span(), name.clone());
                self.header_name(&spanned)
            }
        }
    }
}
