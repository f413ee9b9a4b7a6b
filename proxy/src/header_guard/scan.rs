//! Following an HTTP/1.x request header byte by byte, without buffering it: where it ends,
//! how long its request target is, and how large it is.
//!
//! The header ends at the first empty line (`\r\n\r\n`, or bare `\n\n` as httparse also
//! accepts). Empty lines before the request line are skipped, as RFC 9112 §2.2 allows, but
//! count toward the size. The request target is what lies between the first and the second
//! space of the request line. More than [`MAX_FIELDS`] header fields count as too large: pingora's
//! parser has room for that many and answers a bare 400 past it.

/// Most header fields pingora's HTTP/1 parser accepts (its `MAX_HEADERS`).
pub const MAX_FIELDS: usize = 256;

/// Where a request header stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Not complete yet, within the limits.
    More,
    /// Complete: the bytes after it are the body or the next request.
    Done,
    /// The request target passed the URI limit.
    UriTooLong,
    /// The header passed the size limit.
    TooLarge,
}

/// The state of one request header being read.
#[derive(Debug, Clone)]
pub struct HeaderScan {
    max_header: usize,
    max_uri: usize,
    /// Bytes of this request seen so far.
    seen: usize,
    /// Whether the request line has started (a byte other than CR or LF arrived).
    started: bool,
    /// Whether the request line is complete.
    line_done: bool,
    /// Spaces seen in the request line.
    spaces: u8,
    /// Length of the request target so far.
    target: usize,
    /// Line feeds in a row (carriage returns ignored) since the last other byte.
    newlines: u8,
    /// Header field lines completed.
    fields: usize,
}

impl HeaderScan {
    /// A scan for a header of at most `max_header` bytes with a target of at most `max_uri`.
    pub fn new(max_header: usize, max_uri: usize) -> HeaderScan {
        HeaderScan {
            max_header,
            max_uri,
            seen: 0,
            started: false,
            line_done: false,
            spaces: 0,
            target: 0,
            newlines: 0,
            fields: 0,
        }
    }

    /// Whether any byte of the request arrived.
    pub fn received(&self) -> bool {
        self.seen > 0
    }

    /// Follow `bytes`, the next ones read. Once it returned something other than
    /// [`Scan::More`], the scan is over and further calls return the same.
    pub fn feed(&mut self, bytes: &[u8]) -> Scan {
        for &b in bytes {
            if let Some(end) = self.step(b) {
                return end;
            }
        }
        Scan::More
    }

    fn step(&mut self, b: u8) -> Option<Scan> {
        if self.newlines >= 2 && self.line_done {
            return Some(Scan::Done);
        }
        if self.target > self.max_uri {
            return Some(Scan::UriTooLong);
        }
        self.seen += 1;
        if self.seen > self.max_header {
            return Some(Scan::TooLarge);
        }
        if !self.started {
            if b == b'\r' || b == b'\n' {
                return None;
            }
            self.started = true;
        }
        if !self.line_done {
            match b {
                b'\n' => {
                    self.line_done = true;
                    self.newlines = 1;
                }
                b' ' => self.spaces = self.spaces.saturating_add(1),
                b'\r' => {}
                _ if self.spaces == 1 => {
                    self.target += 1;
                    if self.target > self.max_uri {
                        return Some(Scan::UriTooLong);
                    }
                }
                _ => {}
            }
        } else if b == b'\n' {
            if self.newlines == 0 {
                self.fields += 1;
            }
            self.newlines += 1;
            if self.newlines >= 2 {
                return Some(Scan::Done);
            }
        } else if b != b'\r' {
            if self.newlines > 0 && self.fields >= MAX_FIELDS {
                // The start of one field more than the parser takes.
                return Some(Scan::TooLarge);
            }
            self.newlines = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(max_header: usize, max_uri: usize, input: &[u8]) -> Scan {
        HeaderScan::new(max_header, max_uri).feed(input)
    }

    #[test]
    fn finds_the_end_of_the_header() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nBODY";
        assert_eq!(scan_all(1000, 100, req), Scan::Done);
        assert_eq!(scan_all(1000, 100, b"GET / HTTP/1.0\n\n"), Scan::Done);
        assert_eq!(
            scan_all(1000, 100, b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Scan::More
        );
        // Leading empty lines are skipped; a request line alone is not the end.
        assert_eq!(
            scan_all(1000, 100, b"\r\n\r\nGET / HTTP/1.1\r\n"),
            Scan::More
        );
        assert_eq!(
            scan_all(1000, 100, b"\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n"),
            Scan::Done
        );
    }

    #[test]
    fn bytes_may_come_one_by_one() {
        let req = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n";
        let mut s = HeaderScan::new(1000, 100);
        assert!(!s.received());
        for (i, b) in req.iter().enumerate() {
            let expected = if i + 1 == req.len() {
                Scan::Done
            } else {
                Scan::More
            };
            assert_eq!(s.feed(&[*b]), expected, "at byte {i}");
        }
        assert!(s.received());
    }

    #[test]
    fn limits_uri_and_header() {
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(scan_all(1000, 100, long_uri.as_bytes()), Scan::UriTooLong);
        assert_eq!(scan_all(1000, 101, long_uri.as_bytes()), Scan::Done);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(100));
        assert_eq!(scan_all(100, 10, big.as_bytes()), Scan::TooLarge);
        assert_eq!(scan_all(big.len(), 10, big.as_bytes()), Scan::Done);
        assert_eq!(scan_all(big.len() - 1, 10, big.as_bytes()), Scan::TooLarge);
        // Endless empty lines count too.
        assert_eq!(scan_all(10, 5, &[b'\n'; 11]), Scan::TooLarge);
        // 256 fields pass, the start of a 257th does not.
        let fields = |n: usize| {
            let lines: String = (0..n).map(|i| format!("X-{i}: v\r\n")).collect();
            format!("GET / HTTP/1.1\r\n{lines}\r\n")
        };
        assert_eq!(scan_all(1 << 20, 10, fields(256).as_bytes()), Scan::Done);
        assert_eq!(
            scan_all(1 << 20, 10, fields(257).as_bytes()),
            Scan::TooLarge
        );
        // Once over, it stays over.
        let mut s = HeaderScan::new(1000, 3);
        assert_eq!(s.feed(b"GET /abcd"), Scan::UriTooLong);
        assert_eq!(s.feed(b"x"), Scan::UriTooLong);
    }
}
