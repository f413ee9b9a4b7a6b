//! Paths that climb above `/` for a lenient origin; checked in routing, before any route.
//!
//! Routing resolves `.`, `..` and `%2e` segments itself (`snapshot::normalize_path`) and the
//! request goes upstream with its target as the client sent it. An origin that decodes more
//! than that — `%2f` and `%5c` as separators, `\` as `/`, overlong UTF-8 (`%c0%ae` for `.`,
//! `%c0%af` for `/`), `;…` parameters cut off a segment (`..;/`) — would resolve
//! `/..%2f..%2fetc/passwd` above its root. vigie refuses such targets with 400, as nginx does
//! with most of them: [`climbs_above_root`] decodes the path once that lenient way and walks
//! its segments. A path without `%`, `\` or `;` is decided by `normalize_path` alone.

/// Whether `path` (no query) climbs above `/` once decoded leniently (see the module docs).
pub fn climbs_above_root(path: &str) -> bool {
    let raw = path.as_bytes();
    if memchr::memchr3(b'%', b'\\', b';', raw).is_none() {
        return false;
    }
    let decoded = decode(raw);
    let mut depth: usize = 0;
    for seg in decoded.split(|&b| b == b'/') {
        let seg = seg.split(|&b| b == b';').next().unwrap_or_default();
        match seg {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// Percent-decode once, then read overlong `.` and `/` and `\` as `.` and `/`.
fn decode(raw: &[u8]) -> Vec<u8> {
    let mut once = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                once.push(b);
                i += 3;
                continue;
            }
        }
        once.push(raw[i]);
        i += 1;
    }
    let mut out = Vec::with_capacity(once.len());
    let mut j = 0;
    while j < once.len() {
        let (b, used) = match &once[j..] {
            [0xc0, 0xae | 0x2e, ..] => (b'.', 2),
            [0xc0, 0xaf, ..] => (b'/', 2),
            [0xe0, 0x80, 0xaf, ..] => (b'/', 3),
            [b'\\', ..] => (b'/', 1),
            [b, ..] => (*b, 1),
            [] => break,
        };
        out.push(b);
        j += used;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_paths() {
        for p in [
            "/..%2fsecret",
            "/..%2F..%2Fetc/passwd",
            "/%2e%2e%2fx",
            "/..%5cx",
            "/..\\x",
            "/a/..%2f..%2fx",
            "/a%2f..%2f..%2fx",
            "/..;/x",
            "/..;x=1/x",
            "/%c0%ae%c0%ae/x",
            "/..%c0%afx",
            "/..%e0%80%afx",
            "/%c0%2e%c0%2e/x",
        ] {
            assert!(climbs_above_root(p), "{p}");
        }
    }

    #[test]
    fn paths_that_stay_below_the_root_or_are_plain() {
        for p in [
            "/",
            "/a/b",
            "/a/..%2fb",
            "/a%2fb",
            "/space%20name.txt",
            "/a;b=c/d",
            "/%2e%2e",
            "/x/%252e%252e/y",
            "/...%2fx",
        ] {
            // `/%2e%2e` does climb (normalize_path refuses it too).
            assert_eq!(climbs_above_root(p), p == "/%2e%2e", "{p}");
        }
    }
}
