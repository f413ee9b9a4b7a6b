//! vigie: an edge proxy on pingora that replaces nginx + certbot + cron.
//!
//! Data flows one way: file → validated [`vigie_config::Config`] → immutable
//! [`snapshot::Snapshot`] swapped atomically on reload → the request filters of
//! [`service::Vigie`], which read only the snapshot their request started with.

pub mod access_log;
pub mod admin;
pub mod background;
pub mod cache;
pub mod demo;
pub mod filters;
#[doc(hidden)]
pub mod fuzzing;
pub mod header_guard;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod reload;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod tls;
pub mod upstream;
