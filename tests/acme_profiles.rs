//! ACME profiles and rate-limit answers, against the scripted directory stub
//! (`support::acme_stub`): Pebble 2.4 advertises no profiles, so only this part is not tested
//! against Pebble.

use std::time::Duration;

use crate::support::acme_stub::AcmeStub;
use crate::support::{wait_until, Ports, Vigie};

fn config(stub: &AcmeStub, acme_profile: &str, site_profile: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[acme]
directory = "{dir}"
ca_roots = "{roots}"
{acme_profile}

[[sites]]
names = ["profile.example.com"]
tls = "acme"
{site_profile}
  [[sites.routes]]
  path = "/"
  respond = {{ body = "hi\n" }}
"#,
        dir = stub.directory,
        roots = stub.ca_roots.display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_the_directory_does_not_offer_is_refused_naming_the_offered_ones() {
    let stub = AcmeStub::start().await;
    let cfg = config(&stub, "profile = \"tlsserverx\"", "");
    let v = Vigie::start_on(&cfg, Ports::new(), &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    let expected = format!(
        "profile \"tlsserverx\" is not offered by {}: it offers classic, shortlived",
        stub.directory
    );
    wait_until(Duration::from_secs(30), "the profile error", || async {
        v.cert_list().contains(&expected)
    })
    .await;
    assert!(v.log().contains(&expected), "{}", v.log());
    assert!(stub.posts_to("/order").is_empty(), "no order is sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_site_profile_is_sent_and_a_rate_limit_with_retry_after_is_honoured() {
    let stub = AcmeStub::start().await;
    let cfg = config(&stub, "profile = \"classic\"", "profile = \"shortlived\"");
    let v = Vigie::start_on(&cfg, Ports::new(), &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    wait_until(Duration::from_secs(30), "a newOrder", || async {
        !stub.posts_to("/order").is_empty()
    })
    .await;
    let order = &stub.posts_to("/order")[0];
    assert!(order.contains(r#""profile":"shortlived""#), "{order}");
    wait_until(
        Duration::from_secs(10),
        "the rate limit in cert list",
        || async {
            v.cert_list()
                .contains("rate limited by the CA: next attempt at")
        },
    )
    .await;
    // With a 1 s first retry delay the back-off alone would have retried several times by
    // now; the CA's Retry-After (an hour) holds it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(stub.posts_to("/order").len(), 1, "{}", v.log());
}

/// A certificate stored under the site's profile is the one served after a restart, and it is
/// not taken for a certificate of another profile: no order is sent (the stored profile used
/// to be dropped when the certificates were loaded before the listeners opened, so every
/// restart re-ordered a site with a `profile`).
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_certificate_keeps_its_profile_across_a_restart_and_is_not_reordered() {
    let stub = AcmeStub::start().await;
    let state = tempfile::tempdir().unwrap();
    let site = state.path().join("certs/profile.example.com");
    std::fs::create_dir_all(&site).unwrap();
    let (chain, key) = crate::support::tls::TestCa::new("stored").leaf(&["profile.example.com"]);
    std::fs::write(site.join("cert.pem"), chain).unwrap();
    std::fs::write(site.join("key.pem"), key).unwrap();
    std::fs::write(site.join("profile"), "shortlived\n").unwrap();
    let cfg = config(&stub, "", "profile = \"shortlived\"")
        .replace("{state}", &state.path().display().to_string());
    let v = Vigie::start_on(&cfg, Ports::new(), &[("VIGIE_ACME_RETRY_SECONDS", "1")]).await;
    // The background pass has run once it has either scheduled the renewal or ordered.
    wait_until(Duration::from_secs(30), "the first ACME pass", || async {
        v.cert_list().contains("renewal at") || !stub.posts_to("/order").is_empty()
    })
    .await;
    assert!(stub.posts_to("/order").is_empty(), "{}", v.log());
    let list = v.cert_list();
    let line = list
        .lines()
        .find(|l| l.starts_with("profile.example.com"))
        .unwrap_or_default();
    assert!(line.contains("shortlived"), "{list}");
}
