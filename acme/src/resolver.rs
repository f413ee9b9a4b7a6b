//! The certificate resolver rustls asks on every handshake.
//!
//! Two tables, each swapped whole: `configured` (file and local-CA certificates, rebuilt on
//! every load and reload) and `managed` (ACME certificates, replaced as they are issued and
//! renewed). Managed certificates win for the names they cover. TLS-ALPN-01 challenge
//! certificates are served only to clients that offer `acme-tls/1`, and never anything
//! else to those: this instance's own challenges first, then, in a cluster, those another
//! instance opened, made here from the answer it published ([`CertResolver::fetch_challenge`],
//! which the listener awaits before the handshake: rustls asks the resolver synchronously).
//!
//! Lookup order for a server name: exact name, then a wildcard covering exactly one more
//! label (`*.example.com` covers `a.example.com`, not `a.b.example.com`), then the default
//! certificate (also used when the client sends no SNI).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::alpn01;
use crate::store::SharedStore;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Certificates by name.
#[derive(Debug, Default, Clone)]
pub struct CertTable {
    /// Exact names (lower-case).
    pub exact: HashMap<String, Arc<CertifiedKey>>,
    /// Wildcards by suffix (`example.com` for `*.example.com`).
    pub wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Served when nothing matches or no SNI was sent.
    pub default: Option<Arc<CertifiedKey>>,
}

impl CertTable {
    /// The certificate for `name`, without the default.
    pub fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(ck) = self.exact.get(name) {
            return Some(ck);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent)
    }

    /// Add a certificate for a name pattern (`*.suffix` or an exact name).
    pub fn insert(&mut self, pattern: &str, ck: Arc<CertifiedKey>) {
        match pattern.strip_prefix("*.") {
            Some(suffix) => self.wildcard.insert(suffix.to_string(), ck),
            None => self.exact.insert(pattern.to_string(), ck),
        };
    }
}

/// How long a challenge certificate made for another instance's challenge is kept without
/// being asked for again (the published answer expires after 10 minutes).
const SHARED_KEEP: Duration = Duration::from_secs(600);

/// A challenge certificate made here for another instance's TLS-ALPN-01 challenge.
#[derive(Debug, Clone)]
struct SharedChallenge {
    digest: Vec<u8>,
    ck: Arc<CertifiedKey>,
    made: Instant,
}

/// A hot-swappable SNI resolver (see the module docs).
#[derive(Debug, Default)]
pub struct CertResolver {
    configured: ArcSwap<CertTable>,
    managed: ArcSwap<CertTable>,
    challenges: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    /// By SNI: challenge certificates answering the other instances' challenges.
    shared: ArcSwap<HashMap<String, SharedChallenge>>,
    /// The cluster's store, when challenges are shared.
    store: OnceLock<SharedStore>,
}

impl CertResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace the configured table (files and local CA).
    pub fn set_configured(&self, table: CertTable) {
        self.configured.store(Arc::new(table));
    }

    /// Replace the managed (ACME) table.
    pub fn set_managed(&self, table: CertTable) {
        self.managed.store(Arc::new(table));
    }

    /// The managed table now.
    pub fn managed(&self) -> Arc<CertTable> {
        self.managed.load_full()
    }

    /// Put (or with `None`, remove) the TLS-ALPN-01 challenge certificate for `name`.
    pub fn set_challenge(&self, name: &str, ck: Option<Arc<CertifiedKey>>) {
        self.challenges.rcu(|current| {
            let mut next = HashMap::clone(current);
            match &ck {
                Some(ck) => next.insert(name.to_string(), ck.clone()),
                None => next.remove(name),
            };
            next
        });
    }

    /// Answer the TLS-ALPN-01 challenges the other instances of a cluster publish in `store`.
    pub fn share_challenges(&self, store: SharedStore) {
        let _ = self.store.set(store);
    }

    /// Whether challenges are shared (a cluster): the listener then reads the ClientHello
    /// first and calls [`CertResolver::fetch_challenge`] for `acme-tls/1` ones.
    pub fn shares_challenges(&self) -> bool {
        self.store.get().is_some()
    }

    /// Make sure the next `acme-tls/1` handshake for `sni` finds its challenge certificate:
    /// this instance's own, or one made from the answer another instance published (read
    /// from the store now, so a challenge opened a moment ago is answered). Returns whether
    /// there is one; without, the handshake fails, as it must.
    pub async fn fetch_challenge(&self, sni: &str) -> bool {
        let name = sni.to_ascii_lowercase();
        if self.challenges.load().contains_key(&name) {
            return true;
        }
        let Some(store) = self.store.get() else {
            return false;
        };
        if !alpn01::valid_sni(&name) {
            return false;
        }
        let answer = match store.alpn01(&name).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(sni = %name, error = %e,
                    "cannot read the cluster's TLS-ALPN-01 answer");
                return self.shared.load().contains_key(&name);
            }
        };
        let Some((answer, digest)) = answer.and_then(|a| a.digest_bytes().map(|d| (a, d))) else {
            self.shared.rcu(|cur| {
                let mut next = HashMap::clone(cur);
                next.remove(&name);
                next
            });
            return false;
        };
        if self
            .shared
            .load()
            .get(&name)
            .is_some_and(|c| c.digest == digest)
        {
            return true;
        }
        let ck = match alpn01::challenge_cert(&answer.name, &digest) {
            Ok(ck) => ck,
            Err(e) => {
                tracing::warn!(sni = %name, error = %e, "cannot make the TLS-ALPN-01 certificate");
                return false;
            }
        };
        tracing::info!(sni = %name, name = %answer.name,
            "answering the TLS-ALPN-01 challenge another instance opened");
        let entry = SharedChallenge {
            digest,
            ck,
            made: Instant::now(),
        };
        self.shared.rcu(|cur| {
            let mut next: HashMap<String, SharedChallenge> = cur
                .iter()
                .filter(|(_, c)| c.made.elapsed() < SHARED_KEEP)
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect();
            next.insert(name.clone(), entry.clone());
            next
        });
        true
    }

    /// The certificate served for `sni` (`None`: no SNI), as a handshake would get it.
    pub fn for_name(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let managed = self.managed.load();
        let configured = self.configured.load();
        if let Some(name) = sni {
            let name = name.to_ascii_lowercase();
            if let Some(ck) = managed.lookup(&name).or_else(|| configured.lookup(&name)) {
                return Some(ck.clone());
            }
        }
        configured
            .default
            .clone()
            .or_else(|| managed.default.clone())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_string);
        let acme = hello
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
        if acme {
            // Only the challenge certificate answers acme-tls/1, never a real one.
            let name = sni?.to_ascii_lowercase();
            if let Some(ck) = self.challenges.load().get(&name) {
                return Some(ck.clone());
            }
            return self.shared.load().get(&name).map(|c| c.ck.clone());
        }
        self.for_name(sni.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::LocalCa;

    #[test]
    fn exact_then_one_label_wildcard_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let a = ca.issue(&["a.test".into()]).unwrap().0;
        let w = ca.issue(&["*.w.test".into()]).unwrap().0;
        let mut t = CertTable::default();
        t.insert("a.test", a.clone());
        t.insert("*.w.test", w.clone());
        t.default = Some(a.clone());
        let r = CertResolver::new();
        r.set_configured(t);
        assert!(Arc::ptr_eq(&r.for_name(Some("A.test")).unwrap(), &a));
        assert!(Arc::ptr_eq(&r.for_name(Some("x.w.test")).unwrap(), &w));
        // Two labels deep is not covered by the wildcard: the default answers.
        assert!(Arc::ptr_eq(&r.for_name(Some("x.y.w.test")).unwrap(), &a));
        assert!(Arc::ptr_eq(&r.for_name(None).unwrap(), &a));
        // A managed certificate wins for its name.
        let m = ca.issue(&["a.test".into()]).unwrap().0;
        let mut mt = CertTable::default();
        mt.insert("a.test", m.clone());
        r.set_managed(mt);
        assert!(Arc::ptr_eq(&r.for_name(Some("a.test")).unwrap(), &m));
    }
}
