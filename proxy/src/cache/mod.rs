//! Cache zones on pingora-cache: storage, eviction bounds and the cache lock of each
//! `[cache.NAME]`.
//!
//! pingora wants its storage, eviction manager and lock as `&'static` references, so each
//! zone's parts are allocated once and live for the process. A reload keeps a zone whose
//! tiers are unchanged (same disk directory) with its entries, and only moves its bounds;
//! a zone whose disk directory changed is opened afresh.

pub mod storage;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pingora::cache::eviction::EvictionManager;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use vigie_config::CacheZone;

use self::storage::{ZoneLru, ZoneStorage};

/// Expected entries per LRU shard (preallocation only).
const SHARD_CAPACITY: usize = 1024;

/// A cache zone, ready for requests.
pub struct Zone {
    /// The zone's settings.
    pub config: CacheZone,
    /// Where entries live.
    pub storage: &'static ZoneStorage,
    /// The bound pingora enforces (memory without disk, else disk).
    pub eviction: &'static ZoneLru,
    /// Memory-tier bound when the zone has a disk tier.
    memory_lru: Option<&'static ZoneLru>,
    /// One fetch per key at a time; the others wait for it.
    pub lock: &'static CacheKeyLockImpl,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.config.name)
            .finish()
    }
}

/// Why a zone could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cache zone \"{zone}\": cannot use disk directory {dir}: {source}")]
pub struct ZoneError {
    zone: String,
    dir: String,
    #[source]
    source: std::io::Error,
}

fn lru(limit: u64) -> &'static ZoneLru {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Box::leak(Box::new(ZoneLru::with_capacity(limit, SHARD_CAPACITY)))
}

impl Zone {
    fn open(config: &CacheZone) -> Result<Zone, ZoneError> {
        let lock: &'static CacheKeyLockImpl =
            Box::leak(Box::new(CacheLock::new(config.lock_timeout)));
        let (storage, eviction, memory_lru) = match &config.disk {
            None => (ZoneStorage::memory_only(), lru(config.memory), None),
            Some((dir, size)) => {
                let memory_lru = lru(config.memory);
                let disk_lru = lru(*size);
                let storage =
                    ZoneStorage::with_disk(dir, memory_lru, disk_lru).map_err(|source| {
                        ZoneError {
                            zone: config.name.clone(),
                            dir: dir.display().to_string(),
                            source,
                        }
                    })?;
                (storage, disk_lru, Some(memory_lru))
            }
        };
        Ok(Zone {
            config: config.clone(),
            storage: Box::leak(Box::new(storage)),
            eviction,
            memory_lru,
            lock,
        })
    }

    /// This zone with new bounds (same tiers): entries are kept.
    fn resized(&self, config: &CacheZone) -> Zone {
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        match (&config.disk, self.memory_lru) {
            (Some((_, disk)), Some(mem)) => {
                mem.set_weight_limit(to_usize(config.memory));
                self.eviction.set_weight_limit(to_usize(*disk));
            }
            _ => self.eviction.set_weight_limit(to_usize(config.memory)),
        }
        Zone {
            config: config.clone(),
            storage: self.storage,
            eviction: self.eviction,
            memory_lru: self.memory_lru,
            lock: self.lock,
        }
    }

    /// Remove the entries for `url` (all its variants), or every URL under it when `prefix`.
    /// How many entries went.
    pub fn purge(&self, url: &str, prefix: bool) -> usize {
        self.storage.purge_urls(url, prefix, self.eviction)
    }

    /// (memory bytes, disk bytes, evictions so far).
    pub fn usage(&self) -> (u64, u64, u64) {
        let c = &self.storage.counters;
        (
            c.memory_bytes.load(Ordering::Relaxed),
            c.disk_bytes.load(Ordering::Relaxed),
            c.evictions.load(Ordering::Relaxed),
        )
    }

    /// Entries held: (memory, disk).
    pub fn entries(&self) -> (usize, usize) {
        self.storage.entries()
    }

    /// Total weight pingora's bound tracks (for tests of the bound).
    pub fn tracked_bytes(&self) -> usize {
        self.eviction.total_size()
    }
}

/// Build the zones of a config. A zone of `previous` with the same name and the same disk
/// directory (or none) is kept with its entries; bounds follow the new config.
pub fn build_zones(
    defs: &BTreeMap<String, CacheZone>,
    previous: Option<&HashMap<String, Arc<Zone>>>,
) -> Result<HashMap<String, Arc<Zone>>, ZoneError> {
    let mut out = HashMap::new();
    for (name, cfg) in defs {
        let kept = previous.and_then(|p| p.get(name)).filter(|z| {
            z.config.disk.as_ref().map(|d| &d.0) == cfg.disk.as_ref().map(|d| &d.0)
                && z.config.lock_timeout == cfg.lock_timeout
        });
        let zone = match kept {
            Some(z) if z.config == *cfg => z.clone(),
            Some(z) => Arc::new(z.resized(cfg)),
            None => Arc::new(Zone::open(cfg)?),
        };
        out.insert(name.clone(), zone);
    }
    Ok(out)
}
