//! Byte ranges for static files (RFC 9110 §14): one range per request, as most servers that
//! do not build multipart answers do.
//!
//! Used by `static_files` on GET: a satisfiable `Range: bytes=...` gets 206 with
//! `Content-Range`, an unsatisfiable one 416 with `Content-Range: bytes */LENGTH`. A
//! `Range` that does not parse, asks for several ranges, or comes with an `If-Range` that no
//! longer matches the file is ignored, and the whole file is sent (all allowed by the RFC).
//! Proxied routes never come here: `Range` and 206 pass through to and from the upstream.

use std::time::SystemTime;

/// What to send for a request's `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The whole file (200).
    Full,
    /// Bytes `start..=end` (206).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// 416: no byte of the file is in the range.
    Unsatisfiable,
}

/// The answer for a `Range` header value on a file of `len` bytes.
pub fn evaluate(range: Option<&str>, len: u64) -> Answer {
    let Some(spec) = range.and_then(|r| {
        let (unit, spec) = r.trim().split_once('=')?;
        unit.trim().eq_ignore_ascii_case("bytes").then_some(spec)
    }) else {
        return Answer::Full;
    };
    if spec.contains(',') {
        return Answer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Full;
    };
    let number = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            return Some(None);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(Some)
    };
    let (Some(first), Some(last)) = (number(first), number(last)) else {
        return Answer::Full;
    };
    match (first, last) {
        (None, None) => Answer::Full,
        // Suffix: the last `n` bytes.
        (None, Some(0)) => Answer::Unsatisfiable,
        (None, Some(_)) if len == 0 => Answer::Unsatisfiable,
        (None, Some(n)) => Answer::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        },
        (Some(start), last) => {
            if last.is_some_and(|l| l < start) {
                return Answer::Full;
            }
            if start >= len {
                return Answer::Unsatisfiable;
            }
            let end = last.map_or(len - 1, |l| l.min(len - 1));
            Answer::Part { start, end }
        }
    }
}

/// Whether an `If-Range` value still designates this file (its strong ETag, or its exact
/// modification date); a `Range` is honoured only then. No `If-Range` always matches.
pub fn if_range_matches(if_range: Option<&str>, etag: &str, modified: Option<SystemTime>) -> bool {
    let Some(v) = if_range.map(str::trim) else {
        return true;
    };
    if v.starts_with('"') {
        return v == etag;
    }
    let (Ok(date), Some(modified)) = (httpdate::parse_http_date(v), modified) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    secs(date) == secs(modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Answer::*;

    #[test]
    fn single_ranges() {
        let part = |start, end| Part { start, end };
        assert_eq!(evaluate(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(evaluate(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(evaluate(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(evaluate(Some("bytes=-5"), 100), part(95, 99));
        assert_eq!(evaluate(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(evaluate(Some("Bytes = 1-1"), 100), part(1, 1));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(evaluate(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-1"), 0), Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "items=0-1",
            "bytes 0-1",
            "bytes=+1-2",
        ] {
            assert_eq!(evaluate(Some(ignored), 100), Full, "{ignored}");
        }
        assert_eq!(evaluate(None, 100), Full);
    }

    #[test]
    fn if_range() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(t);
        assert!(if_range_matches(None, "\"a\"", Some(t)));
        assert!(if_range_matches(Some("\"a\""), "\"a\"", Some(t)));
        assert!(!if_range_matches(Some("\"b\""), "\"a\"", Some(t)));
        assert!(!if_range_matches(Some("W/\"a\""), "\"a\"", Some(t)));
        assert!(if_range_matches(Some(&date), "\"a\"", Some(t)));
        let later = httpdate::fmt_http_date(t + std::time::Duration::from_secs(1));
        assert!(!if_range_matches(Some(&later), "\"a\"", Some(t)));
        assert!(!if_range_matches(Some("garbage"), "\"a\"", Some(t)));
    }
}
