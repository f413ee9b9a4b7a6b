//! Request body size limit (nginx `client_max_body_size`).
//!
//! [`declared_too_large`] runs in `request_filter`: a `Content-Length` above the limit is refused
//! with 413 before any upstream is contacted. [`count`] runs in `request_body_filter` for every
//! body chunk: chunked bodies (no `Content-Length`) are refused with 413 as soon as the running
//! total passes the limit, before the chunk that crosses it is forwarded.

use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

/// Whether the declared `Content-Length` exceeds `limit`. An unparsable length is left to
/// pingora's own framing checks.
pub fn declared_too_large(session: &Session, limit: u64) -> bool {
    session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > limit)
}

/// Add `chunk` to the running total `seen`; an error with status 413 once it passes `limit`.
pub fn count(seen: &mut u64, chunk: usize, limit: u64) -> Result<()> {
    *seen = seen.saturating_add(chunk as u64);
    if *seen > limit {
        return Error::e_explain(
            ErrorType::HTTPStatus(413),
            format!("request body larger than the limit of {limit} bytes"),
        );
    }
    Ok(())
}
