//! Faults under load, vigie and nginx side by side: a bounded load (8 keep-alive clients)
//! through each proxy to three origin processes (Python, HTTP/1.1 keep-alive) while one
//! origin is SIGKILLed or SIGSTOPped, all are killed, the configuration is reloaded ten times
//! with one invalid file in the middle; for vigie also a certificate renewal (new files and a
//! reload) under TLS load, and its disk cache directory filled and then made read-only.
//!
//! Documented failures, the only ones allowed: requests in flight on a killed origin (502, at
//! most one per client); requests sent to a stopped origin before the health check takes it
//! out (504 after `read_timeout`, within 3 s of the stop); while every origin is down,
//! 502/503 answered quickly. Everything else: no failed request, no crash.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::attack::Table;
use crate::support::nginx::{self, Nginx};
use crate::support::{free_port, metric_value, wait_until, Vigie};

/// Cases vigie fails today because of a defect another change fixes.
const EXPECTED_TO_CHANGE: &[&str] = &[];

pub(super) const HOST: &str = "adv.test";
const CLIENTS: usize = 8;

const ORIGIN_PY: &str = r#"
import sys, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        n = 16384 if self.path.startswith("/big") else 0
        b = (sys.argv[2] + " " + self.path + "\n" + "x" * n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.send_header("Cache-Control", "max-age=300")
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

/// An origin in its own process, so that it can be killed and stopped.
struct ProcOrigin {
    port: u16,
    name: String,
    child: Option<Child>,
}

impl ProcOrigin {
    async fn start(name: &str) -> ProcOrigin {
        let mut o = ProcOrigin {
            port: free_port(),
            name: name.into(),
            child: None,
        };
        o.restart().await;
        o
    }

    async fn restart(&mut self) {
        self.child = Some(
            Command::new("python3")
                .args(["-c", ORIGIN_PY, &self.port.to_string(), &self.name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 origin"),
        );
        let addr = self.addr();
        wait_until(Duration::from_secs(10), "origin up", || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn signal(&mut self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
        if sig == "KILL" {
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
        }
    }
}

impl Drop for ProcOrigin {
    fn drop(&mut self) {
        self.signal("CONT");
        self.signal("KILL");
    }
}

/// One request's outcome: when it was sent (since the load started), its status (0: no
/// answer) and how long it took.
type Sample = (Duration, u16, Duration);

/// `CLIENTS` keep-alive clients requesting `base` + `path(i)` for `d`.
pub(super) async fn load(
    client: reqwest::Client,
    base: String,
    d: Duration,
    path: fn(usize) -> String,
) -> Vec<Sample> {
    let start = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base, counter) = (client.clone(), base.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while start.elapsed() < d {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let at = start.elapsed();
                let t = Instant::now();
                let mut req = client.get(format!("{base}{}", path(i)));
                // Over TLS the URL names the site (h2 would refuse a Host beside :authority).
                if base.starts_with("http://") {
                    req = req.header("host", HOST);
                }
                let status = match req.send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        if r.bytes().await.is_ok() {
                            s
                        } else {
                            0
                        }
                    }
                    Err(_) => 0,
                };
                out.push((at, status, t.elapsed()));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

pub(super) fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn root(_: usize) -> String {
    "/".into()
}

pub(super) fn failures(s: &[Sample]) -> Vec<&Sample> {
    s.iter().filter(|(_, st, _)| *st != 200).collect()
}

/// `N failed of M (502 ×3, 504 ×2)`.
pub(super) fn describe(s: &[Sample]) -> String {
    let f = failures(s);
    let mut by: std::collections::BTreeMap<u16, usize> = Default::default();
    for (_, st, _) in &f {
        *by.entry(*st).or_default() += 1;
    }
    let kinds: Vec<String> = by
        .iter()
        .map(|(st, n)| {
            format!(
                "{} ×{n}",
                if *st == 0 {
                    "no answer".into()
                } else {
                    st.to_string()
                }
            )
        })
        .collect();
    if kinds.is_empty() {
        format!("0 failed of {}", s.len())
    } else {
        format!("{} failed of {} ({})", f.len(), s.len(), kinds.join(", "))
    }
}

/// A proxy under test: vigie or nginx, through one interface.
enum Proxy {
    Vigie(Vigie),
    Nginx(Nginx),
}

impl Proxy {
    fn base(&self) -> String {
        match self {
            Proxy::Vigie(v) => format!("http://{}", v.http),
            Proxy::Nginx(n) => format!("http://{}", n.h1),
        }
    }

    fn alive(&mut self) -> bool {
        match self {
            Proxy::Vigie(v) => {
                std::fs::metadata(format!("/proc/{}/status", v.pid())).is_ok()
                    && !std::fs::read_to_string(format!("/proc/{}/status", v.pid()))
                        .unwrap_or_default()
                        .contains("zombie")
            }
            Proxy::Nginx(n) => n.running(),
        }
    }

    /// Rewrite the configuration (`valid` or broken) and reload.
    fn reload(&self, origins: &[String], round: usize, valid: bool) {
        match self {
            Proxy::Vigie(v) => {
                let mut c = vigie_config(origins, &format!("round-{round}"));
                if !valid {
                    c.push_str("\n[[sites]]\nnames = [\n");
                }
                v.write_config(&c);
                v.signal("HUP");
            }
            Proxy::Nginx(n) => {
                let mut c = nginx_config(origins, &format!("round-{round}"));
                if !valid {
                    c.push_str("server { listen");
                }
                let full = std::fs::read_to_string(n.config()).unwrap();
                // Replace the http body: everything after the preamble's proxy settings.
                let head = full
                    .split_once("proxy_set_header Connection \"\";\n")
                    .map(|(h, _)| h.to_string())
                    .unwrap();
                let body = c
                    .replace("{h1}", &n.h1)
                    .replace("{h2c}", &n.h2c)
                    .replace("{dir}", &n.dir.path().display().to_string());
                std::fs::write(
                    n.config(),
                    format!("{head}proxy_set_header Connection \"\";\n{body}\n}}\n"),
                )
                .unwrap();
                n.signal("HUP");
            }
        }
    }
}

fn vigie_config(origins: &[String], tag: &str) -> String {
    let servers: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
threads = 2

[log]
access = "off"

[headers.tag]
"X-Config" = "{tag}"

[upstreams.app]
servers = [{}]
connect_timeout = "500ms"
read_timeout = "1s"
health = {{ path = "/health", interval = "500ms", timeout = "300ms", rise = 1, fall = 1 }}

[[sites]]
names = ["{HOST}"]
headers = "tag"
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        servers.join(", ")
    )
}

fn nginx_config(origins: &[String], tag: &str) -> String {
    let servers: Vec<String> = origins.to_vec();
    format!(
        "{}server {{\n listen {{h1}};\n listen {{h2c}} http2;\n server_name {HOST};\n \
         add_header X-Config {tag};\n proxy_connect_timeout 500ms;\n proxy_read_timeout 1s;\n \
         location / {{ proxy_pass http://app; }}\n}}\n",
        nginx::upstream("app", &servers)
    )
}

/// The origin-fault cases against one proxy; (id, case, outcome, ok) rows.
async fn origin_faults(
    proxy: &mut Proxy,
    origins: &mut [ProcOrigin],
) -> Vec<(&'static str, &'static str, String, bool)> {
    let mut rows = Vec::new();
    let addrs: Vec<String> = origins.iter().map(ProcOrigin::addr).collect();
    let base = proxy.base();

    let s = load(plain_client(), base.clone(), Duration::from_secs(2), root).await;
    rows.push((
        "fault_baseline",
        "no fault (2 s)",
        describe(&s),
        failures(&s).is_empty(),
    ));

    // SIGKILL one origin a second into a 4 s load.
    let run = tokio::spawn(load(
        plain_client(),
        base.clone(),
        Duration::from_secs(4),
        root,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    origins[0].signal("KILL");
    let s = run.await.unwrap();
    let f = failures(&s);
    let ok = f.len() <= CLIENTS && f.iter().all(|(_, st, _)| *st == 502);
    rows.push((
        "fault_sigkill",
        "one origin SIGKILLed under load (4 s)",
        describe(&s),
        ok,
    ));
    origins[0].restart().await;

    // SIGSTOP one origin (it still accepts connections, answers nothing) for 4 s.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let run = tokio::spawn(load(
        plain_client(),
        base.clone(),
        Duration::from_secs(5),
        root,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    origins[1].signal("STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    origins[1].signal("CONT");
    let s = run.await.unwrap();
    let f = failures(&s);
    let late = f
        .iter()
        .filter(|(at, _, _)| *at > Duration::from_secs(4))
        .count();
    let ok = late == 0 && f.iter().all(|(_, st, _)| *st == 504);
    rows.push((
        "fault_sigstop",
        "one origin SIGSTOPped for 4 s under load",
        format!(
            "{}; {late} failed later than 3 s after the stop",
            describe(&s)
        ),
        ok,
    ));

    // Ten reloads 300 ms apart under load, the fifth with a broken file.
    let run = tokio::spawn(load(
        plain_client(),
        base.clone(),
        Duration::from_secs(4),
        root,
    ));
    for round in 1..=10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.reload(&addrs, round, round != 5);
    }
    let s = run.await.unwrap();
    let client = plain_client();
    // The last (valid) configuration is the one served.
    let mut last = String::new();
    let start = Instant::now();
    while last != "round-10" && start.elapsed() < Duration::from_secs(5) {
        let r = client
            .get(format!("{base}/"))
            .header("host", HOST)
            .send()
            .await;
        last = r
            .ok()
            .and_then(|r| {
                r.headers()
                    .get("x-config")?
                    .to_str()
                    .ok()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive = proxy.alive();
    let counts = match proxy {
        Proxy::Vigie(v) => {
            let m = v.metrics().await;
            let get = |r: &str| {
                metric_value(&m, &format!("vigie_config_reloads_total{{result=\"{r}\"}}"))
                    .unwrap_or(0.0)
            };
            format!("; reloads {} ok, {} failed", get("ok"), get("failed"))
        }
        Proxy::Nginx(_) => String::new(),
    };
    rows.push((
        "fault_reload",
        "10 reloads under load, the 5th with an invalid file",
        format!("{}; serving {last}{counts}", describe(&s)),
        failures(&s).is_empty() && alive && counts.contains("9 ok, 1 failed"),
    ));
    // All origins down for 2 s, then back.
    for o in origins.iter_mut() {
        o.signal("KILL");
    }
    let s = load(plain_client(), base.clone(), Duration::from_secs(2), root).await;
    let slow = s
        .iter()
        .filter(|(_, _, took)| *took > Duration::from_secs(2))
        .count();
    let only_5xx = s.iter().all(|(_, st, _)| [502, 503, 504].contains(st));
    for o in origins.iter_mut() {
        o.restart().await;
    }
    let start = Instant::now();
    let mut back = None;
    while start.elapsed() < Duration::from_secs(10) {
        let r = client
            .get(format!("{base}/"))
            .header("host", HOST)
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            back = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive = proxy.alive();
    rows.push((
        "fault_all_down",
        "all origins killed for 2 s, then restarted",
        format!(
            "{}; {slow} took over 2 s; {}; {}",
            describe(&s),
            back.map_or("not back in 10 s".into(), |t| format!(
                "200 again {:.2} s after the restart",
                t.as_secs_f64()
            )),
            if alive {
                "process alive"
            } else {
                "PROCESS GONE"
            }
        ),
        only_5xx && slow == 0 && back.is_some() && alive,
    ));

    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_under_load_side_by_side() {
    let mut origins = vec![
        ProcOrigin::start("o1").await,
        ProcOrigin::start("o2").await,
        ProcOrigin::start("o3").await,
    ];
    let addrs: Vec<String> = origins.iter().map(ProcOrigin::addr).collect();
    let table = Table::new("faults", "Faults under load", EXPECTED_TO_CHANGE);
    let mut v = Proxy::Vigie(Vigie::start(&vigie_config(&addrs, "round-0")).await);
    let vrows = origin_faults(&mut v, &mut origins).await;
    drop(v);
    let nrows = if nginx::available() {
        let mut n = Proxy::Nginx(Nginx::start_tuned(&nginx_config(&addrs, "round-0")).await);
        let rows = origin_faults(&mut n, &mut origins).await;
        rows.into_iter().map(|(_, _, t, _)| t).collect()
    } else {
        vec!["nginx not installed".to_string(); vrows.len()]
    };
    for ((id, case, text, ok), ntext) in vrows.into_iter().zip(nrows) {
        table.row(id, case, text, ntext, ok);
    }
    crate::adversarial::faults_vigie::renewal_row(&table, &addrs).await;
    crate::adversarial::faults_vigie::disk_cache_row(&table, &addrs).await;
    drop(origins);
    table.finish();
}
