//! `[limits.NAME]` rate-limit zones.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::values::parse_rate;
use super::{Validator, U32_MAX};
use crate::model::{LimitZone, Rate};
use crate::raw::{RawLimit, Str};

impl Validator<'_> {
    pub(super) fn limits(
        &mut self,
        raw: &BTreeMap<Str, Spanned<RawLimit>>,
    ) -> BTreeMap<String, LimitZone> {
        let mut out = BTreeMap::new();
        for (name, zone) in raw {
            if name.get_ref() == "off" {
                self.error(
                    name.span().start,
                    "limit zone name \"off\" is reserved (limit = \"off\" turns limiting off): \
                     expected another name",
                );
            }
            let z = zone.get_ref();
            let rate = self.check(&z.rate, parse_rate);
            let burst = self.u32_or(&z.burst, "burst", 0, U32_MAX, 0);
            let nodelay = z.nodelay.as_ref().is_some_and(|n| *n.get_ref());
            let delay = z.delay.as_ref().and_then(|d| {
                let n = self.int(d, "delay", 0, U32_MAX)?;
                if nodelay {
                    self.error(
                        self.key_at(d.span().start),
                        "delay and nodelay = true cannot be combined: expected one of them",
                    );
                    return None;
                }
                if n > i64::from(burst) {
                    self.error(
                        d.span().start,
                        format!("invalid delay {n}: expected at most burst ({burst})"),
                    );
                    return None;
                }
                u32::try_from(n).ok()
            });
            let max_clients = z
                .max_clients
                .as_ref()
                .and_then(|m| self.int(m, "max_clients", 1, i64::MAX))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(100_000);
            let status = self.status_in(&z.status, "limit status", &[429, 503], 429);
            let exempt = z.exempt.iter().filter_map(|n| self.net(n)).collect();
            let ipv6_prefix = z
                .ipv6_prefix
                .as_ref()
                .and_then(|p| self.int(p, "ipv6_prefix", 1, 128))
                .and_then(|n| u8::try_from(n).ok())
                .unwrap_or(64);
            let max_connections = z
                .max_connections
                .as_ref()
                .and_then(|m| self.int(m, "max_connections", 1, U32_MAX))
                .and_then(|n| u32::try_from(n).ok());
            out.insert(
                name.get_ref().clone(),
                LimitZone {
                    name: name.get_ref().clone(),
                    rate: rate.unwrap_or(Rate {
                        count: 1,
                        per: Duration::from_secs(1),
                    }),
                    burst,
                    nodelay,
                    delay,
                    max_clients,
                    status,
                    exempt,
                    ipv6_prefix,
                    max_connections,
                },
            );
        }
        out
    }
}
