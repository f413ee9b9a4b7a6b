//! Checked conversions shared by every section: each reports what is wrong at the value's
//! position and returns a default (or `None`) so that validation goes on.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;

use super::values::{parse_duration, parse_net, parse_size, SIZE_EXPECTED};
use super::{Validator, U32_MAX};
use crate::error::{line_col, ConfigError};
use crate::raw::{Int, Size, Str, StrOr};

impl Validator<'_> {
    // ---- reporting ----

    pub(super) fn error(&mut self, at: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.text, at);
        self.errors.push(ConfigError {
            origin: self.origin.to_owned(),
            line,
            col,
            message: message.into(),
        });
    }

    pub(super) fn line(&self, at: usize) -> usize {
        line_col(self.text, at).0
    }

    /// Where the key of the value starting at `value_start` begins (`key = value` on one
    /// line); `value_start` itself when it is not preceded by `key =` (a table header).
    pub(super) fn key_at(&self, value_start: usize) -> usize {
        key_start(self.text, value_start)
    }

    // ---- checked conversions ----

    /// Applies `parse` to a string value; reports its error at the value.
    pub(super) fn check<T>(
        &mut self,
        s: &Str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(s.get_ref()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(s.span().start, message);
                None
            }
        }
    }

    pub(super) fn duration(&mut self, s: &Option<Str>, default: Duration) -> Duration {
        s.as_ref()
            .and_then(|s| self.check(s, parse_duration))
            .unwrap_or(default)
    }

    /// A duration that must not be zero (intervals and timeouts).
    pub(super) fn nonzero_duration(
        &mut self,
        s: &Option<Str>,
        what: &str,
        default: Duration,
    ) -> Duration {
        match s {
            None => default,
            Some(s) => match self.check(s, parse_duration) {
                Some(d) if d.is_zero() => {
                    self.error(
                        s.span().start,
                        format!(
                            "invalid {what} \"{}\": expected more than zero",
                            s.get_ref()
                        ),
                    );
                    default
                }
                Some(d) => d,
                None => default,
            },
        }
    }

    pub(super) fn size(&mut self, s: &Size) -> Option<u64> {
        let at = s.span().start;
        let parsed = match s.get_ref() {
            StrOr::Str(text) => parse_size(text),
            StrOr::Other(n) => {
                u64::try_from(*n).map_err(|_| format!("invalid size {n}: {SIZE_EXPECTED}"))
            }
        };
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    pub(super) fn nonzero_size(&mut self, s: &Size, what: &str) -> Option<u64> {
        match self.size(s)? {
            0 => {
                self.error(
                    s.span().start,
                    format!("invalid {what} 0: expected a size above zero, like \"64MiB\""),
                );
                None
            }
            n => Some(n),
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn int(&mut self, v: &Int, what: &str, min: i64, max: i64) -> Option<i64> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            return Some(n);
        }
        let expected = if max >= U32_MAX {
            format!("expected an integer of at least {min}")
        } else {
            format!("expected an integer from {min} to {max}")
        };
        self.error(v.span().start, format!("invalid {what} {n}: {expected}"));
        None
    }

    pub(super) fn u32_or(
        &mut self,
        v: &Option<Int>,
        what: &str,
        min: i64,
        max: i64,
        default: u32,
    ) -> u32 {
        v.as_ref()
            .and_then(|v| self.int(v, what, min, max))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default)
    }

    /// A status code among `allowed`.
    pub(super) fn status_in(
        &mut self,
        v: &Option<Int>,
        what: &str,
        allowed: &[u16],
        default: u16,
    ) -> u16 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if let Some(s) = allowed.iter().find(|s| i64::from(**s) == n) {
            return *s;
        }
        self.error(
            v.span().start,
            format!("invalid {what} {n}: expected {}", or_list(allowed)),
        );
        default
    }

    /// A status code in `100..=599`.
    pub(super) fn status_code(&mut self, v: &Option<Int>, what: &str, default: u16) -> u16 {
        v.as_ref()
            .and_then(|v| self.int(v, what, 100, 599))
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(default)
    }

    pub(super) fn path(&mut self, s: &Str, what: &str) -> PathBuf {
        if s.get_ref().is_empty() {
            self.error(s.span().start, format!("empty {what}: expected a path"));
        }
        PathBuf::from(s.get_ref())
    }

    pub(super) fn reference(
        &mut self,
        s: &Str,
        kind: &str,
        section: &str,
        defined: &BTreeSet<String>,
    ) -> bool {
        if defined.contains(s.get_ref()) {
            return true;
        }
        let message = if defined.is_empty() {
            format!(
                "{kind} \"{}\" is not defined; no [{section}.NAME] table is defined",
                s.get_ref()
            )
        } else {
            let plural = format!("{kind}s");
            let names: Vec<&str> = defined.iter().map(String::as_str).collect();
            format!(
                "{kind} \"{}\" is not defined; defined {plural}: {}",
                s.get_ref(),
                names.join(", ")
            )
        };
        self.error(s.span().start, message);
        false
    }

    pub(super) fn header_name(&mut self, s: &Str) -> Option<HeaderName> {
        self.check(s, |name| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!(
                    "invalid header name \"{name}\": expected letters, digits and \
                     !#$%&'*+-.^_`|~ only, like \"X-Frame-Options\""
                )
            })
        })
    }

    pub(super) fn header_value(&mut self, s: &Str) -> Option<HeaderValue> {
        self.check(s, |value| {
            HeaderValue::from_str(value).map_err(|_| {
                format!(
                    "invalid header value \"{}\": expected printable text without line breaks \
                     or control characters",
                    value.escape_debug()
                )
            })
        })
    }

    pub(super) fn net(&mut self, s: &Str) -> Option<IpNet> {
        self.check(s, parse_net)
    }
}

/// `a, b or c`.
pub(super) fn or_list(items: &[u16]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u16::to_string).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

/// Where the key of `key = value` begins, given where the value begins; `value_start` when
/// no `key =` precedes it on its line.
pub(super) fn key_start(text: &str, value_start: usize) -> usize {
    let Some(before) = text.get(..value_start) else {
        return value_start;
    };
    let Some(before_eq) = before.trim_end_matches([' ', '\t']).strip_suffix('=') else {
        return value_start;
    };
    let key = before_eq.trim_end_matches([' ', '\t']);
    let bytes = key.as_bytes();
    let mut i = key.len();
    while i > 0 {
        let c = bytes[i - 1];
        if c == b'"' || c == b'\'' {
            match key[..i - 1].rfind(char::from(c)) {
                Some(j) => i = j,
                None => break,
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' {
            i -= 1;
        } else {
            break;
        }
    }
    if i == key.len() {
        value_start
    } else {
        i
    }
}
