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

/// Expand `$request_uri`, `$host` and `$scheme` in a redirect target. `$request_uri` is the
/// normalised path and the query (see [`super::location`]): a target of `$request_uri` alone
/// never turns `//evil.example/..` into a network path; `$host` is a validated host name
/// ([`super::request_host`]).
pub fn expand_target(to: &str, session: &Session, host: &str, scheme: &str) -> String {
    let request_uri = super::location::request_uri(session);
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

/// Redirect a plain-HTTP request to the same host, path and query over HTTPS (nginx's
/// `return 301 https://$host$request_uri`): 301 for GET and HEAD, 308 otherwise so that the
/// method and body are kept. The port is written only when it is not 443.
pub async fn to_https(session: &mut Session, host: &str, port: u16) -> Result<()> {
    let https = expand_target("https://$host$request_uri", session, host, "https");
    let location = if port == 443 {
        https
    } else {
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        https.replacen(host, &authority, 1)
    };
    let method = &session.req_header().method;
    let status = if method == http::Method::GET || method == http::Method::HEAD {
        301
    } else {
        308
    };
    session.set_keepalive(None);
    redirect(session, status, &location, &HeaderOps::default()).await
}

/// Whether a route answers nginx's `return 444`: close the connection, answer nothing.
pub fn drops(route: &crate::plan::RoutePlan) -> bool {
    matches!(
        route.action,
        vigie_config::Action::Respond { status: 444, .. }
    )
}

/// The error that ends a request without an answer (`respond = { status = 444 }`): a
/// closed client connection, for which nothing is written and the connection is not reused.
pub fn drop_connection() -> Box<pingora::Error> {
    let mut e = pingora::Error::explain(
        pingora::ErrorType::ConnectionClosed,
        "respond 444: connection closed without a response",
    );
    e.esource = pingora::ErrorSource::Downstream;
    e
}
