//! TLS for the HTTPS listeners: the rustls server configuration and the certificate table
//! built from a configuration.
//!
//! Policy (SSL Labs A+ with HSTS from a header set): TLS 1.2 and 1.3 only (1.3 only when
//! `min_version = "1.3"`), only forward-secret AEAD suites (rustls offers nothing else),
//! ALPN `h2`, `http/1.1` and `acme-tls/1` (for TLS-ALPN-01), session resumption by tickets
//! and by a session cache. The certificate is chosen per handshake by
//! [`vigie_acme::CertResolver`], so certificates change without touching listeners.

use std::sync::Arc;

use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;
use vigie_acme::resolver::ACME_TLS_ALPN;
use vigie_acme::{CertError, CertResolver, CertTable, LocalCa};
use vigie_config::{Config, HostPattern, SiteTls, TlsVersion};

/// The rustls configuration shared by every HTTPS listener.
pub fn server_config(
    min: TlsVersion,
    resolver: Arc<CertResolver>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(16 * 1024);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

fn pattern_str(p: &HostPattern) -> String {
    match p {
        HostPattern::Exact(n) => n.clone(),
        HostPattern::Wildcard(s) => format!("*.{s}"),
    }
}

/// The certificates a configuration names: files are read, `internal` (and, until ACME has
/// issued one, `acme`) names get a certificate from the local CA. The default certificate is
/// `[tls] default_name`'s, else the first TLS site's.
pub fn configured_table(config: &Config) -> Result<CertTable, CertError> {
    let mut table = CertTable::default();
    let mut ca: Option<LocalCa> = None;
    for site in &config.sites {
        let Some(tls) = &site.tls else { continue };
        let names: Vec<String> = site.names.iter().map(pattern_str).collect();
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
