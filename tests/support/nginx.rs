//! Debian's nginx, started in the foreground on a config written to a temporary directory,
//! for side-by-side comparisons with vigie.
//!
//! Runs `nginx -p DIR -c DIR/nginx.conf -g "daemon off;"` (as root its workers run as
//! `nobody`, so the directory is made world-readable). Start-up waits until the listener
//! accepts connections; the process is killed when the handle drops.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Where Debian installs nginx.
const BIN: &str = "/usr/sbin/nginx";

/// A running nginx.
pub struct Nginx {
    child: Child,
    /// Its prefix directory (config, logs, temp, cache).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of its listener.
    pub http: String,
}

impl Nginx {
    /// Whether nginx is installed (`make deps` installs it).
    pub fn available() -> bool {
        Path::new(BIN).exists()
    }

    /// Start nginx with `http_block` inside `http { }`; `{http}` in it is replaced by the
    /// listener's address and `{dir}` by the prefix directory.
    pub async fn start(http_block: &str) -> Nginx {
        Self::start_at(http_block, format!("127.0.0.1:{}", free_port())).await
    }

    /// [`Nginx::start`] with the listener's address chosen by the caller (for configurations
    /// whose included files name it).
    pub async fn start_at(http_block: &str, http: String) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod nginx dir");
        for sub in ["logs", "tmp", "cache"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("nginx subdir");
            std::fs::set_permissions(dir.path().join(sub), std::fs::Permissions::from_mode(0o777))
                .expect("chmod nginx subdir");
        }
        let d = dir.path().display().to_string();
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/logs/error.log warn;\npid {d}/logs/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  \
             proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fcgi;\n  \
             uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n{}\n}}\n",
            http_block.replace("{http}", &http).replace("{dir}", &d)
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new(BIN)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx { child, dir, http };
        n.wait_ready().await;
        n
    }

    async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", self.log());
            }
            if tokio::net::TcpStream::connect(&self.http).await.is_ok() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx not ready after 10s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM (nginx's fast shutdown: the master stops its workers too), then SIGKILL if
    /// it is still there after two seconds.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
