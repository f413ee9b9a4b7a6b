//! `[upstreams.NAME]` groups: servers, balancing, health checks, timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use toml::Spanned;

use super::values::parse_server_addr;
use super::{Validator, U32_MAX};
use crate::model::{Balance, HashKey, HealthCheck, Upstream, UpstreamServer};
use crate::raw::{RawHealth, RawUpstream, Str, StrOr};

const MAX_WEIGHT: i64 = 1000;

impl Validator<'_> {
    pub(super) fn upstreams(
        &mut self,
        raw: &BTreeMap<Str, Spanned<RawUpstream>>,
    ) -> BTreeMap<String, Upstream> {
        let mut out = BTreeMap::new();
        for (name, up) in raw {
            let u = up.get_ref();
            let name = name.get_ref().clone();
            let mut servers = Vec::new();
            if u.servers.get_ref().is_empty() {
                self.error(
                    u.servers.span().start,
                    format!(
                        "upstream \"{name}\" has no servers: expected at least one, like \
                     servers = [\"127.0.0.1:8080\"]"
                    ),
                );
            }
            for entry in u.servers.get_ref() {
                let at = entry.span().start;
                let (addr, weight) = match entry.get_ref() {
                    StrOr::Str(s) => (parse_server_addr(s).map_err(|m| (at, m)), 1),
                    StrOr::Other(t) => (
                        parse_server_addr(t.addr.get_ref()).map_err(|m| (t.addr.span().start, m)),
                        self.u32_or(&t.weight, "weight", 1, MAX_WEIGHT, 1),
                    ),
                };
                match addr {
                    Ok(addr) => servers.push(UpstreamServer { addr, weight }),
                    Err((at, message)) => self.error(at, message),
                }
            }
            let balance_name = u
                .balance
                .as_ref()
                .map_or("round_robin", |b| b.get_ref().as_str());
            let hash_key = match &u.hash_on {
                None => HashKey::ClientIp,
                Some(h) => {
                    if balance_name != "hash" {
                        self.error(
                            self.key_at(h.span().start),
                            format!(
                                "hash_on is set but balance is \"{balance_name}\": expected \
                                 balance = \"hash\" with hash_on"
                            ),
                        );
                    }
                    self.check(h, |h| {
                        if h == "client_ip" {
                            return Ok(HashKey::ClientIp);
                        }
                        h.strip_prefix("header:")
                            .and_then(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                            .map(HashKey::Header)
                            .ok_or_else(|| {
                                format!(
                                    "invalid hash_on \"{h}\": expected \"client_ip\" or \
                                     \"header:NAME\", like \"header:X-User\""
                                )
                            })
                    })
                    .unwrap_or(HashKey::ClientIp)
                }
            };
            let balance = match &u.balance {
                None => Balance::RoundRobin,
                Some(b) => self
                    .check(b, |b| match b {
                        "round_robin" | "weighted" => Ok(Balance::RoundRobin),
                        "least_conn" => Ok(Balance::LeastConn),
                        "hash" => Ok(Balance::Hash(hash_key)),
                        "random_two" => Ok(Balance::RandomTwo),
                        other => Err(format!(
                            "invalid balance \"{other}\": expected \"round_robin\", \
                             \"weighted\", \"least_conn\", \"hash\" or \"random_two\""
                        )),
                    })
                    .unwrap_or(Balance::RoundRobin),
            };
            let health = u.health.as_ref().map(|h| self.health(h.get_ref()));
            let upstream = Upstream {
                name: name.clone(),
                servers,
                balance,
                health,
                max_fails: self.u32_or(&u.max_fails, "max_fails", 0, U32_MAX, 1),
                fail_timeout: self.duration(&u.fail_timeout, Duration::from_secs(10)),
                retries: self.u32_or(&u.retries, "retries", 0, 100, 1),
                connect_timeout: self.nonzero_duration(
                    &u.connect_timeout,
                    "connect_timeout",
                    Duration::from_secs(5),
                ),
                read_timeout: self.nonzero_duration(
                    &u.read_timeout,
                    "read_timeout",
                    Duration::from_secs(60),
                ),
                write_timeout: self.nonzero_duration(
                    &u.write_timeout,
                    "write_timeout",
                    Duration::from_secs(60),
                ),
                h2c: u.h2c.unwrap_or(false),
                tls: u.tls.as_ref().map(|t| self.upstream_tls(&name, t)),
            };
            out.insert(name, upstream);
        }
        out
    }

    pub(super) fn health(&mut self, h: &RawHealth) -> HealthCheck {
        let path = match &h.path {
            None => "/".to_owned(),
            Some(p) => {
                if !p.get_ref().starts_with('/') {
                    self.error(
                        p.span().start,
                        format!(
                            "health path \"{}\" must start with \"/\", like \"/health\"",
                            p.get_ref()
                        ),
                    );
                }
                p.get_ref().clone()
            }
        };
        let host = h.host.as_ref().and_then(|host| {
            self.check(host, |v| {
                if !v.is_empty()
                    && HeaderValue::from_str(v).is_ok()
                    && !v.contains(char::is_whitespace)
                {
                    Ok(v.to_owned())
                } else {
                    Err(format!(
                        "invalid health host \"{v}\": expected a host name, like \"app.internal\""
                    ))
                }
            })
        });
        HealthCheck {
            path,
            interval: self.nonzero_duration(&h.interval, "interval", Duration::from_secs(5)),
            timeout: self.nonzero_duration(&h.timeout, "timeout", Duration::from_secs(2)),
            rise: self.u32_or(&h.rise, "rise", 1, 1000, 2),
            fall: self.u32_or(&h.fall, "fall", 1, 1000, 3),
            host,
        }
    }
}
