//! Custom pages for vigie's own error responses (`error_pages`), compiled once per plan: one
//! [`ErrorPages`] for the top level and one per site (the site's pages over the top-level
//! ones). Bodies are in memory; nothing is read on the request path. The request path passes
//! the pages that apply (the snapshot's, then the site's) to `filters::send_error`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

/// Error pages by status code.
#[derive(Debug, Default)]
pub struct ErrorPages {
    pages: HashMap<u16, Page>,
}

/// One page: body and content type.
#[derive(Debug, Clone)]
pub struct Page {
    /// The body sent.
    pub body: Bytes,
    /// Its content type.
    pub content_type: String,
}

impl ErrorPages {
    /// Pages from a validated configuration's `error_pages`.
    pub fn build(config: &vigie_config::ErrorPages) -> Arc<ErrorPages> {
        let pages = config
            .iter()
            .map(|(status, page)| {
                let page = Page {
                    body: Bytes::from(page.body.clone()),
                    content_type: page.content_type.clone(),
                };
                (*status, page)
            })
            .collect();
        Arc::new(ErrorPages { pages })
    }

    /// The page for `status`, if one is configured.
    pub fn get(&self, status: u16) -> Option<&Page> {
        self.pages.get(&status)
    }
}
