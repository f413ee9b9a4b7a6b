//! The validated configuration: pure data with structure, no strings where a type exists.
//!
//! Invariants once a [`Config`] exists (established by `validate`):
//! - every name a site or route refers to (upstream, limit zone, cache zone, header set) exists;
//! - no host name is claimed by two sites; every route's path starts with `/`;
//! - listener addresses do not overlap; every upstream has at least one server;
//! - route settings that inherit from their site (body limit, limit zone, headers) are already
//!   resolved, so the proxy reads one [`Route`] and never walks back to its [`Site`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod cluster;
mod limits;
mod rules;
mod site;
mod tls;
mod upstream;

pub use cluster::*;
pub use limits::*;
pub use rules::*;
pub use site::*;
pub use tls::*;
pub use upstream::*;

/// A whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listeners, state directory and process settings.
    pub server: Server,
    /// TLS policy shared by every HTTPS listener.
    pub tls: TlsPolicy,
    /// ACME account settings, when any site uses `tls = "acme"`.
    pub acme: Option<Acme>,
    /// `[cluster]`: shared state through Redis; `None`: this instance acts alone.
    pub cluster: Option<Cluster>,
    /// Where the client address comes from.
    pub client_ip: ClientIp,
    /// Named rate-limit zones (`[limits.NAME]`).
    pub limits: BTreeMap<String, LimitZone>,
    /// Named cache zones (`[cache.NAME]`).
    pub caches: BTreeMap<String, CacheZone>,
    /// Named upstream groups (`[upstreams.NAME]`).
    pub upstreams: BTreeMap<String, Upstream>,
    /// Sites in file order.
    pub sites: Vec<Site>,
    /// Logging settings.
    pub log: Log,
    /// Custom pages for vigie's own error responses when no site is known (unknown host,
    /// malformed or oversized requests, header timeout), and the default of every site.
    pub error_pages: ErrorPages,
    /// Things that parse and validate but are not acted on yet, or look like mistakes.
    pub warnings: Vec<Warning>,
}

/// A note about a valid configuration: a key whose feature has not landed, or a likely mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the key the warning is about.
    pub line: usize,
    /// 1-based column of that key.
    pub col: usize,
    /// What the warning says.
    pub message: String,
}

/// A 1-based line and column in the configuration file, kept in the model for checks made
/// after validation (they report where the key they concern is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column (in characters), 0 when unknown.
    pub col: usize,
}

/// `[server]`: listeners and process settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Plain-HTTP listeners (`http = [...]`).
    pub http: Vec<SocketAddr>,
    /// TLS listeners (`https = [...]`).
    pub https: Vec<SocketAddr>,
    /// Admin listener (`/healthz`, later `/metrics`); `None` when `admin = false`.
    /// Default `127.0.0.1:9145`.
    pub admin: Option<SocketAddr>,
    /// Where ACME accounts, certificates and the disk cache live. Default `/var/lib/vigie`.
    pub state_dir: PathBuf,
    /// Worker threads per service. Default: the number of CPUs.
    pub threads: Option<usize>,
    /// Status answered when no site claims the request's Host (421 or 404). Default 421.
    pub unknown_host_status: u16,
    /// How long in-flight requests may take to finish on shutdown. Default 10s.
    pub grace_period: Duration,
    /// Bearer token the admin listener asks for on write operations (cache purge);
    /// `None`: those operations are refused.
    pub admin_token: Option<String>,
    /// Deadline for a client to send a whole request header (HTTP/1.x), counted from the
    /// connection's start for its first request and from the first byte for the next ones
    /// (nginx `client_header_timeout`). Default 60s.
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body (per read, as nginx's
    /// `client_body_timeout`). Default 60s.
    pub body_timeout: Duration,
    /// Largest request header, request line included; larger ones get 431. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Longest request target (path and query); longer ones get 414. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// Request bodies up to this many bytes are read in full before an upstream is chosen (a
    /// slow client never holds an upstream connection); larger ones stream. `0` = off.
    /// Default 64 KiB, at most 64 KiB.
    pub request_buffer: u64,
}

/// Custom error pages by status code.
pub type ErrorPages = BTreeMap<u16, ErrorPage>;

/// A custom page for one of vigie's own error responses; the status code is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    /// The body: the file's contents (read when the configuration is loaded) or inline text.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: String,
}

/// `[log]`: access and diagnostic logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// Diagnostic level filter (`info`, `vigie=debug`, ...); `RUST_LOG` wins. Default `info`.
    pub level: String,
    /// Access log destination; `None` = off. Default stdout.
    pub access: Option<LogTarget>,
    /// Access log line format.
    pub access_format: AccessFormat,
    /// Diagnostic logs as JSON lines instead of text. Default false.
    pub json: bool,
}

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// nginx's `combined`.
    Combined,
    /// One JSON object per line.
    Json,
}
