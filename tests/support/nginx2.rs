//! Debian's nginx, started on a configuration written to a temporary directory, as the
//! reference the adversarial suite (part 2) compares vigie with.
//!
//! The caller writes what goes inside `http { }`; `{h1}`, `{h2c}`, `{https}` and `{dir}` in it
//! are replaced by three free loopback addresses and the temporary directory. The preamble
//! (two workers, like vigie's two threads, temp paths in the directory, no access log) is the
//! helper's. Start-up waits until the three addresses accept connections. The master and its
//! workers are stopped when the handle drops.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// A running nginx (master process in the foreground).
pub struct Nginx {
    child: Child,
    /// Its temporary directory (config, logs, temp files).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of a plain HTTP/1.1 listener.
    pub h1: String,
    /// `127.0.0.1:PORT` of an h2c (prior knowledge) listener.
    pub h2c: String,
    /// `127.0.0.1:PORT` of a TLS listener (h2 and HTTP/1.1), when the config uses `{https}`.
    pub https: String,
}

/// Whether Debian's nginx is installed.
pub fn available() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

impl Nginx {
    /// Write the configuration and start nginx on it.
    pub async fn start(http_body: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let h1 = format!("127.0.0.1:{}", free_port());
        let h2c = format!("127.0.0.1:{}", free_port());
        let https = format!("127.0.0.1:{}", free_port());
        let body = http_body
            .replace("{h1}", &h1)
            .replace("{h2c}", &h2c)
            .replace("{https}", &https)
            .replace("{dir}", &dir.path().display().to_string());
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, preamble(dir.path(), &body)).expect("write nginx.conf");
        let child = spawn(&conf, dir.path());
        let mut n = Nginx {
            child,
            dir,
            h1,
            h2c,
            https,
        };
        let tls = http_body.contains("{https}");
        let addrs = [n.h1.clone(), n.h2c.clone(), n.https.clone()];
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", n.log());
            }
            let mut up = true;
            for a in addrs.iter().take(if tls { 3 } else { 2 }) {
                up &= tokio::net::TcpStream::connect(a).await.is_ok();
            }
            if up {
                return n;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nginx not ready after 20s:\n{}",
                n.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The error log so far (with nginx's stderr).
    pub fn log(&self) -> String {
        let err = std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        let stderr = std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default();
        format!("{stderr}{err}")
    }

    /// Resident memory of the master and its workers, KiB.
    pub fn rss_kib(&self) -> u64 {
        super::attack::tree_rss_kib(self.pid())
    }

    /// The configuration file.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// Send a signal to the master (`HUP` reloads).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Whether the master still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait until the error log contains `needle`.
    pub async fn wait_log(&self, needle: &str) {
        wait_until(Duration::from_secs(10), needle, || async {
            self.log().contains(needle)
        })
        .await;
    }
}

fn preamble(dir: &Path, body: &str) -> String {
    let d = dir.display();
    // As root, workers would run as `nobody` and could not write the temp paths.
    let user = if nix_is_root() { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 2;\nworker_rlimit_nofile 20000;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log notice;\nevents {{ worker_connections 8192; }}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
         proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n{body}\n}}\n"
    )
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn spawn(conf: &Path, dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).expect("nginx stderr");
    Command::new("nginx")
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn nginx (apt-get install nginx)")
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM lets the master stop its workers; KILL if it did not within a second.
        self.signal("TERM");
        for _ in 0..50 {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
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
