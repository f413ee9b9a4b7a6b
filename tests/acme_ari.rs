//! ARI (RFC 9773) against a real Pebble: Pebble 2.4 has no renewal information, so the
//! proxy in front of it ([`CaProxy::with_ari`], a scripted stub for that part only) adds a
//! `renewalInfo` URL to the directory and answers the queries with a suggested window;
//! Pebble issues every certificate. vigie must renew at a point inside the window (long
//! before the lifetime rule would), query again as `Retry-After` says, and send the renewal
//! order with `replaces` naming the certificate it replaces. Pebble then answers without
//! echoing `replaces` (it does not know the field): vigie must order again without it
//! rather than fail every renewal (found by this test).

use std::time::{Duration, Instant, SystemTime};

use crate::acme::{config, wait_for_pebble_cert, wait_for_pebble_cert_other_than};
use crate::support::ca_proxy::CaProxy;
use crate::support::pebble::Pebble;
use crate::support::{wait_until, Ports, Vigie};

const NAME: &str = "ari.example.com";

#[tokio::test(flavor = "multi_thread")]
async fn renewal_follows_the_ari_window_and_names_the_certificate_it_replaces() {
    let ports = Ports::new();
    // A 60 s lifetime: the lifetime rule would renew 30 s after issuance, the window says 6-9 s.
    let pebble = Pebble::start(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        Some(Duration::from_secs(60)),
    )
    .await;
    let proxy = CaProxy::start(&pebble.directory, &pebble.api_ca).await;
    proxy.with_ari(Duration::from_secs(6), Duration::from_secs(9), 2);
    let cfg = config(&pebble, "http-01", &format!("\"{NAME}\""), "")
        .replace(&pebble.directory, &proxy.directory)
        .replace(
            &pebble.api_ca.display().to_string(),
            &proxy.ca_roots.display().to_string(),
        );
    let v = Vigie::start_on(&cfg, ports, &[]).await;
    let first = wait_for_pebble_cert(&v, &pebble, NAME).await;
    wait_until(
        Duration::from_secs(10),
        "the ARI window in cert list",
        || async { v.cert_list().contains("inside the CA's ARI window") },
    )
    .await;
    let second = wait_for_pebble_cert_other_than(&v, NAME, &first).await;
    assert_ne!(first, second);

    // The first certificate's window is the first one handed out.
    let windows = proxy.ari_windows();
    let (id, (start, end)) = windows
        .iter()
        .min_by_key(|(_, (s, _))| *s)
        .map(|(id, w)| (id.clone(), *w))
        .expect("vigie asked for renewal information");
    let orders: Vec<_> = proxy
        .seen()
        .into_iter()
        // Created orders only: Pebble rejects 5% of good nonces, and a rejected newOrder
        // is sent again at once.
        .filter(|s| s.what == "POST /order-plz" && s.status == 201)
        .collect();
    assert!(orders.len() >= 2, "{orders:?}");
    let (now, instant) = (SystemTime::now(), Instant::now());
    let renewal_at = now - instant.duration_since(orders[1].at);
    assert!(
        renewal_at >= start && renewal_at <= end + Duration::from_secs(3),
        "the renewal order came at {renewal_at:?}, outside the window {start:?} .. {end:?}\n{}",
        v.log()
    );
    // Queried again while waiting, as Retry-After (2 s) says, not only once.
    let queries_before = proxy
        .seen()
        .iter()
        .filter(|s| s.what == "GET /renewal-info" && s.at < orders[1].at)
        .count();
    assert!(queries_before >= 2, "{:?}", proxy.seen());

    let payloads = proxy.ari_orders();
    assert!(payloads[0].get("replaces").is_none(), "{payloads:?}");
    assert_eq!(
        payloads[1]["replaces"].as_str(),
        Some(id.as_str()),
        "the renewal names the certificate it replaces: {payloads:?}"
    );
    // Pebble 2.4 ignores `replaces` and answers without it: vigie orders again without it
    // instead of failing every renewal.
    assert!(
        payloads.get(2).is_some_and(|p| p.get("replaces").is_none()),
        "{payloads:?}"
    );
    assert!(
        v.log()
            .contains("the CA did not keep `replaces` in its order"),
        "{}",
        v.log()
    );
    println!(
        "[acme_ari] window {}..{} s after the first query; renewal ordered {:.1} s into it; \
         {queries_before} renewal-information queries before it",
        6,
        9,
        renewal_at
            .duration_since(start)
            .unwrap_or_default()
            .as_secs_f64()
    );
}
