//! `[tls]` and `[acme]`: protocol policy and certificate automation.

use std::path::PathBuf;

/// `[tls]`: protocol policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPolicy {
    /// Lowest TLS version offered. Default 1.2.
    pub min_version: TlsVersion,
    /// Host name whose certificate is served to clients that send no SNI.
    pub default_name: Option<String>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// `[acme]`: the ACME account and how challenges are answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Acme {
    /// Contact address given to the CA.
    pub email: Option<String>,
    /// Directory URL of the first (preferred) CA (Let's Encrypt production by default).
    pub directory: String,
    /// Challenge type used for names that are not wildcards.
    pub challenge: ChallengeKind,
    /// Extra PEM roots trusted when talking to the first CA (a private CA such as Pebble).
    pub ca_roots: Option<PathBuf>,
    /// External Account Binding at the first CA, for CAs that require it.
    pub eab: Option<Eab>,
    /// Command called for DNS-01 as `HOOK present|cleanup NAME VALUE`.
    pub dns_hook: Option<PathBuf>,
    /// ACME certificate profile asked for (`"shortlived"`, `"tlsserver"`…); `None`: the CA's
    /// default. A site's own `profile` wins.
    pub profile: Option<String>,
    /// The CAs after the first (`[[acme.ca]]` entries 2..), in order: a site moves to the
    /// next one when its current CA keeps failing. Empty with the single `directory` form.
    pub fallback: Vec<AcmeCa>,
}

/// One CA of the `[acme]` list: where it is, what to trust and how to bind the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCa {
    /// Directory URL.
    pub directory: String,
    /// Extra PEM roots trusted when talking to this CA.
    pub ca_roots: Option<PathBuf>,
    /// External Account Binding, for CAs that require it.
    pub eab: Option<Eab>,
}

impl Acme {
    /// Every CA, in order of preference: the first (`directory`, `ca_roots`, `eab`), then
    /// the fallback ones.
    pub fn cas(&self) -> Vec<AcmeCa> {
        let first = AcmeCa {
            directory: self.directory.clone(),
            ca_roots: self.ca_roots.clone(),
            eab: self.eab.clone(),
        };
        std::iter::once(first)
            .chain(self.fallback.iter().cloned())
            .collect()
    }

    /// The same settings talking to `ca` (its directory, roots and binding).
    pub fn with_ca(&self, ca: &AcmeCa) -> Acme {
        Acme {
            directory: ca.directory.clone(),
            ca_roots: ca.ca_roots.clone(),
            eab: ca.eab.clone(),
            ..self.clone()
        }
    }
}

/// ACME challenge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// HTTP-01 on the plain-HTTP listener.
    Http01,
    /// TLS-ALPN-01 on the TLS listener.
    TlsAlpn01,
    /// DNS-01 through `dns_hook`.
    Dns01,
}

/// External Account Binding credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eab {
    /// Key identifier given by the CA.
    pub kid: String,
    /// Where the base64url HMAC key given by the CA is.
    pub hmac_key: EabKey,
}

/// Where an EAB HMAC key is read from. Files and variables are read when an account is
/// registered (never by `vigie check`), so the secret need not be in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EabKey {
    /// `hmac_key_file`: a file holding the base64url key (surrounding whitespace ignored).
    File(PathBuf),
    /// `hmac_key_env`: an environment variable of vigie's process holding the key.
    Env(String),
    /// `hmac_key`: the key written in the configuration itself.
    Inline(String),
}
