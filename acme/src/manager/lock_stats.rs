//! What this instance did with the sites' order locks, for `/metrics`, `vigie cert list` and
//! the status page: counts since start and whether it holds a site's lock now.
//!
//! Kept apart from the manager's state, whose mutex an order holds for its whole length: a
//! scrape during an order still sees the lock held.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One site's order-lock figures on this instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockCounts {
    /// The site (its first name).
    pub site: String,
    /// Times this instance took the lock.
    pub acquired: u64,
    /// Passes that found another node holding it (and waited for its certificate).
    pub waited: u64,
    /// Passes that could not ask for it (the store unreachable): no order placed.
    pub unavailable: u64,
    /// Locks whose lease ran out before the certificate was stored (the certificate was
    /// dropped: the next holder orders).
    pub lost: u64,
    /// Whether this instance holds it now.
    pub held: bool,
}

/// The figures of every site, behind one small mutex.
#[derive(Debug, Default)]
pub(super) struct LockStats(Mutex<BTreeMap<String, LockCounts>>);

impl LockStats {
    fn with(&self, site: &str, f: impl FnOnce(&mut LockCounts)) {
        if let Ok(mut all) = self.0.lock() {
            let c = all.entry(site.to_string()).or_insert_with(|| LockCounts {
                site: site.to_string(),
                ..LockCounts::default()
            });
            f(c);
        }
    }

    /// The lock was taken: counted, and held while the returned mark lives.
    pub(super) fn acquired<'a>(&'a self, site: &'a str) -> Holding<'a> {
        self.with(site, |c| {
            c.acquired += 1;
            c.held = true;
        });
        Holding(self, site)
    }

    /// Another node held the lock.
    pub(super) fn waited(&self, site: &str) {
        self.with(site, |c| c.waited += 1);
    }

    /// The store could not be asked.
    pub(super) fn unavailable(&self, site: &str) {
        self.with(site, |c| c.unavailable += 1);
    }

    /// The lock was lost before the certificate was stored.
    pub(super) fn lost(&self, site: &str) {
        self.with(site, |c| c.lost += 1);
    }

    /// Whether this instance holds the lock of `site` now.
    pub(super) fn holds(&self, site: &str) -> bool {
        self.0
            .lock()
            .map(|all| all.get(site).is_some_and(|c| c.held))
            .unwrap_or(false)
    }

    /// Every site's figures.
    pub(super) fn all(&self) -> Vec<LockCounts> {
        self.0
            .lock()
            .map(|all| all.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Marks a site's lock held by this instance until dropped.
pub(super) struct Holding<'a>(&'a LockStats, &'a str);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.with(self.1, |c| c.held = false);
    }
}
