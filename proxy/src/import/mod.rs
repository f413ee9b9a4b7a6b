//! Importers of other proxies' configurations into vigie TOML.

pub mod nginx;
