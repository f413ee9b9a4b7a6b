//! Validation of request and response details: request size limits and timeouts in
//! `[server]`, custom error pages (top-level and per site) and `redirect_www` on a site.
//!
//! Error page files are read here, while the configuration is validated, so that a missing or
//! unreadable file is a positioned configuration error (`vigie check` reports it, a reload
//! keeps the old configuration) and nothing is read on the request path.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::model::{ErrorPage, ErrorPages, HostPattern};
use crate::raw::{RawErrorPage, RawErrorPages, RawServer, Size, Str};

use super::Validator;

/// Defaults, like nginx's `client_header_timeout`, `client_body_timeout` and
/// `large_client_header_buffers 4 8k`.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// pingora waits 60 s per read for a request on its own, around the header guard.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_HEADER_BYTES: u64 = 32 * 1024;
const DEFAULT_MAX_URI_BYTES: u64 = 8 * 1024;
/// pingora's HTTP/1 parser refuses larger headers on its own (with 400), so vigie's limit
/// must stay below it to be the one that answers.
const MAX_HEADER_BYTES_CAP: u64 = 1024 * 1024;
/// Error pages are kept in memory in every snapshot.
const MAX_ERROR_PAGE_BYTES: u64 = 1024 * 1024;
const PAGE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// Request bodies read in full before the upstream is chosen, by default (nginx buffers
/// every body; this is the part that costs no disk).
const DEFAULT_REQUEST_BUFFER: u64 = 64 * 1024;
/// The buffered body is carried to the upstream by pingora's retry buffer, 64 KiB.
const MAX_REQUEST_BUFFER: u64 = 64 * 1024;

/// The request limits of `[server]`.
pub(super) struct RequestLimits {
    pub(super) header_timeout: Duration,
    pub(super) body_timeout: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) max_uri_bytes: usize,
    pub(super) request_buffer: u64,
}

impl Validator<'_> {
    /// `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`.
    pub(super) fn request_limits(&mut self, raw: Option<&RawServer>) -> RequestLimits {
        let none = (None, None, None, None);
        let (header_timeout, body_timeout, max_header, max_uri) = raw.map_or(none, |r| {
            (
                r.header_timeout.as_ref(),
                r.body_timeout.as_ref(),
                r.max_header_bytes.as_ref(),
                r.max_uri_bytes.as_ref(),
            )
        });
        let mut header_timeout = self.nonzero_duration(
            &header_timeout.cloned(),
            "header_timeout",
            DEFAULT_HEADER_TIMEOUT,
        );
        if header_timeout > MAX_HEADER_TIMEOUT {
            if let Some(t) = raw.and_then(|r| r.header_timeout.as_ref()) {
                self.error(
                    t.span().start,
                    format!(
                        "invalid header_timeout \"{}\": expected at most 60s (pingora's own wait \
                         for a request)",
                        t.get_ref()
                    ),
                );
            }
            header_timeout = DEFAULT_HEADER_TIMEOUT;
        }
        let body_timeout =
            self.nonzero_duration(&body_timeout.cloned(), "body_timeout", DEFAULT_BODY_TIMEOUT);
        let header_bytes = self.bounded_size(max_header, "max_header_bytes", MAX_HEADER_BYTES_CAP);
        let uri_bytes = self.bounded_size(max_uri, "max_uri_bytes", MAX_HEADER_BYTES_CAP);
        let (header_bytes, uri_bytes) = (
            header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            uri_bytes.unwrap_or(DEFAULT_MAX_URI_BYTES),
        );
        if uri_bytes >= header_bytes {
            if let Some(at) = max_uri.or(max_header).map(|s| s.span().start) {
                self.error(
                    at,
                    format!(
                        "max_uri_bytes ({uri_bytes}) is not below max_header_bytes \
                         ({header_bytes}): expected a smaller max_uri_bytes, since the request \
                         line is part of the header"
                    ),
                );
            }
        }
        let request_buffer = raw
            .and_then(|r| r.request_buffer.as_ref())
            .map_or(Some(DEFAULT_REQUEST_BUFFER), |s| self.request_buffer(s))
            .unwrap_or(DEFAULT_REQUEST_BUFFER);
        RequestLimits {
            request_buffer,
            header_timeout,
            body_timeout,
            max_header_bytes: usize::try_from(header_bytes).unwrap_or(usize::MAX),
            max_uri_bytes: usize::try_from(uri_bytes).unwrap_or(usize::MAX),
        }
    }

    /// `request_buffer` (server or route): a size from 0 (off) to 64 KiB.
    pub(super) fn request_buffer(&mut self, s: &Size) -> Option<u64> {
        let n = self.size(s)?;
        if n > MAX_REQUEST_BUFFER {
            self.error(
                s.span().start,
                format!(
                    "invalid request_buffer {n}: expected at most 64KiB ({MAX_REQUEST_BUFFER} \
                     bytes, pingora's retry buffer carries the body), or 0 for off"
                ),
            );
            return None;
        }
        Some(n)
    }

    /// A size above zero and at most `cap`.
    fn bounded_size(&mut self, s: Option<&Size>, what: &str, cap: u64) -> Option<u64> {
        let s = s?;
        let n = self.nonzero_size(s, what)?;
        if n > cap {
            self.error(
                s.span().start,
                format!("invalid {what} {n}: expected at most 1MiB ({cap} bytes)"),
            );
            return None;
        }
        Some(n)
    }

    /// Error pages by status; `inherited` are the top-level ones a site's pages add to.
    pub(super) fn error_pages(
        &mut self,
        raw: Option<&RawErrorPages>,
        inherited: &ErrorPages,
    ) -> ErrorPages {
        let mut out = inherited.clone();
        for (status, page) in raw.into_iter().flatten() {
            let code = self.check(status, |s| {
                s.parse::<u16>()
                    .ok()
                    .filter(|n| (400..=599).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "invalid status \"{s}\" in error_pages: expected a status code from \
                             400 to 599, like \"404\""
                        )
                    })
            });
            let page = self.error_page(status.get_ref(), page);
            if let (Some(code), Some(page)) = (code, page) {
                out.insert(code, page);
            }
        }
        out
    }

    fn error_page(&mut self, status: &str, raw: &toml::Spanned<RawErrorPage>) -> Option<ErrorPage> {
        let p = raw.get_ref();
        let content_type = p.content_type.as_ref().and_then(|c| {
            self.header_value(c)?;
            Some(c.get_ref().clone())
        });
        let (body, default_type) = match (&p.file, &p.body) {
            (Some(_), Some(body)) => {
                self.error(
                    self.key_at(body.span().start),
                    format!("error page \"{status}\" has both file and body: expected one of them"),
                );
                return None;
            }
            (None, None) => {
                self.error(
                    raw.span().start,
                    format!(
                        "error page \"{status}\" has neither file nor body: expected file = \
                         \"/path/{status}.html\" or body = \"...\""
                    ),
                );
                return None;
            }
            (None, Some(body)) => (body.get_ref().clone().into_bytes(), PAGE_CONTENT_TYPE),
            (Some(file), None) => {
                let body = self.check(file, read_page)?;
                (body, content_type_for(Path::new(file.get_ref())))
            }
        };
        Some(ErrorPage {
            body,
            content_type: content_type.unwrap_or_else(|| default_type.to_owned()),
        })
    }

    /// `redirect_www = "to_apex" | "to_www"`: which of the site's names redirect to which.
    pub(super) fn host_redirects(
        &mut self,
        raw: Option<&Str>,
        names: &[HostPattern],
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(raw) = raw else { return out };
        let to_apex = match raw.get_ref().as_str() {
            "to_apex" => true,
            "to_www" => false,
            other => {
                self.error(
                    raw.span().start,
                    format!("invalid redirect_www \"{other}\": expected \"to_apex\" or \"to_www\""),
                );
                return out;
            }
        };
        let exact: Vec<&str> = names
            .iter()
            .filter_map(|n| match n {
                HostPattern::Exact(n) => Some(n.as_str()),
                HostPattern::Wildcard(_) => None,
            })
            .collect();
        for www in &exact {
            let Some(apex) = www.strip_prefix("www.") else {
                continue;
            };
            if exact.contains(&apex) {
                let (from, to) = if to_apex { (www, &apex) } else { (&apex, www) };
                out.insert(from.to_string(), to.to_string());
            }
        }
        if out.is_empty() {
            self.error(
                raw.span().start,
                format!(
                    "redirect_www = \"{}\" but this site has no pair of names like \
                     \"example.com\" and \"www.example.com\": expected both names in names",
                    raw.get_ref()
                ),
            );
        }
        out
    }
}

/// The contents of an error page file: an absolute path to a readable file of at most 1 MiB.
fn read_page(path: &str) -> Result<Vec<u8>, String> {
    if !Path::new(path).is_absolute() {
        return Err(format!(
            "invalid error page file \"{path}\": expected an absolute path, like \
             \"/srv/errors/404.html\""
        ));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read error page file \"{path}\": {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "error page file \"{path}\" is not a file: expected a file like \
             \"/srv/errors/404.html\""
        ));
    }
    if meta.len() > MAX_ERROR_PAGE_BYTES {
        return Err(format!(
            "error page file \"{path}\" is larger than 1MiB: expected a small page (it is kept \
             in memory)"
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read error page file \"{path}\": {e}"))
}

/// The content type of an error page file, from its extension (HTML when unknown).
fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/html; charset=utf-8",
    }
}
