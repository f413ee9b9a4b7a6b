//! `[client_ip]` and `[limits.NAME]`: who the client is and how fast it may go.

use std::time::Duration;

use ipnet::IpNet;

/// `[client_ip]`: trusting proxy headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientIp {
    /// Peers whose forwarding header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The header holding the forwarded chain. Default `X-Forwarded-For`.
    pub header: http::HeaderName,
}

/// `[limits.NAME]`: a per-client request rate limit (nginx `limit_req_zone` + `limit_req`).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitZone {
    /// Zone name.
    pub name: String,
    /// Sustained rate.
    pub rate: Rate,
    /// Requests allowed above the rate before rejection. Default 0.
    pub burst: u32,
    /// With a burst: pass the burst at once instead of pacing it. Default false.
    pub nodelay: bool,
    /// nginx's two-stage `delay=N`: the first N excess requests pass at once, the rest are paced.
    pub delay: Option<u32>,
    /// Most clients tracked at once (the memory bound). Default 100000.
    pub max_clients: usize,
    /// Status for rejected requests (429 or 503). Default 429.
    pub status: u16,
    /// Clients never limited.
    pub exempt: Vec<IpNet>,
    /// IPv6 clients are keyed by this prefix length. Default 64.
    pub ipv6_prefix: u8,
    /// Most concurrent connections per client (nginx `limit_conn`), if set.
    pub max_connections: Option<u32>,
}

/// A rate: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u32,
    /// The period (one second, minute or hour).
    pub per: Duration,
}
