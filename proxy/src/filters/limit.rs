//! The per-client rate limit of a route (nginx `limit_req`), run in `request_filter` after
//! routing and before the route answers or proxies. ACME validation requests never get here.
//!
//! Returns the [`Outcome`] (its [`Outcome::as_str`] is the access log's label); a
//! [`Outcome::Rejected`] request was answered: 429 by default (or the zone's 503), with
//! `Retry-After`, `RateLimit-Policy` and `RateLimit` (IETF draft structured fields) and a
//! one-line body. A delayed request sleeps here, then goes on.
//!
//! With `[cluster]`, `shared` decides (one Redis round trip; see [`crate::limits::shared`]);
//! routes without a limit and exempt clients never reach Redis.

use std::net::IpAddr;

use pingora::proxy::Session;
use pingora::Result;

use crate::limits::shared::Shared;
use crate::limits::Decision;
use crate::plan::pages::ErrorPages;
use crate::plan::RoutePlan;

/// What the route's limit did to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The route has no limit (or the client address is unknown).
    Off,
    /// The client is exempt from the zone.
    Exempt,
    /// Within the rate.
    Passed,
    /// Over the rate, within the burst: delayed, then passed.
    Delayed,
    /// Refused and answered.
    Rejected,
}

impl Outcome {
    /// The access log's label: `-`, `exempt`, `passed`, `delayed` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Off => "-",
            Outcome::Exempt => "exempt",
            Outcome::Passed => "passed",
            Outcome::Delayed => "delayed",
            Outcome::Rejected => "rejected",
        }
    }

    /// Whether the request was answered (refused) here.
    pub fn answered(self) -> bool {
        self == Outcome::Rejected
    }
}

/// Apply the route's zone to `client`, cluster-wide when `shared` is given (see the module
/// docs).
pub async fn apply(
    session: &mut Session,
    pages: &ErrorPages,
    route: &RoutePlan,
    client: Option<IpAddr>,
    shared: Option<&Shared>,
) -> Result<Outcome> {
    let (Some(zone), Some(ip)) = (&route.limit, client) else {
        return Ok(Outcome::Off);
    };
    if zone.exempt(ip) {
        return Ok(Outcome::Exempt);
    }
    let decision = match shared {
        Some(shared) => shared.check(zone, ip).await,
        None => zone.check(ip),
    };
    match decision {
        Decision::Allow => Ok(Outcome::Passed),
        Decision::Delay(wait) => {
            tokio::time::sleep(wait).await;
            Ok(Outcome::Delayed)
        }
        Decision::Reject(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1).to_string();
            let (q, w) = zone.policy();
            let name = &zone.config.name;
            let policy = format!("\"{name}\";q={q};w={w}");
            let state = format!("\"{name}\";r=0;t={secs}");
            let status = zone.config.status;
            session.set_keepalive(None);
            super::send_error_with(
                session,
                pages,
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
            Ok(Outcome::Rejected)
        }
    }
}
