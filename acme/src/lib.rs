//! vigie-acme: where certificates come from and how handshakes find them.
//!
//! - [`resolver::CertResolver`]: the rustls certificate resolver the TLS listener asks on
//!   every handshake. Its tables are swapped whole ([`arc_swap`]), so a new certificate is
//!   served to the next connection without restarting anything or touching open ones.
//! - [`alpn01`]: TLS-ALPN-01 challenge certificates, answered by any instance of a cluster.
//! - [`local_ca::LocalCa`]: vigie's own CA for `tls = "internal"` (localhost, IP addresses),
//!   created once in the state directory and reused.
//! - [`pem`]: loading certificate chains and keys, reading their dates.
//! - [`store`]: where certificates, the account and order locks live: the state directory
//!   (atomic, private file writes) or, for a `[cluster]`, Redis with sealed secrets.
//!
//! This crate never depends on pingora.

pub mod alpn01;
pub mod local_ca;
pub mod manager;
pub mod pem;
pub mod resolver;
pub mod store;

pub use local_ca::LocalCa;
pub use manager::{Http01Tokens, LockCounts, Manager, Status, Wanted};
pub use pem::{CertError, CertInfo};
pub use resolver::{CertResolver, CertTable};
pub use store::{SharedStore, Store, StoreError};
