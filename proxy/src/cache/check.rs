//! Which directories a disk tier may use: the pure check run by `vigie check`, `run` and
//! every reload, before anything is opened.
//!
//! A disk tier writes only into a directory it owns: one holding its marker file
//! ([`MARKER`], written when vigie first uses the directory), or an empty or missing one
//! (created and marked when the zone is opened, never by the check). Refused: a directory
//! holding files without the marker, `state_dir` itself, a directory containing it or inside
//! its `certs/`, `acme/` or `ca/`, and a directory another zone uses (the same, or one inside
//! the other). The check reads directory listings and metadata only: it writes, creates and
//! removes nothing.

use std::path::{Component, Path, PathBuf};

use vigie_config::{CacheZone, Config, ConfigError, ConfigErrors, Position};

/// The file that marks a directory as a disk tier's own.
pub(super) const MARKER: &str = ".vigie-cache";
/// What a marker starts with (a file of that name but other content is not vigie's).
pub(super) const MARKER_HEAD: &str = "vigie cache directory";
/// The parts of `state_dir` holding what vigie cannot rebuild from a cache.
const STATE_PARTS: [&str; 3] = ["certs", "acme", "ca"];

/// Why a zone's disk directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Files are there and the marker is not.
    #[error(
        "holds files vigie did not write ({names}) and no {MARKER} marker: expected an empty \
         or missing directory, or one vigie's cache already uses"
    )]
    Foreign {
        /// A few of the files, for the message.
        names: String,
    },
    /// Something other than a directory is at that path.
    #[error("is not a directory")]
    NotADirectory,
    /// It is `state_dir`.
    #[error("is state_dir: expected a directory of its own, like state_dir/cache")]
    StateDir,
    /// It contains `state_dir`.
    #[error("contains state_dir {0}: expected a directory of its own, like state_dir/cache")]
    ContainsStateDir(PathBuf),
    /// It is inside `state_dir/certs`, `acme` or `ca`.
    #[error("is inside state_dir/{0}, which holds vigie's own state: expected a directory of its own, like state_dir/cache")]
    InsideState(&'static str),
    /// Another zone uses it, or a directory inside it, or one around it.
    #[error("{how} the disk directory of zone \"{other}\": expected one directory per zone")]
    Shared {
        /// "is also", "is inside" or "contains".
        how: &'static str,
        /// The other zone.
        other: String,
    },
    /// Its listing (or metadata) cannot be read, or it cannot be created or marked.
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

/// A cache zone whose disk directory cannot be used, with where `disk` is in the file.
#[derive(Debug, thiserror::Error)]
#[error("cache zone \"{zone}\": disk directory {}: {problem}", dir.display())]
pub struct ZoneError {
    /// The zone.
    pub zone: String,
    /// The directory, as the config names it.
    pub dir: PathBuf,
    /// Where the zone's `disk` key is.
    pub at: Position,
    /// What is wrong.
    #[source]
    pub problem: Problem,
}

impl ZoneError {
    pub(super) fn new(zone: &CacheZone, dir: &Path, problem: Problem) -> ZoneError {
        ZoneError {
            zone: zone.name.clone(),
            dir: dir.to_path_buf(),
            at: zone.disk_at,
            problem,
        }
    }
}

/// Every zone error of a config, in file order. Never empty when returned.
#[derive(Debug, thiserror::Error)]
pub struct ZoneErrors(pub Vec<ZoneError>);

impl std::fmt::Display for ZoneErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: {e}", e.at.line, e.at.col)?;
        }
        Ok(())
    }
}

impl ZoneErrors {
    /// The errors as configuration errors of the file `origin` (`FILE:LINE:COL: ...`).
    pub fn in_file(&self, origin: &str) -> ConfigErrors {
        ConfigErrors(
            self.0
                .iter()
                .map(|e| ConfigError {
                    origin: origin.to_owned(),
                    line: e.at.line,
                    col: e.at.col,
                    message: e.to_string(),
                })
                .collect(),
        )
    }
}

impl From<ZoneError> for ZoneErrors {
    fn from(e: ZoneError) -> Self {
        ZoneErrors(vec![e])
    }
}

/// The pure check of every zone of `config`: all the errors, in file order.
pub fn check(config: &Config) -> Result<(), ZoneErrors> {
    let state = resolve(&config.server.state_dir);
    let mut disks: Vec<(&CacheZone, &Path, PathBuf)> = config
        .caches
        .values()
        .filter_map(|z| {
            z.disk
                .as_ref()
                .map(|(dir, _)| (z, dir.as_path(), resolve(dir)))
        })
        .collect();
    disks.sort_by_key(|(z, _, _)| (z.disk_at.line, z.disk_at.col));
    let mut errors = Vec::new();
    for (i, (zone, dir, resolved)) in disks.iter().enumerate() {
        let mut problems = placement(resolved, &state);
        for (other, _, theirs) in &disks[..i] {
            if let Some(how) = overlap(resolved, theirs) {
                problems.push(Problem::Shared {
                    how,
                    other: other.name.clone(),
                });
            }
        }
        if problems.is_empty() {
            if let Err(p) = inspect(dir) {
                problems.push(p);
            }
        }
        errors.extend(problems.into_iter().map(|p| ZoneError::new(zone, dir, p)));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ZoneErrors(errors))
    }
}

/// What is wrong with where `dir` is, given `state_dir` (both resolved).
fn placement(dir: &Path, state: &Path) -> Vec<Problem> {
    if dir == state {
        return vec![Problem::StateDir];
    }
    if state.starts_with(dir) {
        return vec![Problem::ContainsStateDir(state.to_path_buf())];
    }
    STATE_PARTS
        .iter()
        .find(|part| dir.starts_with(state.join(part)))
        .map(|part| Problem::InsideState(part))
        .into_iter()
        .collect()
}

fn overlap(mine: &Path, theirs: &Path) -> Option<&'static str> {
    if mine == theirs {
        Some("is also")
    } else if mine.starts_with(theirs) {
        Some("is inside")
    } else if theirs.starts_with(mine) {
        Some("contains")
    } else {
        None
    }
}

/// What a usable directory is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Nothing there yet: created and marked at open.
    Missing,
    /// An empty directory: marked at open.
    Empty,
    /// A directory with vigie's marker.
    Marked,
}

/// Look at `dir` (listing and metadata only).
pub(super) fn inspect(dir: &Path) -> Result<State, Problem> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Missing),
        Err(e) => return Err(Problem::Io(e)),
        Ok(m) if !m.is_dir() => return Err(Problem::NotADirectory),
        Ok(_) => {}
    }
    if is_marked(dir) {
        return Ok(State::Marked);
    }
    let mut names = Vec::new();
    for dirent in std::fs::read_dir(dir).map_err(Problem::Io)? {
        let dirent = dirent.map_err(Problem::Io)?;
        names.push(dirent.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(State::Empty);
    }
    names.sort();
    let mut shown = names[..names.len().min(3)].join(", ");
    if names.len() > 3 {
        shown.push_str(&format!(" and {} more", names.len() - 3));
    }
    Err(Problem::Foreign { names: shown })
}

/// Whether `dir` holds a marker vigie wrote.
fn is_marked(dir: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(dir.join(MARKER)) else {
        return false;
    };
    let mut head = [0u8; MARKER_HEAD.len()];
    f.read_exact(&mut head).is_ok() && head == MARKER_HEAD.as_bytes()
}

/// `path` made absolute, `.` and `..` resolved, and symbolic links resolved in the part that
/// exists, so two spellings of one directory compare equal.
fn resolve(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(state: &Path, zones: &[(&str, &Path)]) -> Config {
        let mut text = format!(
            "[server]\nhttp = [\"127.0.0.1:1\"]\nstate_dir = {:?}\n",
            state.display().to_string()
        );
        for (name, dir) in zones {
            text.push_str(&format!(
                "[cache.{name}]\nmemory = \"1MiB\"\ndisk = {:?}\ndisk_size = \"1MiB\"\n",
                dir.display().to_string()
            ));
        }
        vigie_config::parse(&text, "t.toml").unwrap()
    }

    fn messages(c: &Config) -> Vec<String> {
        match check(c) {
            Ok(()) => vec![],
            Err(e) => e.in_file("t.toml").iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn missing_empty_and_marked_directories_are_fine_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let marked = tmp.path().join("marked");
        std::fs::create_dir(&marked).unwrap();
        std::fs::write(
            marked.join(MARKER),
            format!("{MARKER_HEAD} of zone \"c\"\n"),
        )
        .unwrap();
        std::fs::write(marked.join("0123456789abcdef0123456789abcdef"), "x").unwrap();
        let missing = tmp.path().join("a/b/missing");
        let c = config(&state, &[("a", &missing), ("b", &empty), ("c", &marked)]);
        assert_eq!(messages(&c), Vec::<String>::new());
        assert!(!missing.exists() && !state.exists());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }

    #[test]
    fn every_refused_directory_is_reported_at_its_disk_key() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        let state = top.join("state");
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
        // A file named like the marker, not written by vigie.
        std::fs::write(foreign.join(MARKER), "something else").unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let shared = tmp.path().join("shared");
        let d = |p: &Path| p.display().to_string();
        type Case<'a> = (Vec<(&'a str, PathBuf)>, Vec<String>);
        let cases: Vec<Case> = vec![
            (
                vec![("a", foreign.clone())],
                vec![format!(
                    "t.toml:6:1: cache zone \"a\": disk directory {}: holds files vigie did not \
                     write (.vigie-cache, notes.txt) and no .vigie-cache marker: expected an \
                     empty or missing directory, or one vigie's cache already uses",
                    d(&foreign)
                )],
            ),
            (
                vec![("b", state.clone())],
                vec![format!(
                    "t.toml:6:1: cache zone \"b\": disk directory {}: is state_dir: expected a \
                     directory of its own, like state_dir/cache",
                    d(&state)
                )],
            ),
            (
                vec![("c", top.clone())],
                vec![format!(
                    "t.toml:6:1: cache zone \"c\": disk directory {}: contains state_dir {}: \
                     expected a directory of its own, like state_dir/cache",
                    d(&top),
                    d(&state)
                )],
            ),
            (
                vec![("d", state.join("acme/x")), ("ok", state.join("cache"))],
                vec![format!(
                    "t.toml:6:1: cache zone \"d\": disk directory {}: is inside state_dir/acme, \
                     which holds vigie's own state: expected a directory of its own, like \
                     state_dir/cache",
                    d(&state.join("acme/x"))
                )],
            ),
            (
                vec![("e", file.clone())],
                vec![format!(
                    "t.toml:6:1: cache zone \"e\": disk directory {}: is not a directory",
                    d(&file)
                )],
            ),
            (
                vec![
                    ("f", shared.clone()),
                    ("g", shared.join("./")),
                    ("h", shared.join("sub/..").join("sub")),
                ],
                vec![
                    format!(
                        "t.toml:10:1: cache zone \"g\": disk directory {}: is also the disk \
                         directory of zone \"f\": expected one directory per zone",
                        d(&shared.join("./"))
                    ),
                    format!(
                        "t.toml:14:1: cache zone \"h\": disk directory {}: is inside the disk \
                         directory of zone \"f\": expected one directory per zone",
                        d(&shared.join("sub/..").join("sub"))
                    ),
                    format!(
                        "t.toml:14:1: cache zone \"h\": disk directory {}: is inside the disk \
                         directory of zone \"g\": expected one directory per zone",
                        d(&shared.join("sub/..").join("sub"))
                    ),
                ],
            ),
        ];
        for (zones, want) in cases {
            let zones: Vec<(&str, &Path)> = zones.iter().map(|(n, p)| (*n, p.as_path())).collect();
            assert_eq!(messages(&config(&state, &zones)), want);
        }
        assert_eq!(std::fs::read(foreign.join("notes.txt")).unwrap(), b"mine");
        assert!(!top.exists() && !shared.exists());
    }
}
