//! Certificates already on disk: where a site's files live and loading them back at start.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::pem::{certified_key, certs_from_pem, info};

use super::*;

impl Manager {
    pub(super) fn cert_dir(&self, names: &[String]) -> PathBuf {
        self.state_dir.join("certs").join(site_key(names))
    }

    /// Load a stored certificate for `names`; `None` if missing, unreadable, for other names
    /// or expired (each logged).
    pub(super) fn load_stored(&self, names: &[String]) -> Option<Managed> {
        let dir = self.cert_dir(names);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() {
            return None;
        }
        let loaded = std::fs::read(&cert)
            .and_then(|c| std::fs::read(&key).map(|k| (c, k)))
            .map_err(|e| e.to_string())
            .and_then(|(c, k)| {
                let what = cert.display().to_string();
                let ck = certified_key(&c, &k, &what).map_err(|e| e.to_string())?;
                let leaf = certs_from_pem(&c, &what).map_err(|e| e.to_string())?;
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
                tracing::warn!(dir = %dir.display(), names = ?info.names,
                    "stored certificate is expired or for other names: a new one will be ordered");
                None
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "stored certificate is unusable: a new one will be ordered");
                None
            }
        }
    }

    /// Load the stored certificates of `sites` and serve them at once. Called at start, before
    /// the listeners open, so that a restart never answers a handshake with a stand-in
    /// certificate while the background pass has not run yet.
    pub fn load_stored_now(&self, sites: &[Vec<String>]) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        for names in sites {
            let key = site_key(names);
            if state.certs.contains_key(&key) {
                continue;
            }
            if let Some(m) = self.load_stored(names) {
                tracing::info!(site = %key, not_after = ?m.info.not_after, "using the stored certificate");
                state.certs.insert(key, m);
            }
        }
        self.install(&state);
    }
}
