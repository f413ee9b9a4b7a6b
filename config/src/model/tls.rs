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
    /// Directory URL (Let's Encrypt production by default).
    pub directory: String,
    /// Challenge type used for names that are not wildcards.
    pub challenge: ChallengeKind,
    /// Extra PEM roots trusted when talking to the ACME server (a private CA such as Pebble).
    pub ca_roots: Option<PathBuf>,
    /// External Account Binding, for CAs that require it.
    pub eab: Option<Eab>,
    /// Command called for DNS-01 as `HOOK present|cleanup NAME VALUE`.
    pub dns_hook: Option<PathBuf>,
    /// ACME certificate profile asked for (`"shortlived"`, `"tlsserver"`…); `None`: the CA's
    /// default. A site's own `profile` wins.
    pub profile: Option<String>,
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
    /// Base64url HMAC key given by the CA.
    pub hmac_key: String,
}
