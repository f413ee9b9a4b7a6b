//! Short-lived Pebble certificates renewed across three instances: one renewal order for the
//! cluster, the new certificate hot-swapped on every instance, and not one failed handshake
//! or request on any of them meanwhile.

use std::time::{Duration, Instant, SystemTime};

use super::{Cluster, NODES, SITE};
use crate::acme::fresh_handshake_client;
use crate::support::tls::{handshake, ALL};

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_certificates_renew_once_for_the_cluster_with_no_failed_handshake() {
    // Renewal is due when a third of the 30 s lifetime remains.
    let c = Cluster::start("http-01", Some(Duration::from_secs(30))).await;
    let mut first = String::new();
    for v in &c.nodes {
        let serial = crate::acme::wait_for_pebble_cert(v, &c.p, SITE).await;
        assert!(first.is_empty() || first == serial, "one certificate");
        first = serial;
    }
    assert_eq!(c.orders(), 1, "{}", c.p.log());

    // On every instance, a verified request on a new TLS connection and a handshake, every
    // 100 ms, until all three serve a new certificate.
    let root = c.p.root().await;
    let clients: Vec<reqwest::Client> = c
        .nodes
        .iter()
        .map(|v| fresh_handshake_client(v, SITE, &root))
        .collect();
    let mut renewed: Vec<Option<String>> = vec![None; NODES.len()];
    let (mut ok, mut failed) = (0u32, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while renewed.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "not renewed everywhere within 60 s: {renewed:?}\n{}",
            c.logs()
        );
        for (i, v) in c.nodes.iter().enumerate() {
            match clients[i].get(v.https_url(SITE, "/")).send().await {
                Ok(r) if r.status() == 200 => ok += 1,
                Ok(r) => failed.push(format!("{}: status {}", NODES[i], r.status())),
                Err(e) => failed.push(format!("{}: {e}", NODES[i])),
            }
            match handshake(&v.https, SITE, &[], ALL).await {
                Ok(h) => {
                    assert!(
                        h.leaf.not_after > SystemTime::now(),
                        "{} served an expired certificate",
                        NODES[i]
                    );
                    if h.leaf.serial != first {
                        renewed[i] = Some(h.leaf.serial);
                    }
                }
                Err(e) => failed.push(format!("{}: handshake: {e}", NODES[i])),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 30, "{ok}");
    let renewed: Vec<String> = renewed.into_iter().flatten().collect();
    assert!(
        renewed.iter().all(|s| *s == renewed[0]),
        "one renewed certificate for the cluster: {renewed:?}"
    );
    // One renewal order in all (the instances that were due later picked it up).
    assert_eq!(c.orders(), 2, "{}\n{}", c.p.log(), c.logs());
    let seen = c.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|r| !r.holder.is_empty() && r.to != r.holder),
        "validations: {seen:?}"
    );
}
