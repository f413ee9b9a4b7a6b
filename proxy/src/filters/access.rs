//! `access` rules (nginx `allow`/`deny`) and `basic_auth` (nginx `auth_basic`), run in
//! `request_filter` once the route is known, in nginx's order: the address first (403),
//! then the credentials (401). `Ok(true)`: answered (refused).

use std::net::IpAddr;

use base64::Engine;
use pingora::proxy::Session;
use pingora::Result;
use vigie_config::access_allows;

use super::send_error_with;
use crate::plan::pages::ErrorPages;
use crate::plan::RoutePlan;

/// Answer 403 when the route's rules refuse the client address (after trusted proxies).
pub async fn refuse_address(
    session: &mut Session,
    pages: &ErrorPages,
    route: &RoutePlan,
    client: Option<IpAddr>,
) -> Result<bool> {
    if route.access.is_empty() || access_allows(&route.access, client) {
        return Ok(false);
    }
    send_error_with(session, pages, 403, "", &[], Some(&route.response_headers)).await?;
    Ok(true)
}

/// Answer 401 with `WWW-Authenticate` unless the request carries credentials the route's
/// htpasswd file accepts. The check (bcrypt is slow on purpose) runs off the async threads.
pub async fn refuse_credentials(
    session: &mut Session,
    pages: &ErrorPages,
    route: &RoutePlan,
) -> Result<bool> {
    let Some(auth) = &route.auth else {
        return Ok(false);
    };
    if let Some((user, password)) = credentials(session) {
        let users = auth.users.clone();
        let check = tokio::task::spawn_blocking(move || users.verify(&user, &password));
        if check.await.unwrap_or(false) {
            return Ok(false);
        }
    }
    let challenge = auth.challenge.to_str().unwrap_or("Basic");
    let extra = [("www-authenticate", challenge)];
    send_error_with(
        session,
        pages,
        401,
        "",
        &extra,
        Some(&route.response_headers),
    )
    .await?;
    Ok(true)
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(session: &Session) -> Option<(String, String)> {
    let value = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
