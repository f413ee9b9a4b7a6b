//! A zone's store: its memory tier, its optional disk tier, and the bounds between them.
//!
//! Without a disk tier, memory holds every entry and its bound evicts for good. With one,
//! every entry is on disk (bounded by the disk LRU, which evicts for good) and memory holds a
//! hot subset (its bound only drops the memory copy). Entries are keyed by pingora's combined
//! key hash (primary key + variance) and stored whole when their body is complete, so a
//! half-written entry is never visible (readers of a key being fetched wait on the cache lock
//! instead).
//!
//! The store drives its bounds itself (pingora is given no eviction manager): a stored entry
//! is admitted to each tier's LRU, a hit marks it used, and what an LRU pushes out is removed
//! here at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pingora::Result;
use vigie_config::CacheZone;

use super::check::ZoneError;
use super::codec::Entry;
use super::disk::DiskTier;
use super::memory::MemoryTier;

/// A zone's entries, shared by every snapshot that has the zone and every request using it.
pub(super) struct ZoneStore {
    memory: MemoryTier,
    disk: Option<DiskTier>,
    memory_bytes: AtomicU64,
    evictions: AtomicU64,
}

impl ZoneStore {
    /// The store of `config`: empty memory, and the disk tier opened (see [`DiskTier::open`]).
    pub(super) fn open(config: &CacheZone) -> Result<ZoneStore, ZoneError> {
        let disk = match &config.disk {
            None => None,
            Some((dir, size)) => Some(
                DiskTier::open(&config.name, dir, *size)
                    .map_err(|p| ZoneError::new(config, dir, p))?,
            ),
        };
        Ok(ZoneStore {
            memory: MemoryTier::new(config.memory),
            disk,
            memory_bytes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Move the bounds to those of `config` (same tiers): entries above them go at the next
    /// admission.
    pub(super) fn set_bounds(&self, config: &CacheZone) {
        self.memory.bound.set_limit(config.memory);
        if let (Some(disk), Some((_, size))) = (&self.disk, &config.disk) {
            disk.bound.set_limit(*size);
        }
    }

    /// The entry named `hash`, from memory or else from disk (then kept in memory).
    pub(super) async fn find(&self, hash: &str) -> Result<Option<Arc<Entry>>> {
        if let Some(e) = self.memory.get(hash) {
            if let Some(disk) = &self.disk {
                disk.access(hash);
            }
            return Ok(Some(e));
        }
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let Some(e) = disk.read(hash).await?.map(Arc::new) else {
            return Ok(None);
        };
        disk.access(hash);
        self.put_memory(hash.to_owned(), e.clone());
        Ok(Some(e))
    }

    /// Store `entry` as `hash` in every tier, replacing any entry of that name.
    pub(super) async fn store(&self, hash: String, entry: Arc<Entry>) -> Result<()> {
        let evicted = match &self.disk {
            Some(disk) => disk.write(&hash, &entry).await?,
            None => Vec::new(),
        };
        self.put_memory(hash, entry);
        for gone in evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            self.remove(&gone);
        }
        Ok(())
    }

    /// Put an entry in the memory tier, dropping what its bound pushes out (from memory only
    /// when there is a disk tier, for good otherwise).
    fn put_memory(&self, hash: String, entry: Arc<Entry>) {
        let weight = entry.weight() as u64;
        let (old, evicted) = self.memory.insert(hash, entry);
        self.memory_bytes.fetch_sub(old as u64, Ordering::Relaxed);
        self.memory_bytes.fetch_add(weight, Ordering::Relaxed);
        for gone in evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            if self.disk.is_some() {
                self.remove_from_memory(&gone);
            } else {
                self.remove(&gone);
            }
        }
    }

    fn remove_from_memory(&self, hash: &str) -> bool {
        match self.memory.remove(hash) {
            Some(weight) => {
                self.memory_bytes
                    .fetch_sub(weight as u64, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Remove the entry named `hash` from every tier; whether it was there.
    pub(super) fn remove(&self, hash: &str) -> bool {
        let in_memory = self.remove_from_memory(hash);
        let on_disk = self.disk.as_ref().is_some_and(|d| d.remove(hash));
        in_memory || on_disk
    }

    /// Remove every entry whose URL is `url`, or starts with it when `prefix`. How many.
    pub(super) fn purge_urls(&self, url: &str, prefix: bool) -> usize {
        // Keys with extra parts are "URL\npart=value...": an exact purge takes them all.
        let matches = |u: &str| match u.strip_prefix(url) {
            Some(rest) => prefix || rest.is_empty() || rest.starts_with('\n'),
            None => false,
        };
        let mut hashes = self.memory.matching(matches);
        if let Some(disk) = &self.disk {
            hashes.extend(disk.matching(matches));
        }
        hashes.sort();
        hashes.dedup();
        for hash in &hashes {
            self.remove(hash);
        }
        hashes.len()
    }

    /// (memory bytes, disk bytes, evictions so far).
    pub(super) fn usage(&self) -> (u64, u64, u64) {
        (
            self.memory_bytes.load(Ordering::Relaxed),
            self.disk.as_ref().map_or(0, DiskTier::bytes),
            self.evictions.load(Ordering::Relaxed),
        )
    }

    /// Entries held: (memory, disk).
    pub(super) fn entries(&self) -> (usize, usize) {
        (
            self.memory.len(),
            self.disk.as_ref().map_or(0, DiskTier::len),
        )
    }
}
