//! The pure functions of the request path that `fuzz/` drives, in one place, so that the fuzz
//! targets keep working while the modules behind them stay private and move.
//!
//! Nothing here is for use by the proxy itself; each item is the real function, not a copy.

pub use crate::filters::cache::key_for as cache_key;
pub use crate::filters::client_ip::client_from_chain;
pub use crate::header_guard::{HeaderScan, Scan};
pub use crate::plan::paths::normalize_path;
