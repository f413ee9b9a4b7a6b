//! Renewal timing against a real Pebble (which has no ARI): the lifetime rule for short
//! certificates (half of the lifetime), renewal orders without `replaces`, and `vigie cert
//! list` saying why a certificate waits.

use std::time::{Duration, SystemTime};

use crate::acme::{config, wait_for_pebble_cert, wait_for_pebble_cert_other_than};
use crate::support::pebble::Pebble;
use crate::support::tls::{handshake, ALL};
use crate::support::{Ports, Vigie};

#[tokio::test(flavor = "multi_thread")]
async fn short_certificates_renew_at_half_their_lifetime_without_replaces_when_the_ca_has_no_ari() {
    let ports = Ports::new();
    let life = Duration::from_secs(24);
    let p = Pebble::start(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        Some(life),
    )
    .await;
    let name = "half.example.com";
    let cfg = config(&p, "http-01", &format!("\"{name}\""), "");
    let v = Vigie::start_on(&cfg, ports, &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    let leaf = handshake(&v.https, name, &[], ALL).await.unwrap().leaf;
    // `cert list`: the renewal time and the rule that chose it.
    let list = v.cert_list();
    let line = list
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{list}"));
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols.len(), 13, "{list}");
    assert!(
        cols[8].contains("half of the lifetime"),
        "the waiting column names the rule: {list}"
    );
    let renew_at = httpdate::parse_http_date(cols[3]).unwrap();
    let margin = leaf.not_after.duration_since(renew_at).unwrap();
    // Half of 24 s, minus up to 1/30 of jitter, give or take the second of an HTTP date.
    assert!(
        margin >= Duration::from_secs(10) && margin <= Duration::from_secs(13),
        "renewal {margin:?} before expiry, expected about 12 s: {list}"
    );
    let second = wait_for_pebble_cert_other_than(&v, name, &first).await;
    let left = leaf
        .not_after
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(left > Duration::ZERO, "renewed before the old one expired");
    assert_ne!(second, first);
    let log = v.log();
    assert!(
        log.contains("the CA has no ARI: renewal order sent without `replaces`"),
        "{log}"
    );
    assert!(
        !log.to_ascii_lowercase().contains("ocsp"),
        "no OCSP noise: {log}"
    );
}
