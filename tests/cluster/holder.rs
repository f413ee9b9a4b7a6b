//! The order lock's holder SIGKILLed in the middle of an order, with three instances: the
//! lease runs out, another instance takes the lock (fence 2) and completes the order, its
//! challenge answered by the third, and both survivors serve the certificate; no instance
//! ever serves an expired one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{config, key_file, lock_holder, splice, Routed, NODES, SITE};
use crate::support::pebble::Pebble;
use crate::support::redis::Redis;
use crate::support::tls::{handshake, ALL};
use crate::support::{free_port, wait_until, Ports, Vigie};

/// Like [`super::to_the_others`], for a holder that dies mid-order: the CA's first
/// validation connection SIGKILLs the lock holder (and is dropped, so that order fails);
/// later ones go, in turn, to a live instance that does not hold the lock. `instances` are
/// (node, HTTP address, pid). Returns the killed node and the later connections as routed.
#[allow(clippy::type_complexity)]
fn kill_the_holder_mid_order(
    listener: tokio::net::TcpListener,
    redis_url: String,
    instances: Vec<(&'static str, String, u32)>,
) -> (Arc<Mutex<Option<&'static str>>>, Arc<Mutex<Vec<Routed>>>) {
    let killed = Arc::new(Mutex::new(None));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (dead_log, seen_log) = (killed.clone(), seen.clone());
    let turn = AtomicUsize::new(0);
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        while let Ok((inbound, _)) = listener.accept().await {
            let holder = lock_holder(&client).await;
            let dead = *dead_log.lock().unwrap();
            let Some(dead) = dead else {
                let (node, _, pid) = instances
                    .iter()
                    .find(|(n, _, _)| *n == holder)
                    .unwrap_or_else(|| panic!("a validation with no lock holder ({holder:?})"));
                let ok = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "kill the holder");
                *dead_log.lock().unwrap() = Some(*node);
                continue;
            };
            let others: Vec<_> = instances
                .iter()
                .filter(|(n, _, _)| *n != dead && *n != holder)
                .collect();
            let (node, addr, _) = others[turn.fetch_add(1, Ordering::Relaxed) % others.len()];
            seen_log.lock().unwrap().push(Routed { to: node, holder });
            splice(inbound, addr.clone());
        }
    });
    (killed, seen)
}

/// Any certificate `v` serves for the site now is not expired (no certificate yet is fine).
async fn not_expired(v: &Vigie, node: &str) {
    if let Ok(h) = handshake(&v.https, SITE, &[], ALL).await {
        assert!(
            h.leaf.not_after > SystemTime::now(),
            "{node} served an expired certificate: {:?}",
            h.leaf
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_lock_holder_dies_mid_order_another_instance_completes_it() {
    let redis = Redis::start().await;
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "cluster.key", 9);
    // Pebble needs its validation port before the instances (and their pids) exist: the
    // listener is bound now, and its connections wait in the backlog until the forwarder
    // runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = Pebble::start(listener.local_addr().unwrap().port(), free_port(), None).await;
    let cfgs: Vec<String> = NODES
        .iter()
        .map(|n| config(&p, &redis, n, &key, "http-01"))
        .collect();
    let ports: Vec<Ports> = NODES.iter().map(|_| Ports::new()).collect();
    let http: Vec<String> = ports.iter().map(|p| p.http.clone()).collect();
    let mut ports = ports.into_iter();
    let mut next = || ports.next().unwrap();
    let (a, b, c) = tokio::join!(
        Vigie::start_on(&cfgs[0], next(), &[]),
        Vigie::start_on(&cfgs[1], next(), &[]),
        Vigie::start_on(&cfgs[2], next(), &[]),
    );
    let mut nodes = [a, b, c];
    let instances = (0..NODES.len())
        .map(|i| (NODES[i], http[i].clone(), nodes[i].pid()))
        .collect();
    let (killed, seen) = kill_the_holder_mid_order(listener, redis.url.clone(), instances);

    wait_until(Duration::from_secs(60), "the holder killed", || {
        let dead = nodes.iter_mut().any(|v| !v.alive());
        async move { dead }
    })
    .await;
    let dead = killed.lock().unwrap().expect("the forwarder killed it");
    let survivors: Vec<(usize, &Vigie)> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| NODES[*i] != dead)
        .collect();
    assert_eq!(survivors.len(), 2);
    // Until the new certificate is there, the survivors serve nothing expired.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut serials = Vec::new();
    for (i, v) in &survivors {
        loop {
            not_expired(v, NODES[*i]).await;
            match handshake(&v.https, SITE, &[], ALL).await {
                Ok(h) if h.leaf.issuer.contains("Pebble") => {
                    serials.push(h.leaf.serial);
                    break;
                }
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no certificate on {}:\n{}",
                NODES[*i],
                v.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        serials[0], serials[1],
        "the survivors serve one certificate"
    );

    let fence = redis.get(&format!("t15:fence:{SITE}")).await;
    assert_eq!(
        fence.as_deref(),
        Some("2"),
        "a second holding after the lease expired"
    );
    assert_eq!(p.orders_created(), 2, "{}", p.log());
    let stored = redis.get(&format!("t15:cert:{SITE}")).await.unwrap();
    let finisher = survivors
        .iter()
        .map(|(i, _)| NODES[*i])
        .find(|n| stored.contains(&format!("\"node\":\"{n}\"")))
        .unwrap_or_else(|| panic!("ordered by a survivor: {stored}"));
    assert!(stored.contains("\"fence\":2"), "{stored}");
    // The second order's validations went to the third instance, not to the one ordering.
    // (Connections made while the dead node's lease ran are the first order's, if any.)
    let seen: Vec<Routed> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.holder != dead)
        .cloned()
        .collect();
    assert!(!seen.is_empty(), "no validation after the kill");
    assert!(
        seen.iter()
            .all(|r| r.holder == finisher && r.to != finisher),
        "{seen:?} (finisher {finisher})"
    );
}
