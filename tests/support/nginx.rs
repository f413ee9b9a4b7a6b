//! Debian's nginx, started in the foreground on a configuration written to a temporary
//! directory, for side-by-side comparisons with vigie.
//!
//! The caller writes what goes inside `http { }`. Placeholders in it are replaced before nginx
//! starts: `{http}` and `{h1}` by a free loopback address for a plain HTTP/1.1 listener,
//! `{h2c}` and `{https}` by two more (an h2c and a TLS listener), `{dir}` by the prefix
//! directory. Two preambles exist:
//! - [`Nginx::start`] / [`Nginx::start_at`]: nginx's own defaults (one worker), as a user's
//!   configuration would run, for the importer's differential tests;
//! - [`Nginx::start_tuned`]: the reference the adversarial suite measures against (two
//!   workers like vigie's two threads, upstream keep-alive, a high descriptor limit).
//!
//! Start-up waits until every listener the configuration names accepts connections; the
//! master and its workers are stopped when the handle drops.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, wait_until};

/// Where Debian installs nginx.
const BIN: &str = "/usr/sbin/nginx";

/// A running nginx.
pub struct Nginx {
    child: Child,
    /// Its prefix directory (config, logs, temp files, cache).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of the plain HTTP/1.1 listener (`{http}`).
    pub http: String,
    /// The same address as `http` (`{h1}`, the adversarial suite's name for it).
    pub h1: String,
    /// `127.0.0.1:PORT` of an h2c (prior knowledge) listener, when the config uses `{h2c}`.
    pub h2c: String,
    /// `127.0.0.1:PORT` of a TLS listener, when the config uses `{https}`.
    pub https: String,
}

/// Whether nginx is installed (`make deps` installs it).
pub fn available() -> bool {
    Path::new(BIN).exists()
}

/// An `upstream NAME { ... }` block over `servers`, with upstream keep-alive as vigie has.
pub fn upstream(name: &str, servers: &[String]) -> String {
    let mut out = format!("upstream {name} {{\n");
    for s in servers {
        out.push_str(&format!("  server {s};\n"));
    }
    out.push_str("  keepalive 32;\n}\n");
    out
}

/// Which preamble surrounds the caller's `http { }` content.
#[derive(Clone, Copy)]
enum Preamble {
    Defaults,
    Tuned,
}

impl Nginx {
    /// Whether nginx is installed (`make deps` installs it).
    pub fn available() -> bool {
        available()
    }

    /// Start nginx with nginx's defaults around `http_block`.
    pub async fn start(http_block: &str) -> Nginx {
        Self::start_at(http_block, format!("127.0.0.1:{}", free_port())).await
    }

    /// [`Nginx::start`] with the plain listener's address chosen by the caller (for
    /// configurations whose included files name it).
    pub async fn start_at(http_block: &str, http: String) -> Nginx {
        Self::launch(
            http_block,
            http,
            Preamble::Defaults,
            Duration::from_secs(10),
        )
        .await
    }

    /// Start nginx tuned as the adversarial suite's reference around `http_body`.
    pub async fn start_tuned(http_body: &str) -> Nginx {
        let http = format!("127.0.0.1:{}", free_port());
        Self::launch(http_body, http, Preamble::Tuned, Duration::from_secs(20)).await
    }

    async fn launch(body: &str, http: String, preamble: Preamble, limit: Duration) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        // As root its workers run as `nobody`: the directory is made readable and the
        // writable paths world-writable.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod nginx dir");
        for sub in ["logs", "tmp", "cache"] {
            let p = dir.path().join(sub);
            std::fs::create_dir_all(&p).expect("nginx subdir");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777))
                .expect("chmod nginx subdir");
        }
        let h2c = format!("127.0.0.1:{}", free_port());
        let https = format!("127.0.0.1:{}", free_port());
        let d = dir.path().display().to_string();
        let content = body
            .replace("{http}", &http)
            .replace("{h1}", &http)
            .replace("{h2c}", &h2c)
            .replace("{https}", &https)
            .replace("{dir}", &d);
        let mut listeners = Vec::new();
        // The importer's configurations name the plain listener's address literally.
        if matches!(preamble, Preamble::Defaults)
            || body.contains("{http}")
            || body.contains("{h1}")
        {
            listeners.push(http.clone());
        }
        if body.contains("{h2c}") {
            listeners.push(h2c.clone());
        }
        if body.contains("{https}") {
            listeners.push(https.clone());
        }
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, wrap(dir.path(), &content, preamble)).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.path().join("logs/stderr")).expect("nginx stderr");
        let child = Command::new(BIN)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn nginx (apt-get install nginx)");
        let mut n = Nginx {
            child,
            dir,
            h1: http.clone(),
            http,
            h2c,
            https,
        };
        n.wait_ready(&listeners, limit).await;
        n
    }

    async fn wait_ready(&mut self, listeners: &[String], limit: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", self.log());
            }
            let mut up = true;
            for a in listeners {
                up &= tokio::net::TcpStream::connect(a).await.is_ok();
            }
            if up {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "nginx not ready after {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the master still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the master still runs (the adversarial suite's name for [`Nginx::alive`]).
    pub fn running(&mut self) -> bool {
        self.alive()
    }

    /// Its error log so far, after what nginx wrote to stderr.
    pub fn log(&self) -> String {
        let logs = self.dir.path().join("logs");
        let err = std::fs::read_to_string(logs.join("error.log")).unwrap_or_default();
        let stderr = std::fs::read_to_string(logs.join("stderr")).unwrap_or_default();
        format!("{stderr}{err}")
    }

    /// Resident memory of the master and its workers, KiB.
    pub fn rss_kib(&self) -> u64 {
        super::attack::tree_rss_kib(self.pid())
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// Send a signal to the master (`HUP` reloads).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Wait until the error log contains `needle`.
    pub async fn wait_log(&self, needle: &str) {
        wait_until(Duration::from_secs(10), needle, || async {
            self.log().contains(needle)
        })
        .await;
    }
}

/// The whole `nginx.conf`: the preamble, then `content` inside `http { }`.
fn wrap(dir: &Path, content: &str, preamble: Preamble) -> String {
    let d = dir.display();
    let temp = format!(
        "client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;\n\
         fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; \
         scgi_temp_path {d}/tmp/scgi;\n"
    );
    match preamble {
        Preamble::Defaults => format!(
            "worker_processes 1;\nerror_log {d}/logs/error.log warn;\npid {d}/logs/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\naccess_log off;\n{temp}{content}\n}}\n"
        ),
        Preamble::Tuned => {
            // Workers as root, so that paths the caller puts under `{dir}` are writable.
            let user = if is_root() { "user root;\n" } else { "" };
            format!(
                "{user}worker_processes 2;\nworker_rlimit_nofile 20000;\npid {d}/logs/nginx.pid;\n\
                 error_log {d}/logs/error.log notice;\nevents {{ worker_connections 8192; }}\n\
                 http {{\naccess_log off;\n{temp}\
                 proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n{content}\n}}\n"
            )
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Drop for Nginx {
    /// SIGTERM (nginx's fast shutdown: the master stops its workers too), then SIGKILL for
    /// the master and its workers if it is still there after a second.
    fn drop(&mut self) {
        self.signal("TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let workers = super::attack::children(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for w in workers {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(w.to_string())
                .status();
        }
    }
}
