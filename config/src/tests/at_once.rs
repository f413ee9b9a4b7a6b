//! Every problem of a file is reported at once, each at its position.

use super::errors;
use crate::*;

#[test]
fn every_error_is_reported_at_once() {
    let text = r#"
[server]
http = ["0.0.0.0:80", "0.0.0.0:80"]
grace_period = "soon"

[upstreams.backend]
servers = ["127.0.0.1:8080", "backend"]
balance = "fastest"

[[sites]]
names = ["example.com"]
max_body = "big"
  [[sites.routes]]
  path = "api"
  upstream = "bakend"
  [[sites.routes]]
  path = "/"
"#;
    assert_eq!(
        errors(text),
        [
            r#"test.toml:3:23: listener 0.0.0.0:80 overlaps 0.0.0.0:80 (line 3): two listeners on one port must not cover the same address"#,
            r#"test.toml:4:16: invalid duration "soon": expected a number and a unit, like "30s", "5m", "1h""#,
            r#"test.toml:7:30: invalid server address "backend": expected IP:PORT or HOST:PORT, like "127.0.0.1:8080" or "backend:8080""#,
            r#"test.toml:8:11: invalid balance "fastest": expected "round_robin", "weighted", "least_conn", "hash" or "random_two""#,
            r#"test.toml:12:12: invalid size "big": expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""#,
            r#"test.toml:14:10: route path "api" must start with "/", like "/api""#,
            r#"test.toml:15:14: upstream "bakend" is not defined; defined upstreams: backend"#,
            r#"test.toml:17:10: route "/" has no action: expected one of upstream, redirect, respond or static"#,
        ]
    );
    let all = parse(text, "test.toml").unwrap_err();
    assert_eq!(all.to_string().lines().count(), 8);
}
