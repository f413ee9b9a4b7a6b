//! `[upstreams.NAME]`: server groups, balancing and health checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[upstreams.NAME]`: a group of servers behind one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Group name.
    pub name: String,
    /// Servers, each with a weight.
    pub servers: Vec<UpstreamServer>,
    /// How a server is picked.
    pub balance: Balance,
    /// Active health check, if any.
    pub health: Option<HealthCheck>,
    /// Failures (connect errors or timeouts) within `fail_timeout` that mark a server down
    /// passively for `fail_timeout` (nginx `max_fails`). Default 1; 0 turns it off.
    pub max_fails: u32,
    /// See `max_fails`. Default 10s.
    pub fail_timeout: Duration,
    /// Extra attempts on another server when connecting fails (idempotent requests, or any
    /// request whose body has not been sent). Default 1.
    pub retries: u32,
    /// TCP connect timeout. Default 5s.
    pub connect_timeout: Duration,
    /// Timeout between two reads from the server. Default 60s.
    pub read_timeout: Duration,
    /// Timeout between two writes to the server. Default 60s.
    pub write_timeout: Duration,
    /// Speak HTTP/2 in clear text (h2c) to the servers. Default false.
    pub h2c: bool,
    /// TLS to the servers (`[upstreams.NAME.tls]`); `None`: plain TCP.
    pub tls: Option<UpstreamTls>,
}

/// `[upstreams.NAME.tls]`: how vigie speaks TLS to a group's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The name sent as SNI and checked against the certificate; `None`: the server's host
    /// (its IP for an address, checked against the certificate's IP names).
    pub server_name: Option<String>,
    /// Send SNI. Default true; false requires `verify = false` (see the README).
    pub sni: bool,
    /// CA certificates (PEM) the servers' certificates are checked against; `None`: the
    /// system roots.
    pub ca: Option<PathBuf>,
    /// Check the certificate (chain, validity, name). Default true.
    pub verify: bool,
    /// Client certificate chain and key (PEM) presented to the servers.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Offer HTTP/2 and HTTP/1.1 by ALPN (true, the default) or HTTP/1.1 only.
    pub h2: bool,
    /// Where the table is, for errors found reading its files.
    pub at: super::Position,
}

/// One server of an upstream group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    /// Where it listens: an address, or a host name resolved when the snapshot is built.
    pub addr: ServerAddr,
    /// Relative weight (>= 1). Default 1.
    pub weight: u32,
}

/// A server address as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// A literal IP and port.
    Ip(SocketAddr),
    /// A DNS name and port (e.g. a Docker service `backend:8080`).
    Name {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Ip(a) => write!(f, "{a}"),
            ServerAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Load-balancing algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Weighted round robin (weights default to 1, so plain round robin). Default.
    RoundRobin,
    /// Fewest requests in flight, ties broken by weight then round robin.
    LeastConn,
    /// Consistent hashing (ketama) on a key, so a key sticks to one server.
    Hash(HashKey),
    /// Two random servers, the one with fewer requests in flight wins.
    RandomTwo,
}

/// What consistent hashing hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client address (after trusted-proxy resolution).
    ClientIp,
    /// A request header's value (falls back to the client address when absent).
    Header(http::HeaderName),
}

/// An active HTTP health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Path requested with GET; a 2xx/3xx answer is healthy.
    pub path: String,
    /// Time between two checks. Default 5s.
    pub interval: Duration,
    /// Timeout of one check. Default 2s.
    pub timeout: Duration,
    /// Consecutive successes that bring a server back. Default 2.
    pub rise: u32,
    /// Consecutive failures that take a server out. Default 3.
    pub fall: u32,
    /// Host header sent; default the server's address.
    pub host: Option<String>,
}
