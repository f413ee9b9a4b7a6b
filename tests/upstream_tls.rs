//! TLS to upstreams over real sockets: a real rustls origin whose certificate is good, for
//! another name, expired, or from an unknown CA; h2 by ALPN; 502 and a clear log line when
//! the certificate is refused, never a plain-text retry.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::support::Vigie;

struct Ca {
    pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "upstream test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, params, key }
    }

    /// A leaf for `name`, expired when `expired`: (DER chain, DER key).
    fn leaf(
        &self,
        name: &str,
        expired: bool,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (vec![cert.der().clone()], der)
    }
}

/// A TLS origin answering `tls HTTP/x PATH`, speaking h2 or http/1.1 as ALPN says.
async fn tls_origin(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let text = format!("tls {:?} {}\n", req.version(), req.uri().path());
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        text,
                    ))))
                });
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tls_upstreams_and_refused_certificates() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (c, k) = ca.leaf("origin.test", false);
    let good = tls_origin(c, k).await;
    let (c, k) = ca.leaf("other.test", false);
    let wrong = tls_origin(c, k).await;
    let (c, k) = ca.leaf("origin.test", true);
    let expired = tls_origin(c, k).await;
    let ca_file = ca_file.display();
    let up = |name: &str, addr: &str, extra: &str| {
        format!(
            "[upstreams.{name}]\nservers = [\"{addr}\"]\nretries = 0\n[upstreams.{name}.tls]\n\
             server_name = \"origin.test\"\n{extra}\n"
        )
    };
    let text = format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
{good}{good_h1}{wrong}{expired}{system}{insecure}{checked}
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/good/"
  upstream = "good"
  [[sites.routes]]
  path = "/h1/"
  upstream = "good_h1"
  [[sites.routes]]
  path = "/wrong/"
  upstream = "wrong"
  [[sites.routes]]
  path = "/expired/"
  upstream = "expired"
  [[sites.routes]]
  path = "/system/"
  upstream = "system"
  [[sites.routes]]
  path = "/insecure/"
  upstream = "insecure"
  [[sites.routes]]
  path = "/checked/"
  upstream = "checked"
"#,
        good = up("good", &good, &format!("ca = \"{ca_file}\"")),
        good_h1 = up("good_h1", &good, &format!("ca = \"{ca_file}\"\nh2 = false")),
        wrong = up("wrong", &wrong, &format!("ca = \"{ca_file}\"")),
        expired = up("expired", &expired, &format!("ca = \"{ca_file}\"")),
        system = up("system", &good, ""),
        insecure = up("insecure", &wrong, "verify = false"),
        checked = up("checked", &good, &format!("ca = \"{ca_file}\"")).replace(
            "retries = 0\n",
            "retries = 0\nhealth = { path = \"/health\", interval = \"100ms\", fall = 1 }\n"
        ),
    );
    let v = Vigie::start(&text).await;

    let r = v.get("example.com", "/good/x").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "tls HTTP/2.0 /good/x\n",
        "h2 by ALPN"
    );
    let r = v.get("example.com", "/h1/x").await;
    assert_eq!(r.text().await.unwrap(), "tls HTTP/1.1 /h1/x\n");
    for path in ["/wrong/x", "/expired/x", "/system/x"] {
        let r = v.get("example.com", path).await;
        assert_eq!(r.status(), 502, "{path}");
    }
    let r = v.get("example.com", "/insecure/x").await;
    assert_eq!(r.status(), 200, "verify = false accepts the wrong name");
    // The active health check speaks the same TLS: over a second of checks (one failure would
    // take the server out), the group stays up.
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(1) {
        let r = v.get("example.com", "/checked/x").await;
        assert_eq!(r.status(), 200, "a TLS health check failed: {}", v.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = v.log();
    for name in ["wrong", "expired", "system"] {
        assert!(
            log.lines().any(
                |l| l.contains("TLS handshake with the upstream server failed")
                    && l.contains(&format!("upstream=\"{name}\""))
                    || l.contains("TLS handshake") && l.contains(&format!("upstream={name}"))
            ),
            "{name}: {log}"
        );
    }
}
