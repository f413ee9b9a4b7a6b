//! `vigie import nginx`: nginx configuration (with its includes) → vigie TOML plus a report.
//!
//! [`parse`] reads nginx's grammar into directives with positions; [`translate`] maps the
//! common subset onto vigie's keys, writing `# from FILE:LINE` above each table and one
//! report line for everything dropped or approximated.

mod emit;
mod location;
pub mod parse;
mod site;
pub mod translate;

pub use translate::{import_file, Import};
