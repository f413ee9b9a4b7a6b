//! Request buffering: a small request body is read in full before an upstream is chosen.
//!
//! pingora connects to the upstream first and streams the request body after, so a client
//! that dribbles its body holds an upstream connection (and, behind a threaded or prefork
//! backend, a worker) for as long as it likes: the slow-body attack (`slowhttptest -B`).
//! nginx buffers request bodies by default; vigie buffers those whose length is declared
//! (`Content-Length`, HTTP/1.1 or HTTP/2) and at most `request_buffer` (`[server]`, or the
//! route's own; 64 KiB by default, `0` = off). Larger bodies stream as before, so a big upload
//! still starts reaching the origin at once.
//!
//! [`read`] runs at the end of `request_filter`, for proxy routes. While it reads,
//! `body_timeout` applies to each read (408) — on HTTP/2 too, where pingora sets none — and a
//! body longer than `max_body` has already been refused from its declared length (413).
//!
//! How the body gets to the upstream: pingora keeps a copy of what is read from the client
//! once its retry buffer is on (64 KiB, the reason for the cap), and when it proxies, it sends
//! that copy first, through `request_body_filter`, then reads the rest from the client. With
//! the whole body in the copy, the upstream gets it in one piece right after the header; a
//! retry on another server (connection refused) sends it again.
//!
//! Not buffered: bodies without a declared length (HTTP/1.1 chunked, HTTP/2 without
//! `content-length`; the retry buffer could overflow on the read that completes one, and
//! pingora would then send nothing), and requests with `Expect: 100-continue` (the client
//! waits for the origin's `100` before it sends the body).

use std::time::Duration;

use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use vigie_config::{Route, Server};

/// The buffer size for `route`: its own `request_buffer`, else the server's.
pub fn limit_for(server: &Server, route: &Route) -> u64 {
    route.request_buffer.unwrap_or(server.request_buffer)
}

/// The body length the request declares, when pingora frames the body by it (no
/// `Transfer-Encoding`).
fn declared_length(session: &Session) -> Option<u64> {
    let headers = &session.req_header().headers;
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn expects_continue(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Read the whole body when it is declared and at most `limit` bytes (see the module docs),
/// waiting at most `timeout` for each piece. `Ok(true)`: the body is in pingora's retry
/// buffer, complete; `Ok(false)`: nothing read, the body streams. A timeout is a downstream
/// `ReadTimedout` (408), a client that goes away a downstream read error.
pub async fn read(session: &mut Session, limit: u64, timeout: Duration) -> Result<bool> {
    if limit == 0 || session.is_body_empty() || expects_continue(session) {
        return Ok(false);
    }
    match declared_length(session) {
        Some(len) if len <= limit => {}
        _ => return Ok(false),
    }
    session.enable_retry_buffering();
    while !session.is_body_done() {
        let piece = match tokio::time::timeout(timeout, session.read_request_body()).await {
            Ok(piece) => piece.map_err(|e| e.into_down())?,
            Err(_) => {
                let what = format!("no request body data within {timeout:?} while buffering");
                return Err(Error::explain(ErrorType::ReadTimedout, what).into_down());
            }
        };
        if piece.is_none() {
            break;
        }
    }
    if session.retry_buffer_truncated() {
        // Cannot happen with the cap at the retry buffer's size; refuse rather than lose it.
        return Error::e_explain(ErrorType::InternalError, "buffered request body lost");
    }
    Ok(true)
}
