//! Slow clients, vigie and nginx side by side: `slowhttptest` opens 1,000 connections from
//! 127.0.0.1 (slow headers, slow bodies, slow reads; 12 s each, both servers at once except for
//! slow reads) while a
//! legitimate client on 127.0.0.2 keeps requesting.
//!
//! Expectation for vigie: the legitimate client is served throughout (no failure, p99 under
//! 1 s), slowhttptest reports the service available, vigie's memory stays bounded (under
//! 256 MiB of growth), and a slow body does not hold an origin connection per attacker
//! (at most 100 open at once; nginx buffers request bodies).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::attack::{established_to, raise_nofile, rss_kib, tree_rss_kib, Probe, Table};
use crate::support::nginx::{self, Nginx};
use crate::support::{Origin, Vigie};

/// Cases vigie fails today because of a defect another change fixes (none: slow bodies
/// stopped reaching the origin with request buffering, `request_buffer`).
const EXPECTED_TO_CHANGE: &[&str] = &[];

const HOST: &str = "adv.test";
const SECONDS: &str = "12";
const MEMORY_BOUND_KIB: u64 = 256 * 1024;

fn vigie_config(origin: &Origin) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
threads = 2

[log]
access = "off"

[upstreams.app]
servers = ["{}"]

[[sites]]
names = ["{HOST}", "127.0.0.1"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        origin.addr_str()
    )
}

fn nginx_config(origin: &Origin) -> String {
    format!(
        "{}server {{\n listen {{h1}};\n listen {{h2c}} http2;\n server_name {HOST} 127.0.0.1;\n \
         location / {{ proxy_pass http://app; }}\n}}\n",
        nginx::upstream("app", &[origin.addr_str()])
    )
}

#[derive(Clone, Copy)]
enum Mode {
    Headers,
    Body,
    Read,
}

impl Mode {
    fn args(self) -> Vec<&'static str> {
        match self {
            Mode::Headers => vec!["-H", "-i", "5"],
            Mode::Body => vec!["-B", "-i", "5", "-s", "8192"],
            Mode::Read => vec![
                "-X", "-k", "3", "-n", "1", "-w", "512", "-y", "1024", "-z", "32",
            ],
        }
    }

    fn path(self) -> &'static str {
        match self {
            Mode::Read => "/body?kb=64",
            _ => "/slow-client",
        }
    }
}

/// `text` without its terminal colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// slowhttptest's last status block: `connected N, closed N, error N, available YES`.
fn summary(out: &str) -> (String, bool) {
    let out = &strip_colours(out);
    let last = |k: &str| {
        out.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let avail = last("service available:");
    (
        format!(
            "slowhttptest: {} connected, {} closed, {} errors at the end, service available {}",
            last("connected:"),
            last("closed:"),
            last("error:"),
            avail
        ),
        avail == "YES",
    )
}

struct Run {
    text: String,
    ok: bool,
    origin_conns: usize,
}

async fn run(mode: Mode, addr: String, pid: u32, tree: bool, origin_port: u16) -> Run {
    let rss = move || {
        if tree {
            tree_rss_kib(pid)
        } else {
            rss_kib(pid)
        }
    };
    let rss0 = rss();
    let probe = Probe::start("127.0.0.2", &format!("http://{addr}/probe"), HOST);
    let url = format!("http://{addr}{}", mode.path());
    let attack = tokio::task::spawn_blocking(move || {
        Command::new("prlimit")
            .arg("--nofile=20000:20000")
            .arg("slowhttptest")
            .args(mode.args())
            .args(["-c", "1000", "-r", "250", "-l", SECONDS, "-p", "3", "-u"])
            .arg(url)
            .output()
    });
    // Sample the origin's open connections and the server's memory while it runs.
    let (mut origin_conns, mut peak) = (0, rss0);
    let start = Instant::now();
    while !attack.is_finished() && start.elapsed() < Duration::from_secs(40) {
        origin_conns = origin_conns.max(established_to(origin_port));
        peak = peak.max(rss());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = attack.await.unwrap().expect("run slowhttptest");
    let lat = probe.stop().await;
    let (sum, available) = summary(&String::from_utf8_lossy(&out.stdout));
    let growth = peak.saturating_sub(rss0);
    Run {
        text: format!(
            "{sum}; peak RSS +{:.1} MiB; {origin_conns} origin connections at most; probe {}",
            growth as f64 / 1024.0,
            lat.text()
        ),
        ok: available && lat.kept() && growth < MEMORY_BOUND_KIB,
        origin_conns,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_side_by_side() {
    // The origin lives in this process: it holds vigie's upstream connections.
    raise_nofile(std::process::id(), 20000);
    let origin_v = Origin::start("v").await;
    let origin_n = Origin::start("n").await;
    let v = Vigie::start(&vigie_config(&origin_v)).await;
    raise_nofile(v.pid(), 20000);
    let n = if nginx::available() {
        Some(Nginx::start_tuned(&nginx_config(&origin_n)).await)
    } else {
        None
    };
    let table = Table::new(
        "slow_clients",
        "Slow clients (1,000 connections from 127.0.0.1, a client on 127.0.0.2)",
        EXPECTED_TO_CHANGE,
    );
    let cases = [
        (
            Mode::Headers,
            "slow_headers",
            "slow headers (slowloris): a header line every 5 s",
        ),
        (
            Mode::Body,
            "slow_body",
            "slow bodies (R-U-Dead-Yet): 8 KiB bodies, a piece every 5 s",
        ),
        (
            Mode::Read,
            "slow_read",
            "slow reads: 3 × 64 KiB responses read 32 bytes a second, window 512-1024 B",
        ),
    ];
    for (mode, id, text) in cases {
        let vr = run(mode, v.http.clone(), v.pid(), false, origin_v.addr.port());
        let nr = async {
            match &n {
                Some(n) => Some(run(mode, n.h1.clone(), n.pid(), true, origin_n.addr.port()).await),
                None => None,
            }
        };
        // Slow reads load the CPU (two cores for both servers, the origin and the
        // attackers): one server at a time; the others run side by side.
        let (vr, nr) = if let Mode::Read = mode {
            let vr = vr.await;
            (vr, nr.await)
        } else {
            tokio::join!(vr, nr)
        };
        let ntext = nr
            .as_ref()
            .map_or("nginx not installed".into(), |r| r.text.clone());
        if let Mode::Body = mode {
            let nconns = nr
                .as_ref()
                .map_or("-".into(), |r| r.origin_conns.to_string());
            table.row(
                "slow_body_origin",
                "slow bodies: origin connections held open at once",
                vr.origin_conns.to_string(),
                nconns,
                vr.origin_conns <= 100,
            );
        }
        table.row(id, text, vr.text, ntext, vr.ok);
    }
    assert_eq!(v.get(HOST, "/after").await.status(), 200, "{}", v.log());
    table.finish();
}
