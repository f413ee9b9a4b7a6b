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

/// Each case: a file with unknown keys (and maybe other mistakes), and every message it must
/// produce, in file order.
const UNKNOWN: &[(&str, &str, &[&str])] = &[
    (
        "a typo beside validation errors",
        r#"
[server]
htp = ["0.0.0.0:80"]
grace_period = "soon"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "api"
  respond = {}
"#,
        &[
            "test.toml:3:1: unknown key `htp` (did you mean `http`?), expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`",
            r#"test.toml:4:16: invalid duration "soon": expected a number and a unit, like "30s", "5m", "1h""#,
            r#"test.toml:8:10: route path "api" must start with "/", like "/api""#,
        ],
    ),
    (
        "a key in another case, over several lines",
        "[server]\nHTTP = [\n  \"0.0.0.0:80\",\n  \"[::]:80\",\n]\nthreads = 0\n",
        &[
            "test.toml:2:1: unknown key `HTTP` (did you mean `http`?), expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`",
            "test.toml:6:11: invalid threads 0: expected an integer from 1 to 1024",
        ],
    ),
    (
        "a misspelt table, its keys and subtables left out",
        r#"
[sever]
http = ["0.0.0.0:80"]
[sever.more]
x = 1
[limits.a]
rate = "1/x"
"#,
        &[
            "test.toml:2:2: unknown key `sever` (did you mean `server`?), expected one of `server`, `tls`, `acme`, `cluster`, `client_ip`, `limits`, `cache`, `headers`, `upstreams`, `sites`, `log`, `error_pages`",
            r#"test.toml:7:8: invalid rate "1/x": expected COUNT/UNIT with UNIT s, m or h, like "100/m""#,
        ],
    ),
    (
        "a misspelt array of tables with its subtables",
        r#"
[[site]]
names = ["a.test"]
  [[site.routes]]
  path = "/"
[[sites]]
names = ["b.test"]
  [[sites.routes]]
  path = "/"
  respond = { status = 99 }
"#,
        &[
            "test.toml:2:3: unknown key `site` (did you mean `sites`?), expected one of `server`, `tls`, `acme`, `cluster`, `client_ip`, `limits`, `cache`, `headers`, `upstreams`, `sites`, `log`, `error_pages`",
            "test.toml:10:24: invalid respond status 99: expected an integer from 100 to 599",
        ],
    ),
    (
        "a misspelt subtable of a named table",
        r#"
[upstreams.app]
servers = ["127.0.0.1:1"]
retries = 1000
[upstreams.app.helth]
path = "/up"
"#,
        &[
            "test.toml:4:11: invalid retries 1000: expected an integer from 0 to 100",
            "test.toml:5:16: unknown key `helth` (did you mean `health`?), expected one of `servers`, `balance`, `hash_on`, `health`, `max_fails`, `fail_timeout`, `retries`, `connect_timeout`, `read_timeout`, `write_timeout`, `h2c`, `tls`",
        ],
    ),
    (
        "inline tables: first, last and only member, in arrays too",
        r#"
[upstreams.app]
servers = [{ addr = "127.0.0.1:1", wieght = 2 }, { adr = "127.0.0.1:2" , addr = "127.0.0.1:3" }]
health = { intervall = "5s" }
[[sites]]
names = ["a.test"]
compress = { levl = 3, level = 12 }
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        &[
            "test.toml:3:36: unknown key `wieght` (did you mean `weight`?), expected `addr` or `weight`",
            "test.toml:3:52: unknown key `adr` (did you mean `addr`?), expected `addr` or `weight`",
            "test.toml:4:12: unknown key `intervall` (did you mean `interval`?), expected one of `path`, `interval`, `timeout`, `rise`, `fall`, `host`",
            "test.toml:7:14: unknown key `levl` (did you mean `level`?), expected one of `level`, `brotli_level`, `min_size`, `types`",
            "test.toml:7:32: invalid compression level 12: expected an integer from 1 (fast) to 9 (small)",
        ],
    ),
    (
        "keys of a site and a route; what is left is checked as written",
        r#"
[upstreams.app]
servers = ["127.0.0.1:1"]
[[sites]]
names = ["a.test"]
compres = true
  [[sites.routes]]
  path = "/"
  upstrem = "app"
"#,
        &[
            "test.toml:6:1: unknown key `compres` (did you mean `compress`?), expected one of `names`, `tls`, `max_body`, `limit`, `headers`, `request_headers`, `response_headers`, `compress`, `pass_headers`, `redirect_www`, `trailing_slash`, `error_pages`, `access`, `basic_auth`, `profile`, `routes`",
            r#"test.toml:8:10: route "/" has no action: expected one of upstream, redirect, respond or static"#,
            "test.toml:9:3: unknown key `upstrem` (did you mean `upstream`?), expected one of `path`, `starts_with`, `exact`, `regex`, `case_insensitive`, `no_regex`, `access`, `basic_auth`, `rewrite`, `upstream`, `strip_prefix`, `redirect`, `respond`, `static`, `cache`, `max_body`, `request_buffer`, `limit`, `headers`, `request_headers`, `response_headers`, `compress`, `pass_headers`",
        ],
    ),
    (
        "dotted keys, and no suggestion when nothing is close",
        "[server]\nbananas = 1\nfoo.bar = 2\nfoo.baz = 3\n[log]\nlevel = \"\"\n",
        &[
            "test.toml:2:1: unknown key `bananas`, expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`",
            "test.toml:3:1: unknown key `foo`, expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`",
            r#"test.toml:6:9: empty level: expected a filter like "info" or "vigie=debug""#,
        ],
    ),
    (
        "an error page without its only key: the page is then empty",
        "[error_pages]\n404 = { text = \"gone\" }\n",
        &[
            r#"test.toml:2:7: error page "404" has neither file nor body: expected file = "/path/404.html" or body = "...""#,
            "test.toml:2:9: unknown key `text`, expected one of `file`, `body`, `content_type`",
        ],
    ),
    (
        "a type error after unknown keys: reported with them",
        "[server]\nhtps = []\n[log]\njsn = true\nlevel = 3\n",
        &[
            "test.toml:2:1: unknown key `htps` (did you mean `https`?), expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`",
            "test.toml:4:1: unknown key `jsn` (did you mean `json`?), expected one of `level`, `access`, `format`, `json`",
            "test.toml:5:9: invalid type: integer `3`, expected a string",
        ],
    ),
];

#[test]
fn unknown_keys_are_reported_with_everything_else() {
    let mut failed = Vec::new();
    for (name, text, expected) in UNKNOWN {
        let got = errors(text);
        if got != *expected {
            failed.push(format!(
                "{name}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn suggestions_only_for_close_keys() {
    use crate::validate::suggestion;
    let known: Vec<String> = [
        "http",
        "https",
        "names",
        "upstream",
        "stale_while_revalidate",
    ]
    .map(String::from)
    .to_vec();
    for (key, expected) in [
        ("htp", Some("http")),
        ("HTTPS", Some("https")),
        ("nmaes", Some("names")),
        ("upstrem", Some("upstream")),
        ("upstreams", Some("upstream")),
        ("stale_while_revalidat", Some("stale_while_revalidate")),
        ("stale_if_revalidate", None),
        ("ht", None),
        ("path", None),
    ] {
        assert_eq!(suggestion(key, &known), expected, "{key}");
    }
}
