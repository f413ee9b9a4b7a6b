//! Certificates already stored: loading them back at start and on each pass, and, with a
//! shared store, picking up what another instance ordered.

use std::time::SystemTime;

use crate::pem::{certified_key, certs_from_pem, info};
use crate::store::{StoreError, StoredCert};

use super::*;

/// What reading a site's stored certificate gave.
pub(super) enum Loaded {
    /// A usable certificate for the site's names.
    Usable(Box<Managed>),
    /// Nothing usable (absent, unreadable, expired, other names): ordering may go ahead.
    Nothing,
    /// The store cannot say now (unreachable, or secrets that do not open with the key):
    /// never order on this.
    Unknown(StoreError),
}

impl Manager {
    /// Turn stored PEM into a served certificate; `None` if unusable, for other names or
    /// expired (each logged).
    fn usable(&self, stored: &StoredCert, names: &[String], site: &str) -> Option<Managed> {
        let what = self.store_for(site);
        let loaded = certified_key(
            stored.chain_pem.as_bytes(),
            stored.key_pem.as_bytes(),
            &what,
        )
        .map_err(|e| e.to_string())
        .and_then(|ck| {
            let leaf =
                certs_from_pem(stored.chain_pem.as_bytes(), &what).map_err(|e| e.to_string())?;
            let info = info(&leaf[0], &what).map_err(|e| e.to_string())?;
            Ok((ck, info))
        });
        match loaded {
            Ok((ck, info))
                if same_names(&info.names, names) && info.not_after > SystemTime::now() =>
            {
                Some(Managed::loaded(ck, info))
            }
            Ok((_, info)) => {
                tracing::warn!(dir = %what, names = ?info.names,
                    "stored certificate is expired or for other names: a new one will be ordered");
                None
            }
            Err(e) => {
                tracing::warn!(dir = %what, error = %e,
                    "stored certificate is unusable: a new one will be ordered");
                None
            }
        }
    }

    fn store_for(&self, site: &str) -> String {
        self.store.cert_location(site)
    }

    /// Read the stored certificate for `names` from the store.
    pub(super) async fn load_stored(&self, names: &[String]) -> Loaded {
        let site = site_key(names);
        match self.store.load_cert(&site).await {
            Ok(Some(stored)) => match self.usable(&stored, names, &site) {
                Some(mut m) => {
                    m.profile = stored.profile.clone();
                    m.ordered_by = stored.ordered_by.clone();
                    m.ordered_at = stored.ordered_at;
                    m.ca = stored.ca.clone();
                    Loaded::Usable(Box::new(m))
                }
                None => Loaded::Nothing,
            },
            Ok(None) => Loaded::Nothing,
            Err(StoreError::Corrupt(e)) => {
                tracing::warn!(dir = %self.store_for(&site), error = %e,
                    "stored certificate is unusable: a new one will be ordered");
                Loaded::Nothing
            }
            Err(e) => Loaded::Unknown(e),
        }
    }

    /// Load the certificates of `sites` kept in the state directory and serve them at once.
    /// Called at start, before the listeners open, so that a restart never answers a
    /// handshake with a stand-in certificate while the background pass has not run yet; in
    /// a cluster these are the local copies, served even when Redis is down.
    pub fn load_stored_now(&self, sites: &[Vec<String>]) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        for names in sites {
            let key = site_key(names);
            if state.certs.contains_key(&key) {
                continue;
            }
            let stored = match self.local.read_cert(&key) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(dir = %self.local.cert_dir(&key).display(), error = %e,
                        "stored certificate is unusable: a new one will be ordered");
                    continue;
                }
            };
            let what = self.local.cert_dir(&key).display().to_string();
            let m = certified_key(
                stored.chain_pem.as_bytes(),
                stored.key_pem.as_bytes(),
                &what,
            )
            .ok()
            .and_then(|ck| {
                let leaf = certs_from_pem(stored.chain_pem.as_bytes(), &what).ok()?;
                let info = info(&leaf[0], &what).ok()?;
                (same_names(&info.names, names) && info.not_after > SystemTime::now())
                    .then(|| Managed::loaded(ck, info))
            });
            if let Some(mut m) = m {
                // What it was ordered under, so that a restart does not take it for a
                // certificate of another profile (and re-order it).
                m.profile = stored.profile.clone();
                m.ordered_by = stored.ordered_by.clone();
                m.ordered_at = stored.ordered_at;
                m.ca = stored.ca.clone();
                tracing::info!(site = %key, not_after = ?m.info.not_after, "using the stored certificate");
                state.certs.insert(key, m);
            }
        }
        self.install(&state);
    }
}
