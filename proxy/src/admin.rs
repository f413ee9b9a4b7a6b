//! The admin listener (loopback by default): `/healthz` now; `/metrics` and the certificate
//! and purge APIs join it in their own issues.
//!
//! `/healthz` answers 200 with the loaded configuration's age when the process is up and a
//! snapshot is loaded (there is always one once listeners are bound).

use std::time::SystemTime;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::snapshot::SnapshotHandle;

/// The admin HTTP application.
pub struct Admin {
    snapshots: SnapshotHandle,
}

impl Admin {
    /// An admin app reading from `snapshots`.
    pub fn new(snapshots: SnapshotHandle) -> Self {
        Admin { snapshots }
    }
}

fn text(status: u16, body: String) -> Response<Vec<u8>> {
    let body = body.into_bytes();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => {
                let snap = self.snapshots.load();
                let age = SystemTime::now()
                    .duration_since(snap.loaded_at)
                    .map_or(0, |d| d.as_secs());
                text(
                    200,
                    format!(
                        "ok\nconfig_loaded_seconds_ago {age}\nsites {}\n",
                        snap.sites().len()
                    ),
                )
            }
            _ => text(404, "404 Not Found\n".to_string()),
        }
    }
}
