//! The local limiter's key store: governor's GCRA state (one "theoretical arrival time"
//! per client key) in sharded LRU maps holding at most `max_clients` keys, so a flood of
//! distinct addresses evicts the least recently seen clients instead of growing memory.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Mutex;

use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use lru::LruCache;

/// Shards of the store (each its own lock).
pub(super) const SHARDS: usize = 16;

/// A keyed GCRA state store with a hard bound on the number of keys (see the module docs).
pub struct BoundedStore {
    shards: Vec<Mutex<LruCache<u128, u64>>>,
}

impl BoundedStore {
    /// A store holding at most `max` keys (rounded up to a multiple of the shard count).
    pub fn new(max: usize) -> Self {
        let per = NonZeroUsize::new(max.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        BoundedStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    fn shard(&self, key: &u128) -> &Mutex<LruCache<u128, u64>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }
}

impl StateStore for BoundedStore {
    type Key = u128;

    fn measure_and_replace<T, F, E>(&self, key: &u128, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let prev = shard.get(key).copied().map(Nanos::from);
        let (t, next) = f(prev)?;
        shard.put(*key, next.into());
        Ok(t)
    }
}

impl ShrinkableKeyedStateStore<u128> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let below: u64 = drop_below.into();
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            let stale: Vec<u128> = s
                .iter()
                .filter(|(_, t)| **t <= below)
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                s.pop(&k);
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::len(self) == 0
    }
}
