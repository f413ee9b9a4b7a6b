//! The embedded default: what `vigie run` serves with no `-c`, so a newcomer sees vigie work
//! in a minute without writing a config or owning a domain.
//!
//! It writes a few pages under the system temp directory (`vigie-demo/`) and serves, on
//! `https://localhost:8443` with a certificate from vigie's local CA (`http://localhost:8080`
//! redirects there): static files at `/`, a fixed answer at `/hello`, a redirect at `/old`,
//! and `/api/...` proxied (with an active health check) to vigie's own admin listener, which
//! stands in for an API server.

use std::path::{Path, PathBuf};

use vigie_config::{Config, ConfigError, ConfigErrors};

/// The demo's directory (pages and state).
pub fn dir() -> PathBuf {
    std::env::temp_dir().join("vigie-demo")
}

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>vigie is running</title>
<link rel="stylesheet" href="/style.css"></head>
<body>
<h1>vigie is running</h1>
<p>This page is a static file served by vigie's embedded demo configuration.</p>
<ul>
<li><a href="/hello">/hello</a>: a fixed response (nginx <code>return 200 "..."</code>)</li>
<li><a href="/old">/old</a>: a redirect (nginx <code>return 301 /</code>)</li>
<li><a href="/api/healthz">/api/healthz</a>: proxied to an upstream group with a health check</li>
</ul>
<p>Write your own configuration and run <code>vigie check -c FILE</code>, then
<code>vigie run -c FILE</code>. See <code>dist/examples/stack.toml</code>.</p>
</body>
</html>
"#;

const STYLE: &str =
    "body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; }\n";

fn demo_toml(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# vigie's embedded demo configuration.
[server]
http = ["127.0.0.1:8080"]
https = ["127.0.0.1:8443"]
admin = "127.0.0.1:9145"
state_dir = "{d}/state"

[headers.security]
"X-Content-Type-Options" = "nosniff"
"X-Frame-Options" = "SAMEORIGIN"
"Referrer-Policy" = "strict-origin-when-cross-origin"
"Strict-Transport-Security" = "max-age=300"

[upstreams.demo_api]
servers = ["127.0.0.1:9145"]
health = {{ path = "/healthz", interval = "5s" }}

[[sites]]
names = ["localhost", "127.0.0.1"]
tls = "internal"
headers = "security"
max_body = "1MiB"

  [[sites.routes]]
  path = "/"
  static = {{ root = "{d}/www" }}

  [[sites.routes]]
  path = "/hello"
  respond = {{ status = 200, body = "Hello from vigie!\n" }}

  [[sites.routes]]
  path = "/old"
  redirect = {{ to = "/", status = 301 }}

  [[sites.routes]]
  path = "/api/"
  upstream = "demo_api"
  strip_prefix = true
"#
    )
}

fn write_pages(dir: &Path) -> std::io::Result<()> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::create_dir_all(dir.join("state"))?;
    std::fs::write(www.join("index.html"), INDEX)?;
    std::fs::write(www.join("style.css"), STYLE)?;
    Ok(())
}

/// Write the demo pages and return the demo configuration.
pub fn config() -> Result<Config, ConfigErrors> {
    let dir = dir();
    write_pages(&dir).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            origin: "<embedded demo>".into(),
            line: 0,
            col: 0,
            message: format!("cannot write the demo pages under {}: {e}", dir.display()),
        }])
    })?;
    vigie_config::parse(&demo_toml(&dir), "<embedded demo>")
}
