//! TLS termination: real handshakes against the real binary.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::tls::{client_config, handshake, handshake_with, TestCa, TicketCounter, ALL};
use crate::support::{client, wait_until, Origin, Vigie};

fn files_config(origin: &str, a: &(String, String), b: &(String, String), extra: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
{extra}
[headers.hsts]
"Strict-Transport-Security" = "max-age=63072000; includeSubDomains"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["a.test"]
tls = {{ cert = "{}", key = "{}" }}
headers = "hsts"
  [[sites.routes]]
  path = "/"
  upstream = "app"

[[sites]]
names = ["b.test", "*.b.test"]
tls = {{ cert = "{}", key = "{}" }}
  [[sites.routes]]
  path = "/"
  respond = {{ body = "b\n" }}

[[sites]]
names = ["plain.test"]
  [[sites.routes]]
  path = "/"
  respond = {{ body = "plain\n" }}
"#,
        a.0, a.1, b.0, b.1
    )
}

struct Setup {
    origin: Origin,
    ca_a: TestCa,
    ca_b: TestCa,
    dir: tempfile::TempDir,
    a: (String, String),
    b: (String, String),
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca_a = TestCa::new("CA A");
    let ca_b = TestCa::new("CA B");
    let a = ca_a.write_leaf(dir.path(), "a", &["a.test"]);
    let b = ca_b.write_leaf(dir.path(), "b", &["b.test", "*.b.test"]);
    Setup {
        origin: Origin::start("app").await,
        ca_a,
        ca_b,
        dir,
        a,
        b,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_picks_the_certificate_and_h2_is_negotiated() {
    let s = setup().await;
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, "")).await;
    let names = ["a.test", "b.test", "x.b.test"];
    let trusts_a = v.https_client(&names, &[s.ca_a.reqwest_root()]);
    let trusts_b = v.https_client(&names, &[s.ca_b.reqwest_root()]);

    let r = trusts_a
        .get(v.https_url("a.test", "/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN h2");
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    assert_eq!(s.origin.seen()[0].headers["x-forwarded-proto"], "https");
    // b.test is served CA B's certificate: a client trusting only CA A refuses it.
    assert!(trusts_a
        .get(v.https_url("b.test", "/"))
        .send()
        .await
        .is_err());
    let r = trusts_b
        .get(v.https_url("b.test", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "b\n");
    // The wildcard certificate covers a subdomain.
    let r = trusts_b
        .get(v.https_url("x.b.test", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "b\n");
    // HTTP/1.1 only clients work too.
    let h = handshake(&v.https, "a.test", &[b"http/1.1"], ALL)
        .await
        .unwrap();
    assert_eq!(h.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(h.leaf.names, vec!["a.test"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_sni_gets_the_default_and_protocol_policy_holds() {
    let s = setup().await;
    let extra = "[tls]\ndefault_name = \"b.test\"\nmin_version = \"1.2\"\n";
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, extra)).await;
    // An IP address as server name: rustls sends no SNI.
    let h = handshake(&v.https, "127.0.0.1", &[b"h2"], ALL)
        .await
        .unwrap();
    assert_eq!(h.leaf.names, vec!["b.test", "*.b.test"]);
    assert_eq!(h.version, Some(rustls::ProtocolVersion::TLSv1_3));
    // TLS 1.2 is accepted with min_version 1.2.
    let h = handshake(&v.https, "a.test", &[], &[&rustls::version::TLS12])
        .await
        .unwrap();
    assert_eq!(h.version, Some(rustls::ProtocolVersion::TLSv1_2));
    // A client offering only acme-tls/1 never gets a real certificate.
    assert!(handshake(&v.https, "a.test", &[b"acme-tls/1"], ALL)
        .await
        .is_err());

    let v13 = Vigie::start(&files_config(
        &s.origin.addr_str(),
        &s.a,
        &s.b,
        "[tls]\nmin_version = \"1.3\"\n",
    ))
    .await;
    let err = handshake(&v13.https, "a.test", &[], &[&rustls::version::TLS12])
        .await
        .unwrap_err();
    assert!(
        err.contains("ProtocolVersion") || err.contains("alert"),
        "{err}"
    );
    assert!(handshake(&v13.https, "a.test", &[], ALL).await.is_ok());
}

/// The server's choices: hybrid post-quantum key exchange when the client offers it, X25519
/// otherwise; AES-128-GCM even for a client listing AES-256 first (TLS 1.3 and 1.2); one
/// resumption ticket per handshake, which resumes.
#[tokio::test(flavor = "multi_thread")]
async fn key_exchange_suites_and_tickets_follow_the_policy() {
    use rustls::crypto::aws_lc_rs;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup().await;
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, "")).await;

    // A browser-like client: X25519MLKEM768 offered first.
    let mut pq = aws_lc_rs::default_provider();
    pq.kx_groups = vec![
        aws_lc_rs::kx_group::X25519MLKEM768,
        aws_lc_rs::kx_group::X25519,
    ];
    let (h, _) = handshake_with(&v.https, "a.test", client_config(pq, &[], ALL))
        .await
        .unwrap();
    assert_eq!(h.kx, Some(rustls::NamedGroup::X25519MLKEM768));
    assert_eq!(h.version, Some(rustls::ProtocolVersion::TLSv1_3));

    // A client without it (OpenSSL 3.0, wrk) gets X25519; AES-256-GCM listed first by the
    // client still gives AES-128-GCM.
    let mut classic = rustls::crypto::ring::default_provider();
    classic.cipher_suites.sort_by_key(|c| {
        !matches!(
            c.suite(),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        )
    });
    assert_eq!(
        classic.cipher_suites[0].suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    let store = Arc::new(TicketCounter::new());
    let mut config = client_config(classic.clone(), &[b"http/1.1"], ALL);
    config.resumption = rustls::client::Resumption::store(store.clone());
    let (h, mut tls) = handshake_with(&v.https, "a.test", config.clone())
        .await
        .unwrap();
    assert_eq!(h.kx, Some(rustls::NamedGroup::X25519));
    assert_eq!(h.suite, Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
    // The ticket comes after the handshake: read a whole answer, then count.
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(store.tickets.load(Ordering::SeqCst), 1);
    // The ticket resumes: no certificate is sent again, and a new ticket replaces it.
    let (_, tls) = handshake_with(&v.https, "a.test", config).await.unwrap();
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );

    let tls12 = client_config(classic, &[], &[&rustls::version::TLS12]);
    let (h, _) = handshake_with(&v.https, "a.test", tls12).await.unwrap();
    assert_eq!(
        h.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_redirects_to_https_keeping_path_and_query() {
    let s = setup().await;
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, "")).await;
    let port = v.https.rsplit(':').next().unwrap().to_string();
    let r = v.get("a.test", "/some/page?x=1&y=2").await;
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        format!("https://a.test:{port}/some/page?x=1&y=2")
    );
    let r = client()
        .post(v.url("/form"))
        .header("host", "b.test")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308, "a POST keeps its method");
    // A site without tls is served on plain HTTP.
    assert_eq!(
        v.get("plain.test", "/").await.text().await.unwrap(),
        "plain\n"
    );
    assert_eq!(s.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_replaced_on_reload_without_dropping_connections() {
    let s = setup().await;
    let cfg = files_config(&s.origin.addr_str(), &s.a, &s.b, "");
    let v = Vigie::start(&cfg).await;
    let before = handshake(&v.https, "a.test", &[], ALL).await.unwrap();
    let c = v.https_client(&["a.test"], &[s.ca_a.reqwest_root()]);
    assert_eq!(
        c.get(v.https_url("a.test", "/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // New certificate files, then SIGHUP.
    s.ca_a.write_leaf(s.dir.path(), "a", &["a.test"]);
    v.signal("HUP");
    wait_until(Duration::from_secs(10), "the new certificate", || async {
        handshake(&v.https, "a.test", &[], ALL)
            .await
            .is_ok_and(|h| h.leaf.serial != before.leaf.serial)
    })
    .await;
    // The connection opened before the reload still works.
    assert_eq!(
        c.get(v.https_url("a.test", "/2"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A broken key on reload: rejected, the current certificate keeps serving.
    let current = handshake(&v.https, "a.test", &[], ALL).await.unwrap();
    std::fs::write(&s.a.1, "not a key").unwrap();
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    assert!(v.log().contains("no private key found"), "{}", v.log());
    let after = handshake(&v.https, "a.test", &[], ALL).await.unwrap();
    assert_eq!(after.leaf.serial, current.leaf.serial);
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_ca_serves_localhost_with_no_network() {
    let cfg = r#"
[server]
http = ["{http}"]
https = ["{https}"]
admin = "{admin}"
state_dir = "{state}"

[[sites]]
names = ["localhost", "127.0.0.1"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = { body = "local\n" }
"#;
    let v = Vigie::start(cfg).await;
    // `vigie ca` prints the CA that the running instance uses.
    let out = std::process::Command::new(crate::support::vigie::bin())
        .args(["ca", "-c"])
        .arg(&v.config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let ca_pem = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        ca_pem,
        std::fs::read_to_string(v.state().join("ca/root.pem")).unwrap()
    );
    let root = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let c = v.https_client(&["localhost"], std::slice::from_ref(&root));
    let r = c.get(v.https_url("localhost", "/")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "local\n");
    let r = v
        .https_client(&[], &[root])
        .get(v.https_url("127.0.0.1", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "local\n");
    // The CA key is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(v.state().join("ca/root.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_missing_certificate_file_is_a_check_error() {
    let text = "[server]\nhttps = [\"127.0.0.1:8443\"]\nadmin = false\n\
        [[sites]]\nnames = [\"a.test\"]\ntls = { cert = \"/nonexistent/a.pem\", key = \"/nonexistent/a.key\" }\n\
        [[sites.routes]]\npath = \"/\"\nrespond = {}\n";
    let out = crate::support::check(text);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("test.toml: cannot read /nonexistent/a.pem: No such file"),
        "{stderr}"
    );
}

/// `openssl s_client` against the HTTPS listener; whether the handshake succeeded.
fn openssl_handshake(addr: &str, args: &[&str]) -> bool {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "a.test"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (installed by `make deps`)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Cipher is ") && !text.contains("Cipher is (NONE)")
}

#[tokio::test(flavor = "multi_thread")]
async fn only_forward_secret_aead_suites_and_no_legacy_protocols() {
    let s = setup().await;
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, "")).await;
    let addr = v.https.clone();
    tokio::task::spawn_blocking(move || {
        assert!(openssl_handshake(&addr, &["-tls1_3"]));
        assert!(openssl_handshake(&addr, &["-tls1_2"]));
        assert!(openssl_handshake(
            &addr,
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]
        ));
        // Legacy protocols, static-RSA key exchange and CBC suites are refused.
        assert!(!openssl_handshake(&addr, &["-tls1_1"]));
        assert!(!openssl_handshake(
            &addr,
            &["-tls1_2", "-cipher", "AES128-GCM-SHA256"]
        ));
        assert!(!openssl_handshake(
            &addr,
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]
        ));
    })
    .await
    .unwrap();
}

/// A browser's spare HTTP/2 connection, closed right after the TLS handshake, is the
/// client's choice: pingora logs it as `ERROR H2 handshake error … Broken pipe`, vigie does
/// not (a real HTTP/2 request still works and is logged as usual).
#[tokio::test(flavor = "multi_thread")]
async fn an_h2_client_that_leaves_early_is_not_an_error() {
    let s = setup().await;
    let v = Vigie::start(&files_config(&s.origin.addr_str(), &s.a, &s.b, "")).await;
    for _ in 0..3 {
        // Handshake with ALPN h2, then close without the HTTP/2 preface.
        let out = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-alpn",
                "h2",
                "-servername",
                "a.test",
                "-connect",
            ])
            .arg(&v.https)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl (installed by `make deps`)");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("ALPN protocol: h2"),
            "h2 was not negotiated"
        );
    }
    // Connections are counted until pingora's handshake attempt (and its log line) is over.
    crate::support::wait_until(Duration::from_secs(10), "connections closed", || async {
        crate::support::metric_value(&v.metrics().await, "vigie_downstream_connections")
            == Some(0.0)
    })
    .await;
    let log = v.log();
    assert!(!log.contains("H2 handshake error"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}
