//! The ClientHello peek of a cluster instance (see the listener's module docs): read the
//! ClientHello, put it back for the handshake, and say whether it offers `acme-tls/1`.
//!
//! Every TLS connection of a cluster instance pays this, and almost none offers
//! `acme-tls/1`, so a ClientHello whose bytes do not contain the protocol's name is let
//! through without being parsed. Only one that may offer it is parsed, for its server name
//! and ALPN list. Measured by `benches/tls-peek.sh` (instructions per full TLS 1.3
//! handshake, against the same vigie without `[cluster]`): parsing every ClientHello with
//! rustls's `Acceptor` added 19,200 (1.6 %); with this check first, 6,000 (0.5 %).

use memchr::memmem;
use pingora::protocols::l4::stream::Stream as L4Stream;
use tokio::io::AsyncReadExt;
use vigie_acme::resolver::ACME_TLS_ALPN;

/// A ClientHello is at most a few records; past this it is not one.
const MOST: usize = 64 * 1024;

/// Read the ClientHello and put it back on `tcp` for the handshake; the server name when it
/// offers `acme-tls/1` (TLS-ALPN-01). Anything unreadable is left for the handshake to
/// refuse.
pub(super) async fn acme_tls_hello(tcp: &mut L4Stream) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let found = loop {
        let n = match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break None,
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        match scan(&seen) {
            Scan::NotAcme => break None,
            Scan::MoreBytes if seen.len() < MOST => {}
            Scan::MoreBytes => break None,
            Scan::Parse => match acme_server_name(&seen) {
                Parsed::Done(name) => break name,
                // A ClientHello over several records: the parser waits for the rest.
                Parsed::Incomplete if seen.len() < MOST => {}
                Parsed::Incomplete => break None,
            },
        }
    };
    tcp.rewind(&seen);
    found
}

/// What the bytes read so far say.
#[derive(Debug, PartialEq)]
enum Scan {
    /// A whole ClientHello in the first record, without the bytes `acme-tls/1`: it cannot
    /// offer the protocol.
    NotAcme,
    /// The first record or its ClientHello is not all here yet.
    MoreBytes,
    /// Parse it: it may offer `acme-tls/1`, spans records, or is not a ClientHello (the
    /// parser, then the handshake, decide).
    Parse,
}

/// Look at the first TLS record of `seen` (5-byte header: type 22, version, length) and the
/// handshake message in it (4-byte header: type 1, 24-bit length).
fn scan(seen: &[u8]) -> Scan {
    let [22, _, _, l0, l1, rest @ ..] = seen else {
        return if seen.len() < 5 && seen.first().is_none_or(|&t| t == 22) {
            Scan::MoreBytes
        } else {
            Scan::Parse
        };
    };
    let record = usize::from(u16::from_be_bytes([*l0, *l1]));
    let Some(record) = rest.get(..record) else {
        return Scan::MoreBytes;
    };
    let [1, h0, h1, h2, body @ ..] = record else {
        return Scan::Parse;
    };
    let hello = u32::from_be_bytes([0, *h0, *h1, *h2]) as usize;
    match body.get(..hello) {
        Some(hello) if memmem::find(hello, ACME_TLS_ALPN).is_none() => Scan::NotAcme,
        _ => Scan::Parse,
    }
}

/// What rustls's parser made of the bytes read so far.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// A ClientHello (its server name when it offers `acme-tls/1`), or bytes it refused.
    Done(Option<String>),
    /// Not a whole ClientHello yet.
    Incomplete,
}

/// Parse the ClientHello in `seen`: the server name when it offers `acme-tls/1`.
fn acme_server_name(seen: &[u8]) -> Parsed {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = seen;
    while !rest.is_empty() {
        if acceptor.read_tls(&mut rest).is_err() {
            return Parsed::Done(None);
        }
    }
    let accepted = match acceptor.accept() {
        Ok(Some(accepted)) => accepted,
        Ok(None) => return Parsed::Incomplete,
        Err(_) => return Parsed::Done(None),
    };
    let hello = accepted.client_hello();
    let acme = hello
        .alpn()
        .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
    Parsed::Done(hello.server_name().filter(|_| acme).map(str::to_string))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The bytes a rustls client sends first: its ClientHello, for `name`, offering `alpn`.
    fn client_hello(name: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_hello_without_acme_tls_is_let_through_unparsed() {
        let hello = client_hello("a.example", &[b"h2", b"http/1.1"]);
        assert_eq!(scan(&hello), Scan::NotAcme);
        assert_eq!(acme_server_name(&hello), Parsed::Done(None));
    }

    #[test]
    fn a_hello_offering_acme_tls_is_parsed_for_its_name() {
        let hello = client_hello("a.example", &[ACME_TLS_ALPN]);
        assert_eq!(scan(&hello), Scan::Parse);
        assert_eq!(
            acme_server_name(&hello),
            Parsed::Done(Some("a.example".into()))
        );
    }

    #[test]
    fn only_the_protocol_itself_is_an_offer() {
        // A server name cannot hold a `/`; another protocol's name can hold the bytes: then
        // the hello is parsed (a false alarm), and it is not an offer.
        let hello = client_hello("acme-tls-1.example", &[b"h2"]);
        assert_eq!(scan(&hello), Scan::NotAcme);
        let hello = client_hello("x.example", &[b"h2", b"xacme-tls/1"]);
        assert_eq!(scan(&hello), Scan::Parse);
        assert_eq!(acme_server_name(&hello), Parsed::Done(None));
    }

    #[test]
    fn a_hello_in_pieces_waits_for_the_rest() {
        let hello = client_hello("a.example", &[b"h2"]);
        for cut in [0, 1, 4, 5, 9, hello.len() / 2, hello.len() - 1] {
            assert_eq!(scan(&hello[..cut]), Scan::MoreBytes, "cut at {cut}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_parser() {
        // Plain HTTP on the TLS port, an alert, a record whose message is not a ClientHello,
        // a ClientHello longer than its record (it spans records).
        assert_eq!(scan(b"GET / HTTP/1.1\r\n"), Scan::Parse);
        assert_eq!(scan(&[21, 3, 3, 0, 2, 2, 40]), Scan::Parse);
        assert_eq!(scan(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), Scan::Parse);
        assert_eq!(scan(&[22, 3, 1, 0, 4, 1, 0, 1, 0]), Scan::Parse);
        assert_eq!(acme_server_name(b"GET / HTTP/1.1\r\n"), Parsed::Done(None));
    }

    #[test]
    fn a_hello_over_two_records_is_parsed_once_both_are_here() {
        let hello = client_hello("a.example", &[ACME_TLS_ALPN]);
        let (header, message) = hello.split_at(5);
        let (first, second) = message.split_at(message.len() / 2);
        let record = |part: &[u8]| {
            let len = u16::try_from(part.len()).unwrap().to_be_bytes();
            [&header[..3], &len, part].concat()
        };
        let split = [record(first), record(second)].concat();
        let first_record = &split[..5 + first.len()];
        assert_eq!(scan(first_record), Scan::Parse);
        assert_eq!(acme_server_name(first_record), Parsed::Incomplete);
        assert_eq!(
            acme_server_name(&split),
            Parsed::Done(Some("a.example".into()))
        );
    }
}
