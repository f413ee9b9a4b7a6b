//! HTTP-01 answers: the tokens this instance is validating, and in a cluster those another
//! instance published.

use std::collections::HashMap;

use arc_swap::ArcSwap;

use crate::store::SharedStore;

/// HTTP-01 tokens being validated: token → key authorization; in a cluster, also those
/// another instance published.
#[derive(Debug, Default)]
pub struct Http01Tokens(
    ArcSwap<HashMap<String, String>>,
    pub(super) std::sync::OnceLock<SharedStore>,
);

impl Http01Tokens {
    /// The key authorization for `token`, while this instance's challenge is open.
    pub fn get(&self, token: &str) -> Option<String> {
        self.0.load().get(token).cloned()
    }

    /// The key authorization for `token`: this instance's, or one another instance of the
    /// cluster published (a token is base64url, at most 128 characters: anything else is
    /// not looked up).
    pub async fn lookup(&self, token: &str) -> Option<String> {
        if let Some(v) = self.get(token) {
            return Some(v);
        }
        let valid = !token.is_empty()
            && token.len() <= 128
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        match self.1.get() {
            Some(store) if valid => store.http01(token).await,
            _ => None,
        }
    }

    pub(super) fn set(&self, token: &str, value: Option<String>) {
        self.0.rcu(|cur| {
            let mut next = HashMap::clone(cur);
            match &value {
                Some(v) => next.insert(token.to_string(), v.clone()),
                None => next.remove(token),
            };
            next
        });
    }
}
