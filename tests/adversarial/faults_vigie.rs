//! The vigie-only rows of the faults table ([`super::faults`]): a certificate renewal (new
//! files and a reload) under TLS load, and the disk cache directory filled (a 1 MiB tmpfs)
//! and then made read-only under load. Expectation: no failed request, the new certificate
//! served to new connections, no crash.

use std::process::Command;
use std::time::Duration;

use super::faults::{describe, failures, load, plain_client, HOST};
use crate::support::attack::Table;
use crate::support::tls::TestCa;
use crate::support::tls::{handshake, ALL};
use crate::support::Vigie;

fn upstream(addrs: &[String]) -> String {
    let servers: Vec<String> = addrs.iter().map(|o| format!("\"{o}\"")).collect();
    format!("[upstreams.app]\nservers = [{}]\n", servers.join(", "))
}

/// Renewal: the certificate files replaced and a reload, during 3 s of HTTPS load.
pub(super) async fn renewal_row(table: &Table, addrs: &[String]) {
    let ca = TestCa::new("vigie faults CA");
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = ca.write_leaf(files.path(), "adv", &[HOST]);
    let config = format!(
        "[server]\nhttp = [\"{{http}}\"]\nhttps = [\"{{https}}\"]\nadmin = \"{{admin}}\"\n\
         state_dir = \"{{state}}\"\n[log]\naccess = \"off\"\n{}\n[[sites]]\nnames = [\"{HOST}\"]\n\
         tls = {{ cert = \"{cert}\", key = \"{key}\" }}\n  [[sites.routes]]\n  path = \"/\"\n  \
         upstream = \"app\"\n",
        upstream(addrs)
    );
    let v = Vigie::start(&config).await;
    let first = handshake(&v.https, HOST, &[b"http/1.1"], ALL)
        .await
        .unwrap();
    let client = v.https_client(&[HOST], &[ca.reqwest_root()]);
    let base = v.https_url(HOST, "");
    let run = tokio::spawn(load(client, base, Duration::from_secs(3), |_| "/".into()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    ca.write_leaf(files.path(), "adv", &[HOST]);
    v.signal("HUP");
    let s = run.await.unwrap();
    let mut renewed = false;
    let start = std::time::Instant::now();
    while !renewed && start.elapsed() < Duration::from_secs(5) {
        let h = handshake(&v.https, HOST, &[b"http/1.1"], ALL).await;
        renewed = h.is_ok_and(|h| h.leaf.serial != first.leaf.serial);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    table.row(
        "fault_cert_renewal",
        "certificate files renewed + reload under HTTPS load (3 s)",
        format!(
            "{}; new connections get the new certificate: {renewed}",
            describe(&s)
        ),
        "not run (nginx: the same reload as above)".into(),
        failures(&s).is_empty() && renewed,
    );
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Disk cache: a 1 MiB tmpfs as the zone's directory (bound 64 MiB), filled by 16 KiB
/// entries, then remounted read-only, during 4 s of load on distinct URLs.
pub(super) async fn disk_cache_row(table: &Table, addrs: &[String]) {
    let case = "disk cache directory full (1 MiB tmpfs), then read-only, under load (4 s)";
    let nginx = "not run".to_string();
    let place = tempfile::tempdir().unwrap();
    let dir = place.path().join("cache");
    let Some(fs) = Tmpfs::mount(&dir, "1m") else {
        table.row(
            "fault_disk_cache",
            case,
            "not run: cannot mount a tmpfs here".into(),
            nginx,
            true,
        );
        return;
    };
    let config = format!(
        "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
         [log]\naccess = \"off\"\n[cache.d]\nmemory = \"4MiB\"\ndisk = \"{}\"\n\
         disk_size = \"64MiB\"\n{}\n[[sites]]\nnames = [\"{HOST}\"]\n  [[sites.routes]]\n  \
         path = \"/\"\n  upstream = \"app\"\n  cache = {{ zone = \"d\", valid = {{ \"200\" = \"5m\" }} }}\n",
        dir.display(),
        upstream(addrs)
    );
    let v = Vigie::start(&config).await;
    let base = format!("http://{}", v.http);
    let run = tokio::spawn(load(plain_client(), base, Duration::from_secs(4), |i| {
        format!("/big/{i}")
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = Command::new("df")
        .arg("--output=pcent")
        .arg(&dir)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .last()
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_default();
    let ro = fs.read_only();
    let s = run.await.unwrap();
    let alive = v.get(HOST, "/big/after").await.status() == 200;
    table.row(
        "fault_disk_cache",
        case,
        format!(
            "{}; tmpfs {used} used at 2 s; remounted read-only: {ro}; serving after: {alive}",
            describe(&s)
        ),
        nginx,
        failures(&s).is_empty() && alive,
    );
    drop(v);
    drop(fs);
}

/// Regression: an answer vigie makes for a failed upstream (502 here) used to say
/// `Connection: keep-alive` while vigie closed the connection after it, so a client's next
/// request on that connection was lost (seen as "no answer" under load with all origins
/// down). It must say `Connection: close`, and close.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_failure_answer_says_connection_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let down = format!("127.0.0.1:{}", crate::support::free_port());
    let config = format!(
        "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
         [log]\naccess = \"off\"\n{}\n[[sites]]\nnames = [\"{HOST}\"]\n  [[sites.routes]]\n  \
         path = \"/\"\n  upstream = \"app\"\n",
        upstream(&[down])
    );
    let v = Vigie::start(&config).await;
    let mut s = tokio::net::TcpStream::connect(&v.http).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("vigie closes the connection after its 502")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(text.starts_with("http/1.1 502"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
}
