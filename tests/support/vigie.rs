//! The real `vigie` binary, started on a config written to a temporary directory.
//!
//! `{http}` and `{admin}` in a config are replaced by free loopback addresses, `{state}` by a
//! fresh state directory. Start-up waits until the admin `/healthz` answers and the HTTP
//! listener accepts connections. The process is killed when the handle drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigie")
}

/// A running vigie process.
pub struct Vigie {
    child: Child,
    /// Its temporary directory (config, state, log).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of the HTTP listener.
    pub http: String,
    /// `127.0.0.1:PORT` of the admin listener.
    pub admin: String,
    /// `127.0.0.1:PORT` for `{https}` (bound only if the config uses it).
    pub https: String,
    /// The config file path.
    pub config: PathBuf,
    env: Vec<(String, String)>,
    tls: bool,
}

/// The three loopback addresses a vigie under test listens on.
pub struct Ports {
    /// `{http}`.
    pub http: String,
    /// `{https}`.
    pub https: String,
    /// `{admin}`.
    pub admin: String,
}

impl Ports {
    /// Three free ports on 127.0.0.1.
    pub fn new() -> Ports {
        Ports {
            http: format!("127.0.0.1:{}", free_port()),
            https: format!("127.0.0.1:{}", free_port()),
            admin: format!("127.0.0.1:{}", free_port()),
        }
    }

    /// Port number of an address.
    pub fn port(addr: &str) -> u16 {
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }
}

fn spawn(config: &Path, dir: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("vigie.log"))
        .expect("log file");
    Command::new(bin())
        .arg("run")
        .arg("-c")
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("VIGIE_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn vigie")
}

fn fill(template: &str, http: &str, https: &str, admin: &str, state: &Path) -> String {
    template
        .replace("{https}", https)
        .replace("{http}", http)
        .replace("{admin}", admin)
        .replace("{state}", &state.display().to_string())
}

impl Vigie {
    /// Write `template` (with placeholders filled) and start vigie on it.
    pub async fn start(template: &str) -> Vigie {
        Self::start_on(template, Ports::new(), &[]).await
    }

    /// Start on chosen ports with extra environment variables.
    pub async fn start_on(template: &str, ports: Ports, env: &[(&str, &str)]) -> Vigie {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let config = dir.path().join("vigie.toml");
        std::fs::write(
            &config,
            fill(template, &ports.http, &ports.https, &ports.admin, &state),
        )
        .expect("write config");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn(&config, dir.path(), &env);
        let mut v = Vigie {
            child,
            dir,
            http: ports.http,
            admin: ports.admin,
            https: ports.https,
            config,
            env,
            tls: template.contains("{https}"),
        };
        v.wait_ready().await;
        v
    }

    /// Kill the process and start it again on the same config, state and ports.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.config, self.dir.path(), &self.env);
        self.wait_ready().await;
    }

    /// Stop the process with `sig` (e.g. `TERM`), wait for it to exit, and start it again on
    /// the same config, state and ports.
    pub async fn restart_after(&mut self, sig: &str) {
        self.signal(sig);
        self.wait_exit(Duration::from_secs(30)).await;
        self.child = spawn(&self.config, self.dir.path(), &self.env);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let tls = self.tls;
        let health = format!("http://{}/healthz", self.admin);
        let client = super::client();
        let http = self.http.clone();
        let https = self.https.clone();
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "vigie exited with {status} before being ready:\n{}",
                    self.log()
                );
            }
            let admin_up = client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            let http_up = tokio::net::TcpStream::connect(&http).await.is_ok();
            let https_up = !tls || tokio::net::TcpStream::connect(&https).await.is_ok();
            if admin_up && http_up && https_up {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("vigie not ready after 20s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Prometheus text of the admin listener's `/metrics`.
    pub async fn metrics(&self) -> String {
        crate::support::client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// An HTTPS client that resolves every name in `names` to the HTTPS listener and trusts
    /// `roots`.
    pub fn https_client(&self, names: &[&str], roots: &[reqwest::Certificate]) -> reqwest::Client {
        let addr: std::net::SocketAddr = self.https.parse().expect("https addr");
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(10));
        for n in names {
            b = b.resolve(n, addr);
        }
        for r in roots {
            b = b.add_root_certificate(r.clone());
        }
        b.build().expect("https client")
    }

    /// `https://NAME:PORT` + `path` for the HTTPS listener.
    pub fn https_url(&self, name: &str, path: &str) -> String {
        let port = self.https.rsplit(':').next().unwrap_or_default();
        format!("https://{name}:{port}{path}")
    }

    /// GET `path` with `Host: host`.
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        super::client()
            .get(self.url(path))
            .header("host", host)
            .send()
            .await
            .expect("request to vigie")
    }

    /// What `vigie cert list` prints for this instance's configuration.
    pub fn cert_list(&self) -> String {
        let out = Command::new(bin())
            .args(["cert", "list", "-c"])
            .arg(&self.config)
            .output()
            .expect("run vigie cert list");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What vigie wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vigie.log")).unwrap_or_default()
    }

    /// Wait until the process exits (at most `limit`); its exit status.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "vigie still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Graceful binary upgrade: start a new process with `--upgrade`, wait until it waits
    /// for the sockets, SIGQUIT the old one, and follow the new one once the old has exited.
    pub async fn upgrade(&mut self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("vigie.log"))
            .expect("log file");
        let new = Command::new(bin())
            .args(["run", "--upgrade", "-c"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the new vigie");
        super::wait_until(
            Duration::from_secs(20),
            "the new process to wait for sockets",
            || async { self.log().contains("No incoming socket transfer") },
        )
        .await;
        self.signal("QUIT");
        let mut old = std::mem::replace(&mut self.child, new);
        let start = std::time::Instant::now();
        while old.try_wait().ok().flatten().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the old process did not exit"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replace the config file (placeholders filled with this instance's addresses).
    pub fn write_config(&self, template: &str) {
        let state = self.dir.path().join("state");
        std::fs::write(
            &self.config,
            fill(template, &self.http, &self.https, &self.admin, &state),
        )
        .expect("rewrite config");
    }

    /// Send a signal to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str) {
        self.wait_log_for(needle, Duration::from_secs(10)).await;
    }

    /// Wait until the log contains `needle`, at most `limit`.
    pub async fn wait_log_for(&self, needle: &str, limit: Duration) {
        wait_until(limit, needle, || async { self.log().contains(needle) }).await;
    }
}

impl Drop for Vigie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `vigie check -c FILE` on `text` (written as `test.toml`); returns the output.
pub fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.toml");
    std::fs::write(&path, text).expect("write config");
    Command::new(bin())
        .current_dir(dir.path())
        .arg("check")
        .arg("-c")
        .arg("test.toml")
        .output()
        .expect("run vigie check")
}
