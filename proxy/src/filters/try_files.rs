//! A static route's answer, with `try_files` (nginx `try_files $uri $uri/ /index.html`), run
//! in `request_filter`; always handles the request.
//!
//! The looked-up path is the path below the route's prefix (nginx `alias`) on prefix routes,
//! and the whole path on exact and regex routes (nginx `root`). With `try_files`, each
//! candidate (`$uri` standing for that path) is tried in order under the root: one ending in
//! `/` is a directory with its index file, any other a regular file; the first that exists is
//! served, else the fallback: a file under the root, or a status. Every candidate goes through
//! the same checks as any static path ([`super::static_files`]: no `..`, nothing outside the
//! root).

use std::path::Path;

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::{Action, TryFallback, TryFiles};

use super::send_error;
use super::static_files::{resolve_under, serve as serve_file};
use crate::plan::pages::ErrorPages;
use crate::plan::routing::{below_prefix, Matcher};
use crate::plan::RoutePlan;

/// Serve a static route's answer for the normalised `path`.
pub async fn serve(
    session: &mut Session,
    pages: &ErrorPages,
    route: &RoutePlan,
    path: &str,
) -> Result<()> {
    let Action::Static {
        root,
        index,
        try_files,
    } = &route.action
    else {
        return send_error(session, pages, 500, "not a static route", None).await;
    };
    let rest = match route.matcher {
        Matcher::Prefix { .. } => below_prefix(&route.path, path),
        Matcher::Exact | Matcher::Regex(_) => path,
    };
    let ops = &route.response_headers;
    let c = route.compress.as_ref();
    let Some(tf) = try_files else {
        return serve_file(session, pages, root, index, rest, ops, c).await;
    };
    match pick(root, index, rest, tf).await {
        Pick::File(found) => serve_file(session, pages, root, index, &found, ops, c).await,
        Pick::Status(status) => send_error(session, pages, status, "", Some(ops)).await,
    }
}

/// What `try_files` settled on.
#[derive(Debug, PartialEq, Eq)]
enum Pick {
    /// This path under the root (a file, or a directory ending in `/`).
    File(String),
    /// This status.
    Status(u16),
}

async fn pick(root: &Path, index: &str, rest: &str, tf: &TryFiles) -> Pick {
    for candidate in &tf.candidates {
        let c = candidate.replace("$uri", rest);
        let Some(fs) = resolve_under(root, &c) else {
            continue;
        };
        let hit = if c.ends_with('/') {
            tokio::fs::metadata(fs.join(index))
                .await
                .is_ok_and(|m| m.is_file())
        } else {
            tokio::fs::metadata(&fs).await.is_ok_and(|m| m.is_file())
        };
        if hit {
            // A directory is served through its index right away, as nginx's index module
            // does after `$uri/`: no redirect.
            return Pick::File(if c.ends_with('/') {
                format!("{c}{index}")
            } else {
                c
            });
        }
    }
    match &tf.fallback {
        TryFallback::File(f) => Pick::File(f.clone()),
        TryFallback::Status(s) => Pick::Status(*s),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn candidates_in_order_then_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.css"), "a").unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/index.html"), "d").unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let tf = TryFiles {
            candidates: vec!["$uri".into(), "$uri/".into()],
            fallback: TryFallback::File("/index.html".into()),
        };
        let p = |rest: &'static str| pick(dir.path(), "index.html", rest, &tf);
        assert_eq!(p("/a.css").await, Pick::File("/a.css".into()));
        assert_eq!(p("/docs").await, Pick::File("/docs/index.html".into()));
        assert_eq!(p("/empty").await, Pick::File("/index.html".into()));
        assert_eq!(p("/app/route").await, Pick::File("/index.html".into()));
        assert_eq!(
            p("/%2e%2e/etc/passwd").await,
            Pick::File("/index.html".into())
        );
        let tf404 = TryFiles {
            candidates: vec!["$uri".into()],
            fallback: TryFallback::Status(404),
        };
        assert_eq!(
            pick(dir.path(), "index.html", "/x", &tf404).await,
            Pick::Status(404)
        );
    }
}
