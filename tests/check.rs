//! `vigie check` (the `nginx -t` equivalent) through the real binary.

use crate::support::check;

const BASE: &str = r#"[server]
http = ["127.0.0.1:8080"]
admin = "127.0.0.1:9145"

[upstreams.backend]
servers = ["127.0.0.1:8081"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "backend"
"#;

/// Each mistake, the text that makes it, and the exact first line `vigie check` prints.
const MISTAKES: &[(&str, &str, &str)] = &[
    ("unknown key", "[server]\nhtp = [\"0.0.0.0:80\"]\n",
     "test.toml:2:1: unknown key `htp` (did you mean `http`?), expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`"),
    ("bad address", "[server]\nhttp = [\"0.0.0.0:99999\"]\n",
     "test.toml:2:9: invalid listen address \"0.0.0.0:99999\": expected IP:PORT, like \"0.0.0.0:443\" or \"[::]:443\""),
    ("bad duration", "[server]\nadmin = false\ngrace_period = \"5 sconds\"\n",
     "test.toml:3:16: invalid duration \"5 sconds\": expected a number and a unit, like \"30s\", \"5m\", \"1h\""),
    ("bad size", "[server]\nadmin = false\n[[sites]]\nnames = [\"a.test\"]\nmax_body = \"20M\"\n[[sites.routes]]\npath = \"/\"\nrespond = { body = \"x\" }\n",
     "test.toml:5:12: invalid size \"20M\": ambiguous unit \"M\"; write \"20MiB\" (mebibytes, 1024² bytes) or \"20MB\" (megabytes, 1000² bytes); size units are B, KiB, MiB, GiB, KB, MB and GB, case-sensitive"),
    ("bad rate", "[server]\nadmin = false\n[limits.ip]\nrate = \"100/min\"\n",
     "test.toml:4:8: invalid rate \"100/min\": expected COUNT/UNIT with UNIT s, m or h, like \"100/m\""),
    ("undefined upstream", "[server]\nadmin = false\n[upstreams.backend]\nservers = [\"127.0.0.1:1\"]\n[[sites]]\nnames = [\"a.test\"]\n[[sites.routes]]\npath = \"/\"\nupstream = \"bakend\"\n",
     "test.toml:9:12: upstream \"bakend\" is not defined; defined upstreams: backend"),
    ("duplicate host", "[server]\nadmin = false\n[[sites]]\nnames = [\"a.test\"]\n[[sites.routes]]\npath = \"/\"\nrespond = {}\n[[sites]]\nnames = [\"A.test\"]\n[[sites.routes]]\npath = \"/\"\nrespond = {}\n",
     "test.toml:9:10: host name \"A.test\" is already served by the site at line 3"),
    ("overlapping listeners", "[server]\nhttp = [\"0.0.0.0:8080\", \"127.0.0.1:8080\"]\nadmin = false\n",
     "test.toml:2:25: listener 127.0.0.1:8080 overlaps 0.0.0.0:8080 (line 2): two listeners on one port must not cover the same address"),
    ("two actions", "[server]\nadmin = false\n[[sites]]\nnames = [\"a.test\"]\n[[sites.routes]]\npath = \"/\"\nrespond = {}\nredirect = { to = \"/x\" }\n",
     "test.toml:7:1: route \"/\" has both redirect and respond: expected exactly one of upstream, redirect, respond or static"),
    ("path without slash", "[server]\nadmin = false\n[[sites]]\nnames = [\"a.test\"]\n[[sites.routes]]\npath = \"api/\"\nrespond = {}\n",
     "test.toml:6:8: route path \"api/\" must start with \"/\", like \"/api/\""),
    ("bad CIDR", "[server]\nadmin = false\n[client_ip]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
     "test.toml:4:20: invalid CIDR \"10.0.0.0/33\": expected an address range like \"10.0.0.0/8\" or \"fd00::/8\", or an IP like \"127.0.0.1\""),
    ("syntax error", "[server\nadmin = false\n",
     "test.toml:1:8: invalid table header: expected `.`, `]`"),
    ("wrong type", "[server]\nadmin = false\nthreads = \"2\"\n",
     "test.toml:3:11: invalid type: string \"2\", expected an integer"),
];

#[test]
fn reports_each_mistake_with_its_position_and_what_was_expected() {
    assert!(MISTAKES.len() >= 10);
    let mut failures = Vec::new();
    for (what, text, expected) in MISTAKES {
        let out = check(text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        if out.status.code() != Some(1) || first != *expected {
            failures.push(format!(
                "{what}: exit {:?}\n  expected: {expected}\n  got:      {first}",
                out.status.code()
            ));
        }
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing on stdout when invalid"
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn reports_every_error_at_once() {
    let text = BASE
        .replace("\"127.0.0.1:8081\"", "\"nonsense\"")
        .replace("path = \"/\"", "path = \"nope\"");
    let out = check(&text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("test.toml:6:12: invalid server address \"nonsense\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("test.toml:11:10: route path \"nope\" must start with \"/\""),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("vigie: the configuration test.toml is invalid\n"),
        "{stderr}"
    );
}

#[test]
fn a_valid_config_prints_one_summary_line() {
    let out = check(BASE);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("vigie: the configuration test.toml is valid: 1 site, 1 route"),
        "{stdout}"
    );
}

#[test]
fn the_reference_stack_checks_clean_with_every_feature_active() {
    {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/examples/stack.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let out = check(&text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{path}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("2 sites"), "{stdout}");
        // Every key of the reference deployment is acted on: nothing is left as a warning.
        assert!(!stderr.contains("warning:"), "{stderr}");
    }
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let out = std::process::Command::new(crate::support::vigie::bin())
        .args(["check", "-c", "/nonexistent/vigie.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("/nonexistent/vigie.toml: cannot read: No such file"),
        "{stderr}"
    );
}

#[test]
fn version() {
    let out = std::process::Command::new(crate::support::vigie::bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("vigie {}\n", env!("CARGO_PKG_VERSION"))
    );
}
