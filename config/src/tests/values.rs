//! Values with structure: host names, server addresses, sizes, rates and durations.

use super::errors;
use crate::*;

#[test]
fn wildcard_with_dns01_is_accepted() {
    let c = parse(
        r#"
[server]
https = ["0.0.0.0:443"]
[acme]
challenge = "dns-01"
dns_hook = "/etc/vigie/dns-hook"
[tls]
default_name = "Example.com"
[[sites]]
names = ["*.example.com", "example.com"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.acme.unwrap().challenge, ChallengeKind::Dns01);
    assert_eq!(c.tls.default_name.as_deref(), Some("example.com"));
}

#[test]
fn host_patterns() {
    let c = parse(
        r#"
[[sites]]
names = ["Example.COM.", "*.Example.com", "127.0.0.1", "[::1]", "FD00::0:1", "localhost", "my_host.internal"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    use HostPattern::{Exact, Wildcard};
    assert_eq!(
        c.sites[0].names,
        [
            Exact("example.com".into()),
            Wildcard("example.com".into()),
            Exact("127.0.0.1".into()),
            Exact("[::1]".into()),
            Exact("[fd00::1]".into()),
            Exact("localhost".into()),
            Exact("my_host.internal".into()),
        ]
    );
    assert_eq!(host_ip(&c.sites[0].names[3]), Some("::1".parse().unwrap()));
    // Displayed as written in `names`, normalised.
    let shown: Vec<String> = c.sites[0].names.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "example.com",
            "*.example.com",
            "127.0.0.1",
            "[::1]",
            "[fd00::1]",
            "localhost",
            "my_host.internal"
        ]
    );
    for bad in [
        "*",
        "*.",
        "a..b",
        "-a.com",
        "a-.com",
        "999.1.1.1",
        "a.com:80",
        "*.*.a.com",
        "[1.2.3.4]",
        "é.fr",
        "",
    ] {
        let text = format!(
            "[[sites]]\nnames = [{bad:?}]\n[[sites.routes]]\npath = \"/\"\nrespond = {{}}\n"
        );
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(got[0].contains("invalid host name"), "{bad}: {got:?}");
    }
}

#[test]
fn server_addresses() {
    let c = parse(
        r#"
[upstreams.u]
servers = ["127.0.0.1:8081", "[::1]:8082", "Backend:8080", "api.internal:80", { addr = "10.0.0.1:9000", weight = 3 }, { addr = "web_1:3000" }]
balance = "hash"
hash_on = "header:X-User"
"#,
        "t",
    )
    .unwrap();
    let u = &c.upstreams["u"];
    let got: Vec<(ServerAddr, u32)> = u
        .servers
        .iter()
        .map(|s| (s.addr.clone(), s.weight))
        .collect();
    let name = |h: &str, port| ServerAddr::Name {
        host: h.into(),
        port,
    };
    assert_eq!(
        got,
        [
            (ServerAddr::Ip("127.0.0.1:8081".parse().unwrap()), 1),
            (ServerAddr::Ip("[::1]:8082".parse().unwrap()), 1),
            (name("backend", 8080), 1),
            (name("api.internal", 80), 1),
            (ServerAddr::Ip("10.0.0.1:9000".parse().unwrap()), 3),
            (name("web_1", 3000), 1),
        ]
    );
    assert_eq!(u.servers[2].addr.to_string(), "backend:8080");
    assert_eq!(
        u.balance,
        Balance::Hash(HashKey::Header(http::HeaderName::from_static("x-user")))
    );
    for bad in [
        "backend",
        "backend:0",
        "backend:99999",
        "::1:80",
        "ba d:80",
        ":80",
    ] {
        let text = format!("[upstreams.u]\nservers = [{bad:?}]\n");
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(got[0].contains("invalid server address"), "{bad}: {got:?}");
    }
}

#[test]
fn sizes_rates_durations() {
    use crate::validate::{parse_duration, parse_rate, parse_size};
    assert_eq!(parse_size("20MiB"), Ok(20 << 20));
    assert_eq!(parse_size("20 MiB"), Ok(20 << 20));
    assert_eq!(parse_size("1KB"), Ok(1000));
    assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
    assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("512B"), Ok(512));
    for bad in ["20M", "20mb", "1.5GiB", "MiB", "-1", "", "20 MiBs", "1TB"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_size("99999999999GiB"),
        Err(r#"invalid size "99999999999GiB": too large, expected at most 16 EiB"#.to_owned())
    );
    let r = parse_rate("10r/s").unwrap();
    assert_eq!((r.count, r.per), (10, std::time::Duration::from_secs(1)));
    let r = parse_rate("100/m").unwrap();
    assert_eq!((r.count, r.per), (100, std::time::Duration::from_secs(60)));
    let r = parse_rate("5/h").unwrap();
    assert_eq!((r.count, r.per), (5, std::time::Duration::from_secs(3600)));
    for bad in ["100/min", "100", "/s", "0/s", "x/s", "-1/s", "10r/d"] {
        assert!(parse_rate(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_duration("500ms"),
        Ok(std::time::Duration::from_millis(500))
    );
    assert_eq!(
        parse_duration("1h 30m"),
        Ok(std::time::Duration::from_secs(5400))
    );
    for bad in ["5", "", "soon", "5 sconds", "-1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    // Ambiguous or mis-cased units are refused with what to write.
    for (text, message) in [
        (
            "5M",
            r#"invalid duration "5M": ambiguous unit "M" (months); write "5m" for minutes, or days like "150d""#,
        ),
        (
            "1h 2M",
            r#"invalid duration "1h 2M": ambiguous unit "M" (months); write "2m" for minutes, or days like "60d""#,
        ),
        (
            "30S",
            r#"invalid duration "30S": unknown unit "S": duration units are lower-case; write "30s""#,
        ),
        (
            "1H30m",
            r#"invalid duration "1H30m": unknown unit "H": duration units are lower-case; write "1h""#,
        ),
    ] {
        assert_eq!(parse_duration(text), Err(message.to_owned()));
    }
    assert_eq!(
        parse_duration("2 months"),
        Ok(std::time::Duration::from_secs(2 * 2_630_016))
    );
    assert_eq!(
        parse_duration("5m"),
        Ok(std::time::Duration::from_secs(300))
    );
    for (text, message) in [
        (
            "5m",
            r#"invalid size "5m": ambiguous unit "m"; write "5MiB" (mebibytes, 1024² bytes) or "5MB" (megabytes, 1000² bytes); size units are B, KiB, MiB, GiB, KB, MB and GB, case-sensitive"#,
        ),
        (
            "64k",
            r#"invalid size "64k": ambiguous unit "k"; write "64KiB" (kibibytes, 1024 bytes) or "64KB" (kilobytes, 1000 bytes); size units are B, KiB, MiB, GiB, KB, MB and GB, case-sensitive"#,
        ),
        (
            "1 gib",
            r#"invalid size "1 gib": ambiguous unit "gib"; write "1GiB" (gibibytes, 1024³ bytes) or "1GB" (gigabytes, 1000³ bytes); size units are B, KiB, MiB, GiB, KB, MB and GB, case-sensitive"#,
        ),
        (
            "512b",
            r#"invalid size "512b": unknown unit "b"; write "512B" for bytes (size units are case-sensitive)"#,
        ),
        (
            "1TB",
            r#"invalid size "1TB": expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""#,
        ),
    ] {
        assert_eq!(parse_size(text), Err(message.to_owned()));
    }
    // A route cache with every key.
    let c = parse(
        r#"
[cache.c]
memory = "1MiB"
disk = "/tmp/c"
disk_size = "10MiB"
max_object = "64KiB"
lock_timeout = "2s"
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "c", valid = { "200" = "5m", "any" = "10s" }, key = ["header:Accept-Language", "cookie:lang"], bypass = ["query:nocache"], stale_while_revalidate = "30s", stale_if_error = "1h", store_set_cookie = true, store_authorized = true, status_header = false }
"#,
        "t",
    )
    .unwrap();
    let z = &c.caches["c"];
    assert_eq!((z.max_object, z.lock_timeout.as_secs()), (65536, 2));
    assert_eq!(z.disk, Some(("/tmp/c".into(), 10 << 20)));
    let rc = c.sites[0].routes[0].cache.as_ref().unwrap();
    assert_eq!(
        rc.valid,
        [
            (200, std::time::Duration::from_secs(300)),
            (0, std::time::Duration::from_secs(10))
        ]
    );
    assert_eq!(
        rc.key,
        [
            RequestPart::Header(http::HeaderName::from_static("accept-language")),
            RequestPart::Cookie("lang".into())
        ]
    );
    assert_eq!(rc.bypass, [RequestPart::Query("nocache".into())]);
    assert_eq!(rc.stale_if_error.as_secs(), 3600);
    assert!(rc.store_set_cookie && rc.store_authorized && rc.status_header.is_none());
    // Sizes may be bare TOML integers too.
    let c = parse("[cache.c]\nmemory = 4096\n", "t").unwrap();
    assert_eq!(c.caches["c"].memory, 4096);
    assert_eq!(
        errors("[cache.c]\nmemory = -1\n"),
        [
            r#"test.toml:2:10: invalid size -1: expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""#
        ]
    );
    assert_eq!(
        errors("[cache.c]\nmemory = true\n"),
        [
            r#"test.toml:2:10: invalid type: boolean `true`, expected a size string like "20MiB" or an integer of bytes"#
        ]
    );
}
