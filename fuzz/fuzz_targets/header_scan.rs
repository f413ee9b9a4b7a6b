//! The header guard's scanner on arbitrary bytes: the verdict does not depend on how the
//! bytes are split into reads (the first byte of the input picks the split points), and the
//! size limit is never passed silently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie::fuzzing::{HeaderScan, Scan};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let (max_header, max_uri) = (256 + usize::from(seed) * 4, 64 + usize::from(seed));
    let mut whole = HeaderScan::new(max_header, max_uri);
    let a = whole.feed(bytes);
    let mut split = HeaderScan::new(max_header, max_uri);
    let step = usize::from(seed % 7) + 1;
    let mut b = Scan::More;
    for chunk in bytes.chunks(step) {
        b = split.feed(chunk);
        if b != Scan::More {
            break;
        }
    }
    assert_eq!(a, b, "split into reads of {step}");
    if a == Scan::More {
        assert!(bytes.len() <= max_header, "{} bytes under way", bytes.len());
    }
});
