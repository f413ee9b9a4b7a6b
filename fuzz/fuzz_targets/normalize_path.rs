//! Path normalisation on arbitrary paths: the result starts with `/`, has no empty, `.` or
//! `..` segment (also percent-encoded) and no `//`, never climbs above the root, and
//! normalising it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie::fuzzing::normalize_path;

fn is_dots(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase().replace("%2e", ".");
    lower == "." || lower == ".."
}

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Some(out) = normalize_path(path) else {
        return;
    };
    assert!(out.starts_with('/'), "{path:?} -> {out:?}");
    assert!(!out.contains("//"), "{path:?} -> {out:?}");
    assert!(!out.split('/').any(is_dots), "{path:?} -> {out:?}");
    assert_eq!(normalize_path(&out).as_deref(), Some(out.as_str()), "{path:?}");
});
