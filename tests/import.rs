//! `vigie import nginx` on the corpus (`tests/nginx_corpus/`): every file imports and passes
//! `vigie check`, and a differential run sends the same requests to real nginx (with the
//! original) and to vigie (with the import), both in front of the same real origins.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::nginx::Nginx;
use crate::support::origin::Origin;
use crate::support::vigie::{bin, Ports, Vigie};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nginx_corpus")
}

/// Corpus files whose import uses the keys of the other half of issue 17 (exact/regex
/// locations, try_files, access, basic_auth, rewrite, respond 444): skipped here, with the
/// reason printed, until both branches are merged.
const PENDING: &[(&str, &str)] = &[
    (
        "03-spa.conf",
        "try_files and rewrite (proxy_pass URI) need the nginx-features branch",
    ),
    (
        "04-api-gateway.conf",
        "exact/regex/no_regex routes need the nginx-features branch",
    ),
    (
        "05-basic-auth.conf",
        "basic_auth needs the nginx-features branch",
    ),
    (
        "06-allow-deny.conf",
        "access rules need the nginx-features branch",
    ),
    (
        "09-drop-444.conf",
        "respond = { status = 444 } needs the nginx-features branch",
    ),
    (
        "10-error-pages.conf",
        "exact routes need the nginx-features branch",
    ),
    ("13-rewrite.conf", "rewrite needs the nginx-features branch"),
];

/// Runs `vigie import nginx FILE -o OUT`: (exit code, report).
fn import(file: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(bin())
        .args(["import", "nginx"])
        .arg(file)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run vigie import");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Copies a corpus entry into `dir`, replacing the absolute paths that exist only on a server.
fn stage(entry: &Path, dir: &Path) -> PathBuf {
    let d = dir.display().to_string();
    std::fs::write(
        dir.join("options-ssl-nginx.conf"),
        "ssl_session_cache shared:le_nginx_SSL:10m;\n",
    )
    .unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["example.com".into()]).unwrap();
    std::fs::write(dir.join("example.com.crt"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.join("example.com.key"),
        cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let fix = |text: String| {
        text.replace(
            "/etc/letsencrypt/options-ssl-nginx.conf",
            &format!("{d}/options-ssl-nginx.conf"),
        )
        .replace("/etc/ssl/", &format!("{d}/"))
    };
    if entry.is_dir() {
        let target = dir.join(entry.file_name().unwrap());
        copy_dir(entry, &target, &fix);
        target.join("nginx.conf")
    } else {
        let target = dir.join(entry.file_name().unwrap());
        std::fs::write(&target, fix(std::fs::read_to_string(entry).unwrap())).unwrap();
        target
    }
}

fn copy_dir(from: &Path, to: &Path, fix: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t, fix);
        } else {
            std::fs::write(&t, fix(std::fs::read_to_string(e.path()).unwrap())).unwrap();
        }
    }
}

#[test]
fn every_corpus_file_imports_and_passes_check() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 15,
        "corpus has {} configurations",
        entries.len()
    );
    let mut checked = 0;
    for entry in entries {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = stage(&entry, dir.path());
        let out = dir.path().join("vigie.toml");
        let (code, report) = import(&file, &out);
        assert_eq!(code, 0, "{name}: import failed:\n{report}");
        let toml = std::fs::read_to_string(&out).unwrap();
        assert!(
            toml.contains("# from "),
            "{name}: no source comments:\n{toml}"
        );
        if let Some((_, why)) = PENDING.iter().find(|(n, _)| *n == name) {
            println!("SKIPPED vigie check of {name}: {why}");
            continue;
        }
        let toml = toml.replacen("[server]\n", "[server]\nadmin = false\n", 1);
        std::fs::write(&out, &toml).unwrap();
        let o = Command::new(bin())
            .arg("check")
            .arg("-c")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: the import does not pass vigie check:\n{}\n{toml}\nreport:\n{report}",
            String::from_utf8_lossy(&o.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} files checked");
}

#[test]
fn certbot_paths_become_acme_and_every_drop_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = stage(&corpus().join("02-certbot.conf"), dir.path());
    let out = dir.path().join("vigie.toml");
    let (code, report) = import(&file, &out);
    assert_eq!(code, 0, "{report}");
    let toml = std::fs::read_to_string(&out).unwrap();
    assert!(toml.contains("tls = \"acme\""), "{toml}");
    assert!(toml.contains("https = [\"0.0.0.0:443\"]"), "{toml}");
    assert!(
        report.contains("02-certbot.conf:2: ssl_certificate — certbot certificate"),
        "{report}"
    );
    assert!(
        report.contains("options-ssl-nginx.conf:1: ssl_session_cache"),
        "{report}"
    );
    // The HTTP server block is certbot's redirect: vigie does it for tls sites.
    assert_eq!(toml.matches("[[sites]]").count(), 1, "{toml}");
}

#[test]
fn a_broken_file_is_a_positioned_error_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nginx.conf");
    std::fs::write(&file, "http {\n  server {\n    listen 80\n  }\n").unwrap();
    let (code, report) = import(&file, &dir.path().join("out.toml"));
    assert_eq!(code, 2);
    assert!(
        report.contains("nginx.conf:4:3: unexpected \"}\": directive \"listen\" has no \";\""),
        "{report}"
    );
}

/// One answer, read from a raw socket (the request is sent byte for byte).
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

fn send(to: &str, from_ip: &str, raw: &str) -> Answer {
    let addr: SocketAddr = to.parse().unwrap();
    let sock = socket2_bind(from_ip, addr);
    let mut s = sock;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with("location:")
            .then(|| l[9..].trim().to_string())
    });
    Answer {
        status,
        location,
        body: body.to_string(),
    }
}

/// A TCP connection from `from_ip` (a 127.x address) to `to`.
fn socket2_bind(from_ip: &str, to: SocketAddr) -> TcpStream {
    let std = tokio::net::TcpSocket::new_v4().unwrap();
    std.bind(format!("{from_ip}:0").parse().unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(std.connect(to)).unwrap();
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// The request set, for host names `hosts`.
fn requests(hosts: &[&str]) -> Vec<(String, String)> {
    let paths = [
        "/",
        "/api/x",
        "/api/cv",
        "/api/cv?lang=fr",
        "/api/cvs",
        "/a/../api/cv",
        "//double",
        "/%2e%2e/x",
        "/upload",
        "/up",
    ];
    let mut out = Vec::new();
    for h in hosts {
        for p in paths {
            out.push((
                format!("GET {p} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"),
                format!("GET {h}{p}"),
            ));
        }
        out.push((
            format!("POST /api/x HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
            format!("POST {h}/api/x"),
        ));
        out.push((
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                h.to_uppercase()
            ),
            format!("GET {} (upper case)", h.to_uppercase()),
        ));
    }
    out
}

/// The `http { … }` block's inside, for [`Nginx::start`] (which adds temp paths and logs).
fn http_inside(text: &str) -> String {
    let start = text.find("http {").expect("an http block") + "http {".len();
    let end = text.rfind('}').unwrap();
    text[start..end].to_string()
}

/// Runs one corpus file through nginx and through vigie's import, with origins on
/// 127.0.0.1:3001..3003 and :3000 replaced by real ones; returns both answers per request.
async fn differential(name: &str, hosts: &[&str]) -> Vec<(String, Answer, Answer)> {
    let text = std::fs::read_to_string(corpus().join(name)).unwrap();
    let mut text = text.replace("/var/cache/nginx/", "{dir}/cache/");
    let mut origins = Vec::new();
    for (i, port) in ["3000", "3001", "3002", "3003"].iter().enumerate() {
        let o = Origin::start(&format!("origin{i}")).await;
        text = text.replace(&format!("127.0.0.1:{port}"), &o.addr.to_string());
        origins.push(o);
    }
    let nginx_text = text.replace("listen 80;", "listen {http};");
    let nginx = Nginx::start(&http_inside(&nginx_text)).await;
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(
        &file,
        text.replace("listen 80;", &format!("listen {};", ports.http))
            .replace("{dir}", "/nonexistent"),
    )
    .unwrap();
    let out = dir.path().join("vigie.toml");
    let (code, report) = import(&file, &out);
    assert_eq!(code, 0, "{report}");
    let toml = std::fs::read_to_string(&out).unwrap().replacen(
        "[server]\n",
        "[server]\nadmin = \"{admin}\"\nstate_dir = \"{state}\"\n",
        1,
    );
    let vigie = Vigie::start_on(&toml, ports, &[]).await;
    let (n_addr, v_addr) = (nginx.http.clone(), vigie.http.clone());
    let reqs = requests(hosts);
    tokio::task::spawn_blocking(move || {
        let mut res = Vec::new();
        for (i, (raw, label)) in reqs.iter().enumerate() {
            let from = format!("127.0.0.{}", 2 + i % 3);
            let n = send(&n_addr, &from, raw);
            let v = send(&v_addr, &from, raw);
            res.push((label.clone(), n, v));
        }
        res
    })
    .await
    .unwrap()
}

/// The origin's name and the path it received, with the servers of one balanced group
/// (`origin1`..`origin3` in the runbook stack) under one name: nginx and vigie pick servers
/// in their own order.
fn seen(body: &str, group: &[&str]) -> String {
    let line = body.lines().next().unwrap_or("").to_string();
    match line.split_once(' ') {
        Some((o, path)) if group.contains(&o) => format!("group {path}"),
        _ => line,
    }
}

/// A documented difference: (label, nginx status, vigie status, (nginx Location, vigie
/// Location) when they differ).
type Expected<'a> = (&'a str, u16, u16, Option<(&'a str, &'a str)>);

/// Compares status, Location and the origin's answer (its name and the path it received);
/// `expected` lists the documented differences, asserted exactly.
fn compare(results: &[(String, Answer, Answer)], expected: &[Expected<'_>], group: &[&str]) {
    let mut bad = Vec::new();
    for (label, n, v) in results {
        match expected.iter().find(|(l, _, _, _)| l == label) {
            Some((_, ns, vs, loc)) => {
                let locs = loc.map(|(a, b)| (Some(a.to_string()), Some(b.to_string())));
                let same_loc = locs.is_none_or(|(a, b)| n.location == a && v.location == b);
                if n.status != *ns || v.status != *vs || !same_loc {
                    bad.push(format!(
                        "{label}: documented difference changed: nginx {} vigie {}",
                        n.status, v.status
                    ));
                }
            }
            None => {
                let same_origin = n.status != 200 || seen(&n.body, group) == seen(&v.body, group);
                if n.status != v.status || n.location != v.location || !same_origin {
                    bad.push(format!(
                        "{label}:\n  nginx {} {:?} {:?}\n  vigie {} {:?} {:?}",
                        n.status,
                        n.location,
                        n.body.lines().next(),
                        v.status,
                        v.location,
                        v.body.lines().next()
                    ));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} differences:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn differential_runbook_stack() {
    if !Nginx::available() {
        println!("SKIPPED: nginx is not installed");
        return;
    }
    let results = differential(
        "01-runbook-stack.conf",
        &["example.com", "grafana.example.com", "unknown.example"],
    )
    .await;
    compare(&results, UNKNOWN_HOST, &["origin1", "origin2", "origin3"]);
}

/// nginx sends a Host no server names to the first server (here: the app); vigie answers
/// 421 (`[server] unknown_host`), listed in the import report.
const UNKNOWN_HOST: &[Expected<'_>] = &[
    ("GET unknown.example/", 200, 421, None),
    ("GET unknown.example/api/x", 200, 421, None),
    ("GET unknown.example/api/cv", 200, 421, None),
    ("GET unknown.example/api/cv?lang=fr", 200, 421, None),
    ("GET unknown.example/api/cvs", 200, 421, None),
    ("GET unknown.example/a/../api/cv", 200, 421, None),
    ("GET unknown.example//double", 200, 421, None),
    ("GET unknown.example/%2e%2e/x", 400, 421, None),
    ("GET unknown.example/upload", 200, 421, None),
    ("GET unknown.example/up", 200, 421, None),
    ("POST unknown.example/api/x", 200, 421, None),
    ("GET UNKNOWN.EXAMPLE (upper case)", 200, 421, None),
];

#[tokio::test(flavor = "multi_thread")]
async fn differential_simple_sites() {
    if !Nginx::available() {
        println!("SKIPPED: nginx is not installed");
        return;
    }
    for (name, hosts) in [
        (
            "07-www-redirect.conf",
            &["example.com", "www.example.com"][..],
        ),
        ("11-gzip.conf", &["example.com"][..]),
        // 15-timeouts-hash.conf is not compared here: with `ip_hash` both keep a client on one
        // server, but nginx picks it by the address's first three octets and vigie by its own
        // consistent hash of the whole address over the servers (whose test ports vary), so
        // *which* server differs by design. Its import is checked by
        // `every_corpus_file_imports_and_passes_check`; stickiness by `balancing::`.
        (
            "16-wildcard.conf",
            &["a.example.org", "example.net", "x.example.net"][..],
        ),
    ] {
        let results = differential(name, hosts).await;
        compare(&results, WWW_LOCATIONS, &[]);
    }
}

/// A `return 301 http://example.com$request_uri` sends the raw request target; vigie's
/// `redirect_www` builds Location from the normalised path (a raw `//x` would name another
/// host to a browser), listed in the import report.
const WWW_LOCATIONS: &[Expected<'_>] = &[
    (
        "GET www.example.com/a/../api/cv",
        301,
        301,
        Some((
            "http://example.com/a/../api/cv",
            "http://example.com/api/cv",
        )),
    ),
    (
        "GET www.example.com//double",
        301,
        301,
        Some(("http://example.com//double", "http://example.com/double")),
    ),
];
