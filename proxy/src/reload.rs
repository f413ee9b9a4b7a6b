//! Loading a configuration: read, validate and compile (the pure part, all that `vigie check`
//! runs, so `check` accepts exactly what reload compiles), then, for `vigie run` and SIGHUP
//! reload, acquire the resources and swap the snapshot in.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use vigie_config::{Config, ConfigErrors};

use vigie_acme::CertResolver;

use crate::plan::{Compiled, Plan};
use crate::snapshot::{BuildError, Snapshot, SnapshotHandle};

/// What a reload updates: the snapshot the request path reads and the certificates the TLS
/// listener serves.
#[derive(Clone)]
pub struct Live {
    /// The current snapshot.
    pub snapshots: SnapshotHandle,
    /// The TLS certificate resolver.
    pub certs: Arc<CertResolver>,
    /// Wakes the ACME service (new or changed `tls = "acme"` sites are ordered at once).
    pub acme_wake: Arc<tokio::sync::Notify>,
    /// Metrics (reloads, loaded configuration).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The access log, reopened on SIGUSR1.
    pub access_log: Option<Arc<crate::access_log::AccessLog>>,
    /// How the last reload ended (`None`: none since start), for the status page.
    pub last_reload: Arc<Mutex<Option<ReloadOutcome>>>,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// When it ended.
    pub at: SystemTime,
    /// Why it was refused, as logged (`None`: the new configuration is live).
    pub error: Option<String>,
}

impl Live {
    fn note_reload(&self, error: Option<String>) {
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(ReloadOutcome {
            at: SystemTime::now(),
            error,
        });
    }
}

impl Live {
    /// Make `snap` current: certificates first, so a request routed by the new snapshot to a
    /// new TLS site finds its certificate.
    pub fn apply(&self, snap: Snapshot) {
        self.certs.set_configured(snap.certs.clone());
        self.metrics.config_loaded(&snap);
        self.snapshots.store(Arc::new(snap));
        self.acme_wake.notify_one();
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A TOML file.
    File(PathBuf),
    /// The embedded demo configuration (`vigie run` without `-c`).
    Demo,
}

impl Source {
    /// The name used in messages.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Demo => "<embedded demo>".to_string(),
        }
    }
}

/// Why a configuration could not become a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is unreadable or invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The config is valid but could not be made live (e.g. a name did not resolve).
    #[error("{origin}: {source}")]
    Build {
        /// The file name.
        origin: String,
        /// What failed.
        #[source]
        source: BuildError,
    },
}

/// Read and validate the configuration.
pub fn read(source: &Source) -> Result<Config, ConfigErrors> {
    match source {
        Source::File(path) => vigie_config::load(path),
        Source::Demo => crate::demo::config(),
    }
}

/// A configuration `vigie check` found valid: its plan, and what starting it would do that a
/// check does not (see `resources::preview`).
#[derive(Debug)]
pub struct Checked {
    /// The compiled plan (nothing acquired).
    pub plan: Plan<Compiled>,
    /// Notes on what acquisition would do, one a line.
    pub notes: Vec<String>,
}

/// Read, validate and compile: `vigie check`. Writes, creates, resolves and connects nothing.
pub fn check(source: &Source) -> Result<Checked, LoadError> {
    let plan = Plan::compile(read(source)?).map_err(|e| build_error(source, e.into()))?;
    let notes = crate::resources::preview(&plan).map_err(|e| build_error(source, e))?;
    Ok(Checked { plan, notes })
}

/// Read, validate, compile and acquire a snapshot, reusing `previous`'s unchanged resources.
pub fn load(source: &Source, previous: Option<&Snapshot>) -> Result<Snapshot, LoadError> {
    let config = read(source)?;
    Snapshot::build(config, previous).map_err(|e| build_error(source, e))
}

/// A build error; those with a position in the file (cache directories) read like the
/// file's other errors, `FILE:LINE:COL: ...`.
fn build_error(source: &Source, e: BuildError) -> LoadError {
    match e {
        BuildError::Cache(zones) => LoadError::Config(zones.in_file(&source.name())),
        other => LoadError::Build {
            origin: source.name(),
            source: other,
        },
    }
}

/// Reload into `snapshots`: swap on success, keep the running snapshot on failure.
/// Returns whether the new configuration was applied.
pub fn reload(source: &Source, live: &Live) -> bool {
    let current = live.snapshots.load_full();
    match load(source, Some(&current)) {
        Ok(next) => {
            if next.config.server != current.config.server {
                tracing::warn!(
                    "[server] changed: listeners and threads stay as they are until a restart \
                     or graceful upgrade"
                );
            }
            for w in &next.config.warnings {
                tracing::warn!(line = w.line, col = w.col, "{}", w.message);
            }
            live.apply(next);
            live.metrics.reload(true);
            live.note_reload(None);
            tracing::info!(source = %source.name(), "configuration reloaded");
            true
        }
        Err(e) => {
            live.metrics.reload(false);
            live.note_reload(Some(e.to_string()));
            tracing::error!(source = %source.name(), "reload rejected, the running configuration keeps serving:\n{e}");
            false
        }
    }
}
