//! IP address certificates (RFC 8738) from a real Pebble: the site's IP name is ordered as an
//! `ip` identifier and validated by HTTP-01, or by TLS-ALPN-01 with the reverse-DNS SNI.

use std::time::Duration;

use crate::acme::config;
use crate::support::pebble::Pebble;
use crate::support::{wait_until, Ports, Vigie};

async fn issues_an_ip_certificate(challenge: &str) {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let cfg = config(&p, challenge, "\"ip.example.com\", \"127.0.0.1\"", "");
    let v = Vigie::start_on(&cfg, ports, &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    wait_until(Duration::from_secs(60), "an IP certificate", || async {
        v.cert_list().contains("Pebble")
    })
    .await;
    let pem = std::fs::read_to_string(v.state().join("certs/ip.example.com/cert.pem"))
        .unwrap_or_else(|e| panic!("{e}\n{}", v.log()));
    let der = vigie_acme::pem::certs_from_pem(pem.as_bytes(), "test").unwrap()[0].clone();
    let info = vigie_acme::pem::info(&der, "test").unwrap();
    assert!(
        info.names.iter().any(|n| n == "127.0.0.1"),
        "the certificate names the IP address: {:?}\n{}",
        info.names,
        v.log()
    );
    assert!(p.log().contains("127.0.0.1"), "{}", p.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_name_is_validated_by_http01() {
    issues_an_ip_certificate("http-01").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_name_is_validated_by_tls_alpn01_with_the_reverse_dns_sni() {
    issues_an_ip_certificate("tls-alpn-01").await;
}
