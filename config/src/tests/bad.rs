//! One mistake per configuration, and the one message, with its position, it must produce.

use super::errors;

/// Each case: a config with one mistake, and the one message it must produce.
const BAD: &[(&str, &str, &str)] = &[
    (
        "unknown key",
        r#"
[server]
htp = ["0.0.0.0:80"]
"#,
        r##"test.toml:3:1: unknown key `htp` (did you mean `http`?), expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`"##,
    ),
    (
        "bad listen address",
        r#"
[server]
http = ["0.0.0.0:80", "0.0.0.0:99999"]
"#,
        r##"test.toml:3:23: invalid listen address "0.0.0.0:99999": expected IP:PORT, like "0.0.0.0:443" or "[::]:443""##,
    ),
    (
        "single bad listen address",
        r#"
[server]
https = "localhost:443"
"#,
        r##"test.toml:3:9: invalid listen address "localhost:443": expected IP:PORT, like "0.0.0.0:443" or "[::]:443""##,
    ),
    (
        "bad duration",
        r#"
[server]
grace_period = "5 sconds"
"#,
        r##"test.toml:3:16: invalid duration "5 sconds": expected a number and a unit, like "30s", "5m", "1h""##,
    ),
    (
        "bad size",
        r#"
[cache.api]
memory = "20M"
"#,
        r##"test.toml:3:10: invalid size "20M": ambiguous unit "M"; write "20MiB" (mebibytes, 1024² bytes) or "20MB" (megabytes, 1000² bytes); size units are B, KiB, MiB, GiB, KB, MB and GB, case-sensitive"##,
    ),
    (
        "bad rate",
        r#"
[limits.per_ip]
rate = "100/min"
"#,
        r##"test.toml:3:8: invalid rate "100/min": expected COUNT/UNIT with UNIT s, m or h, like "100/m""##,
    ),
    (
        "undefined upstream",
        r#"
[server]
http = ["0.0.0.0:80"]
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[upstreams.frontend]
servers = ["127.0.0.1:3000"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "bakend"
"#,
        r##"test.toml:12:14: upstream "bakend" is not defined; defined upstreams: backend, frontend"##,
    ),
    (
        "undefined limit zone",
        r#"
[limits.per_ip]
rate = "10r/s"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
limit = "perip"
  [[sites.routes]]
  path = "/"
  upstream = "backend"
"#,
        r##"test.toml:8:9: limit zone "perip" is not defined; defined limit zones: per_ip"##,
    ),
    (
        "duplicate host name",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "backend"

[[sites]]
names = ["www.example.com", "Example.COM."]
  [[sites.routes]]
  path = "/"
  upstream = "backend"
"#,
        r##"test.toml:12:29: host name "Example.COM." is already served by the site at line 5"##,
    ),
    (
        "overlapping listeners",
        r#"
[server]
http = ["127.0.0.1:80", "[::1]:80", "0.0.0.0:80"]
"#,
        r##"test.toml:3:37: listener 0.0.0.0:80 overlaps 127.0.0.1:80 (line 3): two listeners on one port must not cover the same address"##,
    ),
    (
        "admin overlaps",
        r#"
[server]
http = ["0.0.0.0:9145"]
"#,
        r##"test.toml:3:9: listener 0.0.0.0:9145 overlaps the default admin listener 127.0.0.1:9145: two listeners on one port must not cover the same address; set [server] admin to another address or false"##,
    ),
    (
        "two actions",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/old"
  upstream = "backend"
  redirect = { to = "/new" }
"#,
        r##"test.toml:9:3: route "/old" has both upstream and redirect: expected exactly one of upstream, redirect, respond or static"##,
    ),
    (
        "no action",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
"#,
        r##"test.toml:5:10: route "/" has no action: expected one of upstream, redirect, respond or static"##,
    ),
    (
        "path without slash",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "api/"
  respond = { body = "hi" }
"#,
        r##"test.toml:5:10: route path "api/" must start with "/", like "/api/""##,
    ),
    (
        "bad redirect status",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  redirect = { to = "https://example.com$request_uri", status = 200 }
"#,
        r##"test.toml:6:65: invalid redirect status 200: expected 301, 302, 303, 307 or 308"##,
    ),
    (
        "invalid CIDR",
        r#"
[client_ip]
trusted_proxies = ["10.0.0.0/8", "10.0.0.0/33"]
"#,
        r##"test.toml:3:34: invalid CIDR "10.0.0.0/33": expected an address range like "10.0.0.0/8" or "fd00::/8", or an IP like "127.0.0.1""##,
    ),
    (
        "wildcard with http-01",
        r#"
[server]
https = ["0.0.0.0:443"]
[[sites]]
names = ["*.example.com"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:5:10: wildcard certificates need DNS-01: "*.example.com" has tls = "acme" but the [acme] challenge is "http-01"; expected challenge = "dns-01" with a dns_hook, or tls = { cert, key }"##,
    ),
    (
        "syntax error",
        r#"
[server
http = ["0.0.0.0:80"]
"#,
        r##"test.toml:2:8: invalid table header: expected `.`, `]`"##,
    ),
    (
        "wrong type",
        r#"
[server]
threads = "2"
"#,
        r##"test.toml:3:11: invalid type: string "2", expected an integer"##,
    ),
    (
        "hash_on without hash",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
hash_on = "header:X-User"
"#,
        r##"test.toml:4:1: hash_on is set but balance is "round_robin": expected balance = "hash" with hash_on"##,
    ),
    (
        "empty servers",
        r#"
[upstreams.backend]
servers = []
"#,
        r##"test.toml:3:11: upstream "backend" has no servers: expected at least one, like servers = ["127.0.0.1:8080"]"##,
    ),
    (
        "missing key",
        r#"
[[sites]]
tls = "internal"
"#,
        r##"test.toml:2:1: missing key `names`"##,
    ),
    (
        "tls without https listener",
        r#"
[[sites]]
names = ["localhost"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:4:1: site has tls but [server] https has no listener: expected an address like "0.0.0.0:443" in https, or no tls on this site"##,
    ),
    (
        "weight zero",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080", { addr = "backend:8080", weight = 0 }]
"#,
        r##"test.toml:3:64: invalid weight 0: expected an integer from 1 to 1000"##,
    ),
    (
        "bad server address",
        r#"
[upstreams.backend]
servers = ["backend"]
"#,
        r##"test.toml:3:12: invalid server address "backend": expected IP:PORT or HOST:PORT, like "127.0.0.1:8080" or "backend:8080""##,
    ),
    (
        "rise zero",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
health = { path = "/health", rise = 0 }
"#,
        r##"test.toml:4:37: invalid rise 0: expected an integer from 1 to 1000"##,
    ),
    (
        "undefined header set",
        r#"
[headers.security]
"X-Frame-Options" = "DENY"
[[sites]]
names = ["example.com"]
headers = ["security", "cors"]
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:6:24: header set "cors" is not defined; defined header sets: security"##,
    ),
    (
        "undefined cache zone",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "backend"
  cache = { zone = "api" }
"#,
        r##"test.toml:9:20: cache zone "api" is not defined; no [cache.NAME] table is defined"##,
    ),
    (
        "duplicate route path",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/a"
  respond = { body = "1" }
  [[sites.routes]]
  path = "/a"
  respond = { body = "2" }
"#,
        r##"test.toml:8:10: duplicate route path "/a" in this site (first at line 5): expected each path once per site"##,
    ),
    (
        "bad header name",
        r#"
[headers.security]
"X Frame" = "DENY"
"#,
        r##"test.toml:3:1: invalid header name "X Frame": expected letters, digits and !#$%&'*+-.^_`|~ only, like "X-Frame-Options""##,
    ),
    (
        "unknown_host status",
        r#"
[server]
unknown_host = 400
"#,
        r##"test.toml:3:16: invalid unknown_host status 400: expected 421 or 404"##,
    ),
    (
        "limit status",
        r#"
[limits.per_ip]
rate = "1/s"
status = 500
"#,
        r##"test.toml:4:10: invalid limit status 500: expected 429 or 503"##,
    ),
    (
        "respond status",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  respond = { status = 700 }
"#,
        r##"test.toml:6:24: invalid respond status 700: expected an integer from 100 to 599"##,
    ),
    (
        "delay with nodelay",
        r#"
[limits.per_ip]
rate = "1/s"
burst = 10
nodelay = true
delay = 5
"#,
        r##"test.toml:6:1: delay and nodelay = true cannot be combined: expected one of them"##,
    ),
    (
        "dns-01 without hook",
        r#"
[acme]
challenge = "dns-01"
"#,
        r##"test.toml:3:13: challenge "dns-01" has no dns_hook: expected dns_hook = "/path/to/hook" in [acme], a command called as `HOOK present|cleanup NAME VALUE`"##,
    ),
    (
        "bad host name",
        r#"
[[sites]]
names = ["exa mple.com"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r##"test.toml:3:10: invalid host name "exa mple.com": expected a name like "example.com", a wildcard like "*.example.com", or an IP address"##,
    ),
    (
        "admin true",
        r#"
[server]
admin = true
"#,
        r##"test.toml:3:9: invalid admin true: expected an address like "127.0.0.1:9145", or false to turn it off"##,
    ),
    (
        "disk without disk_size",
        r#"
[cache.api]
memory = "64MiB"
disk = "/var/cache/vigie"
"#,
        r##"test.toml:4:1: disk has no disk_size: expected disk_size = "10GiB" or similar beside disk"##,
    ),
    (
        "bad cache request part",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", key = ["cookie:lang", "body:x"] }
"#,
        r##"test.toml:11:49: invalid request part "body:x": expected "header:NAME", "cookie:NAME" or "query:NAME", like "cookie:session""##,
    ),
    (
        "bad cache valid status",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", valid = { "1xx" = "1m" } }
"#,
        r##"test.toml:11:37: invalid status "1xx" in valid: expected a status code from 200 to 599, like "200", or "any""##,
    ),
    (
        "cache status header of the wrong type",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", status_header = 1 }
"#,
        r##"test.toml:11:43: invalid type: integer `1`, expected a header name or false"##,
    ),
    (
        "max_object above the zone",
        r#"
[cache.api]
memory = 1024
max_object = 2048
"#,
        r##"test.toml:4:14: max_object 2048 is larger than the zone (1024 bytes): expected at most the memory (and disk_size) bound"##,
    ),
    (
        "pass_headers names a header that is not hidden",
        r#"
[[sites]]
names = ["example.com"]
pass_headers = ["Server", "X-Foo"]
  [[sites.routes]]
  path = "/"
  respond = { body = "x" }
"#,
        r##"test.toml:4:27: invalid pass_headers entry "X-Foo": only hidden headers can be passed, expected "Server" or "X-Powered-By" (other upstream headers pass already)"##,
    ),
    (
        "short admin token",
        r#"
[server]
admin_token = "secret"
"#,
        r##"test.toml:3:15: invalid admin_token: expected at least 16 printable characters without spaces (`openssl rand -hex 24` makes one)"##,
    ),
    (
        "cache on a redirect",
        r#"
[cache.api]
memory = 1048576
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  redirect = { to = "/x" }
  cache = { zone = "api" }
"#,
        r##"test.toml:9:3: cache on route "/", which has no upstream: expected cache only beside upstream"##,
    ),
    (
        "bad default_name",
        r#"
[server]
https = ["0.0.0.0:443"]
[tls]
default_name = "other.com"
[[sites]]
names = ["example.com"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r##"test.toml:5:16: default_name "other.com" is not an exact name of a site with tls: expected one of example.com"##,
    ),
];

#[test]
fn bad_configs() {
    let mut failed = Vec::new();
    for (name, text, expected) in BAD {
        let got = errors(text);
        if got != [*expected] {
            failed.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
