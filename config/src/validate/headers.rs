//! Header operations: `[headers.NAME]` sets and the `request_headers` / `response_headers`
//! tables of sites and routes, merged in order; `pass_headers`.

use std::collections::{BTreeMap, HashMap};

use http::{HeaderName, HeaderValue};
use toml::Spanned;

use super::Validator;
use crate::model::HeaderOps;
use crate::raw::{RawHeaderOps, Str, StrList, StrMap};

impl Validator<'_> {
    /// `pass_headers = ["Server"]`: names from the hidden list, any case.
    pub(super) fn pass_headers(&mut self, list: &StrList) -> Vec<String> {
        let mut out = Vec::new();
        for name in list {
            let lower = name.get_ref().to_ascii_lowercase();
            if crate::model::HIDDEN_UPSTREAM_HEADERS.contains(&lower.as_str()) {
                out.push(lower);
            } else {
                self.error(
                    name.span().start,
                    format!(
                        "invalid pass_headers entry \"{}\": only hidden headers can be passed, \
                         expected \"Server\" or \"X-Powered-By\" (other upstream headers pass \
                         already)",
                        name.get_ref()
                    ),
                );
            }
        }
        out
    }

    /// A table of headers to set, in file order; the same header twice is an error.
    pub(super) fn header_map(&mut self, map: &StrMap) -> Vec<(HeaderName, HeaderValue)> {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let mut seen: HashMap<HeaderName, usize> = HashMap::new();
        for (k, v) in entries {
            let name = self.header_name(k);
            let value = self.header_value(v);
            if let Some(name) = name {
                if let Some(first) = seen.get(&name) {
                    let line = self.line(*first);
                    self.error(
                        k.span().start,
                        format!(
                            "header \"{}\" is set twice in this table (line {line}): expected \
                             each header once (names ignore case)",
                            k.get_ref()
                        ),
                    );
                    continue;
                }
                seen.insert(name.clone(), k.span().start);
                if let Some(value) = value {
                    out.push((name, value));
                }
            }
        }
        out
    }

    pub(super) fn header_ops(&mut self, raw: &Option<RawHeaderOps>) -> HeaderOps {
        let Some(raw) = raw else {
            return HeaderOps::default();
        };
        let set = self.header_map(&raw.set);
        let mut remove = Vec::new();
        for r in &raw.remove {
            if let Some(name) = self.header_name(r) {
                if !remove.contains(&name) {
                    remove.push(name);
                }
            }
        }
        HeaderOps { set, remove }
    }

    pub(super) fn header_sets(
        &mut self,
        raw: &BTreeMap<Str, Spanned<StrMap>>,
    ) -> BTreeMap<String, HeaderOps> {
        raw.iter()
            .map(|(name, set)| {
                let ops = HeaderOps {
                    set: self.header_map(set.get_ref()),
                    remove: Vec::new(),
                };
                (name.get_ref().clone(), ops)
            })
            .collect()
    }
}

/// Applies `layer` after `acc`: a later remove cancels an earlier set of that header, and a
/// later set replaces an earlier one.
pub(super) fn merge(acc: &mut HeaderOps, layer: &HeaderOps) {
    for name in &layer.remove {
        acc.set.retain(|(n, _)| n != name);
        if !acc.remove.contains(name) {
            acc.remove.push(name.clone());
        }
    }
    for (name, value) in &layer.set {
        acc.set.retain(|(n, _)| n != name);
        acc.set.push((name.clone(), value.clone()));
    }
}
