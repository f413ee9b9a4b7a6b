//! CA fallback (`[[acme.ca]]`) and External Account Binding against real Pebble instances:
//! each Pebble has its own API certificate, issuing root and database, so which one issued
//! a certificate is checked by verifying it against that Pebble's root only.

use crate::acme::{wait_for_pebble_cert, wait_for_pebble_cert_other_than};
use crate::support::pebble::Pebble;
use crate::support::tls::{handshake, ALL};
use crate::support::{free_port, metric_value, Ports, Vigie};

/// One `[[acme.ca]]` entry: the Pebble's directory and API root, plus `extra` lines.
fn ca_entry(p: &Pebble, extra: &str) -> String {
    format!(
        "[[acme.ca]]\ndirectory = \"{}\"\nca_roots = \"{}\"\n{extra}\n",
        p.directory,
        p.api_ca.display()
    )
}

fn config(name: &str, cas: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
admin_token = "acme-test-token-0123"

[acme]
email = "ops@example.com"
challenge = "http-01"

{cas}
[[sites]]
names = ["{name}"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "hello over acme\n" }}
"#
    )
}

/// Whether `name` is served with a certificate that verifies against `p`'s root (only).
async fn issued_by(v: &Vigie, p: &Pebble, name: &str) -> bool {
    let root = reqwest::Certificate::from_pem(p.root().await.as_bytes()).unwrap();
    match v
        .https_client(&[name], &[root])
        .get(v.https_url(name, "/"))
        .send()
        .await
    {
        Ok(r) => r.status() == 200,
        Err(_) => false,
    }
}

/// `vigie cert list` (or `cert renew ...`): status and output.
fn cert(v: &Vigie, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(crate::support::vigie::bin())
        .arg("cert")
        .args(args)
        .arg("-c")
        .arg(&v.config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The `ca` column (the last) of `name`'s line in `vigie cert list`.
fn listed_ca(v: &Vigie, name: &str) -> String {
    let (_, list) = cert(v, &["list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{list}"));
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols.len(), 13, "{list}");
    cols[9].to_string()
}

fn fallback_count(metrics: &str, from: &Pebble, to: &Pebble) -> Option<f64> {
    metric_value(
        metrics,
        &format!(
            "vigie_acme_fallback_total{{from=\"{}\",to=\"{}\"}}",
            from.directory, to.directory
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_first_ca_falls_back_to_the_second_at_once() {
    let ports = Ports::new();
    let (http, https) = (Ports::port(&ports.http), Ports::port(&ports.https));
    let mut down = Pebble::start(http, https, None).await;
    down.stop_pebble();
    let up = Pebble::start(http, https, None).await;
    let name = "down.example.com";
    let cas = ca_entry(&down, "") + &ca_entry(&up, "");
    let v = Vigie::start_on(&config(name, &cas), ports, &[]).await;
    wait_for_pebble_cert(&v, &up, name).await;
    assert!(issued_by(&v, &up, name).await, "{}", v.log());
    assert_eq!(listed_ca(&v, name), up.directory);
    let log = v.log();
    assert!(
        log.contains("falling back to the next CA"),
        "the move is logged: {log}"
    );
    assert!(
        log.contains(&format!("from={} to={}", down.directory, up.directory)),
        "{log}"
    );
    assert!(log.contains("reason=unreachable"), "{log}");
    let metrics = v.metrics().await;
    assert_eq!(fallback_count(&metrics, &down, &up), Some(1.0), "{metrics}");
    // The issuing CA is stored next to the certificate; only the reachable CA has an account.
    let stored = std::fs::read_to_string(v.state().join(format!("certs/{name}/ca"))).unwrap();
    assert_eq!(stored, up.directory);
    let accounts = std::fs::read_dir(v.state().join("acme")).unwrap().count();
    assert_eq!(accounts, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_whose_validation_keeps_failing_is_left_after_three_orders_and_tried_first_again() {
    let ports = Ports::new();
    let (http, https) = (Ports::port(&ports.http), Ports::port(&ports.https));
    // This Pebble validates HTTP-01 on a port nothing listens on: every order it takes ends
    // with an invalid authorization.
    let failing = Pebble::start(free_port(), free_port(), None).await;
    let good = Pebble::start(http, https, None).await;
    let name = "invalid.example.com";
    let cas = ca_entry(&failing, "") + &ca_entry(&good, "");
    let v = Vigie::start_on(
        &config(name, &cas),
        ports,
        &[("VIGIE_ACME_RETRY_SECONDS", "0.3")],
    )
    .await;
    let first = wait_for_pebble_cert(&v, &good, name).await;
    assert!(issued_by(&v, &good, name).await);
    let log = v.log();
    assert_eq!(
        log.matches("certificate order failed").count(),
        2,
        "two failed passes, the third moves on in its own pass: {log}"
    );
    assert!(log.contains("reason=3 failed orders in a row"), "{log}");
    assert_eq!(
        fallback_count(&v.metrics().await, &failing, &good),
        Some(1.0)
    );
    assert_eq!(listed_ca(&v, name), good.directory);

    // The list is an order of preference: the next order asks the first CA again. It fails
    // there, the served certificate stays, and after three failures the second CA renews.
    let (ok, out) = cert(&v, &["renew", "--force", name]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("acme:error:connection"),
        "the first CA's validation error: {out}"
    );
    assert!(
        out.contains(&format!("at CA 1 of 2 ({})", failing.directory)),
        "the waiting column says which CA is next: {out}"
    );
    let h = handshake(&v.https, name, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, first, "the valid certificate keeps serving");
    let second = wait_for_pebble_cert_other_than(&v, name, &first).await;
    assert_ne!(second, first);
    assert!(issued_by(&v, &good, name).await);
    assert_eq!(
        fallback_count(&v.metrics().await, &failing, &good),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_that_never_answers_times_out_and_counts_as_unreachable() {
    // Pebble cannot hang, so a loopback socket that accepts and never says a word stands in
    // for a CA stuck behind a broken load balancer.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_dir = format!("https://{}/dir", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let ports = Ports::new();
    let up = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let name = "silent.example.com";
    let cas = format!("[[acme.ca]]\ndirectory = \"{silent_dir}\"\n\n") + &ca_entry(&up, "");
    let v = Vigie::start_on(
        &config(name, &cas),
        ports,
        &[("VIGIE_ACME_TIMEOUT_SECONDS", "1")],
    )
    .await;
    wait_for_pebble_cert(&v, &up, name).await;
    assert!(issued_by(&v, &up, name).await);
    let log = v.log();
    assert!(
        log.contains("reason=unreachable (no answer from the CA within 1s)"),
        "{log}"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn eab_from_a_key_file_registers_and_a_wrong_key_is_a_clear_error_keeping_the_certificate() {
    let ports = Ports::new();
    // A 32-byte HMAC key, base64url as CAs hand it out.
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let mut p = Pebble::start_with(
        Ports::port(&ports.http),
        Ports::port(&ports.https),
        None,
        Some(("kid-vigie", key)),
    )
    .await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("eab.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let name = "eabfile.example.com";
    let eab = format!(
        "eab = {{ kid = \"kid-vigie\", hmac_key_file = \"{}\" }}",
        key_file.display()
    );
    let v = Vigie::start_on(&config(name, &ca_entry(&p, &eab)), ports, &[]).await;
    let first = wait_for_pebble_cert(&v, &p, name).await;
    assert!(v.log().contains("eab=true"), "{}", v.log());

    // A wrong key, and a CA that has forgotten the account: registering again is refused.
    std::fs::write(
        &key_file,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
    )
    .unwrap();
    p.stop_pebble();
    p.start_pebble().await;
    let (ok, out) = cert(&v, &["renew", "--force", name]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "external account binding: {} refused the account with EAB kid \"kid-vigie\"",
            p.directory
        )),
        "{out}"
    );
    let h = handshake(&v.https, name, &[], ALL).await.unwrap();
    assert_eq!(h.leaf.serial, first, "the valid certificate keeps serving");
    let (_, list) = cert(&v, &["list"]);
    assert!(list.contains("refused the account with EAB kid"), "{list}");

    // The right key again: the next order registers and is issued.
    std::fs::write(&key_file, key).unwrap();
    let (ok, out) = cert(&v, &["renew", "--force", name]);
    assert!(ok, "{out}\n{}", v.log());
    let second = wait_for_pebble_cert_other_than(&v, name, &first).await;
    assert!(issued_by(&v, &p, name).await, "{second}");
}
