//! The state directory as the store of an instance acting alone.
//!
//! Layout (unchanged since the first release): `certs/SITE/{cert.pem,key.pem,profile,ca}` with
//! the key 0600, and `acme/DIRECTORY/account.json` (0600, in a 0700 directory). Every write
//! is atomic ([`write_atomic`]); an unusable account file is renamed aside, never deleted.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{
    private_dir, write_atomic, Held, LocalLock, LockOutcome, Store, StoreError, StoredCert,
};

/// Certificates and accounts in a state directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

/// The directory name of an ACME directory URL: its host and path, other characters `_`.
pub fn directory_key(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl DirStore {
    /// A store under `state_dir`.
    pub fn new(state_dir: &Path) -> DirStore {
        DirStore {
            root: state_dir.to_path_buf(),
        }
    }

    /// The directory of a site's files.
    pub fn cert_dir(&self, site: &str) -> PathBuf {
        self.root.join("certs").join(site)
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        self.root
            .join("acme")
            .join(directory_key(directory))
            .join("account.json")
    }

    /// [`Store::load_cert`] without a runtime (used at start, before the listeners open).
    pub fn read_cert(&self, site: &str) -> Result<Option<StoredCert>, StoreError> {
        let dir = self.cert_dir(site);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() {
            return Ok(None);
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display())))
        };
        let profile = std::fs::read_to_string(dir.join("profile"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        let ca = std::fs::read_to_string(dir.join("ca"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        Ok(Some(StoredCert {
            chain_pem: read(&cert)?,
            key_pem: read(&key)?,
            profile,
            ordered_by: None,
            ca,
            ordered_at: None,
        }))
    }

    /// Write a site's files (key first, so a chain is never there without its key).
    pub fn write_cert(&self, site: &str, cert: &StoredCert) -> Result<(), StoreError> {
        let dir = self.cert_dir(site);
        let err = |e: std::io::Error| StoreError::Write(format!("{}: {e}", dir.display()));
        private_dir(&dir).map_err(err)?;
        write_atomic(&dir.join("key.pem"), cert.key_pem.as_bytes(), true)
            .and_then(|_| write_atomic(&dir.join("cert.pem"), cert.chain_pem.as_bytes(), false))
            .and_then(|_| {
                write_atomic(
                    &dir.join("profile"),
                    cert.profile.as_deref().unwrap_or("").as_bytes(),
                    false,
                )
            })
            // Which CA issued it (renewal information is asked of that one).
            .and_then(|_| match &cert.ca {
                Some(ca) => write_atomic(&dir.join("ca"), ca.as_bytes(), false),
                None => Ok(()),
            })
            .map_err(err)
    }
}

#[async_trait]
impl Store for DirStore {
    fn shared(&self) -> bool {
        false
    }

    fn cert_location(&self, site: &str) -> String {
        self.cert_dir(site).display().to_string()
    }

    fn account_location(&self, directory: &str) -> String {
        self.account_path(directory).display().to_string()
    }

    async fn load_cert(&self, site: &str) -> Result<Option<StoredCert>, StoreError> {
        self.read_cert(site)
    }

    async fn save_cert(
        &self,
        site: &str,
        cert: &StoredCert,
        _lock: &dyn Held,
    ) -> Result<(), StoreError> {
        self.write_cert(site, cert)
    }

    async fn load_account(&self, directory: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.account_path(directory);
        if !path.exists() {
            return Ok(None);
        }
        std::fs::read(&path)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))
    }

    async fn save_account(&self, directory: &str, json: &[u8]) -> Result<(), StoreError> {
        let path = self.account_path(directory);
        let dir = path.parent().unwrap_or(&self.root);
        private_dir(dir).map_err(|e| StoreError::Write(format!("{}: {e}", dir.display())))?;
        write_atomic(&path, json, true)
            .map_err(|e| StoreError::Write(format!("{}: {e}", path.display())))
    }

    async fn set_aside_account(&self, directory: &str) -> Result<String, StoreError> {
        let path = self.account_path(directory);
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = path.with_file_name(format!("account.json.old-{stamp}"));
        let _ = std::fs::rename(&path, &aside);
        Ok(aside.display().to_string())
    }

    async fn lock(&self, _site: &str) -> Result<LockOutcome, StoreError> {
        Ok(LockOutcome::Acquired(Box::new(LocalLock)))
    }

    async fn publish_http01(&self, _token: &str, _key_auth: Option<&str>) {}

    async fn http01(&self, _token: &str) -> Option<String> {
        None
    }
}
