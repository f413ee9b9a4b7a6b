//! Built-in ACME against a real ACME server (Pebble), with real validation of each
//! challenge type by Pebble's own validator connecting to vigie.

use std::time::Duration;

use crate::support::pebble::Pebble;
use crate::support::tls::{handshake, ALL};
use crate::support::{wait_until, Ports, Vigie};

pub(crate) fn config(p: &Pebble, challenge: &str, names: &str, extra: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
# `vigie cert renew` and `cert issue --dry-run` change state: they need the token.
admin_token = "acme-test-token-0123"

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
pub(crate) async fn wait_for_pebble_cert(v: &Vigie, p: &Pebble, name: &str) -> String {
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

/// A client whose every request is a new TLS handshake, trusting only `root`.
pub(crate) fn fresh_handshake_client(v: &Vigie, name: &str, root: &str) -> reqwest::Client {
    let addr: std::net::SocketAddr = v.https.parse().unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(name, addr)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_certificate_renews_by_itself_with_no_failed_handshake() {
    let ports = Ports::new();
    let validity = Duration::from_secs(30);
    let p = Pebble::start(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        Some(validity),
    )
    .await;
    let name = "renew.example.com";
    let v = Vigie::start_on(
        &config(&p, "http-01", &format!("\"{name}\""), ""),
        ports,
        &[],
    )
    .await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    // Keep making verified requests, each on a new TLS connection, until a new certificate
    // is served (due when a third of the 30 s lifetime remains).
    let c = fresh_handshake_client(&v, name, &p.root().await);
    let url = v.https_url(name, "/");
    let (mut ok, mut failed) = (0u32, Vec::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        match c.get(&url).send().await {
            Ok(r) if r.status() == 200 => ok += 1,
            Ok(r) => failed.push(format!("status {}", r.status())),
            Err(e) => failed.push(e.to_string()),
        }
        let now = handshake(&v.https, name, &[], ALL).await.unwrap();
        if now.leaf.serial != first {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(renewed, "no renewal within 60s:\n{}", v.log());
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 10, "{ok}");
    assert_eq!(
        verified_get(&v, &p, name, &[name]).await,
        "hello over acme\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_outage_keeps_the_current_certificate_and_a_later_retry_succeeds() {
    let ports = Ports::new();
    let p_validity = Some(Duration::from_secs(24));
    let mut p = Pebble::start(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        p_validity,
    )
    .await;
    let name = "outage.example.com";
    let cfg = config(&p, "http-01", &format!("\"{name}\""), "");
    let v = Vigie::start_on(&cfg, ports, &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    // The CA goes away before renewal is due.
    p.stop_pebble();
    v.wait_log_for("certificate order failed", Duration::from_secs(40))
        .await;
    let h = handshake(&v.https, name, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, first, "the valid certificate keeps serving");
    let list = v.cert_list();
    assert!(list.contains("ACME"), "the last error is listed: {list}");
    // Back (with a new root and an empty database: vigie registers again).
    p.start_pebble().await;
    let second = wait_for_pebble_cert_other_than(&v, name, &first).await;
    assert_ne!(second, first);
    assert_eq!(
        verified_get(&v, &p, name, &[name]).await,
        "hello over acme\n"
    );
    let log = v.log();
    assert!(log.contains("does not know the stored account"), "{log}");
}

pub(crate) async fn wait_for_pebble_cert_other_than(v: &Vigie, name: &str, old: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(h) = handshake(&v.https, name, &[], ALL).await {
            if h.leaf.serial != old && h.leaf.issuer.contains("Pebble") {
                return h.leaf.serial;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new certificate within 60s:\n{}",
            v.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_renewal_is_live_when_the_command_returns() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let name = "force.example.com";
    let v = Vigie::start_on(
        &config(&p, "http-01", &format!("\"{name}\""), ""),
        ports,
        &[],
    )
    .await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    // Not due: a plain renew does nothing.
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::vigie::bin())
            .args(args)
            .arg("-c")
            .arg(&v.config)
            .output()
            .unwrap()
    };
    let out = run(&["cert", "renew", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        handshake(&v.https, name, &[], ALL)
            .await
            .unwrap()
            .leaf
            .serial,
        first
    );
    // Forced: the new certificate is served as soon as the command returns.
    let out = run(&["cert", "renew", "--force", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let now = handshake(&v.https, name, &[], ALL).await.unwrap();
    assert_ne!(now.leaf.serial, first);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&now.leaf.serial));
    // Unknown names are refused.
    let out = run(&["cert", "renew", "nope.example.com"]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_state_files_give_clear_errors_and_a_fresh_issuance() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let name = "corrupt.example.com";
    let cfg = config(&p, "http-01", &format!("\"{name}\""), "");
    // A first order that fails under a loaded CI machine is retried after 1 s, not the
    // default minute (which outlasts the wait: seen once in CI on 2026-12-03).
    let mut v = Vigie::start_on(&cfg, ports, &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    // Garbage in the account and the certificate, then a restart.
    let acme_dir = std::fs::read_dir(v.state().join("acme"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(acme_dir.join("account.json"), "{ not json").unwrap();
    std::fs::write(v.state().join(format!("certs/{name}/cert.pem")), "garbage").unwrap();
    v.restart().await;
    let second = wait_for_pebble_cert_other_than(&v, name, &first).await;
    assert!(!second.is_empty());
    let log = v.log();
    assert!(log.contains("stored certificate is unusable"), "{log}");
    assert!(
        log.contains("ACME account credentials are unreadable"),
        "{log}"
    );
    // The bad credentials were kept aside for the operator, not deleted.
    let aside = std::fs::read_dir(&acme_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("account.json.old-")
        })
        .count();
    assert_eq!(aside, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_orders_from_the_directory_without_serving_the_result() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let name = "dry.example.com";
    let v = Vigie::start_on(
        &config(&p, "http-01", &format!("\"{name}\""), ""),
        ports,
        &[],
    )
    .await;
    let serving = wait_for_pebble_cert(&v, &p, name).await;
    let out = std::process::Command::new(crate::support::vigie::bin())
        .args(["cert", "issue", "--dry-run", "-c"])
        .arg(&v.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", v.log());
    assert!(stdout.contains(&format!("ok\t{name}\tissuer")), "{stdout}");
    assert_eq!(
        handshake(&v.https, name, &[], ALL)
            .await
            .unwrap()
            .leaf
            .serial,
        serving
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn external_account_binding_is_sent_when_the_ca_requires_it() {
    let ports = Ports::new();
    // A 32-byte HMAC key, base64url as CAs hand it out.
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let p = Pebble::start_with(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        None,
        Some(("kid-vigie", key)),
    )
    .await;
    let name = "eab.example.com";
    let eab = format!("eab = {{ kid = \"kid-vigie\", hmac_key = \"{key}\" }}");
    let v = Vigie::start_on(
        &config(&p, "http-01", &format!("\"{name}\""), &eab),
        ports,
        &[],
    )
    .await;
    wait_for_pebble_cert(&v, &p, name).await;
}
