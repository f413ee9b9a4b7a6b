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

fn dist(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_docker_image_and_compose_file_hold_together() {
    let dockerfile = dist("docker/Dockerfile");
    for needed in [
        "AS build",
        "cargo build --release -p vigie",
        "USER vigie",
        "HEALTHCHECK",
        "/healthz",
        "VOLUME [\"/var/lib/vigie\"]",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
    assert_eq!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM")),
        2
    );
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&dist("docker/docker-compose.prod.yml")).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for s in ["vigie", "frontend", "backend", "grafana", "prometheus"] {
        assert!(services.contains_key(s), "no service {s}");
    }
    let vigie = &compose["services"]["vigie"];
    let ports: Vec<&str> = vigie["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(ports, ["80:80", "443:443"]);
    assert_eq!(vigie["build"]["dockerfile"], "docker/Dockerfile");
    assert_eq!(compose["services"]["backend"]["deploy"]["replicas"], 3);
    let mounts: Vec<&str> = compose["services"]["prometheus"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(mounts
        .iter()
        .any(|m| m.starts_with("../dist/prometheus.yml:")));
    let prom: serde_yaml::Value = serde_yaml::from_str(&dist("dist/prometheus.yml")).unwrap();
    assert_eq!(
        prom["scrape_configs"][0]["static_configs"][0]["targets"][0],
        "vigie:9145"
    );
}

#[test]
fn the_cluster_compose_file_runs_two_instances_on_one_redis_with_the_same_checked_config() {
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&dist("docker/docker-compose.cluster.yml")).unwrap();
    let s = &compose["services"];
    let mounts = |svc: &str| -> Vec<String> {
        s[svc]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    for edge in ["edge-1", "edge-2"] {
        assert_eq!(s[edge]["image"], "vigie:latest");
        assert_eq!(s[edge]["hostname"], edge, "the node id");
        assert!(mounts(edge).contains(&"./vigie-cluster.toml:/etc/vigie/vigie.toml:ro".into()));
        assert!(
            mounts(edge)
                .iter()
                .any(|m| m.starts_with(&format!("{edge}-state:"))),
            "each instance keeps its own state directory"
        );
        let secrets: Vec<&str> = s[edge]["secrets"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(secrets, ["redis_password", "vigie_cluster_key"]);
    }
    assert_eq!(s["edge-1"]["build"]["dockerfile"], "docker/Dockerfile");
    assert!(s["redis"]["command"][2]
        .as_str()
        .unwrap()
        .contains("--requirepass \"$$(cat /run/secrets/redis_password)\""));
    // The configuration both mount: valid, and pointing at those secrets and that Redis.
    let config = dist("docker/vigie-cluster.toml");
    for needed in [
        "redis = \"redis://redis:6379/0\"",
        "password_file = \"/run/secrets/redis_password\"",
        "encryption_key_file = \"/run/secrets/vigie_cluster_key\"",
    ] {
        assert!(config.contains(needed), "vigie-cluster.toml lacks {needed}");
    }
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(format!(
            "{}/../docker/vigie-cluster.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_and_dashboard_use_metrics_vigie_exports() {
    let alerts: serde_yaml::Value = serde_yaml::from_str(&dist("dist/alerts.yml")).unwrap();
    let rules = alerts["groups"][0]["rules"].as_sequence().unwrap();
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&dist("dist/grafana-dashboard.json")).unwrap();
    let mut exprs: Vec<String> = rules
        .iter()
        .filter_map(|r| r["expr"].as_str().map(str::to_string))
        .collect();
    for p in dashboard["panels"].as_array().unwrap() {
        exprs.push(p["targets"][0]["expr"].as_str().unwrap().to_string());
    }
    // A running vigie with each kind of metric (an ACME site whose two CAs are unreachable,
    // so that its failed order and its fallback to the second CA are counted).
    let o = Origin::start("app").await;
    let cfg = format!(
        "[server]\nhttp = [\"{{http}}\"]\nhttps = [\"{{https}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
         [[acme.ca]]\ndirectory = \"https://127.0.0.1:1/dir\"\n\
         [[acme.ca]]\ndirectory = \"https://127.0.0.1:2/dir\"\n\
         [limits.ip]\nrate = \"10/s\"\n[upstreams.app]\nservers = [\"{}\"]\n\
         [[sites]]\nnames = [\"localhost\"]\ntls = \"internal\"\nlimit = \"ip\"\n[[sites.routes]]\npath = \"/\"\nupstream = \"app\"\n\
         [[sites]]\nnames = [\"acme.example.com\"]\ntls = \"acme\"\n[[sites.routes]]\npath = \"/\"\nrespond = {{}}\n",
        o.addr_str()
    );
    let v = Vigie::start(&cfg).await;
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(v.state().join("ca/root.pem")).unwrap())
            .unwrap();
    let r = v
        .https_client(&["localhost"], &[root])
        .get(v.https_url("localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    v.wait_log("certificate order failed").await;
    crate::support::wait_until(
        std::time::Duration::from_secs(5),
        "a counted request",
        || async {
            let m = v.metrics().await;
            m.contains("vigie_acme_orders_total{") && m.contains("vigie_acme_fallback_total{")
        },
    )
    .await;
    // And an instance of a cluster, for the cluster's metrics.
    let redis = crate::support::redis::Redis::start().await;
    let key = v.dir.path().join("cluster.key");
    std::fs::write(&key, [3u8; 32]).unwrap();
    let member = Vigie::start(&format!(
        "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = \"{{state}}\"\n\
         [cluster]\nredis = \"{}\"\nnode_id = \"n1\"\nencryption_key_file = \"{}\"\n\
         [[sites]]\nnames = [\"a.test\"]\n[[sites.routes]]\npath = \"/\"\nrespond = {{}}\n",
        redis.url,
        key.display()
    ))
    .await;
    let exported = v.metrics().await + &member.metrics().await;
    for expr in exprs {
        for (i, _) in expr.match_indices("vigie_") {
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = name.trim_end_matches("_bucket");
            assert!(
                exported.contains(&format!("# TYPE {family} ")),
                "{family} (used in `{expr}`) is not exported"
            );
        }
    }
}

/// A user's clone has nothing beside it: no tracked file may reach outside the repository
/// (the project's notes folder lives there during development, never on a user's machine).
#[test]
fn nothing_tracked_reads_outside_the_repository() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("git")
        .args(["-C", root, "ls-files"])
        .output()
        .expect("git");
    assert!(out.status.success(), "git ls-files failed");
    let needle = ["..", "/shared"].concat();
    let mut found = Vec::new();
    for file in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(text) = std::fs::read_to_string(format!("{root}/{file}")) else {
            continue;
        };
        if text.contains(&needle) {
            found.push(file.to_string());
        }
        assert!(
            !file.ends_with(".data") && !file.contains("flamegraph"),
            "profiler output is tracked: {file}"
        );
    }
    assert!(found.is_empty(), "these files refer to {needle}: {found:?}");
}
