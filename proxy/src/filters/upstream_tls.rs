//! TLS to upstream servers (`[upstreams.NAME.tls]`), applied in `upstream_peer` to the peer
//! pingora connects to: SNI and the name checked, verification against the system roots or
//! the group's CA file, the client certificate, ALPN. A failed handshake (wrong name, expired
//! or untrusted certificate) is a connect failure: logged here with the group and server,
//! answered 502 by `fail_to_proxy`; never retried in plain text.

use std::net::SocketAddr;

use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;
use pingora::{Error, ErrorType};

use crate::plan::rules::PeerTls;

/// The name sent as SNI and checked: `server_name`, else the server's IP (checked against the
/// certificate's IP names); empty when `sni = false`.
pub fn sni(tls: &PeerTls, addr: &SocketAddr) -> String {
    if !tls.settings.sni {
        return String::new();
    }
    tls.settings
        .server_name
        .clone()
        .unwrap_or_else(|| addr.ip().to_string())
}

/// Set the peer's TLS options from the group's settings. pingora's connection pool key
/// leaves out the CA and ALPN, so the pool is split by group (`group_key`): a connection
/// verified against one group's CA is never reused for a group that trusts other roots.
pub fn configure(peer: &mut HttpPeer, group: &str, tls: &PeerTls) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    group.hash(&mut h);
    peer.group_key = h.finish();
    let s = &tls.settings;
    peer.options.verify_cert = s.verify;
    peer.options.verify_hostname = s.verify;
    peer.options.ca = tls.ca.clone();
    peer.client_cert_key = tls.client.clone();
    peer.options.alpn = if s.h2 { ALPN::H2H1 } else { ALPN::H1 };
}

/// Log a connect failure that is a TLS one, with what it was about.
pub fn log_failure(group: &str, addr: Option<&SocketAddr>, e: &Error) {
    let tls = matches!(
        e.etype(),
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::TLSWantX509Lookup
    ) || e.to_string().contains("certificate");
    if tls {
        tracing::warn!(
            upstream = group,
            server = addr.map(ToString::to_string).unwrap_or_default(),
            error = %e,
            "TLS handshake with the upstream server failed (certificate not accepted): \
             answering 502, never falling back to plain text"
        );
    }
}
