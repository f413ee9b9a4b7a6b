//! Path normalisation for routing: the one place that decides which path a request is
//! routed by. `.` and `..` segments (also percent-encoded) are resolved and repeated slashes
//! merged, so `/static/%2e%2e/api/x` is routed as `/api/x`; a path climbing above the root is
//! refused.

/// Normalise a request path for routing: resolve `.` and `..` segments (also percent-encoded),
/// merge repeated slashes. Returns `None` when `..` would climb above the root.
///
/// Runs on every request: a path with nothing to resolve (no empty segment, none starting
/// with `.` or `%2e`) is returned as it is, with one allocation.
pub fn normalize_path(path: &str) -> Option<String> {
    let plain = path.starts_with('/')
        && !path.contains("//")
        && !path.contains("/.")
        && !path
            .as_bytes()
            .windows(4)
            .any(|w| w[0] == b'/' && w[1..].eq_ignore_ascii_case(b"%2e"));
    if plain {
        return Some(path.to_owned());
    }
    let mut out: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for seg in path.split('/') {
        match dots(seg) {
            Some(0 | 1) => {}
            Some(2) => {
                out.pop()?;
            }
            _ => out.push(seg),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() || (trailing && !s.ends_with('/')) {
        s.push('/');
    }
    Some(s)
}

/// How many dots a segment made only of dots (`.` or `%2e`, any case) holds; `None` for any
/// other segment.
fn dots(seg: &str) -> Option<usize> {
    let mut rest = seg.as_bytes();
    let mut n = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize_path("/a/./b//c").unwrap(), "/a/b/c");
        assert_eq!(normalize_path("/a/../b/").unwrap(), "/b/");
        assert_eq!(normalize_path("/static/%2e%2e/api/x").unwrap(), "/api/x");
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("/a/..").unwrap(), "/");
        assert!(normalize_path("/../etc/passwd").is_none());
        assert!(normalize_path("/%2E%2e/etc/passwd").is_none());
        assert_eq!(normalize_path("/a/.%2E/b").unwrap(), "/b");
        assert_eq!(normalize_path("/a/...").unwrap(), "/a/...");
        assert_eq!(normalize_path("/a.b/c%2ed/").unwrap(), "/a.b/c%2ed/");
        assert_eq!(normalize_path("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(normalize_path("a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("").unwrap(), "/");
    }

    /// The shortcut for paths with nothing to resolve gives what resolving gives.
    #[test]
    fn plain_paths_are_kept_as_resolving_would() {
        let segs = [
            "a", "", ".", "..", "%2e", "%2E%2e", ".x", "x.", "b%2ec", "...",
        ];
        for a in segs {
            for b in segs {
                for c in segs {
                    for end in ["", "/"] {
                        let path = format!("/{a}/{b}/{c}{end}");
                        let got = normalize_path(&path);
                        // The reference: the same rules, segment by segment, no shortcut.
                        let mut out: Vec<&str> = Vec::new();
                        let mut ok = true;
                        for seg in path.split('/') {
                            match seg.to_ascii_lowercase().replace("%2e", ".").as_str() {
                                "" | "." => {}
                                ".." => ok &= out.pop().is_some(),
                                _ => out.push(seg),
                            }
                        }
                        let trailing =
                            path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
                        let mut want = out.iter().map(|s| format!("/{s}")).collect::<String>();
                        if want.is_empty() || (trailing && !want.ends_with('/')) {
                            want.push('/');
                        }
                        assert_eq!(got, ok.then_some(want), "{path}");
                    }
                }
            }
        }
    }
}
