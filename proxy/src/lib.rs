//! vigie: an edge proxy on pingora that replaces nginx + certbot + cron.
//!
//! Data flows one way: file → raw (serde) → validated [`vigie_config::Config`] → a pure
//! compile into a [`plan::Plan`] (what `vigie check` runs) → resources acquired for it
//! (`resources`, reusing the running ones) → the live [`snapshot::Snapshot`], swapped
//! atomically on reload → the request filters of the service, which read only the snapshot
//! their request started with.
//!
//! Public modules are the ones the binary, the benches and the tests use; the rest is
//! private so that the compiler reports what nothing uses.

// Items inside the private modules keep `pub` (not `pub(crate)`) so that branches changing
// them at the same time still merge; `cargo fix` can narrow them in one pass later.
// Dead code in them is reported either way.
#[allow(unreachable_pub)]
mod access_log;
pub mod admin;
#[allow(unreachable_pub)]
mod background;
#[allow(unreachable_pub)]
mod cache;
#[allow(unreachable_pub)]
mod cluster;
pub mod demo;
pub mod filters;
#[doc(hidden)]
pub mod fuzzing;
#[allow(unreachable_pub)]
mod header_guard;
pub mod import;
pub mod limits;
#[allow(unreachable_pub)]
mod listener;
pub mod log_noise;
#[allow(unreachable_pub)]
mod metrics;
pub mod plan;
pub mod reload;
mod resources;
pub mod server;
#[allow(unreachable_pub)]
mod service;
pub mod snapshot;
#[allow(unreachable_pub)]
mod status;
#[allow(unreachable_pub)]
mod tls;
#[allow(unreachable_pub)]
mod upstream;
