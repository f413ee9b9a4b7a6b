//! Built-in ACME against a real ACME server (Pebble), with real validation of each
//! challenge type by Pebble's own validator connecting to vigie.

use std::time::Duration;

use crate::support::pebble::Pebble;
use crate::support::tls::{handshake, ALL};
use crate::support::{wait_until, Ports, Vigie};

fn config(p: &Pebble, challenge: &str, names: &str, extra: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[acme]
email = "ops@example.com"
directory = "{dir}"
ca_roots = "{roots}"
challenge = "{challenge}"
{extra}

[[sites]]
names = [{names}]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "hello over acme\n" }}
"#,
        dir = p.directory,
        roots = p.api_ca.display(),
    )
}

/// Wait until the certificate served for `name` was issued by Pebble; returns its serial.
async fn wait_for_pebble_cert(v: &Vigie, p: &Pebble, name: &str) -> String {
    let serial = std::sync::Mutex::new(String::new());
    wait_until(
        Duration::from_secs(60),
        "a certificate from Pebble",
        || async {
            match handshake(&v.https, name, &[], ALL).await {
                Ok(h) if h.leaf.issuer.contains("Pebble") => {
                    *serial.lock().unwrap() = h.leaf.serial;
                    true
                }
                _ => false,
            }
        },
    )
    .await;
    let serial = serial.into_inner().unwrap();
    assert!(!serial.is_empty(), "{}\n{}", v.log(), p.log());
    serial
}

/// A client that trusts only Pebble's current root and resolves `names` to vigie.
async fn verified_get(v: &Vigie, p: &Pebble, name: &str, names: &[&str]) -> String {
    let root = reqwest::Certificate::from_pem(p.root().await.as_bytes()).unwrap();
    v.https_client(names, &[root])
        .get(v.https_url(name, "/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", v.log()))
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_issues_one_certificate_for_the_site_and_restart_reuses_it() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let names = ["shop.example.com", "www.shop.example.com"];
    let cfg = config(
        &p,
        "http-01",
        "\"shop.example.com\", \"www.shop.example.com\"",
        "",
    );
    let mut v = Vigie::start_on(&cfg, ports, &[]).await;
    let serial = wait_for_pebble_cert(&v, &p, names[0]).await;
    // One certificate with both names, verified against Pebble's root, for each SNI name.
    let h = handshake(&v.https, names[1], &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, serial);
    assert_eq!(h.leaf.names.len(), 2);
    for n in names {
        assert_eq!(verified_get(&v, &p, n, &names).await, "hello over acme\n");
    }
    // Stored privately.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(v.state().join("certs/shop.example.com/key.pem")),
        0o600
    );
    let acme_dir = std::fs::read_dir(v.state().join("acme"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(acme_dir.join("account.json")), 0o600);
    // `vigie cert list` shows it.
    let out = std::process::Command::new(crate::support::vigie::bin())
        .args(["cert", "list", "-c"])
        .arg(&v.config)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{list}");
    assert!(
        list.contains("shop.example.com,www.shop.example.com"),
        "{list}"
    );
    assert!(list.contains(&serial), "{list}");

    // Restart: the stored certificate is served again, without a new order.
    v.restart().await;
    let h = handshake(&v.https, names[0], &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, serial);
    let log = v.log();
    assert_eq!(log.matches("ordering a certificate").count(), 1, "{log}");
    assert_eq!(log.matches("created an ACME account").count(), 1, "{log}");
    assert!(log.contains("using the stored certificate"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_is_answered_by_the_tls_listener() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let cfg = config(&p, "tls-alpn-01", "\"alpn.example.com\"", "");
    let v = Vigie::start_on(&cfg, ports, &[]).await;
    wait_for_pebble_cert(&v, &p, "alpn.example.com").await;
    assert_eq!(
        verified_get(&v, &p, "alpn.example.com", &["alpn.example.com"]).await,
        "hello over acme\n"
    );
    let log = v.log();
    assert!(log.contains("challenge=TlsAlpn01"), "{log}");
    assert!(!log.contains("challenge=Http01"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dns01_through_the_hook_issues_a_wildcard() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let hook = p.dns_hook();
    let cfg = config(
        &p,
        "dns-01",
        "\"*.dns.example.com\"",
        &format!("dns_hook = \"{}\"", hook.display()),
    );
    let v = Vigie::start_on(&cfg, ports, &[]).await;
    wait_for_pebble_cert(&v, &p, "a.dns.example.com").await;
    assert_eq!(
        verified_get(&v, &p, "b.dns.example.com", &["b.dns.example.com"]).await,
        "hello over acme\n"
    );
    let calls = p.dns_hook_log();
    assert!(
        calls.contains("present _acme-challenge.dns.example.com "),
        "{calls}"
    );
    assert!(
        calls.contains("cleanup _acme-challenge.dns.example.com "),
        "{calls}"
    );
}
