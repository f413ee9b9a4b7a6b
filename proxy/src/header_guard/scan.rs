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

    /// Whether any byte of the request arrived (only the tests ask).
    #[cfg(test)]
    pub fn received(&self) -> bool {
        self.seen > 0
    }

    /// Follow `bytes`, the next ones read. Once it returned something other than
    /// [`Scan::More`], the scan is over and further calls return the same.
    ///
    /// Most bytes of a header change nothing but the counts: the rest of a field line, the
    /// request target, the request line after it. Those runs are skipped with `memchr` and
    /// counted at once ([`HeaderScan::skip`]); [`HeaderScan::step`] takes the bytes that
    /// matter, so a 1 KB browser header costs a few hundred instructions, not tens of
    /// thousands.
    pub fn feed(&mut self, bytes: &[u8]) -> Scan {
        let mut rest = bytes;
        while let Some((&b, tail)) = rest.split_first() {
            match self.skip(rest) {
                Err(end) => return end,
                Ok(0) => {
                    if let Some(end) = self.step(b) {
                        return end;
                    }
                    rest = tail;
                }
                Ok(n) => rest = &rest[n..],
            }
        }
        Scan::More
    }

    /// Count the run of bytes at the start of `bytes` that [`HeaderScan::step`] would only
    /// count, and say how long it was (0: the first byte is one `step` must see). `Err`: a
    /// limit was passed within the run, at the byte where `step` would have said so.
    fn skip(&mut self, bytes: &[u8]) -> Result<usize, Scan> {
        if !self.started || self.newlines > 0 || self.target > self.max_uri {
            return Ok(0);
        }
        // Past the first byte with `seen` at its limit, `step` says TooLarge: let it.
        let room = self.max_header.saturating_sub(self.seen);
        if self.line_done {
            // Inside a field line: until its line feed. Carriage returns and spaces there
            // change nothing while `newlines` is 0.
            let run = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
            return self.count(run, room);
        }
        match self.spaces {
            // The method: until the space before the target (or the line's end).
            0 => {
                let run = memchr::memchr3(b' ', b'\n', b'\r', bytes).unwrap_or(bytes.len());
                self.count(run, room)
            }
            // The target: every byte but CR, LF and space counts toward it.
            1 => {
                let run = memchr::memchr3(b' ', b'\n', b'\r', bytes).unwrap_or(bytes.len());
                let uri_room = self.max_uri.saturating_sub(self.target);
                // The byte that passes the size limit is found before the one that passes the
                // URI limit when both are the same byte (`step` checks the size first).
                if run > room && room <= uri_room {
                    self.seen += room + 1;
                    return Err(Scan::TooLarge);
                }
                if run > uri_room {
                    self.seen += uri_room + 1;
                    self.target += uri_room + 1;
                    return Err(Scan::UriTooLong);
                }
                self.target += run;
                self.count(run, room)
            }
            // After the target: until the line feed (spaces only count, saturating).
            _ => {
                let run = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
                self.count(run, room)
            }
        }
    }

    /// Add a skipped run of `run` bytes to `seen`, where `room` more were allowed.
    fn count(&mut self, run: usize, room: usize) -> Result<usize, Scan> {
        if run > room {
            self.seen += room + 1;
            return Err(Scan::TooLarge);
        }
        self.seen += run;
        Ok(run)
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

    /// The byte-by-byte rules alone, as `feed` was before it skipped runs.
    fn reference(max_header: usize, max_uri: usize, input: &[u8]) -> (Scan, usize) {
        let mut s = HeaderScan::new(max_header, max_uri);
        for &b in input {
            if let Some(end) = s.step(b) {
                return (end, s.seen);
            }
        }
        (Scan::More, s.seen)
    }

    /// `feed`, with its run skipping, says what the byte-by-byte rules say, wherever the
    /// input is cut into reads and whatever the limits.
    #[test]
    fn skipping_runs_changes_nothing() {
        let inputs: Vec<Vec<u8>> = vec![
            b"GET /a/b?c=d HTTP/1.1\r\nHost: example.test\r\nUser-Agent: x y z\r\n\r\nBODY"
                .to_vec(),
            b"\r\n\r\nPOST  /x  HTTP/1.0\n\n".to_vec(),
            b"GET /\r\r\nA: b\r\r\n\r\r\n".to_vec(),
            b"GET /x HTTP/1.1\r\nA:\r\n B\r\n\r\n".to_vec(),
            b"GET".to_vec(),
            b"GET /only-a-target".to_vec(),
            format!(
                "GET /{} HTTP/1.1\r\nCookie: {}\r\n\r\n",
                "p".repeat(300),
                "c".repeat(900)
            )
            .into_bytes(),
            (0..300).map(|i| format!("X-{i}: v\r\n")).fold(
                b"GET / HTTP/1.1\r\n".to_vec(),
                |mut a, l| {
                    a.extend_from_slice(l.as_bytes());
                    a
                },
            ),
        ];
        let mut seed = 0x9e37_79b9_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for input in &inputs {
            for _ in 0..200 {
                let max_header = 1 + next(input.len() + 8);
                let max_uri = next(input.len() + 8);
                let want = reference(max_header, max_uri, input);
                let mut s = HeaderScan::new(max_header, max_uri);
                let mut got = Scan::More;
                let mut rest = &input[..];
                while !rest.is_empty() && got == Scan::More {
                    let cut = 1 + next(rest.len());
                    got = s.feed(&rest[..cut]);
                    rest = &rest[cut..];
                }
                assert_eq!(
                    (got, s.seen),
                    want,
                    "{} with max_header {max_header}, max_uri {max_uri}",
                    String::from_utf8_lossy(input)
                );
            }
        }
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
