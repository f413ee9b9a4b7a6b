//! The configuration parser on arbitrary text: it returns a config or errors, never panics,
//! and every error names a position inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = vigie_config::parse(text, "fuzz.toml") {
        let lines = text.lines().count().max(1) + 1;
        for e in errors.iter() {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml"), "{msg}");
            assert!(e.line <= lines, "line {} past the end ({lines}): {msg}", e.line);
        }
    }
});
