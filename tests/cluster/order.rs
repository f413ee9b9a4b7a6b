//! One order for a site across three instances, validated (HTTP-01 or TLS-ALPN-01) only
//! through instances that did not order; the same certificate on all three; what is stored
//! in Redis is sealed; Redis down keeps every instance serving.

use std::time::Duration;

use super::{Cluster, NODES, SITE};
use crate::acme::{fresh_handshake_client, wait_for_pebble_cert};
use crate::support::tls::{handshake, ALL};
use crate::support::{metric_value, wait_until};

/// Wait until all three serve a Pebble certificate and check that it came from one order:
/// the same serial everywhere, one lock acquisition (the fencing counter), one newOrder at
/// Pebble, one holder, and every validation connection sent to (and answered by) another
/// instance. Returns the serial and the holder's index.
async fn one_order_for_the_cluster(c: &Cluster) -> (String, usize) {
    let mut serials = Vec::new();
    for v in &c.nodes {
        serials.push(wait_for_pebble_cert(v, &c.p, SITE).await);
    }
    assert!(
        serials.iter().all(|s| *s == serials[0]),
        "one certificate for the cluster: {serials:?}"
    );
    let fence = c.redis.get(&format!("t15:fence:{SITE}")).await;
    assert_eq!(fence.as_deref(), Some("1"), "{}", c.logs());
    assert_eq!(c.orders(), 1, "{}", c.p.log());
    let holders: Vec<usize> = (0..NODES.len())
        .filter(|&i| {
            c.nodes[i]
                .log()
                .contains("holding the cluster-wide order lock")
        })
        .collect();
    assert_eq!(holders.len(), 1, "one holder: {}", c.logs());
    let holder = holders[0];
    let seen = c.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no validation connection");
    assert!(
        seen.iter()
            .all(|r| r.holder == NODES[holder] && r.to != NODES[holder]),
        "validations went to {seen:?} (holder {})",
        NODES[holder]
    );
    (serials.swap_remove(0), holder)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_order_once_over_http01_answered_by_the_others() {
    let mut c = Cluster::start("http-01", None).await;
    let (serial, holder) = one_order_for_the_cluster(&c).await;
    let other = (holder + 1) % NODES.len();

    // Secrets at rest: the private key in Redis is sealed.
    let stored = c.redis.get(&format!("t15:cert:{SITE}")).await.unwrap();
    assert!(stored.contains("vigie-sealed:v1:"), "{stored}");
    assert!(!stored.contains("PRIVATE KEY"), "{stored}");
    let accounts: Vec<String> = redis::cmd("KEYS")
        .arg("t15:account:*")
        .query_async(&mut c.redis.conn().await)
        .await
        .unwrap();
    assert_eq!(
        accounts.len(),
        1,
        "one ACME account for the cluster: {accounts:?}"
    );
    let account = c.redis.get(&accounts[0]).await.unwrap();
    assert!(account.starts_with("vigie-sealed:v1:"), "{account}");
    assert!(
        !account.contains("pkcs8") && !account.contains("{"),
        "{account}"
    );

    // `vigie cert list` on an instance that did not order names the one that did, and when.
    let list = c.nodes[other].cert_list();
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(SITE))
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(row.len(), 13, "{list}");
    assert!(
        row[11].starts_with(&format!("{} (fence ", NODES[holder])),
        "{list}"
    );
    assert_ne!(row[12], "-", "ordered_at: {list}");

    // Redis down: all keep serving; an instance restarted meanwhile serves its local copy.
    c.redis.kill();
    for v in &c.nodes {
        let h = handshake(&v.https, SITE, &[], ALL).await.unwrap();
        assert_eq!(h.leaf.serial, serial);
    }
    let restarted = &mut c.nodes[other];
    restarted.restart().await;
    let h = handshake(&restarted.https, SITE, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, serial, "{}", restarted.log());
    wait_until(
        Duration::from_secs(10),
        "the log line about Redis",
        || async { restarted.log().contains("Redis is unreachable at start") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_order_once_over_tls_alpn01_answered_by_the_others() {
    let c = Cluster::start("tls-alpn-01", None).await;
    let (serial, holder) = one_order_for_the_cluster(&c).await;
    // The instances that answered did so from the digest the holder published, with a
    // challenge certificate of their own.
    let answered: Vec<&str> = c.seen.lock().unwrap().iter().map(|r| r.to).collect();
    for (i, node) in NODES.iter().enumerate() {
        let m = c.nodes[i].metrics().await;
        let acme = metric_value(&m, r#"vigie_tls_handshakes_total{result="acme"}"#);
        let acme = acme.unwrap_or(0.0);
        if i == holder {
            assert_eq!(acme, 0.0, "the holder was never asked:\n{m}");
        } else if answered.contains(node) {
            assert!(
                acme >= 1.0,
                "{node} answered no TLS-ALPN-01 handshake:\n{m}"
            );
        }
    }
    // The challenge is gone from Redis, and every instance serves the certificate to a
    // client that checks it against Pebble's root.
    let left = c.redis.get(&format!("t15:alpn01:{SITE}")).await;
    assert_eq!(
        left, None,
        "the published answer is removed after the order"
    );
    let root = c.p.root().await;
    for v in &c.nodes {
        let r = fresh_handshake_client(v, SITE, &root)
            .get(v.https_url(SITE, "/"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
        assert_eq!(r.text().await.unwrap(), "hello from the cluster\n");
        let h = handshake(&v.https, SITE, &[], ALL).await.unwrap();
        assert_eq!(h.leaf.serial, serial);
    }
}
