//! TLS for the HTTPS listeners: the rustls server configuration and the certificate table
//! built from a configuration.
//!
//! Policy (SSL Labs A+ with HSTS from a header set): TLS 1.2 and 1.3 only (1.3 only when
//! `min_version = "1.3"`), only forward-secret AEAD suites (rustls offers nothing else),
//! ALPN `h2`, `http/1.1` and `acme-tls/1` (for TLS-ALPN-01), session resumption by tickets
//! and by a session cache. The certificate is chosen per handshake by
//! [`vigie_acme::CertResolver`], so certificates change without touching listeners.
//!
//! Cryptography is aws-lc-rs's: its X25519 costs half of ring's (`benches/RESULTS.md`), and it
//! brings the hybrid post-quantum key exchange X25519MLKEM768, which vigie prefers whenever
//! a client offers it (current Chrome, Firefox and Safari do), as Cloudflare and Caddy do.
//! Suites are in Mozilla's order (AES-128-GCM first), chosen by the server: AES-128-GCM's
//! SHA-256 key schedule is cheaper than AES-256-GCM's SHA-384, and the SSL Labs grade scores
//! the suites offered, not their order. Certificate keys sign with ring (vigie-acme loads
//! them), which is as fast for ECDSA P-256.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::crypto::CryptoProvider;
use rustls::server::ServerSessionMemoryCache;
use rustls::{CipherSuite, ServerConfig};
use vigie_acme::resolver::ACME_TLS_ALPN;
use vigie_acme::{CertError, CertResolver, CertTable, LocalCa};
use vigie_config::{Config, SiteTls, TlsVersion};

/// The provider of the HTTPS listeners: aws-lc-rs, suites and key exchanges in vigie's order
/// (see the module docs).
pub fn provider() -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        CipherSuite::TLS13_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        CipherSuite::TLS13_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    // The server takes the first of its groups the client sent a key share for: hybrid
    // post-quantum first, then X25519, P-256, P-384.
    provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519MLKEM768,
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
        aws_lc_rs::kx_group::SECP384R1,
    ];
    provider
}

/// The rustls configuration shared by every HTTPS listener.
pub fn server_config(
    min: TlsVersion,
    resolver: Arc<CertResolver>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(16 * 1024);
    config.ticketer = aws_lc_rs::Ticketer::new()?;
    config.ignore_client_order = true;
    // One resumption ticket per full handshake, as Go and Caddy send: rustls's default of
    // two doubles the ticket sealing and the bytes of every handshake, and a browser resumes
    // a connection with one ticket.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// The certificates a configuration names: files are read, `internal` (and, until ACME has
/// issued one, `acme`) names get a certificate from the local CA. The default certificate is
/// `[tls] default_name`'s, else the first TLS site's.
pub fn configured_table(config: &Config) -> Result<CertTable, CertError> {
    let mut table = CertTable::default();
    let mut ca: Option<LocalCa> = None;
    for site in &config.sites {
        let Some(tls) = &site.tls else { continue };
        let names: Vec<String> = site.names.iter().map(ToString::to_string).collect();
        let ck = match tls {
            SiteTls::Files { cert, key } => vigie_acme::pem::load_files(cert, key)?,
            SiteTls::Internal | SiteTls::Acme => {
                if ca.is_none() {
                    ca = Some(LocalCa::load_or_create(&config.server.state_dir)?);
                }
                match &ca {
                    Some(ca) => ca.issue(&names)?.0,
                    None => continue,
                }
            }
        };
        for name in &names {
            table.insert(name, ck.clone());
        }
        if table.default.is_none() {
            table.default = Some(ck.clone());
        }
    }
    if let Some(name) = &config.tls.default_name {
        if let Some(ck) = table.lookup(name) {
            table.default = Some(ck.clone());
        }
    }
    Ok(table)
}
