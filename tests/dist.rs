//! What ships beside the binary: the systemd unit, the `vigie reload` command.

use std::process::Command;

use crate::support::{vigie::bin, Origin, Vigie};

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/vigie.service"
    ))
    .unwrap();
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "StateDirectory=vigie",
        "LogsDirectory=vigie",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "LimitNOFILE=65536",
        "Restart=on-failure",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // Verify a copy pointing at the binary under test (systemd checks that it exists).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/vigie", bin())).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd, installed by `make deps`)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for vigie.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vigie_reload_checks_then_signals_the_running_instance() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let cfg = |o: &Origin| {
        format!(
            "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
             [upstreams.app]\nservers = [\"{}\"]\n\
             [[sites]]\nnames = [\"example.com\"]\n[[sites.routes]]\npath = \"/\"\nupstream = \"app\"\n",
            o.addr_str()
        )
    };
    let v = Vigie::start(&cfg(&a)).await;
    assert_eq!(
        v.get("example.com", "/").await.text().await.unwrap(),
        "a /\n"
    );
    v.write_config(&cfg(&b));
    let out = Command::new(bin())
        .args(["reload", "-c"])
        .arg(&v.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v.wait_log("configuration reloaded").await;
    assert_eq!(
        v.get("example.com", "/").await.text().await.unwrap(),
        "b /\n"
    );
    // An invalid file is refused before anything is signalled.
    let good = std::fs::read_to_string(&v.config).unwrap();
    std::fs::write(&v.config, good.replace("[[sites]]", "[[sites]]\nbogus = 1")).unwrap();
    let out = Command::new(bin())
        .args(["reload", "-c"])
        .arg(&v.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not reloading"));
    assert!(
        !v.log().contains("reload rejected"),
        "nothing was signalled"
    );
}
