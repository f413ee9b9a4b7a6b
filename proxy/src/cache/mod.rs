//! Cache zones on pingora-cache: the entries, bounds and cache lock of each `[cache.NAME]`.
//!
//! Two steps, both run by `run` and every reload, the first alone by `vigie check`:
//! - [`check`]: the pure check of the zones of a config (where their disk directories are,
//!   whether vigie owns them); it reads directory listings and writes nothing;
//! - [`acquire`]: open the zones. A zone of the previous snapshot with the same name, disk
//!   directory, bounds and lock timeout is kept as it is; with other bounds or lock timeout
//!   it keeps its entries (the store) under the new settings; a disk zone renamed over the
//!   same directory keeps its entries too. Any other zone is opened afresh, and a zone no
//!   snapshot keeps is freed once the last request using it ends.
//!
//! Layout: [`codec`] (an entry and its file form), [`memory`] and [`disk`] (the tiers),
//! [`store`] (the tiers together, and their bounds), [`storage`] (pingora's traits, which
//! reach a zone through the cache key), [`check`] (which directories a zone may use).

mod check;
mod codec;
mod disk;
mod memory;
mod storage;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pingora::cache::lock::CacheLock;
use pingora::cache::{CacheKey, HttpCache};
use vigie_config::CacheZone;

pub use self::check::{check, ZoneError, ZoneErrors};
use self::storage::{Target, LOCK, STORAGE};
use self::store::ZoneStore;

/// A cache zone, ready for requests.
pub struct Zone {
    /// The zone's settings.
    pub config: CacheZone,
    /// Its store and lock, which each cache key of the zone carries.
    target: Target,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.config.name)
            .finish()
    }
}

impl Zone {
    fn open(config: &CacheZone) -> Result<Zone, ZoneError> {
        let store = Arc::new(ZoneStore::open(config)?);
        Ok(Zone::with_store(config, store))
    }

    fn with_store(config: &CacheZone, store: Arc<ZoneStore>) -> Zone {
        Zone {
            config: config.clone(),
            target: Target {
                store,
                lock: Arc::new(CacheLock::new(config.lock_timeout)),
            },
        }
    }

    /// Turn the cache of a request on, on this zone (in `request_cache_filter`). Its key must
    /// then come from [`Zone::tag`].
    pub fn enable(&self, cache: &mut HttpCache) {
        let mut overrides = pingora::cache::CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.config.lock_timeout);
        cache.enable(&STORAGE, None, None, Some(&LOCK), Some(overrides));
        let max = usize::try_from(self.config.max_object).unwrap_or(usize::MAX);
        cache.set_max_file_size_bytes(max);
    }

    /// Make `key` a key of this zone: pingora's calls for it reach this zone's store and lock.
    pub fn tag(&self, key: &mut CacheKey) {
        key.extensions.insert(self.target.clone());
    }

    /// Remove the entries for `url` (all its variants), or every URL under it when `prefix`.
    /// How many entries went.
    pub fn purge(&self, url: &str, prefix: bool) -> usize {
        self.target.store.purge_urls(url, prefix)
    }

    /// (memory bytes, disk bytes, evictions so far).
    pub fn usage(&self) -> (u64, u64, u64) {
        self.target.store.usage()
    }

    /// Entries held: (memory, disk).
    pub fn entries(&self) -> (usize, usize) {
        self.target.store.entries()
    }
}

fn same_disk_dir(a: &CacheZone, b: &CacheZone) -> bool {
    a.disk.as_ref().map(|d| &d.0) == b.disk.as_ref().map(|d| &d.0)
}

/// Open the zones of `defs` for `run` or a reload, reusing those of `previous` as the module
/// doc says. Every zone that cannot be opened is reported, and then the zones of `previous`
/// are left exactly as they were (their bounds move only when the whole call succeeds).
pub fn acquire(
    defs: &BTreeMap<String, CacheZone>,
    previous: Option<&HashMap<String, Arc<Zone>>>,
) -> Result<HashMap<String, Arc<Zone>>, ZoneErrors> {
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    let mut moved = Vec::new();
    for (name, cfg) in defs {
        let same_name = previous
            .and_then(|p| p.get(name))
            .filter(|z| same_disk_dir(&z.config, cfg));
        let same_dir = || {
            cfg.disk.as_ref()?;
            previous?
                .values()
                .find(|z| same_disk_dir(&z.config, cfg))
                .filter(|z| !defs.contains_key(&z.config.name))
        };
        let zone = match same_name.or_else(same_dir) {
            Some(z) if z.config == *cfg => z.clone(),
            Some(z) => {
                let mut kept = Zone::with_store(cfg, z.target.store.clone());
                if z.config.lock_timeout == cfg.lock_timeout {
                    kept.target.lock = z.target.lock.clone();
                }
                moved.push((z.target.store.clone(), cfg));
                Arc::new(kept)
            }
            None => match Zone::open(cfg) {
                Ok(z) => Arc::new(z),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
        };
        out.insert(name.clone(), zone);
    }
    if !errors.is_empty() {
        return Err(ZoneErrors(errors));
    }
    for (store, cfg) in moved {
        store.set_bounds(cfg);
    }
    Ok(out)
}
