//! Client address resolution, run once per request before routing.
//!
//! The client is the connection's peer, unless the peer is a trusted proxy: then the
//! forwarding header is read from right to left and the first address that is not itself a
//! trusted proxy is the client. A header from an untrusted peer is ignored, so it cannot be
//! spoofed.

use std::net::IpAddr;

use pingora::proxy::Session;
use vigie_config::ClientIp;

/// The peer's IP address, if the connection has one (not a Unix socket).
pub fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| canonical(a.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) become plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in one of the trusted proxy ranges.
pub fn is_trusted(cfg: &ClientIp, ip: IpAddr) -> bool {
    cfg.trusted_proxies.iter().any(|net| net.contains(&ip))
}

/// The client address of this request (see the module docs).
pub fn resolve(session: &Session, cfg: &ClientIp) -> Option<IpAddr> {
    let peer = peer_ip(session)?;
    let values = session
        .req_header()
        .headers
        .get_all(&cfg.header)
        .into_iter()
        .map(|v| v.as_bytes());
    Some(client_from_chain(cfg, peer, values))
}

/// The client behind `peer` given the values of the forwarding header, in the order they
/// arrived: `peer` itself unless it is trusted; then, right to left, the first address that is
/// not a trusted proxy. An element that is not an address (or not visible ASCII) ends the walk at the
/// last address believed. Pure, so it can be fuzzed.
pub fn client_from_chain<'a>(
    cfg: &ClientIp,
    peer: IpAddr,
    values: impl Iterator<Item = &'a [u8]>,
) -> IpAddr {
    if !is_trusted(cfg, peer) {
        return peer;
    }
    let mut client = peer;
    for value in values {
        // Visible ASCII only, as `HeaderValue::to_str` demands.
        let visible = value
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
        let Ok(text) = std::str::from_utf8(value) else {
            return client;
        };
        if !visible {
            return client;
        }
        for part in text.split(',').rev() {
            match parse_forwarded_ip(part.trim()) {
                Some(ip) => {
                    client = ip;
                    if !is_trusted(cfg, ip) {
                        return ip;
                    }
                }
                None => return client,
            }
        }
    }
    client
}

/// Parse one element of X-Forwarded-For: an IP, possibly with a port or brackets.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
        .map(canonical)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_forms() {
        assert_eq!(parse_forwarded_ip("1.2.3.4"), "1.2.3.4".parse().ok());
        assert_eq!(parse_forwarded_ip("1.2.3.4:80"), "1.2.3.4".parse().ok());
        assert_eq!(
            parse_forwarded_ip("[2001:db8::1]:80"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(
            parse_forwarded_ip("[2001:db8::1]"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(parse_forwarded_ip("::ffff:1.2.3.4"), "1.2.3.4".parse().ok());
        assert_eq!(parse_forwarded_ip("unknown"), None);
    }
}
