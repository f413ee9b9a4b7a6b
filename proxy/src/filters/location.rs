//! Safe `Location` values for the redirects vigie makes itself (trailing slashes,
//! `redirect_www`, HTTP to HTTPS, static directories, `redirect` routes' `$request_uri`).
//!
//! Invariant: a path vigie writes into a `Location` is the request's normalised path (dot
//! segments resolved, empty segments dropped), starts with exactly one `/`, and holds no
//! backslash (written `%5C`). A browser reads `//host/...` and `/\host/...` as a network path
//! to another host; none of these can appear, whatever the client sent.

use pingora::proxy::Session;

use crate::plan::paths::normalize_path;

/// `path` made safe for a `Location` (see the module docs): normalised, one leading `/`,
/// backslashes percent-encoded. A path that cannot be normalised (it climbs above the root)
/// becomes `/`.
pub fn safe_path(path: &str) -> String {
    let encoded;
    let path = if path.contains('\\') {
        encoded = path.replace('\\', "%5C");
        encoded.as_str()
    } else {
        path
    };
    let normal = normalize_path(path).unwrap_or_else(|| "/".to_string());
    let rest = normal.trim_start_matches('/');
    let mut out = String::with_capacity(rest.len() + 1);
    out.push('/');
    out.push_str(rest);
    out
}

/// The request's path made safe (see [`safe_path`]), for a redirect that keeps it.
pub fn request_path(session: &Session) -> String {
    safe_path(session.req_header().uri.path())
}

/// `path` followed by the request's query, if it has one.
pub fn with_query(session: &Session, mut path: String) -> String {
    if let Some(q) = session.req_header().uri.query() {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// The request's path (made safe) and query: vigie's `$request_uri` in a `Location`.
pub fn request_uri(session: &Session) -> String {
    with_query(session, request_path(session))
}

#[cfg(test)]
mod tests {
    use super::safe_path;

    #[test]
    fn locations_never_name_another_host() {
        for (raw, want) in [
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/", "/"),
            ("//evil.example/../a", "/a"),
            ("//evil.example/%2e%2e/a", "/a"),
            ("///evil.example/x", "/evil.example/x"),
            ("//evil.example", "/evil.example"),
            ("/\\evil.example/", "/%5Cevil.example/"),
            ("/\\/evil.example", "/%5C/evil.example"),
            ("\\\\evil.example", "/%5C%5Cevil.example"),
            ("/a/../../..", "/"),
            ("", "/"),
        ] {
            let got = safe_path(raw);
            assert_eq!(got, want, "{raw}");
            assert!(
                !got.starts_with("//") && !got.contains('\\'),
                "{raw}: {got}"
            );
        }
    }
}
