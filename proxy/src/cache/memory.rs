//! A zone's memory tier: entries by name, bounded by an LRU of their weights.
//!
//! The tier only keeps the map and the bound consistent: [`MemoryTier::insert`] returns what
//! the bound pushed out, and the zone's store decides what that means (gone for good, or
//! still on disk).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use pingora::cache::eviction::lru::Manager as Lru;
use pingora::cache::eviction::{CacheEntryKey, EvictionManager};

use super::codec::{hash_of, Entry};

/// Shards of each LRU (pingora's eviction manager is sharded to keep locks short).
const LRU_SHARDS: usize = 16;
/// Expected entries per LRU shard (preallocation only).
const SHARD_CAPACITY: usize = 1024;

/// The LRU type bounding a tier, by weight.
pub(super) struct Bound(Lru<LRU_SHARDS>);

impl Bound {
    /// A bound of `limit` bytes.
    pub(super) fn new(limit: u64) -> Bound {
        Bound(Lru::with_capacity(to_usize(limit), SHARD_CAPACITY))
    }

    /// Move the bound (a reload); entries above it go at the next admission.
    pub(super) fn set_limit(&self, limit: u64) {
        self.0.set_weight_limit(to_usize(limit));
    }

    /// Track `key` with `weight`; the names of what must go to stay within the bound.
    pub(super) fn admit(&self, key: CacheEntryKey, weight: usize) -> Vec<String> {
        self.0
            .admit(key, weight, SystemTime::now())
            .iter()
            .map(|k| hash_of(k.key()))
            .collect()
    }

    /// Mark `key` as just used.
    pub(super) fn access(&self, key: &CacheEntryKey, weight: usize) {
        self.0.access(key, weight, SystemTime::now());
    }

    /// Stop tracking `key`.
    pub(super) fn remove(&self, key: &CacheEntryKey) {
        self.0.remove(key.into());
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The memory tier.
pub(super) struct MemoryTier {
    map: RwLock<HashMap<String, Arc<Entry>>>,
    pub(super) bound: Bound,
}

impl MemoryTier {
    /// An empty tier bounded to `limit` bytes.
    pub(super) fn new(limit: u64) -> MemoryTier {
        MemoryTier {
            map: RwLock::new(HashMap::new()),
            bound: Bound::new(limit),
        }
    }

    /// The entry named `hash`, marked as used.
    pub(super) fn get(&self, hash: &str) -> Option<Arc<Entry>> {
        let e = self.map.read().get(hash).cloned()?;
        self.bound
            .access(&CacheEntryKey::key_only(e.compact.clone()), e.weight());
        Some(e)
    }

    /// Store `entry` as `hash`: the weight of the entry it replaced (0 if none), and the names
    /// the bound pushed out (still in the map: the caller removes them).
    pub(super) fn insert(&self, hash: String, entry: Arc<Entry>) -> (usize, Vec<String>) {
        let weight = entry.weight();
        let key = CacheEntryKey::key_only(entry.compact.clone());
        let old = self.map.write().insert(hash, entry);
        (old.map_or(0, |o| o.weight()), self.bound.admit(key, weight))
    }

    /// Remove the entry named `hash`; its weight if it was there.
    pub(super) fn remove(&self, hash: &str) -> Option<usize> {
        let e = self.map.write().remove(hash)?;
        self.bound
            .remove(&CacheEntryKey::key_only(e.compact.clone()));
        Some(e.weight())
    }

    /// Names of the entries whose URL `matches`.
    pub(super) fn matching(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        self.map
            .read()
            .iter()
            .filter(|(_, e)| matches(&e.url))
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.map.read().len()
    }
}
