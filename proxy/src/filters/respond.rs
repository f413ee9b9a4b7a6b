//! Routes that answer by themselves: `respond` (nginx `return CODE TEXT`) and `redirect`
//! (nginx `return 301 URL`). Both run in `request_filter` and always handle the request.

use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;
use vigie_config::HeaderOps;

use super::{error_body, send};

/// Answer with a fixed status, content type and body.
pub async fn respond(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: &str,
    ops: &HeaderOps,
) -> Result<()> {
    send(
        session,
        status,
        content_type,
        Bytes::copy_from_slice(body.as_bytes()),
        &[],
        Some(ops),
    )
    .await
}

/// Expand `$request_uri`, `$host` and `$scheme` in a redirect target.
pub fn expand_target(to: &str, session: &Session, host: &str, scheme: &str) -> String {
    let uri = &session.req_header().uri;
    let request_uri = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    to.replace("$request_uri", &request_uri)
        .replace("$host", host)
        .replace("$scheme", scheme)
}

/// Answer with a redirect to `location`.
pub async fn redirect(
    session: &mut Session,
    status: u16,
    location: &str,
    ops: &HeaderOps,
) -> Result<()> {
    send(
        session,
        status,
        "text/plain; charset=utf-8",
        error_body(status, location),
        &[("location", location)],
        Some(ops),
    )
    .await
}
