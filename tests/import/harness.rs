//! The differential harness: one corpus file run by real nginx (the original) and by vigie
//! (its import), both in front of the same real origins, the same raw requests sent to both
//! from several 127.x source addresses, and the answers compared.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::{copy_dir, corpus, import};
use crate::support::free_port;
use crate::support::nginx::Nginx;
use crate::support::origin::Origin;
use crate::support::tls::TestCa;
use crate::support::vigie::{Ports, Vigie};

/// One answer, read from a raw socket (the request is sent byte for byte). A connection
/// closed without an answer (nginx's `444`) has status 0.
#[derive(Debug, PartialEq)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) location: Option<String>,
    /// Response headers, names in lower case.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request of the set: its label in reports, its bytes, the source address.
pub(super) struct Req {
    pub(super) label: String,
    pub(super) raw: String,
    pub(super) from: String,
}

impl Req {
    /// A GET of `path` on `host` with extra header lines (each ending in `\r\n`), from `from`.
    pub(super) fn get(host: &str, path: &str, headers: &str, from: &str, label: &str) -> Req {
        Req {
            label: label.to_string(),
            raw: format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
            ),
            from: from.to_string(),
        }
    }
}

/// One corpus file's differential run.
pub(super) struct Case<'a> {
    /// The corpus file.
    pub(super) name: &'a str,
    /// Host names to send the common request set to (empty: only `extra`).
    pub(super) hosts: &'a [&'a str],
    /// Requests of this case.
    pub(super) extra: Vec<Req>,
    /// Files the configuration reads (absolute server paths, contents), staged in a
    /// temporary root; every path of `roots` in the configuration is moved under it.
    pub(super) files: &'a [(&'a str, &'a str)],
    pub(super) roots: &'a [&'a str],
    /// Origin ports (`3000`..`3003`) left without an origin, for error answers.
    pub(super) dead: &'a [&'a str],
    /// Requests over TLS (label, host, path) to `listen 443` servers, whose certificates
    /// `ca` issued.
    pub(super) tls: Vec<(String, String, String)>,
    pub(super) ca: Option<&'a TestCa>,
    /// Appended to vigie's imported configuration (what a user adds, like `[acme]`).
    pub(super) vigie_toml: &'a str,
}

impl<'a> Case<'a> {
    /// The case for `name` with the common request set on `hosts` and nothing else.
    pub(super) fn new(name: &'a str, hosts: &'a [&'a str]) -> Case<'a> {
        Case {
            name,
            hosts,
            extra: Vec::new(),
            files: &[],
            roots: &[],
            dead: &[],
            tls: Vec::new(),
            ca: None,
            vigie_toml: "",
        }
    }
}

pub(super) fn send(to: &str, from_ip: &str, raw: &str) -> Answer {
    let addr: SocketAddr = to.parse().unwrap();
    let mut s = socket2_bind(from_ip, addr);
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
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // A relative Location is resolved against the request's host: a client reads
    // `/new/a` and `http://example.com/new/a` alike (RFC 9110, 10.2.2).
    let host = raw
        .lines()
        .find_map(|l| l.strip_prefix("Host: "))
        .unwrap_or("")
        .to_ascii_lowercase();
    let location =
        headers
            .iter()
            .find(|(n, _)| n == "location")
            .map(|(_, v)| match v.strip_prefix('/') {
                Some(rest) if !rest.starts_with('/') => format!("http://{host}{v}"),
                _ => v.clone(),
            });
    Answer {
        status,
        location,
        headers,
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

/// The common request set, for host names `hosts`, from 127.0.0.2..4 in turn.
pub(super) fn requests(hosts: &[&str]) -> Vec<Req> {
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
            out.push(Req::get(h, p, "", "", &format!("GET {h}{p}")));
        }
        out.push(Req {
            label: format!("POST {h}/api/x"),
            raw: format!("POST /api/x HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
            from: String::new(),
        });
        let upper = h.to_uppercase();
        out.push(Req::get(
            &upper,
            "/",
            "",
            "",
            &format!("GET {upper} (upper case)"),
        ));
    }
    for (i, r) in out.iter_mut().enumerate() {
        r.from = format!("127.0.0.{}", 2 + i % 3);
    }
    out
}

/// The `http { … }` block's inside, for [`Nginx::start`] (which adds temp paths and logs).
fn http_inside(text: &str) -> String {
    let start = text.find("http {").expect("an http block") + "http {".len();
    let end = text.rfind('}').unwrap();
    text[start..end].to_string()
}

/// Writes `files` under `root` (world-readable: nginx's workers run as `nobody`).
fn stage_files(root: &Path, files: &[(&str, &str)]) {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, contents) in files {
        let target = root.join(path.trim_start_matches('/'));
        let mut dir = target.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        while dir != root {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            dir = dir.parent().unwrap().to_path_buf();
        }
        std::fs::write(&target, contents).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Runs one corpus entry through nginx and through vigie's import, with origins on
/// 127.0.0.1:3000..3003 replaced by real ones (`origin0`..`origin3`); returns both answers
/// per request. A directory entry (`nginx.conf` with includes) is copied twice, once per
/// server, each with its own listener.
pub(super) async fn differential(case: Case<'_>) -> Vec<(String, Answer, Answer)> {
    let files = tempfile::tempdir().unwrap();
    stage_files(files.path(), case.files);
    let n_addr = format!("127.0.0.1:{}", free_port());
    let ports = Ports::new();
    let mut swaps: Vec<(String, String)> = Vec::new();
    for root in case.roots {
        swaps.push((
            root.to_string(),
            format!("{}{root}", files.path().display()),
        ));
    }
    let mut origins = Vec::new();
    for (i, port) in ["3000", "3001", "3002", "3003"].iter().enumerate() {
        let to = if case.dead.contains(port) {
            format!("127.0.0.1:{}", free_port())
        } else {
            let o = Origin::start(&format!("origin{i}")).await;
            let addr = o.addr.to_string();
            origins.push(o);
            addr
        };
        swaps.push((format!("127.0.0.1:{port}"), to));
    }
    // nginx's cache goes in its own directory; vigie's import is started with a cache
    // directory it cannot create when the configuration has one.
    let n_https = format!("127.0.0.1:{}", free_port());
    let fix = |text: String, listen: &str| {
        let https = if listen == n_addr {
            n_https.as_str()
        } else {
            ports.https.as_str()
        };
        let cache = if listen == n_addr {
            "{dir}/cache/"
        } else {
            "/nonexistent/cache/"
        };
        let mut text = text
            .replace("listen [::]:80;\n", "")
            .replace("/var/cache/nginx/", cache);
        for (from, to) in &swaps {
            text = text.replace(from.as_str(), to);
        }
        text.replace("listen 80", &format!("listen {listen}"))
            .replace("listen 443", &format!("listen {https}"))
    };
    let entry = corpus().join(case.name);
    let dir = tempfile::tempdir().unwrap();
    let (n_main, v_main) = if entry.is_dir() {
        let (n, v) = (dir.path().join("nginx"), dir.path().join("vigie"));
        copy_dir(&entry, &n, &|t| fix(t, &n_addr));
        copy_dir(&entry, &v, &|t| fix(t, &ports.http));
        let main = std::fs::read_to_string(n.join("nginx.conf")).unwrap();
        let main = main
            .lines()
            .map(|l| match l.trim().strip_prefix("include ") {
                Some(p) if !p.starts_with('/') => format!("include {}/{p}", n.display()),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        (main, v.join("nginx.conf"))
    } else {
        let text = std::fs::read_to_string(&entry).unwrap();
        let v = dir.path().join(case.name);
        std::fs::write(&v, fix(text.clone(), &ports.http)).unwrap();
        (fix(text, &n_addr), v)
    };
    // Every packaged nginx.conf includes the MIME types.
    let n_http = format!("include /etc/nginx/mime.types;\n{}", http_inside(&n_main));
    let nginx = Nginx::start_at(&n_http, n_addr.clone()).await;
    let out = dir.path().join("vigie.toml");
    let (code, report) = import(&v_main, &out);
    assert_eq!(code, 0, "{report}");
    let toml = std::fs::read_to_string(&out).unwrap().replacen(
        "[server]\n",
        "[server]\nadmin = \"{admin}\"\nstate_dir = \"{state}\"\n",
        1,
    ) + case.vigie_toml;
    let vigie = Vigie::start_on(&toml, ports, &[]).await;
    let v_addr = vigie.http.clone();
    let (n_addr2, v_addr2) = (n_addr.clone(), v_addr.clone());
    let v_https = vigie.https.clone();
    let mut reqs = requests(case.hosts);
    reqs.extend(case.extra);
    let res = tokio::task::spawn_blocking(move || {
        let mut res = Vec::new();
        for r in &reqs {
            let n = send(&n_addr, &r.from, &r.raw);
            let v = send(&v_addr, &r.from, &r.raw);
            res.push((r.label.clone(), n, v));
        }
        res
    })
    .await
    .unwrap();
    let mut res = res;
    for (label, host, path) in &case.tls {
        let n = tls_get(&n_https, case.ca, host, path).await;
        let v = tls_get(&v_https, case.ca, host, path).await;
        res.push((label.clone(), n, v));
    }
    // Both name the port in an absolute Location only when it is not the scheme's default:
    // the test listeners' ports are left out, as 80 and 443 would be.
    let ports = |a: &str, b: &str| {
        [
            format!(":{}", Ports::port(a)),
            format!(":{}", Ports::port(b)),
        ]
    };
    let (n_ports, v_ports) = (ports(&n_addr2, &n_https), ports(&v_addr2, &v_https));
    for (_, n, v) in &mut res {
        for (a, list) in [(n, &n_ports), (v, &v_ports)] {
            if let Some(l) = &mut a.location {
                for p in list.iter() {
                    *l = l.replace(&format!("{p}/"), "/");
                }
            }
        }
    }
    drop((nginx, vigie, origins));
    res
}

/// A GET over TLS to `addr` with SNI and Host `host`, trusting `ca`, without following
/// redirects.
async fn tls_get(addr: &str, ca: Option<&TestCa>, host: &str, path: &str) -> Answer {
    let port = Ports::port(addr);
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, addr.parse().unwrap());
    if let Some(ca) = ca {
        client = client.add_root_certificate(ca.reqwest_root());
    }
    let r = client
        .build()
        .unwrap()
        .get(format!("https://{host}:{port}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET https://{host}{path} on {addr}: {e}"));
    let status = r.status().as_u16();
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Answer {
        status,
        location,
        headers,
        body: r.text().await.unwrap_or_default(),
    }
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
pub(super) type Expected<'a> = (&'a str, u16, u16, Option<(&'a str, &'a str)>);

/// Compares status, Location, the headers named in `headers` and, on a 200, the first line
/// of the body (the origin's name and the path it received, or a static file's first line);
/// `expected` lists the documented differences, asserted exactly.
pub(super) fn compare(
    results: &[(String, Answer, Answer)],
    expected: &[Expected<'_>],
    group: &[&str],
    headers: &[&str],
) {
    let mut bad = Vec::new();
    for (label, n, v) in results {
        match expected.iter().find(|(l, _, _, _)| l == label) {
            Some((_, ns, vs, loc)) => {
                let locs = loc.map(|(a, b)| (Some(a.to_string()), Some(b.to_string())));
                let same_loc = locs.is_none_or(|(a, b)| n.location == a && v.location == b);
                if n.status != *ns || v.status != *vs || !same_loc {
                    bad.push(format!(
                        "{label}: documented difference changed: nginx {} {:?} vigie {} {:?}",
                        n.status, n.location, v.status, v.location
                    ));
                }
            }
            None => {
                let same_origin = n.status != 200 || seen(&n.body, group) == seen(&v.body, group);
                // A content type is compared without its parameters (vigie adds the charset).
                let value = |a: &'_ Answer, h: &str| {
                    a.header(h)
                        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
                };
                // Headers are compared on answers from a site (the bodies of errors and
                // redirects are each server's own).
                let same_headers =
                    n.status != 200 || headers.iter().all(|h| value(n, h) == value(v, h));
                if n.status != v.status || n.location != v.location || !same_origin || !same_headers
                {
                    let shown = |a: &Answer| {
                        let hs: Vec<String> = headers
                            .iter()
                            .map(|h| format!("{h}={:?}", a.header(h)))
                            .collect();
                        format!(
                            "{} {:?} {:?} {}",
                            a.status,
                            a.location,
                            a.body.lines().next(),
                            hs.join(" ")
                        )
                    };
                    bad.push(format!(
                        "{label}:\n  nginx {}\n  vigie {}",
                        shown(n),
                        shown(v)
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
