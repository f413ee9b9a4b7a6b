//! Several vigie instances as one edge through a real Redis (issue 15), with a real Pebble:
//! one order for a site across the cluster, the CA's HTTP-01 validation answered by the
//! instance that did not order, the same certificate everywhere, a wrong encryption key
//! refused at start, and Redis down: the local copy keeps serving.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::acme::wait_for_pebble_cert;
use crate::support::pebble::Pebble;
use crate::support::redis::Redis;
use crate::support::tls::{handshake, ALL};
use crate::support::{free_port, wait_until, Ports, Vigie};

const SITE: &str = "shop.example.com";

fn config(p: &Pebble, redis: &Redis, node: &str, key: &std::path::Path) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[cluster]
redis = "{url}"
key_prefix = "t15:"
node_id = "{node}"
encryption_key_file = "{key}"
lock_lease = "5s"
poll = "2s"

[acme]
email = "ops@example.com"
directory = "{dir}"
ca_roots = "{roots}"
challenge = "http-01"

[[sites]]
names = ["{SITE}"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "hello from the cluster\n" }}
"#,
        url = redis.url,
        key = key.display(),
        dir = p.directory,
        roots = p.api_ca.display(),
    )
}

/// The test's stand-in for the network between the CA and the cluster: Pebble validates
/// HTTP-01 on this one port, and each connection is passed to the instance that does *not*
/// hold the site's order lock (read from Redis at that moment), so the challenge can only
/// succeed if the answer was shared. Returns the port and the nodes that got connections.
async fn to_the_other_instance(
    redis_url: String,
    instances: Vec<(&'static str, String)>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let holder: Option<String> = redis::cmd("GET")
                .arg(format!("t15:lock:{SITE}"))
                .query_async(&mut c)
                .await
                .unwrap();
            let holder = holder.unwrap_or_default();
            let holder = holder.split(' ').next().unwrap_or("");
            let (node, addr) = instances
                .iter()
                .find(|(n, _)| *n != holder)
                .cloned()
                .unwrap();
            log.lock()
                .unwrap()
                .push(format!("{node} (holder: {holder})"));
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (port, seen)
}

/// Like [`to_the_other_instance`], for a holder that dies mid-order: the CA's first
/// validation connection SIGKILLs the lock holder (and is dropped, so that order fails);
/// later ones go to the survivor. Returns the port and the killed node.
async fn kill_the_holder_mid_order(
    redis_url: String,
    instances: Vec<(&'static str, String, u32)>,
) -> (u16, Arc<Mutex<Option<&'static str>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let killed = Arc::new(Mutex::new(None));
    let record = killed.clone();
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let dead = *record.lock().unwrap();
            let target = match dead {
                None => {
                    let mut c = client.get_multiplexed_async_connection().await.unwrap();
                    let holder: Option<String> = redis::cmd("GET")
                        .arg(format!("t15:lock:{SITE}"))
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    let holder = holder.unwrap_or_default();
                    let holder = holder.split(' ').next().unwrap_or("").to_string();
                    let (node, _, pid) = instances.iter().find(|(n, _, _)| *n == holder).unwrap();
                    let ok = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "kill the holder");
                    *record.lock().unwrap() = Some(*node);
                    continue;
                }
                Some(dead) => instances
                    .iter()
                    .find(|(n, _, _)| *n != dead)
                    .unwrap()
                    .1
                    .clone(),
            };
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (port, killed)
}

fn key_file(dir: &std::path::Path, name: &str, byte: u8) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_order_once_share_the_challenge_and_serve_the_same_certificate() {
    let mut redis = Redis::start().await;
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "cluster.key", 7);
    let (pa, pb) = (Ports::new(), Ports::new());
    let (forward, seen) = to_the_other_instance(
        redis.url.clone(),
        vec![("a", pa.http.clone()), ("b", pb.http.clone())],
    )
    .await;
    let p = Pebble::start(forward, free_port(), None).await;
    let (cfg_a, cfg_b) = (config(&p, &redis, "a", &key), config(&p, &redis, "b", &key));
    let (a, mut b) = tokio::join!(
        Vigie::start_on(&cfg_a, pa, &[]),
        Vigie::start_on(&cfg_b, pb, &[]),
    );
    let serial_a = wait_for_pebble_cert(&a, &p, SITE).await;
    let serial_b = wait_for_pebble_cert(&b, &p, SITE).await;
    assert_eq!(serial_a, serial_b, "one certificate for the cluster");

    // One order in all: one lock acquisition (the fencing counter), one newOrder at Pebble.
    let fence = redis.get(&format!("t15:fence:{SITE}")).await;
    assert_eq!(fence.as_deref(), Some("1"), "{}\n{}", a.log(), b.log());
    let orders = p.log().matches("POST /order-plz").count();
    assert_eq!(orders, 1, "{}", p.log());
    let (holder, other) = if a.log().contains("holding the cluster-wide order lock") {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(holder.log().contains("holding the cluster-wide order lock"));
    assert!(
        !other.log().contains("holding the cluster-wide order lock"),
        "{}",
        other.log()
    );
    // Pebble's validation reached only the instance that did not order, and succeeded.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no validation connection");
    let other_node = if std::ptr::eq(other, &a) { "a" } else { "b" };
    assert!(
        seen.iter().all(|s| s.starts_with(other_node)),
        "validations went to {seen:?}"
    );

    // Secrets at rest: the private key in Redis is sealed.
    let stored = redis.get(&format!("t15:cert:{SITE}")).await.unwrap();
    assert!(stored.contains("vigie-sealed:v1:"), "{stored}");
    assert!(!stored.contains("PRIVATE KEY"), "{stored}");
    let accounts: Vec<String> = redis::cmd("KEYS")
        .arg("t15:account:*")
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
    assert_eq!(
        accounts.len(),
        1,
        "one ACME account for the cluster: {accounts:?}"
    );
    let account = redis.get(&accounts[0]).await.unwrap();
    assert!(account.starts_with("vigie-sealed:v1:"), "{account}");
    assert!(
        !account.contains("pkcs8") && !account.contains("{"),
        "{account}"
    );

    // `vigie cert list` on the instance that did not order names the one that did, and when.
    let holder_node = if std::ptr::eq(holder, &a) { "a" } else { "b" };
    let list = other.cert_list();
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(SITE))
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(row.len(), 13, "{list}");
    assert!(
        row[11].starts_with(&format!("{holder_node} (fence ")),
        "{list}"
    );
    assert_ne!(row[12], "-", "ordered_at: {list}");

    // Redis down: both keep serving; an instance restarted meanwhile serves its local copy.
    redis.kill();
    let h = handshake(&a.https, SITE, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, serial_a);
    b.restart().await;
    let h = handshake(&b.https, SITE, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, serial_a, "{}", b.log());
    wait_until(
        Duration::from_secs(10),
        "the log line about Redis",
        || async { b.log().contains("Redis is unreachable at start") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_encryption_key_stops_the_start_with_a_clear_error() {
    let redis = Redis::start().await;
    let keys = tempfile::tempdir().unwrap();
    let good = key_file(keys.path(), "good.key", 1);
    let wrong = key_file(keys.path(), "wrong.key", 2);
    let template = |key: &std::path::Path| {
        format!(
            "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
             [cluster]\nredis = \"{}\"\nnode_id = \"n\"\nencryption_key_file = \"{}\"\n\
             [[sites]]\nnames = [\"a.test\"]\n  [[sites.routes]]\n  path = \"/\"\n  \
             respond = {{ body = \"ok\" }}\n",
            redis.url,
            key.display()
        )
    };
    // The first node leaves its key's mark in Redis.
    let first = Vigie::start(&template(&good)).await;
    assert!(
        first.log().contains("shared through Redis"),
        "{}",
        first.log()
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigie.toml");
    let ports = Ports::new();
    let text = template(&wrong)
        .replace("{http}", &ports.http)
        .replace("{admin}", &ports.admin)
        .replace("{state}", &dir.path().join("state").display().to_string());
    std::fs::write(&cfg, text).unwrap();
    let mut child = std::process::Command::new(crate::support::vigie::bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("vigie started with the wrong key");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(
        err.contains("encryption_key_file")
            && err.contains("every node must use the same key file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_lock_holder_dies_mid_order_another_instance_completes_it() {
    let redis = Redis::start().await;
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "cluster.key", 9);
    let (pa, pb) = (Ports::new(), Ports::new());
    let (http_a, http_b) = (pa.http.clone(), pb.http.clone());
    // Pebble needs its validation port before the instances exist (and their pids): it
    // validates on a gate that hands connections to the killing forwarder once they run.
    let gate = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = Pebble::start(gate.local_addr().unwrap().port(), free_port(), None).await;
    let (cfg_a, cfg_b) = (config(&p, &redis, "a", &key), config(&p, &redis, "b", &key));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let url = redis.url.clone();
    let forwarder = tokio::spawn(async move {
        let (port, _killed) = kill_the_holder_mid_order(url, rx.await.unwrap()).await;
        while let Ok((mut inbound, _)) = gate.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    let (mut a, mut b) = tokio::join!(
        Vigie::start_on(&cfg_a, pa, &[]),
        Vigie::start_on(&cfg_b, pb, &[]),
    );
    tx.send(vec![("a", http_a, a.pid()), ("b", http_b, b.pid())])
        .unwrap();
    // Whichever dies, the other must end up serving a certificate from Pebble.
    wait_until(Duration::from_secs(60), "one instance killed", || {
        let dead = !a.alive() || !b.alive();
        async move { dead }
    })
    .await;
    let (survivor, node) = if a.alive() { (&a, "a") } else { (&b, "b") };
    wait_for_pebble_cert(survivor, &p, SITE).await;
    let fence = redis.get(&format!("t15:fence:{SITE}")).await;
    assert_eq!(
        fence.as_deref(),
        Some("2"),
        "a second holding after the lease expired"
    );
    assert_eq!(p.log().matches("POST /order-plz").count(), 2, "{}", p.log());
    let stored = redis.get(&format!("t15:cert:{SITE}")).await.unwrap();
    assert!(stored.contains(&format!("\"node\":\"{node}\"")), "{stored}");
    assert!(stored.contains("\"fence\":2"), "{stored}");
    forwarder.abort();
}
