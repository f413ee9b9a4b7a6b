//! A real ACME server for tests: Debian's Pebble with pebble-challtestsrv as its DNS, all on
//! loopback with ports picked by the kernel. Every name resolves to 127.0.0.1, and Pebble
//! validates challenges against vigie's own listeners (`http_port`, `tls_port`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::tls::TestCa;
use super::{free_port, wait_until};

/// A running Pebble + challtestsrv.
pub struct Pebble {
    pebble: Option<Child>,
    challtest: Child,
    /// Files: config, API certificate, logs.
    pub dir: tempfile::TempDir,
    /// The ACME directory URL.
    pub directory: String,
    /// PEM file of the CA that signed Pebble's API certificate (for `[acme] ca_roots`).
    pub api_ca: PathBuf,
    api_ca_pem: String,
    mgmt: u16,
    dns: u16,
    challtest_mgmt: u16,
    config: PathBuf,
}

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn (is the pebble package installed? `make deps`)")
}

impl Pebble {
    /// Start Pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`;
    /// `validity` sets the issued certificates' lifetime.
    pub async fn start(http_port: u16, tls_port: u16, validity: Option<Duration>) -> Pebble {
        Self::start_with(http_port, tls_port, validity, None).await
    }

    /// Like [`Pebble::start`]; with `eab = Some((kid, base64url_key))` accounts must be bound.
    pub async fn start_with(
        http_port: u16,
        tls_port: u16,
        validity: Option<Duration>,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("pebble API test CA");
        let (cert, key) = ca.write_leaf(dir.path(), "api", &["localhost", "127.0.0.1"]);
        let api_ca = dir.path().join("api-ca.pem");
        std::fs::write(&api_ca, &ca.pem).unwrap();
        let (api, mgmt, dns, challtest_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let mut conf = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{api}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt}"),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        if let Some((kid, key)) = eab {
            conf["pebble"]["externalAccountBindingRequired"] = serde_json::json!(true);
            conf["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        if let Some(v) = validity {
            conf["pebble"]["certificateValidityPeriod"] = serde_json::json!(v.as_secs());
        }
        let config = dir.path().join("pebble.json");
        std::fs::write(&config, conf.to_string()).unwrap();
        let challtest = spawn(
            Command::new("pebble-challtestsrv").args([
                "-management",
                &format!("127.0.0.1:{challtest_mgmt}"),
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv6",
                "",
            ]),
            &dir.path().join("challtestsrv.log"),
        );
        let mut p = Pebble {
            pebble: None,
            challtest,
            directory: format!("https://127.0.0.1:{api}/dir"),
            api_ca,
            api_ca_pem: ca.pem.clone(),
            mgmt,
            dns,
            challtest_mgmt,
            config,
            dir,
        };
        wait_until(Duration::from_secs(20), "challtestsrv", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", challtest_mgmt))
                .await
                .is_ok()
        })
        .await;
        p.start_pebble().await;
        p
    }

    /// (Re)start the Pebble process (a fresh CA and an empty database, as Pebble always has).
    pub async fn start_pebble(&mut self) {
        let child = spawn(
            Command::new("pebble")
                .env("PEBBLE_VA_NOSLEEP", "1")
                .args(["-config"])
                .arg(&self.config)
                .args([
                    "-dnsserver",
                    &format!("127.0.0.1:{}", self.dns),
                    "-strict=false",
                ]),
            &self.dir.path().join("pebble.log"),
        );
        self.pebble = Some(child);
        let client = self.client();
        let url = self.directory.clone();
        wait_until(Duration::from_secs(20), "pebble", || async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    /// Stop Pebble (challtestsrv stays).
    pub fn stop_pebble(&mut self) {
        if let Some(mut c) = self.pebble.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.api_ca_pem.as_bytes()).unwrap(),
            )
            .build()
            .unwrap()
    }

    /// Pebble's current issuing root, PEM (it changes at every start).
    pub async fn root(&self) -> String {
        self.client()
            .get(format!("https://127.0.0.1:{}/roots/0", self.mgmt))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A DNS-01 hook script that sets and clears TXT records in challtestsrv.
    pub fn dns_hook(&self) -> PathBuf {
        let path = self.dir.path().join("dns-hook.sh");
        let script = format!(
            "#!/bin/sh\n\
             # vigie DNS-01 hook for tests: $1 = present|cleanup, $2 = record name, $3 = value\n\
             echo \"$@\" >> \"{log}\"\n\
             case \"$1\" in\n\
               present) curl -sf -d \"{{\\\"host\\\":\\\"$2.\\\",\\\"value\\\":\\\"$3\\\"}}\" http://127.0.0.1:{port}/set-txt ;;\n\
               cleanup) curl -sf -d \"{{\\\"host\\\":\\\"$2.\\\"}}\" http://127.0.0.1:{port}/clear-txt ;;\n\
               *) exit 2 ;;\n\
             esac\n",
            log = self.dir.path().join("dns-hook.log").display(),
            port = self.challtest_mgmt
        );
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// What the DNS hook was called with.
    pub fn dns_hook_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dns-hook.log")).unwrap_or_default()
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// How many orders Pebble created. Not the count of `POST /order-plz`: Pebble rejects
    /// 5% of good nonces, and the client sends a rejected request again.
    pub fn orders_created(&self) -> usize {
        self.log().matches("Added order \"").count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop_pebble();
        let _ = self.challtest.kill();
        let _ = self.challtest.wait();
    }
}
