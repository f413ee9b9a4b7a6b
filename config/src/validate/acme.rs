//! `[acme]`'s CAs: the single `directory` form or the `[[acme.ca]]` list (first preferred,
//! the next ones fallbacks), and each one's External Account Binding.
//!
//! Invariants of the result: at least one CA; no directory listed twice (accounts are kept
//! per directory); an EAB has a kid and exactly one source for its key.

use toml::Spanned;

use super::Validator;
use crate::model::{AcmeCa, Eab, EabKey, Warning};
use crate::raw::{RawAcme, RawEab, Str};

pub(super) const DEFAULT_ACME_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Validator<'_> {
    /// The CAs of `[acme]`, in order of preference (never empty).
    pub(super) fn acme_cas(&mut self, a: &RawAcme) -> Vec<AcmeCa> {
        let Some(list) = &a.ca else {
            return vec![AcmeCa {
                directory: a
                    .directory
                    .as_ref()
                    .and_then(|d| self.directory(d))
                    .unwrap_or_else(|| DEFAULT_ACME_DIRECTORY.to_owned()),
                ca_roots: a.ca_roots.as_ref().map(|p| self.path(p, "ca_roots")),
                eab: a.eab.as_ref().and_then(|e| self.eab(e)),
            }];
        };
        let single = [
            ("directory", a.directory.as_ref().map(|d| d.span().start)),
            ("ca_roots", a.ca_roots.as_ref().map(|d| d.span().start)),
            ("eab", a.eab.as_ref().map(|d| d.span().start)),
        ];
        for (key, at) in single {
            if let Some(at) = at {
                let at = self.key_at(at);
                self.error(
                    at,
                    format!(
                        "`{key}` and [[acme.ca]] cannot be combined: expected `{key}` inside \
                         each [[acme.ca]] entry, or no [[acme.ca]] at all"
                    ),
                );
            }
        }
        if list.get_ref().is_empty() {
            let at = self.key_at(list.span().start);
            self.error(
                at,
                "empty CA list: expected at least one [[acme.ca]] with a directory",
            );
        }
        let mut cas: Vec<AcmeCa> = Vec::new();
        for entry in list.get_ref() {
            let e = entry.get_ref();
            let Some(d) = &e.directory else {
                self.error(
                    entry.span().start,
                    "[[acme.ca]] has no directory: expected directory = \"https://...\" \
                     (the CA's ACME directory URL)",
                );
                continue;
            };
            let Some(directory) = self.directory(d) else {
                continue;
            };
            if let Some(n) = cas.iter().position(|c| c.directory == directory) {
                self.error(
                    d.span().start,
                    format!(
                        "directory \"{directory}\" is already CA {} of [[acme.ca]]: expected \
                         each CA once",
                        n + 1
                    ),
                );
                continue;
            }
            cas.push(AcmeCa {
                directory,
                ca_roots: e.ca_roots.as_ref().map(|p| self.path(p, "ca_roots")),
                eab: e.eab.as_ref().and_then(|x| self.eab(x)),
            });
        }
        if cas.is_empty() {
            cas.push(AcmeCa {
                directory: DEFAULT_ACME_DIRECTORY.to_owned(),
                ca_roots: None,
                eab: None,
            });
        }
        cas
    }

    /// A directory URL.
    fn directory(&mut self, d: &Str) -> Option<String> {
        self.check(d, |d| {
            if (d.starts_with("https://") || d.starts_with("http://"))
                && !d.contains(char::is_whitespace)
            {
                Ok(d.to_owned())
            } else {
                Err(format!(
                    "invalid directory \"{d}\": expected an http:// or https:// URL, \
                     like \"{DEFAULT_ACME_DIRECTORY}\""
                ))
            }
        })
    }

    /// `eab = { kid, hmac_key_file | hmac_key_env | hmac_key }`.
    fn eab(&mut self, raw: &Spanned<RawEab>) -> Option<Eab> {
        let e = raw.get_ref();
        let at = raw.span().start;
        let kid = match &e.kid {
            Some(k) if k.get_ref().is_empty() => {
                self.error(
                    k.span().start,
                    "empty eab kid: expected the key identifier given by the CA",
                );
                None
            }
            Some(k) => Some(k.get_ref().clone()),
            None => {
                self.error(
                    at,
                    "eab has no kid: expected kid = \"...\" (the key identifier given by the \
                     CA) next to hmac_key_file",
                );
                None
            }
        };
        let given: Vec<(&str, &Str)> = [
            ("hmac_key_file", &e.hmac_key_file),
            ("hmac_key_env", &e.hmac_key_env),
            ("hmac_key", &e.hmac_key),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let key = match given.as_slice() {
            [] => {
                self.error(
                    at,
                    "eab has no HMAC key: expected hmac_key_file = \"/path/to/key\" (a file \
                     holding the base64url key given by the CA) or hmac_key_env = \"VARIABLE\"",
                );
                None
            }
            [(what, v)] => self.eab_key(what, v),
            [(first, _), (second, v), ..] => {
                self.error(
                    self.key_at(v.span().start),
                    format!(
                        "eab has both {first} and {second}: expected one of hmac_key_file, \
                         hmac_key_env or hmac_key"
                    ),
                );
                None
            }
        };
        Some(Eab {
            kid: kid?,
            hmac_key: key?,
        })
    }

    fn eab_key(&mut self, what: &str, v: &Str) -> Option<EabKey> {
        let s = v.get_ref();
        if s.is_empty() {
            self.error(
                v.span().start,
                format!("empty eab {what}: expected the value given by the CA"),
            );
            return None;
        }
        match what {
            "hmac_key_file" => Some(EabKey::File(self.path(v, "hmac_key_file"))),
            "hmac_key_env" => self.check(v, |s| {
                if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    Ok(EabKey::Env(s.to_owned()))
                } else {
                    Err(format!(
                        "invalid hmac_key_env \"{s}\": expected the name of an environment \
                             variable, like \"VIGIE_EAB_KEY\""
                    ))
                }
            }),
            _ => {
                let key = self.check(v, |s| {
                    if is_base64url(s) {
                        Ok(EabKey::Inline(s.to_owned()))
                    } else {
                        Err(
                            "invalid eab hmac_key: expected the base64url key given by the CA \
                             (letters, digits, `-` and `_`)"
                                .to_owned(),
                        )
                    }
                })?;
                let (line, col) = crate::error::line_col(self.text, self.key_at(v.span().start));
                self.warnings.push(Warning {
                    line,
                    col,
                    message: "the eab hmac_key is written in the configuration file: prefer \
                              hmac_key_file (a file only vigie reads) or hmac_key_env"
                        .to_owned(),
                });
                Some(key)
            }
        }
    }
}

/// The base64url alphabet (RFC 4648 §5), padding allowed at the end.
pub(crate) fn is_base64url(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
