//! Request buffering: a small request body is read in full before an upstream is chosen.
//!
//! pingora connects to the upstream first and streams the request body after, so a client
//! that dribbles its body holds an upstream connection (and, behind a threaded or prefork
//! backend, a worker) for as long as it likes: the slow-body attack (`slowhttptest -B`).
//! nginx buffers request bodies by default; vigie reads up to `request_buffer` (`[server]`,
//! or the route's own; 64 KiB by default, `0` = off) before it picks a server:
//!
//! - a body whose declared length (`Content-Length`, HTTP/1.1 or HTTP/2) fits is read whole;
//! - a body without one (HTTP/1.1 chunked, HTTP/2 without `content-length`) is read until it
//!   ends or passes the buffer size; one that passes streams from there;
//! - a larger declared body streams as before, so a big upload reaches the origin at once.
//!
//! [`read`] runs at the end of `request_filter`, for proxy routes. While it reads,
//! `body_timeout` applies to each read (408) — on HTTP/2 too, where pingora sets none — and
//! the body counts against `max_body` (413).
//!
//! How the body gets to the upstream: once its retry buffer is on, pingora keeps a copy of
//! what is read from the client (up to 64 KiB, the reason for the cap), and when it proxies it
//! sends that copy first, through `request_body_filter`, then reads the rest from the client;
//! a retry on another server (connection refused) sends the copy again. Should the copy
//! overflow (a chunked body whose last read passes 64 KiB), pingora sends nothing of it:
//! [`Replay::Prepend`] then puts vigie's own copy before the next piece. A body that ends
//! with an overflown copy would reach the upstream never: on HTTP/2 reads are DATA frames
//! (16 KiB at most), so vigie stops 16 KiB short of the copy's size; on HTTP/1.1 the end of a
//! chunked body is always a read of its own, made only below the buffer size.
//!
//! Requests with `Expect: 100-continue` are not buffered: the client waits for the origin's
//! `100` before it sends the body.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use vigie_config::Server;

use crate::plan::RoutePlan;

use super::body_limit;

/// pingora's retry buffer (`BODY_BUF_LIMIT` in pingora-core).
const RETRY_BUFFER: usize = 64 * 1024;
/// The largest HTTP/2 DATA frame a client may send vigie (the protocol's default).
const H2_MAX_FRAME: usize = 16 * 1024;

/// What the body filter must do with the pieces pingora sends after [`read`].
#[derive(Debug, Default)]
pub enum Replay {
    /// Nothing was read here: every piece is new.
    #[default]
    Nothing,
    /// The whole body was read and counted; pingora sends it (again on each retry).
    Whole,
    /// A counted beginning that pingora sends first, then the rest as it comes.
    Counted,
    /// A counted beginning pingora lost (its copy overflowed): it goes before the next piece.
    Prepend(Bytes),
}

impl Replay {
    /// Run on each piece in `request_body_filter`: restores a lost beginning into `body`, and
    /// returns how many of its bytes were not counted against `max_body` yet.
    pub fn piece(&mut self, body: &mut Option<Bytes>) -> usize {
        let new = body.as_ref().map_or(0, Bytes::len);
        match std::mem::take(self) {
            Replay::Nothing => new,
            Replay::Whole => {
                *self = Replay::Whole;
                0
            }
            Replay::Counted => 0,
            Replay::Prepend(start) => {
                let mut all = BytesMut::with_capacity(start.len() + new);
                all.extend_from_slice(&start);
                if let Some(b) = body.as_ref() {
                    all.extend_from_slice(b);
                }
                *body = Some(all.freeze());
                new
            }
        }
    }
}

/// The buffer size for `route`: its own `request_buffer`, else the server's.
pub fn limit_for(server: &Server, route: &RoutePlan) -> u64 {
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

/// Read the body, or its beginning, before an upstream is chosen (see the module docs),
/// waiting at most `timeout` for each piece and counting it into `seen` against `max_body`.
/// A timeout is a downstream `ReadTimedout` (408), a client that goes away a downstream read
/// error.
pub async fn read(
    session: &mut Session,
    limit: u64,
    timeout: Duration,
    max_body: Option<u64>,
    seen: &mut u64,
) -> Result<Replay> {
    if limit == 0 || session.is_body_empty() || expects_continue(session) {
        return Ok(Replay::Nothing);
    }
    let limit = usize::try_from(limit).unwrap_or(RETRY_BUFFER);
    let threshold = match declared_length(session) {
        Some(len) if len <= limit as u64 => limit,
        Some(_) => return Ok(Replay::Nothing),
        None if session.req_header().version == http::Version::HTTP_2 => {
            limit.min(RETRY_BUFFER - H2_MAX_FRAME)
        }
        None => limit,
    };
    session.enable_retry_buffering();
    let mut copy = BytesMut::new();
    while !session.is_body_done() && copy.len() <= threshold {
        let piece = match tokio::time::timeout(timeout, session.read_request_body()).await {
            Ok(piece) => piece.map_err(|e| e.into_down())?,
            Err(_) => {
                let what = format!("no request body data within {timeout:?} while buffering");
                return Err(Error::explain(ErrorType::ReadTimedout, what).into_down());
            }
        };
        let Some(piece) = piece else { break };
        match max_body {
            Some(max) => body_limit::count(seen, piece.len(), max)?,
            None => *seen += piece.len() as u64,
        }
        copy.extend_from_slice(&piece);
    }
    let done = session.is_body_done();
    let lost = session.retry_buffer_truncated();
    tracing::debug!(read = copy.len(), done, lost, "request body buffered");
    Ok(match (done, lost) {
        (true, false) => Replay::Whole,
        (false, false) => Replay::Counted,
        (false, true) => Replay::Prepend(copy.freeze()),
        (true, true) => {
            // Ruled out above (see the module docs); refuse rather than hang the upstream.
            return Error::e_explain(ErrorType::InternalError, "buffered request body lost");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_restores_a_lost_beginning_once_and_counts_only_new_bytes() {
        let mut r = Replay::Prepend(Bytes::from_static(b"abc"));
        let mut piece = Some(Bytes::from_static(b"de"));
        assert_eq!(r.piece(&mut piece), 2);
        assert_eq!(piece.as_deref(), Some(&b"abcde"[..]));
        let mut piece = Some(Bytes::from_static(b"f"));
        assert_eq!(r.piece(&mut piece), 1);
        assert_eq!(piece.as_deref(), Some(&b"f"[..]));
        // The body may end right after: the beginning alone goes out with the end.
        let mut r = Replay::Prepend(Bytes::from_static(b"abc"));
        let mut end = None;
        assert_eq!(r.piece(&mut end), 0);
        assert_eq!(end.as_deref(), Some(&b"abc"[..]));
    }

    #[test]
    fn replay_does_not_count_what_was_counted() {
        let mut r = Replay::Whole;
        for _ in 0..2 {
            // Each attempt (a retry) sends the whole body again.
            assert_eq!(r.piece(&mut Some(Bytes::from_static(b"abc"))), 0);
        }
        let mut r = Replay::Counted;
        assert_eq!(r.piece(&mut Some(Bytes::from_static(b"abc"))), 0);
        assert_eq!(r.piece(&mut Some(Bytes::from_static(b"de"))), 2);
        assert_eq!(
            Replay::Nothing.piece(&mut Some(Bytes::from_static(b"de"))),
            2
        );
    }
}
