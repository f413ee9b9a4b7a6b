//! The per-client rate limit of a route (nginx `limit_req`), run in `request_filter` after
//! routing and before the route answers or proxies. ACME validation requests never get here.
//!
//! Returns the decision's label for the access log (`-`, `passed`, `delayed`, `rejected`) and
//! whether the request was answered: refused requests get 429 by default (or the zone's 503),
//! with `Retry-After`, `RateLimit-Policy` and `RateLimit` (IETF draft structured fields) and a
//! one-line body. A delayed request sleeps here, then goes on.

use std::net::IpAddr;

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::Route;

use crate::limits::Decision;
use crate::snapshot::Snapshot;

/// Apply the route's zone to `client` (see the module docs).
pub async fn apply(
    session: &mut Session,
    snap: &Snapshot,
    route: &Route,
    client: Option<IpAddr>,
) -> Result<(&'static str, bool)> {
    let (Some(name), Some(ip)) = (&route.limit, client) else {
        return Ok(("-", false));
    };
    let Some(zone) = snap.limits.get(name) else {
        return Ok(("-", false));
    };
    if zone.exempt(ip) {
        return Ok(("exempt", false));
    }
    match zone.check(ip) {
        Decision::Allow => Ok(("passed", false)),
        Decision::Delay(wait) => {
            tokio::time::sleep(wait).await;
            Ok(("delayed", false))
        }
        Decision::Reject(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1).to_string();
            let (q, w) = zone.policy();
            let policy = format!("\"{name}\";q={q};w={w}");
            let state = format!("\"{name}\";r=0;t={secs}");
            let status = zone.config.status;
            session.set_keepalive(None);
            super::send_error_with(
                session,
                status,
                &format!("rate limit exceeded, retry in {secs}s"),
                &[
                    ("retry-after", &secs),
                    ("ratelimit-policy", &policy),
                    ("ratelimit", &state),
                ],
                Some(&route.response_headers),
            )
            .await?;
            Ok(("rejected", true))
        }
    }
}
