//! Why an order failed.

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server or the protocol said no.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The account could not be stored or read.
    #[error("account storage: {0}")]
    Storage(String),
    /// A challenge could not be prepared.
    #[error("challenge: {0}")]
    Challenge(String),
    /// The order ended in an unexpected state.
    #[error("order {0}")]
    Order(String),
    /// The issued certificate was unusable.
    #[error(transparent)]
    Cert(#[from] crate::pem::CertError),
    /// The External Account Binding key could not be had, or the CA refused the binding.
    #[error("external account binding: {0}")]
    Eab(String),
    /// The configured profile is not one the directory advertises.
    #[error("profile \"{profile}\" is not offered by {directory}: {offered}")]
    Profile {
        /// The profile asked for.
        profile: String,
        /// The directory URL.
        directory: String,
        /// What the directory offers, in words.
        offered: String,
    },
}

impl AcmeError {
    /// The CA answered `urn:ietf:params:acme:error:rateLimited`.
    pub(super) fn is_rate_limited(&self) -> bool {
        matches!(self, AcmeError::Acme(instant_acme::Error::Api(p))
            if p.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited")))
    }
}
