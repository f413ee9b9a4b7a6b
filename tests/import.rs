//! `vigie import nginx` on the corpus (`tests/nginx_corpus/`): every file imports and passes
//! `vigie check`, and a differential run sends the same requests to real nginx (with the
//! original) and to vigie (with the import), both in front of the same real origins.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::vigie::bin;

mod differential;
mod harness;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nginx_corpus")
}

/// Runs `vigie import nginx FILE -o OUT`: (exit code, report).
fn import(file: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(bin())
        .args(["import", "nginx"])
        .arg(file)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run vigie import");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Copies a corpus entry into `dir`, replacing the absolute paths that exist only on a server.
fn stage(entry: &Path, dir: &Path) -> PathBuf {
    let d = dir.display().to_string();
    std::fs::write(
        dir.join("options-ssl-nginx.conf"),
        "ssl_session_cache shared:le_nginx_SSL:10m;\n",
    )
    .unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["example.com".into()]).unwrap();
    std::fs::write(dir.join("example.com.crt"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.join("example.com.key"),
        cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let fix = |text: String| {
        text.replace(
            "/etc/letsencrypt/options-ssl-nginx.conf",
            &format!("{d}/options-ssl-nginx.conf"),
        )
        .replace("/etc/ssl/", &format!("{d}/"))
        .replace("/etc/nginx/htpasswd", &format!("{d}/htpasswd"))
        .replace("/usr/share/nginx/html", &d)
    };
    std::fs::write(
        dir.join("htpasswd"),
        "admin:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n",
    )
    .unwrap();
    std::fs::write(dir.join("50x.html"), "<h1>Sorry</h1>\n").unwrap();
    if entry.is_dir() {
        let target = dir.join(entry.file_name().unwrap());
        copy_dir(entry, &target, &fix);
        target.join("nginx.conf")
    } else {
        let target = dir.join(entry.file_name().unwrap());
        std::fs::write(&target, fix(std::fs::read_to_string(entry).unwrap())).unwrap();
        target
    }
}

fn copy_dir(from: &Path, to: &Path, fix: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t, fix);
        } else {
            std::fs::write(&t, fix(std::fs::read_to_string(e.path()).unwrap())).unwrap();
        }
    }
}

#[test]
fn every_corpus_file_imports_and_passes_check() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 15,
        "corpus has {} configurations",
        entries.len()
    );
    let mut checked = 0;
    for entry in entries {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = stage(&entry, dir.path());
        let out = dir.path().join("vigie.toml");
        let (code, report) = import(&file, &out);
        assert_eq!(code, 0, "{name}: import failed:\n{report}");
        let toml = std::fs::read_to_string(&out).unwrap();
        assert!(
            toml.contains("# from "),
            "{name}: no source comments:\n{toml}"
        );
        let toml = toml.replacen("[server]\n", "[server]\nadmin = false\n", 1);
        std::fs::write(&out, &toml).unwrap();
        let o = Command::new(bin())
            .arg("check")
            .arg("-c")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: the import does not pass vigie check:\n{}\n{toml}\nreport:\n{report}",
            String::from_utf8_lossy(&o.stderr)
        );
        checked += 1;
    }
    assert_eq!(checked, 16, "every corpus entry is checked");
}

#[test]
fn certbot_paths_become_acme_and_every_drop_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = stage(&corpus().join("02-certbot.conf"), dir.path());
    let out = dir.path().join("vigie.toml");
    let (code, report) = import(&file, &out);
    assert_eq!(code, 0, "{report}");
    let toml = std::fs::read_to_string(&out).unwrap();
    assert!(toml.contains("tls = \"acme\""), "{toml}");
    assert!(toml.contains("https = [\"0.0.0.0:443\"]"), "{toml}");
    assert!(
        report.contains("02-certbot.conf:2: ssl_certificate — certbot certificate"),
        "{report}"
    );
    assert!(
        report.contains("options-ssl-nginx.conf:1: ssl_session_cache"),
        "{report}"
    );
    // The HTTP server block is certbot's redirect: vigie does it for tls sites.
    assert_eq!(toml.matches("[[sites]]").count(), 1, "{toml}");
}

#[test]
fn a_broken_file_is_a_positioned_error_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nginx.conf");
    std::fs::write(&file, "http {\n  server {\n    listen 80\n  }\n").unwrap();
    let (code, report) = import(&file, &dir.path().join("out.toml"));
    assert_eq!(code, 2);
    assert!(
        report.contains("nginx.conf:4:3: unexpected \"}\": directive \"listen\" has no \";\""),
        "{report}"
    );
}
