//! `vigie check` compiles the plan and acquires nothing: like `nginx -t`, it writes, creates,
//! resolves and connects nothing, whatever the configuration asks for at start (a local CA in
//! `state_dir`, a cache directory, upstream servers by name).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use crate::support::vigie::bin;

/// Every entry under `root`: relative path -> (kind, size, mode, mtime).
fn listing(root: &Path) -> BTreeMap<String, (bool, u64, u32, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            out.insert(
                rel,
                (
                    meta.is_dir(),
                    meta.len(),
                    meta.permissions().mode(),
                    meta.modified().unwrap(),
                ),
            );
            if meta.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    out
}

fn run(args: &[&str], config: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap()
}

/// A config using the local CA, a disk cache zone and upstreams by name, with its
/// `state_dir` under a read-only directory that does not have it yet.
fn config(root: &Path, origin_port: u16) -> String {
    format!(
        r#"
[server]
http = ["127.0.0.1:1"]
https = ["127.0.0.1:2"]
admin = false
state_dir = "{state}"

[cache.pages]
memory = "1MiB"
disk = "{cache}"
disk_size = "8MiB"

[upstreams.app]
servers = ["localhost:{origin_port}"]

[upstreams.elsewhere]
servers = ["vigie-check-never-resolves.invalid:8080"]

[[sites]]
names = ["localhost"]
tls = "internal"
  [[sites.routes]]
  path = "/other/"
  upstream = "elsewhere"
  [[sites.routes]]
  path = "/"
  upstream = "app"
  cache = {{ zone = "pages", valid = {{ "200" = "1m" }} }}
"#,
        state = root.join("locked/state").display(),
        cache = root.join("locked/cache").display(),
    )
}

#[test]
fn check_touches_nothing_and_says_what_start_would_do() {
    let root = tempfile::tempdir().unwrap();
    let locked = root.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let path = root.path().join("vigie.toml");
    std::fs::write(&path, config(root.path(), 8081)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = listing(root.path());

    let out = run(&["check"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("vigie: the configuration "), "{stdout}");
    assert!(stdout.contains("is valid: 1 site, 2 routes"), "{stdout}");
    let ca_dir = locked.join("state/ca");
    assert!(
        stderr.contains(&format!(
            "note: the local CA does not exist yet: it will be created in {} at start",
            ca_dir.display()
        )),
        "{stderr}"
    );
    // A name that cannot resolve passes the check: names are resolved at start only.
    assert!(
        stderr.contains(
            "note: upstream \"elsewhere\": server \"vigie-check-never-resolves.invalid:8080\" \
             will be resolved at start (not here)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("warning:"), "{stderr}");
    // `vigie reload` checks the same way before looking for a running instance.
    let reload = run(&["reload"], &path);
    let reload_err = String::from_utf8_lossy(&reload.stderr);
    assert_eq!(reload.status.code(), Some(1), "{reload_err}");
    assert!(
        reload_err.starts_with("vigie: no running instance: cannot read a pid from"),
        "{reload_err}"
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut after = listing(root.path());
    // Only the mode we changed back differs.
    if let Some(entry) = after.get_mut("locked") {
        entry.2 = before["locked"].2;
    }
    assert_eq!(before, after, "vigie check changed the disk");
}

#[test]
fn check_loads_an_existing_local_ca_without_changing_it() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("locked")).unwrap();
    let path = root.path().join("vigie.toml");
    std::fs::write(&path, config(root.path(), 8081)).unwrap();
    // `vigie ca` creates the CA (that is its purpose).
    let ca = run(&["ca"], &path);
    assert_eq!(
        ca.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ca.stderr)
    );
    let before = listing(root.path());
    assert!(
        before.contains_key("locked/state/ca/root.pem"),
        "{before:?}"
    );

    let out = run(&["check"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("local CA"), "{stderr}");
    assert_eq!(before, listing(root.path()), "vigie check changed the disk");

    // A corrupt CA is an error for check, as it would be at start.
    std::fs::write(root.path().join("locked/state/ca/root.pem"), "not a PEM\n").unwrap();
    let out = run(&["check"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "vigie: the configuration {} is invalid\n",
            path.display()
        )),
        "{stderr}"
    );
}
