//! The runtime snapshot: the live plan (see [`crate::plan`]) that the request path reads.
//!
//! A snapshot is immutable. Reload compiles a new plan, acquires its resources (reusing the
//! running snapshot's unchanged ones, see `resources`) and swaps the result in whole
//! through [`SnapshotHandle`]; a request takes the current snapshot once in `new_ctx` and
//! reads only that one until it ends, so a reload never changes a request half-way.

use std::sync::Arc;

use arc_swap::ArcSwap;
use vigie_config::Config;

use crate::plan::{Live, Plan};
pub use crate::resources::BuildError;

/// Everything a request needs: a plan bound to live resources.
pub type Snapshot = Plan<Live>;

/// The shared, swappable handle to the current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;

impl Plan<Live> {
    /// Compile `config` and acquire its resources, reusing `previous`'s unchanged ones.
    pub fn build(config: Config, previous: Option<&Snapshot>) -> Result<Snapshot, BuildError> {
        let plan = Plan::compile(config)?;
        crate::resources::acquire(plan, previous)
    }
}
