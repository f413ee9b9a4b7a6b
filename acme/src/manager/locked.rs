//! A site's turn to be ordered: under its order lock (cluster-wide with a shared store),
//! after looking whether the previous holder already stored what is needed.

use crate::store::{Held, StoreError};

use super::*;

impl Manager {
    /// Take the site's order lock and order; when another node holds it, wait (look again
    /// in [`LOCK_WAIT`]) and pick its certificate up from the store.
    pub(super) async fn order_site(
        &self,
        state: &mut State,
        acme: &Acme,
        wanted: &Wanted,
        key: &str,
    ) {
        let lock = match self.store.lock(key).await {
            Ok(LockOutcome::Acquired(lock)) => lock,
            Ok(LockOutcome::HeldBy(node)) => {
                self.locks.waited(key);
                if state.waiting.get(key) != Some(&node) {
                    tracing::info!(site = %key, holder = %node,
                        "another instance holds the order lock: waiting for its certificate");
                }
                state.waiting.insert(key.to_string(), node);
                state.holds.insert(key.to_string(), Hold::Waiting);
                state.status.entry(key.to_string()).or_default().retry_at =
                    Some(SystemTime::now() + LOCK_WAIT);
                return;
            }
            Err(e) => {
                if self.store.shared() {
                    self.locks.unavailable(key);
                }
                self.store_down(state, key, &e);
                return;
            }
        };
        let _holding = self.store.shared().then(|| self.locks.acquired(key));
        state.waiting.remove(key);
        if self.store.shared() {
            // The previous holder may have stored a certificate just before letting go.
            self.refresh_from_store(state, &wanted.names, key).await;
            if !self.due(state, wanted, key) {
                tracing::info!(site = %key, fence = lock.fence(),
                    "the certificate another instance stored is current: no order");
                lock.release().await;
                return;
            }
            tracing::info!(site = %key, fence = lock.fence(), node = %self.node,
                "holding the cluster-wide order lock");
        }
        self.order_locked(state, acme, wanted, key, lock.as_ref())
            .await;
        lock.release().await;
    }

    /// Whether the site needs an order now (no certificate, another profile, forced, due).
    fn due(&self, state: &State, wanted: &Wanted, key: &str) -> bool {
        match state.certs.get(key) {
            None => true,
            Some(m) if m.profile != wanted.profile => true,
            Some(m) => state.forced.contains(key) || SystemTime::now() >= m.renew_at,
        }
    }

    /// The store cannot be used now: nothing is ordered until it can (logged once per
    /// outage), and the served certificate stays.
    pub(super) fn store_down(&self, state: &mut State, key: &str, e: &StoreError) {
        let was = state.holds.insert(key.to_string(), Hold::Store);
        if was != Some(Hold::Store) {
            tracing::error!(site = %key, error = %e,
                "the certificate store is unavailable: no order until it is back; the current \
                 certificate keeps serving");
        }
        let st = state.status.entry(key.to_string()).or_default();
        st.last_error = Some(e.to_string());
        st.retry_at = Some(SystemTime::now() + LOCK_WAIT * 5);
    }

    /// Read the site's certificate from the store and serve it when it is newer than the
    /// one served (another instance ordered it, or this one restarted).
    pub(super) async fn refresh_from_store(&self, state: &mut State, names: &[String], key: &str) {
        match self.load_stored(names).await {
            Loaded::Usable(m) => {
                if state.holds.get(key) == Some(&Hold::Store) {
                    tracing::info!(site = %key, "the certificate store is back");
                    state.holds.remove(key);
                    if let Some(st) = state.status.get_mut(key) {
                        st.retry_at = None;
                        st.last_error = None;
                    }
                }
                let newer = state.certs.get(key).is_none_or(|c| {
                    c.info.serial != m.info.serial && m.info.not_after >= c.info.not_after
                });
                if !newer {
                    return;
                }
                match (&m.ordered_by, state.certs.contains_key(key)) {
                    (Some((node, fence)), true) => {
                        tracing::info!(site = %key, serial = %m.info.serial,
                        node = %node, fence = fence, "installed the certificate another instance ordered")
                    }
                    _ => tracing::info!(site = %key, not_after = ?m.info.not_after,
                        "using the stored certificate"),
                }
                state.certs.insert(key.to_string(), *m);
                if state.waiting.remove(key).is_some() {
                    state.holds.remove(key);
                    if let Some(st) = state.status.get_mut(key) {
                        st.retry_at = None;
                    }
                }
            }
            Loaded::Nothing => {
                if state.holds.get(key) == Some(&Hold::Store) {
                    tracing::info!(site = %key, "the certificate store is back");
                    state.holds.remove(key);
                    if let Some(st) = state.status.get_mut(key) {
                        st.retry_at = None;
                    }
                }
            }
            Loaded::Unknown(e) => self.store_down(state, key, &e),
        }
    }

    /// Order under the lock: `lock` is held, and released by the caller.
    async fn order_locked(
        &self,
        state: &mut State,
        acme: &Acme,
        wanted: &Wanted,
        key: &str,
        lock: &dyn Held,
    ) {
        let names = &wanted.names;
        tracing::info!(site = %key, names = ?names, directory = %acme.directory,
            profile = ?wanted.profile, "ordering a certificate");
        match self.order_fallback(state, acme, wanted, key, lock).await {
            Ok(m) => {
                tracing::info!(site = %key, serial = %m.info.serial, not_after = ?m.info.not_after,
                    renew_at = ?m.renew_at, ca = ?m.ca, "certificate issued and installed");
                state.certs.insert(key.to_string(), m);
                state.forced.remove(key);
                state.holds.remove(key);
                let st = state.status.entry(key.to_string()).or_default();
                st.failures = 0;
                st.retry_at = None;
                st.last_error = None;
                st.issued += 1;
            }
            Err((e, retry_after)) => {
                let limited = e.is_rate_limited();
                let served_until = state.certs.get(key).map(|m| m.info.not_after);
                let st = state.status.entry(key.to_string()).or_default();
                st.failures += 1;
                st.failed += 1;
                let now = SystemTime::now();
                let delay = backoff(self.retry_base, self.retry_cap, st.failures);
                let at = super::schedule::before_expiry(
                    now,
                    retry_time(now, delay, retry_after),
                    served_until,
                );
                st.retry_at = Some(at);
                st.last_error = Some(e.to_string());
                let hold = if limited {
                    Hold::RateLimited
                } else if at > now + delay {
                    Hold::RetryAfter
                } else {
                    Hold::Backoff
                };
                tracing::error!(site = %key, error = %e, failures = st.failures,
                    retry_in = ?at.duration_since(now).unwrap_or_default(), rate_limited = limited,
                    retry_after = ?retry_after,
                    "certificate order failed; the current certificate keeps serving");
                state.holds.insert(key.to_string(), hold);
            }
        }
    }
}
