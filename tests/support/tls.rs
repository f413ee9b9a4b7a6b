//! TLS test helpers: certificate authorities made with rcgen, and a raw rustls client that
//! shows what the server presented and negotiated (leaf certificate, ALPN, version, suite,
//! key exchange, tickets).

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A throwaway CA for tests.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            params,
            key,
        }
    }

    /// A leaf for `names`: (chain PEM, key PEM).
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (format!("{}{}", cert.pem(), self.pem), key.serialize_pem())
    }

    /// A TLS acceptor (ring, safe default versions) serving a leaf of this CA for `names`.
    pub fn acceptor(&self, names: &[&str]) -> tokio_rustls::TlsAcceptor {
        let (chain, key) = self.leaf(names);
        let certs = vigie_acme::pem::certs_from_pem(chain.as_bytes(), "test leaf").unwrap();
        let key = vigie_acme::pem::key_from_pem(key.as_bytes(), "test leaf").unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Write a leaf for `names` as `dir/stem.pem` and `dir/stem.key`; returns both paths.
    pub fn write_leaf(
        &self,
        dir: &std::path::Path,
        stem: &str,
        names: &[&str],
    ) -> (String, String) {
        let (cert, key) = self.leaf(names);
        let c = dir.join(format!("{stem}.pem"));
        let k = dir.join(format!("{stem}.key"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    /// The CA as a reqwest root certificate.
    pub fn reqwest_root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()
    }
}

#[derive(Debug)]
struct AnyCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a handshake showed.
#[derive(Debug)]
pub struct Handshake {
    /// Facts of the leaf certificate the server presented.
    pub leaf: vigie_acme::CertInfo,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The negotiated version.
    pub version: Option<rustls::ProtocolVersion>,
    /// The negotiated cipher suite.
    pub suite: Option<rustls::CipherSuite>,
    /// The negotiated key exchange group.
    pub kx: Option<rustls::NamedGroup>,
}

/// A client of `provider` allowing only `versions`, offering `alpn`, that accepts any
/// certificate (the handshake's facts show which one it was).
pub fn client_config(
    provider: rustls::crypto::CryptoProvider,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = Arc::new(provider);
    let verifier = Arc::new(AnyCert {
        provider: provider.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Handshake with `addr`, sending `sni` (an IP address sends no SNI), offering `alpn`,
/// allowing only `versions`. Accepts any certificate and records it.
pub async fn handshake(
    addr: &str,
    sni: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Handshake, String> {
    let config = client_config(rustls::crypto::ring::default_provider(), alpn, versions);
    handshake_with(addr, sni, config).await.map(|(h, _)| h)
}

/// Handshake with `addr` as `config` says (made by [`client_config`]); the handshake's facts
/// and the open connection.
pub async fn handshake_with(
    addr: &str,
    sni: &str,
    config: rustls::ClientConfig,
) -> Result<
    (
        Handshake,
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ),
    String,
> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    let h = Handshake {
        leaf: vigie_acme::pem::info(leaf, "server leaf").map_err(|e| e.to_string())?,
        alpn: conn.alpn_protocol().map(|p| p.to_vec()),
        version: conn.protocol_version(),
        suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
        kx: conn.negotiated_key_exchange_group().map(|g| g.name()),
    };
    Ok((h, tls))
}

/// A client session store that counts the TLS 1.3 tickets the server sent.
#[derive(Debug)]
pub struct TicketCounter {
    inner: rustls::client::ClientSessionMemoryCache,
    /// TLS 1.3 tickets received.
    pub tickets: std::sync::atomic::AtomicUsize,
}

impl TicketCounter {
    /// An empty store.
    pub fn new() -> TicketCounter {
        TicketCounter {
            inner: rustls::client::ClientSessionMemoryCache::new(16),
            tickets: Default::default(),
        }
    }
}

impl rustls::client::ClientSessionStore for TicketCounter {
    fn set_kx_hint(&self, name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(name, group);
    }
    fn kx_hint(&self, name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(name)
    }
    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(name, value);
    }
    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.inner.remove_tls12_session(name);
    }
    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.tickets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.insert_tls13_ticket(name, value);
    }
    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(name)
    }
}

/// TLS 1.3 and 1.2.
pub const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
