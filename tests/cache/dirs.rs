//! The disk tier's directory: what `vigie check`, start and reload accept, what they refuse
//! (with the position of `disk`), that nothing vigie did not write is ever removed, and that
//! a reload frees the zones it drops (resident memory stays flat over 50 reloads).

use std::path::Path;
use std::time::Duration;

use crate::support::vigie::check;
use crate::support::{wait_until, Origin, Vigie};

use super::get;

/// A config with one zone per `(name, disk)`, every route on the first.
fn zones_config(state: &Path, zones: &[(&str, &Path)], origin: &str) -> String {
    let mut text = format!(
        "[server]\nhttp = [\"{{http}}\"]\nadmin = \"{{admin}}\"\nstate_dir = {:?}\n",
        state.display().to_string()
    );
    for (name, dir) in zones {
        text.push_str(&format!(
            "\n[cache.{name}]\nmemory = \"64KiB\"\ndisk = {:?}\ndisk_size = \"1MiB\"\n",
            dir.display().to_string()
        ));
    }
    text.push_str(&format!(
        "\n[upstreams.app]\nservers = [\"{origin}\"]\n\n[[sites]]\nnames = [\"example.com\"]\n  \
         [[sites.routes]]\n  path = \"/c/\"\n  upstream = \"app\"\n  cache = {{ zone = \"{}\", \
         valid = {{ \"200\" = \"5m\" }} }}\n",
        zones[0].0
    ));
    text
}

/// `FILE:LINE:COL` of the `n`th `disk =` key of `text` (0-based), as `vigie check` prints it.
fn disk_at(text: &str, n: usize) -> String {
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("disk ="))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap();
    format!("test.toml:{line}:1")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn check_refuses_a_directory_with_files_vigie_did_not_write_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    // Named like a cache entry, but in a directory vigie never marked.
    std::fs::write(mine.join("0123456789abcdef0123456789abcdef"), "mine too").unwrap();
    let missing = tmp.path().join("missing");
    set_mode(&state, 0o555);
    set_mode(&mine, 0o555);
    let text = zones_config(&state, &[("a", &mine), ("b", &missing)], "127.0.0.1:1")
        .replace("{http}", "127.0.0.1:1")
        .replace("{admin}", "127.0.0.1:2");
    let out = check(&text);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let want = format!(
        "{}: cache zone \"a\": disk directory {}: holds files vigie did not write \
         (0123456789abcdef0123456789abcdef, notes.txt) and no .vigie-cache marker",
        disk_at(&text, 0),
        mine.display()
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(err.matches("cache zone").count(), 1, "{err}");
    set_mode(&state, 0o755);
    set_mode(&mine, 0o755);
    assert_eq!(std::fs::read(mine.join("notes.txt")).unwrap(), b"keep me");
    assert_eq!(
        listing(&mine),
        ["0123456789abcdef0123456789abcdef", "notes.txt"]
    );
    // Nothing written anywhere: the empty state_dir, the missing directory not created.
    assert!(listing(&state).is_empty());
    assert!(!missing.exists());

    // A valid config is checked without creating its directory either.
    let text = zones_config(&state, &[("b", &missing)], "127.0.0.1:1")
        .replace("{http}", "127.0.0.1:1")
        .replace("{admin}", "127.0.0.1:2");
    let out = check(&text);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!missing.exists() && listing(&state).is_empty());
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn check_refuses_state_dir_and_two_zones_on_one_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let shared = tmp.path().join("shared");
    let text = zones_config(
        &state,
        &[("a", &state), ("b", &shared), ("c", &shared)],
        "127.0.0.1:1",
    )
    .replace("{http}", "127.0.0.1:1")
    .replace("{admin}", "127.0.0.1:2");
    let out = check(&text);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let want = [
        format!(
            "{}: cache zone \"a\": disk directory {}: is state_dir",
            disk_at(&text, 0),
            state.display()
        ),
        format!(
            "{}: cache zone \"c\": disk directory {}: is also the disk directory of zone \"b\"",
            disk_at(&text, 2),
            shared.display()
        ),
    ];
    for w in &want {
        assert!(err.contains(w.as_str()), "{w}\nnot in\n{err}");
    }
    assert_eq!(err.matches("cache zone").count(), 2, "{err}");
    assert!(!state.exists() && !shared.exists());
}

/// A marked directory with entries from a previous run is used again (hits after a restart);
/// its files that are not vigie's and a temporary file being written stay; a stale temporary
/// file goes. A reload onto a directory vigie does not own is rejected and the old
/// configuration keeps serving.
#[tokio::test]
async fn a_marked_directory_is_reused_and_only_vigies_own_files_are_removed() {
    let o = Origin::start("app").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("disk");
    let state = tmp.path().join("state");
    let text = zones_config(&state, &[("api", &dir)], &o.addr_str());
    let mut v = Vigie::start(&text).await;
    assert!(std::fs::read_to_string(dir.join(".vigie-cache"))
        .unwrap()
        .contains("zone \"api\""));
    assert_eq!(get(&v, "/c/warm?size=3000").await.cache, "MISS");
    let entry = "0123456789abcdef0123456789abcdef";
    let writing = format!("{entry}.77.tmp");
    let stale = format!("{entry}.78.tmp");
    std::fs::write(dir.join("README"), "the operator's").unwrap();
    std::fs::write(dir.join(&writing), "half").unwrap();
    let f = std::fs::File::create(dir.join(&stale)).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    drop(f);
    v.restart().await;
    let again = get(&v, "/c/warm?size=3000").await;
    assert_eq!((again.cache.as_str(), again.body.len()), ("HIT", 3000));
    assert_eq!(o.count(), 1);
    assert_eq!(
        std::fs::read(dir.join("README")).unwrap(),
        b"the operator's"
    );
    assert!(dir.join(&writing).exists());
    assert!(!dir.join(&stale).exists());

    // A reload onto a directory holding someone else's file: rejected, nothing touched.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("data.db"), "precious").unwrap();
    v.write_config(&zones_config(&state, &[("api", &foreign)], &o.addr_str()));
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    assert!(
        v.log().contains("holds files vigie did not write"),
        "{}",
        v.log()
    );
    assert_eq!(listing(&foreign), ["data.db"]);
    assert_eq!(get(&v, "/c/warm?size=3000").await.cache, "HIT");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn memory_config(origin: &str, zone: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[cache.{zone}]
memory = "8MiB"
max_object = "1MiB"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/c/"
  upstream = "app"
  cache = {{ zone = "{zone}", valid = {{ "200" = "5m" }} }}
"#
    )
}

/// 50 reloads, each renaming the zone (so a new zone is opened and the old one dropped) and
/// filling the new one with 4 MiB: resident memory stays flat after the first rounds.
#[tokio::test]
async fn fifty_reloads_renaming_a_filled_zone_keep_memory_flat() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&memory_config(&o.addr_str(), "a")).await;
    let mut rss = Vec::new();
    for round in 0..50 {
        for i in 0..64 {
            let g = get(&v, &format!("/c/fill/{i}?size=65536")).await;
            assert_eq!(
                (g.status, g.cache.as_str(), g.body.len()),
                (200, "MISS", 65536)
            );
        }
        let g = get(&v, "/c/fill/63?size=65536").await;
        assert_eq!(
            (g.cache.as_str(), g.body.len()),
            ("HIT", 65536),
            "round {round}"
        );
        rss.push(rss_kib(v.pid()));
        let zone = if round % 2 == 0 { "b" } else { "a" };
        v.write_config(&memory_config(&o.addr_str(), zone));
        v.signal("HUP");
        wait_until(Duration::from_secs(10), "the reload", || async {
            v.log().matches("configuration reloaded").count() > round
        })
        .await;
    }
    let settled = rss[9];
    let highest = rss[10..].iter().copied().max().unwrap();
    eprintln!("VmRSS (KiB) per round: {rss:?}");
    assert!(
        highest <= settled + 8 * 1024,
        "resident memory grew from {settled} KiB (round 10) to {highest} KiB: {rss:?}"
    );
}
