//! vigie's configuration: one TOML file parsed and validated into typed, immutable data.
//!
//! [`parse`] (or [`load`]) turns the text into a [`Config`] whose invariants the proxy relies
//! on (see [`model`]), or into [`ConfigErrors`]: every problem found, each shown as
//! `file:line:col: what is wrong: what was expected`. Keys that validate but whose feature
//! has not landed yet are reported in [`Config::warnings`].

pub mod model;

mod error;
mod raw;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;

/// Parses and validates a configuration; `origin` is the file name shown in messages.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    validate::parse(text, origin)
}

/// Reads `path` and [`parse`]s it, naming it by its path in messages.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            origin,
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }])),
    }
}

impl Config {
    /// One line describing the configuration, for `vigie check`.
    pub fn summary(&self) -> String {
        fn count(n: usize, one: &str, many: &str) -> String {
            format!("{n} {}", if n == 1 { one } else { many })
        }
        fn addrs(list: &[std::net::SocketAddr]) -> String {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
        let routes: usize = self.sites.iter().map(|s| s.routes.len()).sum();
        let servers: usize = self.upstreams.values().map(|u| u.servers.len()).sum();
        let mut listeners = Vec::new();
        if !self.server.http.is_empty() {
            listeners.push(format!("http {}", addrs(&self.server.http)));
        }
        if !self.server.https.is_empty() {
            listeners.push(format!("https {}", addrs(&self.server.https)));
        }
        listeners.push(match self.server.admin {
            Some(a) => format!("admin {a}"),
            None => "admin off".to_owned(),
        });
        format!(
            "{}, {}, {} ({}), {}, {}, listeners: {}",
            count(self.sites.len(), "site", "sites"),
            count(routes, "route", "routes"),
            count(self.upstreams.len(), "upstream", "upstreams"),
            count(servers, "server", "servers"),
            count(self.limits.len(), "limit zone", "limit zones"),
            count(self.caches.len(), "cache zone", "cache zones"),
            listeners.join(", ")
        )
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
