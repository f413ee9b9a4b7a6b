//! The status page in a real browser (Debian's headless chromium over the DevTools
//! protocol): it follows an origin going down and coming back, shows a refused reload with
//! its error and a Pebble certificate's next renewal, and fits laptop and phone widths.
//! Screenshots are kept under the target directory (`CARGO_TARGET_TMPDIR`), not in git.

use std::time::Duration;

use crate::acme::wait_for_pebble_cert;
use crate::support::browser::{png_colours, Chromium};
use crate::support::pebble::Pebble;
use crate::support::{Origin, Ports, Vigie};

/// Health-check interval of the test group; the page polls every 2 s.
const INTERVAL: Duration = Duration::from_secs(1);

fn config(p: &Pebble, a: &str, b: &str) -> String {
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
challenge = "http-01"

[upstreams.app]
servers = ["{a}", "{b}"]
health = {{ path = "/health", interval = "{interval}s", timeout = "1s", fall = 1, rise = 1 }}
fail_timeout = "2s"

[limits.api]
rate = "5/s"

[cache.pages]
memory = "8MiB"

[[sites]]
names = ["shop.example.com"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "shop\n" }}

[[sites]]
names = ["app.test"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  limit = "api"
  [[sites.routes]]
  path = "/static"
  upstream = "app"
  cache = {{ zone = "pages", valid = {{ "200" = "1m" }} }}
"#,
        dir = p.directory,
        roots = p.api_ca.display(),
        interval = INTERVAL.as_secs(),
    )
}

/// The text of the state cell of `server` in group `app`.
fn state_js(server: &str) -> String {
    format!(
        "document.querySelector('[data-server=\"app/{server}\"] .state')?.textContent ?? 'no row'"
    )
}

fn save(name: &str, png: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_follows_health_reloads_and_certificates_in_chromium() {
    let ports = Ports::new();
    let p = Pebble::start(Ports::port(&ports.http), Ports::port(&ports.https), None).await;
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let (a_addr, b_addr) = (a.addr, b.addr.to_string());
    let cfg = config(&p, &a.addr_str(), &b_addr);
    let v = Vigie::start_on(&cfg, ports, &[]).await;

    // Some steady traffic (bounded: 20 requests a second, to loopback, for the test's
    // length) so the sparklines, rates and latencies have something to show.
    let http = v.http.clone();
    let traffic = tokio::spawn(async move {
        let c = crate::support::client();
        for i in 0u64.. {
            let path = match i % 10 {
                0 => "/static/logo.png",
                1 => "/status/404",
                2 => "/status/500",
                _ => "/",
            };
            let _ = c
                .get(format!("http://{http}{path}"))
                .header("host", "app.test")
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let browser = Chromium::launch(1280, 900).await;
    browser.goto(&format!("http://{}/", v.admin)).await;
    let limit = Duration::from_secs(10);
    for server in [a_addr.to_string(), b_addr.clone()] {
        browser
            .wait_for(limit, "both servers up", &state_js(&server), |t| {
                t.contains("up") && !t.contains("down")
            })
            .await;
    }

    // Down within the health-check interval (+ the page's 2 s poll and a margin)...
    a.stop();
    let down = INTERVAL * 2 + Duration::from_secs(6);
    let text = browser
        .wait_for(down, "a shown down", &state_js(&a_addr.to_string()), |t| {
            t.contains("down")
        })
        .await;
    assert!(text.contains("health check"), "{text}");
    let row =
        format!("document.querySelector('[data-server=\"app/{a_addr}\"]')?.textContent ?? ''");
    let why = browser.eval(&row).await;
    assert!(
        why.as_str()
            .is_some_and(|t| t.contains("Connection refused")),
        "{why}"
    );
    // ...and up again when it returns on the same address.
    let a = Origin::start_at("a", a_addr).await;
    browser
        .wait_for(
            down,
            "a shown up again",
            &state_js(&a_addr.to_string()),
            |t| t.contains("up") && !t.contains("down"),
        )
        .await;

    // The ACME certificate's next renewal, from Pebble.
    wait_for_pebble_cert(&v, &p, "shop.example.com").await;
    let cert = "document.querySelector('[data-cert=\"shop.example.com\"]')?.textContent ?? ''";
    let text = browser
        .wait_for(limit, "the Pebble certificate", cert, |t| {
            t.contains("Pebble")
        })
        .await;
    assert!(text.contains("✔ ok"), "{text}");
    let renew =
        "document.querySelector('[data-cert=\"shop.example.com\"] .renew')?.textContent ?? ''";
    let renewal = browser.eval(renew).await;
    assert!(
        renewal
            .as_str()
            .is_some_and(|t| t.contains("(in ") && t.contains("renewal at")),
        "{renewal}"
    );

    // A refused reload, with its error.
    v.write_config(&format!("{cfg}\n[bogus]\nx = 1\n"));
    v.signal("HUP");
    let reload = "(document.getElementById('reload')?.textContent ?? '') + ' | ' + \
                  (document.getElementById('reload-error')?.textContent ?? '')";
    let text = browser
        .wait_for(limit, "the refused reload", reload, |t| {
            t.contains("refused")
        })
        .await;
    assert!(
        text.contains("unknown key") && text.contains("bogus"),
        "{text}"
    );

    // Laptop width: a screenshot that is not blank, and nothing wider than the window.
    let history = "String(document.querySelectorAll('[data-site=\"app.test\"] svg rect').length)";
    browser
        .wait_for(limit, "bars in the sparkline", history, |t| {
            t.parse::<u32>().is_ok_and(|n| n >= 8)
        })
        .await;
    let shot = browser.screenshot().await;
    let path = save("laptop.png", &shot);
    let (w, h, colours) = png_colours(&shot);
    assert_eq!((w, h), (1280, 900), "{}", path.display());
    assert!(
        colours >= 16,
        "{colours} colours: blank? {}",
        path.display()
    );
    // The whole page too (docs/status.png is taken from it).
    let whole = browser.screenshot_page().await;
    let path = save("laptop-page.png", &whole);
    let (w, h, colours) = png_colours(&whole);
    assert!(w == 1280 && h >= 900 && colours >= 16, "{}", path.display());
    let overflow = "String(document.documentElement.scrollWidth - window.innerWidth)";
    assert_eq!(browser.eval(overflow).await, "0");

    // Phone width: the tables turn into rows of labelled cells, still no sideways scroll.
    browser.viewport(390, 844).await;
    browser
        .wait_for(limit, "no horizontal overflow on a phone", overflow, |t| {
            t == "0"
        })
        .await;
    let shot = browser.screenshot().await;
    let path = save("phone.png", &shot);
    let (w, _, colours) = png_colours(&shot);
    assert_eq!(w, 390, "{}", path.display());
    assert!(
        colours >= 16,
        "{colours} colours: blank? {}",
        path.display()
    );

    traffic.abort();
    browser.close().await;
    drop(a);
}
