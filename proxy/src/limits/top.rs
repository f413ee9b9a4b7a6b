//! The clients a zone limited most, for the status page.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// How many limited clients [`TopLimited`] remembers.
const TOP_KEYS: usize = 64;

/// The clients a zone delayed or refused most, for the status page: counts per client key
/// over the last [`TOP_KEYS`] distinct clients limited (the least recently limited is
/// forgotten first). Only delayed and refused requests touch it; allowed ones never do.
#[derive(Debug)]
pub struct TopLimited(Mutex<LruCache<u128, u64>>);

impl Default for TopLimited {
    fn default() -> Self {
        TopLimited(Mutex::new(LruCache::new(
            NonZeroUsize::new(TOP_KEYS).unwrap_or(NonZeroUsize::MIN),
        )))
    }
}

impl TopLimited {
    pub(super) fn note(&self, key: u128) {
        let mut top = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match top.get_mut(&key) {
            Some(n) => *n += 1,
            None => {
                top.put(key, 1);
            }
        }
    }

    /// The `n` most limited client keys and their counts, most limited first.
    pub fn top(&self, n: usize) -> Vec<(u128, u64)> {
        let mut all: Vec<(u128, u64)> = self
            .0
            .lock()
            .map(|t| t.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}
