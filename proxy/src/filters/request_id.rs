//! `X-Request-Id`: kept when a trusted proxy (a CDN) sent a well-formed one, otherwise
//! generated (a random UUID). It is put on the request (so the upstream gets it), echoed on
//! every response and written in the access log. Runs in `early_request_filter`.

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::ClientIp;

use super::client_ip::{is_trusted, peer_ip};

/// The header's name.
pub const HEADER: &str = "x-request-id";

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

/// A random version-4 UUID.
pub fn generate() -> String {
    let b: [u8; 16] = rand::random();
    let v = (u128::from_be_bytes(b) & !(0xf000 << 64) | (0x4000 << 64)) & !(0xc000 << 48)
        | (0x8000 << 48);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for i in 0..32u32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            id.push('-');
        }
        let nibble = (v >> (124 - 4 * i)) & 0xf;
        id.push(char::from(HEX[nibble as usize]));
    }
    id
}

/// Copy the request's id (set by [`assign`]) onto a response vigie writes itself (static
/// files, redirects, `respond` routes, errors), as every proxied response carries it.
pub fn echo(session: &Session, resp: &mut pingora::http::ResponseHeader) -> Result<()> {
    if let Some(id) = session.req_header().headers.get(HEADER).cloned() {
        resp.insert_header(HEADER, id)?;
    }
    Ok(())
}

/// Keep or generate the request id, and set it on the request.
pub fn assign(session: &mut Session, cfg: &ClientIp) -> Result<String> {
    let trusted = peer_ip(session).is_some_and(|ip| is_trusted(cfg, ip));
    let kept = trusted
        .then(|| session.req_header().headers.get(HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string);
    let id = kept.unwrap_or_else(generate);
    session
        .req_header_mut()
        .insert_header(HEADER, id.as_str())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(well_formed(&a));
        assert!(!well_formed("has space"));
        assert!(!well_formed(""));
    }
}
