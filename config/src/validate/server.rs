//! `[server]` (listeners, admin, process settings), `[client_ip]` and `[log]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use toml::Spanned;

use super::values::parse_listen;
use super::Validator;
use crate::model::{AccessFormat, ClientIp, Log, LogTarget, Server};
use crate::raw::{RawClientIp, RawLog, RawServer, StrList, StrOr};

const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9145);
const DEFAULT_STATE_DIR: &str = "/var/lib/vigie";

impl Validator<'_> {
    pub(super) fn listeners(
        &mut self,
        raw: &Option<Spanned<StrOr<StrList>>>,
    ) -> Vec<(SocketAddr, usize)> {
        let Some(raw) = raw else { return Vec::new() };
        let items: Vec<(&str, usize)> = match raw.get_ref() {
            StrOr::Str(s) => vec![(s.as_str(), raw.span().start)],
            StrOr::Other(list) => list
                .iter()
                .map(|s| (s.get_ref().as_str(), s.span().start))
                .collect(),
        };
        let mut out = Vec::new();
        for (text, at) in items {
            match parse_listen(text) {
                Ok(addr) => out.push((addr, at)),
                Err(message) => self.error(at, message),
            }
        }
        out
    }

    pub(super) fn server(&mut self, raw: Option<&RawServer>) -> Server {
        let limits = self.request_limits(raw);
        let Some(raw) = raw else {
            return Server {
                header_timeout: limits.header_timeout,
                body_timeout: limits.body_timeout,
                max_header_bytes: limits.max_header_bytes,
                max_uri_bytes: limits.max_uri_bytes,
                request_buffer: limits.request_buffer,
                http: Vec::new(),
                https: Vec::new(),
                admin: Some(DEFAULT_ADMIN),
                state_dir: PathBuf::from(DEFAULT_STATE_DIR),
                threads: None,
                unknown_host_status: 421,
                grace_period: Duration::from_secs(10),
                admin_token: None,
            };
        };
        let http = self.listeners(&raw.http);
        let https = self.listeners(&raw.https);
        let admin = match &raw.admin {
            None => Some((DEFAULT_ADMIN, 0)), // position unused: see `all` below
            Some(a) => match a.get_ref() {
                StrOr::Other(false) => None,
                StrOr::Other(true) => {
                    self.error(
                        a.span().start,
                        "invalid admin true: expected an address like \"127.0.0.1:9145\", or \
                         false to turn it off",
                    );
                    None
                }
                StrOr::Str(s) => match parse_listen(s) {
                    Ok(addr) => Some((addr, a.span().start)),
                    Err(message) => {
                        self.error(a.span().start, message);
                        None
                    }
                },
            },
        };

        // Overlaps, across every listener. The default admin listener has no position.
        let all: Vec<(SocketAddr, Option<usize>)> = http
            .iter()
            .chain(&https)
            .map(|(a, at)| (*a, Some(*at)))
            .chain(admin.map(|(a, at)| (a, raw.admin.as_ref().map(|_| at))))
            .collect();
        for (j, (b, b_at)) in all.iter().enumerate() {
            let Some((a, a_at)) = all[..j].iter().find(|(a, _)| overlaps(a, b)) else {
                continue;
            };
            let Some(a_at) = a_at else { continue };
            match b_at {
                Some(b_at) => {
                    let line = self.line(*a_at);
                    self.error(
                        *b_at,
                        format!(
                            "listener {b} overlaps {a} (line {line}): two listeners on one port \
                             must not cover the same address"
                        ),
                    );
                }
                None => self.error(
                    *a_at,
                    format!(
                        "listener {a} overlaps the default admin listener {b}: two listeners on \
                         one port must not cover the same address; set [server] admin to another \
                         address or false"
                    ),
                ),
            }
        }

        let state_dir = match &raw.state_dir {
            Some(s) => self.path(s, "state_dir"),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let threads = raw
            .threads
            .as_ref()
            .and_then(|t| self.int(t, "threads", 1, 1024))
            .and_then(|n| usize::try_from(n).ok());
        let unknown_host_status =
            self.status_in(&raw.unknown_host, "unknown_host status", &[421, 404], 421);
        let grace_period = self.duration(&raw.grace_period, Duration::from_secs(10));
        let admin_token =
            raw.admin_token.as_ref().and_then(|t| {
                self.check(t, |v| {
                if v.len() < 16 || v.chars().any(|c| !c.is_ascii_graphic()) {
                    Err("invalid admin_token: expected at least 16 printable characters without \
                         spaces (`openssl rand -hex 24` makes one)"
                        .to_owned())
                } else {
                    Ok(v.to_owned())
                }
            })
            });
        Server {
            http: http.into_iter().map(|(a, _)| a).collect(),
            https: https.into_iter().map(|(a, _)| a).collect(),
            admin: admin.map(|(a, _)| a),
            state_dir,
            threads,
            unknown_host_status,
            grace_period,
            admin_token,
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            max_header_bytes: limits.max_header_bytes,
            max_uri_bytes: limits.max_uri_bytes,
            request_buffer: limits.request_buffer,
        }
    }

    pub(super) fn client_ip(&mut self, raw: Option<&RawClientIp>) -> ClientIp {
        let mut out = ClientIp {
            trusted_proxies: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
        };
        let Some(raw) = raw else { return out };
        out.trusted_proxies = raw
            .trusted_proxies
            .iter()
            .filter_map(|n| self.net(n))
            .collect();
        if let Some(h) = &raw.header {
            if let Some(h) = self.header_name(h) {
                out.header = h;
            }
        }
        out
    }

    pub(super) fn log(&mut self, raw: Option<&RawLog>) -> Log {
        let mut log = Log {
            level: "info".to_owned(),
            access: Some(LogTarget::Stdout),
            access_format: AccessFormat::Combined,
            json: false,
        };
        let Some(raw) = raw else { return log };
        log.json = raw.json.as_ref().is_some_and(|j| *j.get_ref());
        if let Some(level) = &raw.level {
            if level.get_ref().trim().is_empty() {
                self.error(
                    level.span().start,
                    "empty level: expected a filter like \"info\" or \"vigie=debug\"",
                );
            } else {
                log.level = level.get_ref().clone();
            }
        }
        if let Some(access) = &raw.access {
            log.access = self
                .check(access, |a| match a {
                    "stdout" => Ok(Some(LogTarget::Stdout)),
                    "off" => Ok(None),
                    path if path.starts_with('/') => Ok(Some(LogTarget::File(PathBuf::from(path)))),
                    other => Err(format!(
                        "invalid access \"{other}\": expected \"stdout\", \"off\" or an absolute \
                     file path, like \"/var/log/vigie/access.log\""
                    )),
                })
                .unwrap_or(Some(LogTarget::Stdout));
        }
        if let Some(format) = &raw.format {
            log.access_format = self
                .check(format, |f| match f {
                    "combined" => Ok(AccessFormat::Combined),
                    "json" => Ok(AccessFormat::Json),
                    other => Err(format!(
                        "invalid format \"{other}\": expected \"combined\" or \"json\""
                    )),
                })
                .unwrap_or(AccessFormat::Combined);
        }
        log
    }
}

/// Two listeners overlap when they share a port and an IP family and either has the same
/// address or one is the unspecified address. IPv6 listeners are bound v6-only, so IPv4 and
/// IPv6 never overlap. Port 0 (any free port) never overlaps.
pub(super) fn overlaps(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
