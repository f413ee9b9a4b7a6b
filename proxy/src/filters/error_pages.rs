//! Custom pages for vigie's own error responses (`error_pages`), ready to send.
//!
//! A plan holds one [`ErrorPages`] for the top level and one per site (the site's pages
//! over the top-level ones), compiled once (`plan::pages`): page bodies are in memory, nothing
//! is read on the request path.
//!
//! Which pages apply travels with the request: [`attach`] puts the top-level pages on the
//! request header's extensions in `early_request_filter`, and the site's once the site is
//! known; [`super::send_error`] reads them from there. Only vigie's own errors are replaced
//! (no route, body too large, rate limited, upstream failures...); `respond` routes and
//! responses from upstreams are sent as they are, and the status code is always kept.

use std::sync::Arc;

use pingora::proxy::Session;

use crate::plan::pages::{ErrorPages, Page};

/// Make `pages` the ones used for this request's error responses (replacing any attached
/// before).
pub fn attach(session: &mut Session, pages: &Arc<ErrorPages>) {
    session
        .req_header_mut()
        .extensions_mut()
        .insert(pages.clone());
}

/// The page attached to this request for `status`, if any.
pub fn lookup(session: &Session, status: u16) -> Option<Page> {
    session
        .req_header()
        .extensions
        .get::<Arc<ErrorPages>>()
        .and_then(|p| p.get(status))
        .cloned()
}
