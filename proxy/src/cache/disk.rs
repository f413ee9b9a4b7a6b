//! A zone's disk tier: one file per entry in a directory the tier owns, bounded by an LRU of
//! file sizes, indexed in memory (name, URL, key, size) so a lookup reads only the file of a
//! hit.
//!
//! The directory is the tier's own ([`super::check`]): opening marks an empty or missing
//! directory and refuses any other unmarked one. Each entry is written to a temporary name
//! (`NAME.PID.tmp`) and renamed, so a crash leaves the old entry, the new one, or a stray
//! temporary file. At open, entries are indexed (and trimmed to the bound); broken entries
//! and temporary files older than a minute are removed. Nothing else is ever removed: only
//! regular files named like an entry or one of its temporary files, inside a marked
//! directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use pingora::cache::eviction::CacheEntryKey;
use pingora::{Error, ErrorType, Result};

use super::check::{self, Problem, State, MARKER, MARKER_HEAD};
use super::codec::{self, is_entry_name, Entry, Summary};
use super::memory::Bound;

/// A temporary file older than this was left by a crash, not a write in progress.
const STALE_TMP: Duration = Duration::from_secs(60);

/// The disk tier.
pub(super) struct DiskTier {
    dir: PathBuf,
    index: RwLock<HashMap<String, Summary>>,
    pub(super) bound: Bound,
    bytes: AtomicU64,
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> Box<Error> {
    move |e| Error::because(ErrorType::InternalError, context, e)
}

impl DiskTier {
    /// Open the tier of zone `zone` in `dir`, bounded to `limit` bytes: the directory is
    /// created and marked if missing or empty, refused if it holds files without the marker;
    /// the entries there are indexed.
    pub(super) fn open(zone: &str, dir: &Path, limit: u64) -> Result<DiskTier, Problem> {
        match check::inspect(dir)? {
            State::Missing => {
                std::fs::create_dir_all(dir).map_err(Problem::Io)?;
                mark(zone, dir)?;
            }
            State::Empty => mark(zone, dir)?,
            State::Marked => {}
        }
        let tier = DiskTier {
            dir: dir.to_path_buf(),
            index: RwLock::new(HashMap::new()),
            bound: Bound::new(limit),
            bytes: AtomicU64::new(0),
        };
        tier.scan().map_err(Problem::Io)?;
        Ok(tier)
    }

    /// Index the entries of the directory; remove broken ones and stale temporary files.
    fn scan(&self) -> std::io::Result<()> {
        for dirent in std::fs::read_dir(&self.dir)? {
            let dirent = dirent?;
            if !dirent.file_type()?.is_file() {
                continue;
            }
            let path = dirent.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if is_tmp_name(name) {
                if is_stale(&path) {
                    tracing::info!(file = %path.display(), "removing a stale cache temporary file");
                    let _ = std::fs::remove_file(&path);
                }
                // Else being written right now by a running vigie.
                continue;
            }
            if !is_entry_name(name) {
                continue;
            }
            match codec::read_summary(&path) {
                Ok(summary) => {
                    for gone in self.index_entry(name.to_owned(), summary) {
                        self.remove(&gone);
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "removing a broken cache file");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(())
    }

    /// Index `summary` as `hash`; the names the bound pushed out.
    fn index_entry(&self, hash: String, summary: Summary) -> Vec<String> {
        let key = CacheEntryKey::key_only(summary.compact.clone());
        let size = summary.size;
        if let Some(old) = self.index.write().insert(hash, summary) {
            self.bytes.fetch_sub(old.size, Ordering::Relaxed);
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.bound
            .admit(key, usize::try_from(size).unwrap_or(usize::MAX))
    }

    /// The entry named `hash`, if the tier has it; a missing or broken file is forgotten.
    pub(super) async fn read(&self, hash: &str) -> Result<Option<Entry>> {
        if !self.index.read().contains_key(hash) {
            return Ok(None);
        }
        let path = self.dir.join(hash);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.remove(hash);
                return Ok(None);
            }
            Err(e) => return Err(io_err("reading a cache file")(e)),
        };
        match codec::decode(bytes) {
            Some(entry) => Ok(Some(entry)),
            None => {
                tracing::warn!(file = %path.display(), "removing a broken cache file");
                self.remove(hash);
                Ok(None)
            }
        }
    }

    /// Write `entry` as `hash` (whole, through a temporary file); the names the bound pushed
    /// out, for the caller to remove from both tiers.
    pub(super) async fn write(&self, hash: &str, entry: &Entry) -> Result<Vec<String>> {
        let bytes = codec::encode(entry);
        let path = self.dir.join(hash);
        let tmp = self.dir.join(format!("{hash}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(io_err("writing a cache file"))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_err("renaming a cache file")(e));
        }
        let summary = Summary {
            url: entry.url.clone(),
            compact: entry.compact.clone(),
            size: bytes.len() as u64,
        };
        Ok(self.index_entry(hash.to_owned(), summary))
    }

    /// Mark the entry named `hash` as just used.
    pub(super) fn access(&self, hash: &str) {
        if let Some(s) = self.index.read().get(hash) {
            let size = usize::try_from(s.size).unwrap_or(usize::MAX);
            self.bound
                .access(&CacheEntryKey::key_only(s.compact.clone()), size);
        }
    }

    /// Remove the entry named `hash` (its file too); whether it was there.
    pub(super) fn remove(&self, hash: &str) -> bool {
        let Some(s) = self.index.write().remove(hash) else {
            return false;
        };
        self.bytes.fetch_sub(s.size, Ordering::Relaxed);
        self.bound.remove(&CacheEntryKey::key_only(s.compact));
        let _ = std::fs::remove_file(self.dir.join(hash));
        true
    }

    /// Names of the entries whose URL `matches`.
    pub(super) fn matching(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        self.index
            .read()
            .iter()
            .filter(|(_, s)| matches(&s.url))
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.index.read().len()
    }

    /// Bytes of its files.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Write the marker into `dir` (missing or empty a moment ago).
fn mark(zone: &str, dir: &Path) -> Result<(), Problem> {
    use std::io::Write;
    let text = format!(
        "{MARKER_HEAD} of vigie cache zone \"{zone}\".\nvigie removes only its own files here: \
         entries (32 hex digits) and their temporary files (NAME.PID.tmp).\n"
    );
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(MARKER))
    {
        Ok(mut f) => f.write_all(text.as_bytes()).map_err(Problem::Io),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match check::inspect(dir)? {
            State::Marked => Ok(()),
            _ => Err(Problem::Io(e)),
        },
        Err(e) => Err(Problem::Io(e)),
    }
}

/// Whether `name` is a temporary file of an entry being written: `NAME.PID.tmp`.
fn is_tmp_name(name: &str) -> bool {
    name.strip_suffix(".tmp")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(hash, pid)| {
            is_entry_name(hash) && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A file last written more than [`STALE_TMP`] ago.
fn is_stale(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TMP)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NAME: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn temporary_names() {
        assert!(is_tmp_name(&format!("{NAME}.42.tmp")));
        for other in [
            format!("{NAME}.tmp"),
            format!("{NAME}..tmp"),
            format!("{NAME}.4x.tmp"),
            "notes.1.tmp".to_owned(),
            format!("{NAME}.42"),
        ] {
            assert!(!is_tmp_name(&other), "{other}");
        }
    }

    /// Opening marks an empty directory, indexes entries, removes broken entries and stale
    /// temporary files, and leaves everything else alone.
    #[test]
    fn open_removes_only_its_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let tier = DiskTier::open("z", &dir, 1 << 20).unwrap();
        assert!(std::fs::read_to_string(dir.join(MARKER))
            .unwrap()
            .starts_with("vigie cache directory of vigie cache zone \"z\""));
        drop(tier);
        let e = codec::tests::entry("https://a.example/x", b"hello");
        let good = codec::hash_of(&e.compact);
        std::fs::write(dir.join(&good), codec::encode(&e)).unwrap();
        std::fs::write(dir.join(NAME), b"VIGIEC1\ntorn").unwrap();
        let fresh = format!("{NAME}.7.tmp");
        std::fs::write(dir.join(&fresh), b"half").unwrap();
        let stale = format!("{good}.8.tmp");
        let f = std::fs::File::create(dir.join(&stale)).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
            .unwrap();
        drop(f);
        let keep = ["notes.txt", "ABCDEF0123456789ABCDEF0123456789"];
        for k in keep {
            std::fs::write(dir.join(k), b"not vigie's").unwrap();
        }
        std::fs::create_dir(dir.join("fedcba9876543210fedcba9876543210")).unwrap();
        let tier = DiskTier::open("z", &dir, 1 << 20).unwrap();
        assert_eq!(tier.len(), 1);
        assert_eq!(tier.bytes(), codec::encode(&e).len() as u64);
        assert!(dir.join(&good).exists() && dir.join(&fresh).exists());
        assert!(!dir.join(NAME).exists() && !dir.join(&stale).exists());
        for k in keep {
            assert_eq!(std::fs::read(dir.join(k)).unwrap(), b"not vigie's");
        }
        assert!(dir.join("fedcba9876543210fedcba9876543210").is_dir());
    }

    #[test]
    fn an_unmarked_directory_with_files_is_refused_and_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(NAME), b"VIGIEC1\ntorn").unwrap();
        let err = DiskTier::open("z", tmp.path(), 1 << 20).err().unwrap();
        assert!(matches!(err, Problem::Foreign { .. }), "{err}");
        assert!(tmp.path().join(NAME).exists());
        assert!(!tmp.path().join(MARKER).exists());
    }
}
