//! Tools of the adversarial suite (part 2): a legitimate client's latency probe from another
//! loopback address, resident memory of a process tree, the comparison table each part writes
//! to `target/adversarial/<part>.md`, and the list of cases expected to change.
//!
//! A case is judged against its expectation; a failed case whose id is in the part's
//! "expected to change" list (a known defect another change fixes) is reported as such and
//! does not fail the test, so the list can be emptied once those fixes are merged.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Resident memory of process `pid` in KiB (`VmRSS`), 0 when it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The direct children of `pid` (nginx's workers under its master).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // The parent is the second field after the parenthesised command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Resident memory of `pid` and its direct children, KiB.
pub fn tree_rss_kib(pid: u32) -> u64 {
    rss_kib(pid) + children(pid).into_iter().map(rss_kib).sum::<u64>()
}

/// Raise the open-file limit of a running process (best effort, `prlimit`): thousands of
/// connections need more than a default 1024.
pub fn raise_nofile(pid: u32, n: u64) {
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={n}:{n}"))
        .status();
}

/// Latency figures of a probe.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Requests made.
    pub n: usize,
    /// Requests that failed or did not answer 200.
    pub failed: usize,
    /// Median, p99 and worst latency.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
}

impl Latency {
    fn of(mut times: Vec<Duration>, failed: usize) -> Latency {
        times.sort();
        let at = |q: f64| {
            times
                .get(((times.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Latency {
            n: times.len() + failed,
            failed,
            p50: at(0.5),
            p99: at(0.99),
            max: times.last().copied().unwrap_or_default(),
        }
    }

    /// `p50 1.2 ms, p99 3.4 ms, 0/120 failed`.
    pub fn text(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, {}/{} failed",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.failed,
            self.n
        )
    }

    /// Served within a generous bound of its normal latency: every request answered, p99
    /// under 1 s (the figures themselves go to the table; 2 shared cores make tight bounds
    /// flaky).
    pub fn kept(&self) -> bool {
        self.failed == 0 && self.n > 0 && self.p99 <= Duration::from_secs(1)
    }
}

/// A legitimate client: sequential GETs of `url` with `Host: host` from `source` (another
/// loopback address than the attack's), one every 20 ms, each on a new connection (as a
/// newcomer would), until stopped.
pub struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Latency>,
}

impl Probe {
    /// Start probing.
    pub fn start(source: &str, url: &str, host: &str) -> Probe {
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(source.parse::<IpAddr>().expect("source address"))
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("probe client");
        let stop = Arc::new(AtomicBool::new(false));
        let (url, host, flag) = (url.to_string(), host.to_string(), stop.clone());
        let task = tokio::spawn(async move {
            let (mut times, mut failed) = (Vec::new(), 0);
            while !flag.load(Ordering::Relaxed) {
                let start = Instant::now();
                let ok = match client.get(&url).header("host", &host).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    times.push(start.elapsed());
                } else {
                    failed += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Latency::of(times, failed)
        });
        Probe { stop, task }
    }

    /// Stop and return the figures.
    pub async fn stop(self) -> Latency {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("probe task")
    }

    /// Probe for `d` and return the figures (a baseline).
    pub async fn measure(source: &str, url: &str, host: &str, d: Duration) -> Latency {
        let p = Probe::start(source, url, host);
        tokio::time::sleep(d).await;
        p.stop().await
    }
}

/// One row of a comparison table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable id (used by the expected-to-change lists).
    pub id: String,
    /// What the case does.
    pub case: String,
    /// What vigie did.
    pub vigie: String,
    /// What nginx did.
    pub nginx: String,
    /// Whether vigie met the expectation.
    pub ok: bool,
}

/// The comparison table of one part, written to `target/adversarial/<part>.md`.
pub struct Table {
    part: String,
    title: String,
    expected_to_change: &'static [&'static str],
    rows: Mutex<Vec<Row>>,
}

impl Table {
    /// A table for `part` (the file name) whose cases in `expected_to_change` may fail today.
    pub fn new(part: &str, title: &str, expected_to_change: &'static [&'static str]) -> Table {
        Table {
            part: part.into(),
            title: title.into(),
            expected_to_change,
            rows: Mutex::new(Vec::new()),
        }
    }

    /// Record a case.
    pub fn row(&self, id: &str, case: &str, vigie: String, nginx: String, ok: bool) {
        println!(
            "[{}] {id}: vigie {vigie} | nginx {nginx} | ok {ok}",
            self.part
        );
        self.rows.lock().expect("rows").push(Row {
            id: id.into(),
            case: case.into(),
            vigie,
            nginx,
            ok,
        });
    }

    /// The Markdown table.
    pub fn markdown(&self) -> String {
        let rows = self.rows.lock().expect("rows");
        let mut out = format!(
            "#### {}\n\n| case | vigie | nginx | vigie as expected |\n|---|---|---|---|\n",
            self.title
        );
        for r in rows.iter() {
            let verdict = match (r.ok, self.expected_to_change.contains(&r.id.as_str())) {
                (true, false) => "yes",
                (true, true) => "yes (listed as expected to change: remove it)",
                (false, true) => "no: known defect, expected to change",
                (false, false) => "**no**",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {verdict} |",
                r.case,
                r.vigie.replace('|', "/"),
                r.nginx.replace('|', "/")
            );
        }
        out
    }

    /// Write the table and fail on any case that missed its expectation and is not listed.
    pub fn finish(&self) {
        let md = self.markdown();
        let dir = target_dir().join("adversarial");
        std::fs::create_dir_all(&dir).expect("target/adversarial");
        std::fs::write(dir.join(format!("{}.md", self.part)), &md).expect("write table");
        println!("{md}");
        let rows = self.rows.lock().expect("rows");
        let failed: Vec<&Row> = rows
            .iter()
            .filter(|r| !r.ok && !self.expected_to_change.contains(&r.id.as_str()))
            .collect();
        assert!(failed.is_empty(), "cases that failed: {failed:#?}");
    }
}

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Open TCP connections whose local port is `port` (`ss`), e.g. an origin's.
pub fn established_to(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}
