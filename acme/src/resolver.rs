//! The certificate resolver rustls asks on every handshake.
//!
//! Two tables, each swapped whole: `configured` (file and local-CA certificates, rebuilt on
//! every load and reload) and `managed` (ACME certificates, replaced as they are issued and
//! renewed). Managed certificates win for the names they cover. TLS-ALPN-01 challenge
//! certificates are served only to clients that offer nothing but `acme-tls/1`.
//!
//! Lookup order for a server name: exact name, then a wildcard covering exactly one more
//! label (`*.example.com` covers `a.example.com`, not `a.b.example.com`), then the default
//! certificate (also used when the client sends no SNI).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

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

/// A hot-swappable SNI resolver (see the module docs).
#[derive(Debug, Default)]
pub struct CertResolver {
    configured: ArcSwap<CertTable>,
    managed: ArcSwap<CertTable>,
    challenges: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
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
            return self.challenges.load().get(&name).cloned();
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
