//! Several vigie instances as one edge through a real Redis (issue 15), with a real Pebble
//! and three instances on loopback: one order for a site across the cluster, the CA's
//! HTTP-01 and TLS-ALPN-01 validations answered by instances that did not order, the same
//! certificate everywhere, a holder killed mid-order, short-lived certificates renewed across
//! the cluster with no failed handshake, a wrong encryption key refused at start, and Redis
//! down: the local copies keep serving.

mod holder;
mod order;
mod renewal;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::pebble::Pebble;
use crate::support::redis::Redis;
use crate::support::{free_port, Ports, Vigie};

const SITE: &str = "shop.example.com";
const NODES: [&str; 3] = ["a", "b", "c"];

fn config(p: &Pebble, redis: &Redis, node: &str, key: &std::path::Path, challenge: &str) -> String {
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
challenge = "{challenge}"

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

fn key_file(dir: &std::path::Path, name: &str, byte: u8) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).unwrap();
    path
}

/// The node holding the site's order lock now ("" when nobody does): the lock's value is
/// "NODE FENCE".
async fn lock_holder(client: &redis::Client) -> String {
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return String::new();
    };
    let holder: Option<String> = redis::cmd("GET")
        .arg(format!("t15:lock:{SITE}"))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    holder
        .unwrap_or_default()
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Splice one accepted connection to `addr`.
fn splice(mut inbound: tokio::net::TcpStream, addr: String) {
    tokio::spawn(async move {
        if let Ok(mut out) = tokio::net::TcpStream::connect(&addr).await {
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
        }
    });
}

/// A validation connection as the test's CA network routed it.
#[derive(Debug, Clone)]
struct Routed {
    /// The node it went to.
    to: &'static str,
    /// The lock holder at that moment.
    holder: String,
}

/// The test's stand-in for the network between the CA and the cluster: Pebble validates on
/// `listener`, and each connection is passed, in turn, to an instance that does *not* hold
/// the site's order lock (read from Redis at that moment), so a challenge can only succeed
/// if its answer was shared. `instances` are (node, address of its HTTP or HTTPS listener).
/// Returns the connections as routed.
fn to_the_others(
    listener: tokio::net::TcpListener,
    redis_url: String,
    instances: Vec<(&'static str, String)>,
) -> Arc<Mutex<Vec<Routed>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let turn = AtomicUsize::new(0);
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        while let Ok((inbound, _)) = listener.accept().await {
            let holder = lock_holder(&client).await;
            let others: Vec<_> = instances.iter().filter(|(n, _)| *n != holder).collect();
            let (node, addr) = others[turn.fetch_add(1, Ordering::Relaxed) % others.len()];
            log.lock().unwrap().push(Routed { to: node, holder });
            splice(inbound, addr.clone());
        }
    });
    seen
}

/// Three instances of one cluster (nodes "a", "b", "c") with their Redis and Pebble.
struct Cluster {
    redis: Redis,
    p: Pebble,
    nodes: Vec<Vigie>,
    /// Validation connections, as routed by [`to_the_others`].
    seen: Arc<Mutex<Vec<Routed>>>,
    _keys: tempfile::TempDir,
}

impl Cluster {
    /// Start Redis, Pebble (issuing for `validity`, when set) validating `challenge` through
    /// [`to_the_others`], and the three instances.
    async fn start(challenge: &str, validity: Option<Duration>) -> Cluster {
        let redis = Redis::start().await;
        let keys = tempfile::tempdir().unwrap();
        let key = key_file(keys.path(), "cluster.key", 7);
        let ports: Vec<Ports> = NODES.iter().map(|_| Ports::new()).collect();
        let alpn = challenge == "tls-alpn-01";
        let targets = NODES
            .iter()
            .zip(&ports)
            .map(|(n, p)| {
                (
                    *n,
                    if alpn {
                        p.https.clone()
                    } else {
                        p.http.clone()
                    },
                )
            })
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = to_the_others(listener, redis.url.clone(), targets);
        let p = if alpn {
            Pebble::start(free_port(), port, validity).await
        } else {
            Pebble::start(port, free_port(), validity).await
        };
        let cfgs: Vec<String> = NODES
            .iter()
            .map(|n| config(&p, &redis, n, &key, challenge))
            .collect();
        let mut ports = ports.into_iter();
        let mut next = || ports.next().unwrap();
        let (a, b, c) = tokio::join!(
            Vigie::start_on(&cfgs[0], next(), &[]),
            Vigie::start_on(&cfgs[1], next(), &[]),
            Vigie::start_on(&cfgs[2], next(), &[]),
        );
        Cluster {
            redis,
            p,
            nodes: vec![a, b, c],
            seen,
            _keys: keys,
        }
    }

    /// Every instance's log, for failure messages.
    fn logs(&self) -> String {
        NODES
            .iter()
            .zip(&self.nodes)
            .map(|(n, v)| format!("--- {n}\n{}", v.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many orders Pebble created.
    fn orders(&self) -> usize {
        self.p.orders_created()
    }
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
