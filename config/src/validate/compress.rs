//! `compress = true | false | { ... }` on a site or a route.

use toml::Spanned;

use super::Validator;
use crate::model::Compression;
use crate::raw::RawCompress;

impl Validator<'_> {
    pub(super) fn compress(&mut self, c: &Spanned<RawCompress>) -> Option<Compression> {
        let t = match c.get_ref() {
            RawCompress::Bool(false) => return None,
            RawCompress::Bool(true) => return Some(Compression::default()),
            RawCompress::Table(t) => t,
        };
        let mut out = Compression::default();
        if let Some(level) = &t.level {
            match u32::try_from(*level.get_ref()) {
                Ok(l @ 1..=9) => out.level = l,
                _ => self.error(
                    level.span().start,
                    format!(
                        "invalid compression level {}: expected an integer from 1 (fast) to 9 (small)",
                        level.get_ref()
                    ),
                ),
            }
        }
        if let Some(level) = &t.brotli_level {
            match u32::try_from(*level.get_ref()) {
                Ok(l @ 1..=11) => out.brotli_level = l,
                _ => self.error(
                    level.span().start,
                    format!(
                        "invalid brotli level {}: expected an integer from 1 (fast) to 11 (small)",
                        level.get_ref()
                    ),
                ),
            }
        }
        if let Some(m) = &t.min_size {
            if let Some(n) = self.size(m) {
                out.min_size = n;
            }
        }
        if let Some(types) = &t.types {
            out.types = Vec::new();
            for ty in types {
                let v = ty.get_ref().trim().to_ascii_lowercase();
                let valid = v.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && !a.contains('*')
                        && (b == "*" || !b.contains('*'))
                });
                if valid {
                    out.types.push(v);
                } else {
                    self.error(
                        ty.span().start,
                        format!(
                            "invalid content type \"{}\": expected a type like \"application/json\" or a prefix like \"text/*\"",
                            ty.get_ref()
                        ),
                    );
                }
            }
        }
        Some(out)
    }
}
