//! The raw-byte HTTP/1 cases of the smuggling suite, by group.
//!
//! In a case's text `{p}` becomes the case's own path prefix (`/t/c000`, so every request a
//! backend gets is attributed to its case), `{S}` a whole request hidden where a parser that
//! is fooled would take it for the next one (`GET {p}/smuggled`), and `{H}` the Host line.
//! `{id}` the case's tag alone (for `X-Case`, which names the case when the target cannot).
//! `after-close` in a target marks a request no proxy may forward (it follows a request with
//! `Connection: close`).

use super::smuggling_cases_more as more;

/// One case: raw bytes written on a fresh connection.
pub(super) struct Case {
    /// `c000`…: the case's tag in every target it sends.
    pub(super) id: String,
    /// Its group in the table.
    pub(super) group: &'static str,
    /// What it tries.
    pub(super) name: String,
    /// The bytes.
    pub(super) bytes: Vec<u8>,
}

pub(super) const HOST: &str = "Host: example.com\r\n";

pub(super) fn smuggled(p: &str) -> String {
    format!("GET {p}/smuggled HTTP/1.1\r\n{HOST}\r\n")
}

/// Every case, numbered in order.
pub(super) fn all() -> Vec<Case> {
    let mut b = Builder(Vec::new());
    te_variants(&mut b);
    content_lengths(&mut b);
    line_endings(&mut b);
    control_bytes(&mut b);
    chunk_sizes(&mut b);
    trailers(&mut b);
    more::http10_and_expect(&mut b);
    more::upgrades_and_hop_by_hop(&mut b);
    more::hosts_and_targets(&mut b);
    more::pipelining(&mut b);
    b.0
}

pub(super) struct Builder(Vec<Case>);

impl Builder {
    fn next_p(&self) -> (String, String) {
        let id = format!("c{:03}", self.0.len());
        let p = format!("/t/{id}");
        (id, p)
    }

    /// A case from a template (see the module docs).
    pub(super) fn add(&mut self, group: &'static str, name: &str, template: &str) {
        let (id, p) = self.next_p();
        let text = template
            .replace("{S}", &smuggled(&p))
            .replace("{H}", HOST)
            .replace("{p}", &p)
            .replace("{id}", &id);
        self.push(id, group, name, text.into_bytes());
    }

    /// A case whose bytes a function makes from the prefix.
    pub(super) fn add_with(
        &mut self,
        group: &'static str,
        name: &str,
        f: impl Fn(&str) -> Vec<u8>,
    ) {
        let (id, p) = self.next_p();
        let bytes = f(&p);
        self.push(id, group, name, bytes);
    }

    fn push(&mut self, id: String, group: &'static str, name: &str, bytes: Vec<u8>) {
        self.0.push(Case {
            id,
            group,
            name: name.to_string(),
            bytes,
        });
    }
}

/// Transfer-Encoding lines, plain and obfuscated, each tried alone and with Content-Length
/// before and after it.
const TE_LINES: &[(&str, &[u8])] = &[
    ("plain", b"Transfer-Encoding: chunked"),
    ("Chunked", b"Transfer-Encoding: Chunked"),
    ("CHUNKED", b"Transfer-Encoding: CHUNKED"),
    ("two spaces", b"Transfer-Encoding:  chunked"),
    ("no space", b"Transfer-Encoding:chunked"),
    ("trailing space", b"Transfer-Encoding: chunked "),
    ("tab", b"Transfer-Encoding:\tchunked"),
    ("VT", b"Transfer-Encoding: \x0bchunked"),
    ("FF", b"Transfer-Encoding: \x0cchunked"),
    ("space before colon", b"Transfer-Encoding : chunked"),
    ("tab before colon", b"Transfer-Encoding\t: chunked"),
    ("leading space (fold)", b" Transfer-Encoding: chunked"),
    (
        "folded onto X-Pad",
        b"X-Pad: x\r\n\tTransfer-Encoding: chunked",
    ),
    ("value folded", b"Transfer-Encoding:\r\n chunked"),
    ("xchunked", b"Transfer-Encoding: xchunked"),
    ("chunkedx", b"Transfer-Encoding: chunkedx"),
    ("chunked, identity", b"Transfer-Encoding: chunked, identity"),
    ("identity, chunked", b"Transfer-Encoding: identity, chunked"),
    ("gzip, chunked", b"Transfer-Encoding: gzip, chunked"),
    ("chunked, chunked", b"Transfer-Encoding: chunked, chunked"),
    (
        "chunked + identity lines",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
    ),
    (
        "identity + chunked lines",
        b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked",
    ),
    ("quoted", b"Transfer-Encoding: \"chunked\""),
    ("chunk", b"Transfer-Encoding: chunk"),
    ("identity", b"Transfer-Encoding: identity"),
    ("underscore name", b"Transfer_Encoding: chunked"),
    ("lower-case name", b"transfer-encoding: chunked"),
    ("NUL in value", b"Transfer-Encoding: ch\x00unked"),
    ("bare CR after", b"Transfer-Encoding: chunked\rX-A: b"),
    ("0xff before", b"Transfer-Encoding: \xffchunked"),
    ("parameter", b"Transfer-Encoding: chunked;q=1"),
    ("leading comma", b"Transfer-Encoding: ,chunked"),
    ("trailing comma", b"Transfer-Encoding: chunked,"),
    ("mixed case", b"Transfer-Encoding: cHuNkEd"),
    ("empty value", b"Transfer-Encoding: "),
    ("name with 0x80", b"Transfer-Encoding\x80: chunked"),
];

fn te_variants(b: &mut Builder) {
    for (name, line) in TE_LINES {
        // CL then TE; the Content-Length covers the hidden request, chunked framing ends
        // before it.
        b.add_with("TE/CL: CL then TE", name, |p| {
            let body = format!("0\r\n\r\n{}", smuggled(p));
            let mut v = format!(
                "POST {p}/a HTTP/1.1\r\n{HOST}Content-Length: {}\r\n",
                body.len()
            )
            .into_bytes();
            v.extend_from_slice(line);
            v.extend_from_slice(b"\r\n\r\n");
            v.extend_from_slice(body.as_bytes());
            v
        });
        // TE then CL; the chunk holds the hidden request, Content-Length stops before it.
        b.add_with("TE/CL: TE then CL", name, |p| {
            let hidden = smuggled(p);
            let mut v = format!("POST {p}/a HTTP/1.1\r\n{HOST}").into_bytes();
            v.extend_from_slice(line);
            v.extend_from_slice(b"\r\nContent-Length: 4\r\n\r\n");
            v.extend_from_slice(format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()).as_bytes());
            v
        });
        // TE alone: a proxy that ignores it reads no body and takes the chunks for a request.
        b.add_with("TE alone", name, |p| {
            let hidden = smuggled(p);
            let mut v = format!("POST {p}/a HTTP/1.1\r\n{HOST}").into_bytes();
            v.extend_from_slice(line);
            v.extend_from_slice(b"\r\n\r\n");
            v.extend_from_slice(format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()).as_bytes());
            v
        });
    }
}

fn content_lengths(b: &mut Builder) {
    for (name, lines) in [
        ("two different", "Content-Length: 5\r\nContent-Length: 6"),
        ("two equal", "Content-Length: 5\r\nContent-Length: 5"),
        ("0 then 5", "Content-Length: 0\r\nContent-Length: 5"),
        ("list equal", "Content-Length: 5, 5"),
        ("list different", "Content-Length: 5,6"),
        ("plus sign", "Content-Length: +5"),
        ("minus sign", "Content-Length: -5"),
        ("leading zero", "Content-Length: 05"),
        ("hex", "Content-Length: 0x5"),
        ("spaces around", "Content-Length:  5 "),
        ("tab after", "Content-Length: 5\t"),
        ("decimal point", "Content-Length: 5.0"),
        ("exponent", "Content-Length: 5e0"),
        ("empty", "Content-Length: "),
        ("letters", "Content-Length: abc"),
        ("digits then letter", "Content-Length: 5a"),
        ("space inside", "Content-Length: 1 5"),
        ("overflow 20 digits", "Content-Length: 99999999999999999999"),
        ("2^64+5", "Content-Length: 18446744073709551621"),
        ("space before colon", "Content-Length : 5"),
        ("underscore name", "Content_Length: 5"),
        ("VT before value", "Content-Length:\x0b5"),
    ] {
        b.add(
            "Content-Length",
            name,
            &format!("POST {{p}}/a HTTP/1.1\r\n{{H}}{lines}\r\n\r\nhello{{S}}"),
        );
    }
}

fn line_endings(b: &mut Builder) {
    let g = "obs-fold, bare LF and CR";
    b.add(
        g,
        "bare LF everywhere",
        "GET {p}/a HTTP/1.1\nHost: example.com\n\n{S}",
    );
    b.add(
        g,
        "bare LF after request line",
        "GET {p}/a HTTP/1.1\n{H}\r\n{S}",
    );
    b.add(
        g,
        "bare LF in one field",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\nX-B: c\r\n\r\n{S}",
    );
    b.add(
        g,
        "bare LF ends the header",
        "GET {p}/a HTTP/1.1\r\n{H}\n{S}",
    );
    b.add(
        g,
        "bare CR inside a value",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\rc\r\n\r\n{S}",
    );
    b.add(
        g,
        "bare CR ends a field",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\rX-B: c\r\n\r\n{S}",
    );
    b.add(
        g,
        "CR CR LF",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\r\r\n\r\n{S}",
    );
    b.add(
        g,
        "obs-fold in a plain field",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\r\n c\r\n\r\n{S}",
    );
    b.add(
        g,
        "obs-fold in Host",
        "GET {p}/a HTTP/1.1\r\nHost: example.com\r\n evil.example\r\n\r\n{S}",
    );
    b.add(
        g,
        "obs-fold in Content-Length",
        "POST {p}/a HTTP/1.1\r\n{H}Content-Length:\r\n 5\r\n\r\nhello{S}",
    );
    b.add(
        g,
        "fold right after the request line",
        "GET {p}/a HTTP/1.1\r\n X-A: b\r\n{H}\r\n{S}",
    );
    b.add(
        g,
        "leading empty line",
        "\r\nGET {p}/a HTTP/1.1\r\n{H}\r\n{S}",
    );
    b.add(
        g,
        "many leading empty lines",
        &format!("{}GET {{p}}/a HTTP/1.1\r\n{{H}}\r\n", "\r\n".repeat(50)),
    );
    b.add(
        g,
        "a line of spaces",
        "GET {p}/a HTTP/1.1\r\n{H}   \r\n\r\n{S}",
    );
    b.add(
        g,
        "CR before the final CRLF",
        "GET {p}/a HTTP/1.1\r\n{H}\r\r\n{S}",
    );
}

fn control_bytes(b: &mut Builder) {
    let g = "NUL and control bytes";
    b.add(
        g,
        "NUL in a value",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\0c\r\n\r\n",
    );
    b.add(
        g,
        "NUL in a name",
        "GET {p}/a HTTP/1.1\r\n{H}X-\0A: b\r\n\r\n",
    );
    b.add(g, "NUL in the target", "GET {p}/a\0b HTTP/1.1\r\n{H}\r\n");
    b.add(
        g,
        "NUL after the request line",
        "GET {p}/a HTTP/1.1\r\n\0{H}\r\n",
    );
    b.add(
        g,
        "DEL in a value",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\x7fc\r\n\r\n",
    );
    b.add(
        g,
        "0x01 in a value",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: b\x01c\r\n\r\n",
    );
    b.add(
        g,
        "ESC in a value",
        "GET {p}/a HTTP/1.1\r\n{H}X-A: \x1b[31mred\r\n\r\n",
    );
    b.add_with(g, "obs-text 0xff in a value", |p| {
        let mut v = format!("GET {p}/a HTTP/1.1\r\n{HOST}X-A: b").into_bytes();
        v.extend_from_slice(b"\xff\xfe\r\n\r\n");
        v
    });
    b.add_with(g, "0x80 in a name", |p| {
        let mut v = format!("GET {p}/a HTTP/1.1\r\n{HOST}X-").into_bytes();
        v.extend_from_slice(b"\x80A: b\r\n\r\n");
        v
    });
    b.add(
        g,
        "space in a name",
        "GET {p}/a HTTP/1.1\r\n{H}X A: b\r\n\r\n",
    );
    b.add(g, "empty name", "GET {p}/a HTTP/1.1\r\n{H}: b\r\n\r\n");
    b.add(
        g,
        "field without colon",
        "GET {p}/a HTTP/1.1\r\n{H}X-A b\r\n\r\n",
    );
    b.add(g, "tab after the method", "GET\t{p}/a HTTP/1.1\r\n{H}\r\n");
    b.add(
        g,
        "two spaces after the method",
        "GET  {p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(g, "lower-case version", "GET {p}/a http/1.1\r\n{H}\r\n");
    b.add(g, "HTTP/1.2", "GET {p}/a HTTP/1.2\r\n{H}\r\n");
    b.add(
        g,
        "HTTP/2.0 in a request line",
        "GET {p}/a HTTP/2.0\r\n{H}\r\n",
    );
    b.add(g, "HTTP/0.9 request", "GET {p}/a\r\n\r\n");
    b.add(g, "unknown method", "FOO {p}/a HTTP/1.1\r\n{H}\r\n");
    b.add(g, "lower-case method", "get {p}/a HTTP/1.1\r\n{H}\r\n");
    b.add(g, "NUL in the method", "G\0ET {p}/a HTTP/1.1\r\n{H}\r\n");
    b.add(g, "space in the target", "GET {p}/a b HTTP/1.1\r\n{H}\r\n");
}

fn chunk_sizes(b: &mut Builder) {
    let g = "chunk sizes and extensions";
    let ext = format!("5{}\r\nhello\r\n0\r\n\r\n", ";a=b".repeat(300));
    for (name, body) in [
        (
            "size overflows 64 bits",
            "ffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
        ),
        ("size 2^64", "10000000000000000\r\nhello\r\n0\r\n\r\n"),
        (
            "leading zeros",
            "0000000000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        ("minus sign", "-5\r\nhello\r\n0\r\n\r\n"),
        ("plus sign", "+5\r\nhello\r\n0\r\n\r\n"),
        ("space before size", " 5\r\nhello\r\n0\r\n\r\n"),
        ("space after size", "5 \r\nhello\r\n0\r\n\r\n"),
        ("extension", "5;ext=1\r\nhello\r\n0\r\n\r\n"),
        ("quoted extension", "5;ext=\"a;b\"\r\nhello\r\n0\r\n\r\n"),
        ("empty extension", "5;\r\nhello\r\n0\r\n\r\n"),
        ("NUL after size", "5\0\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        ("CR CR LF after size", "5\r\r\nhello\r\n0\r\n\r\n"),
        ("data longer than size", "5\r\nhelloEXTRA\r\n0\r\n\r\n"),
        ("data shorter than size", "8\r\nhello\r\n0\r\n\r\n"),
        ("no CRLF after data", "5\r\nhello0\r\n\r\n"),
        ("last chunk 00", "5\r\nhello\r\n00\r\n\r\n"),
        ("last chunk with extension", "5\r\nhello\r\n0;x=y\r\n\r\n"),
        ("no final empty line", "5\r\nhello\r\n0\r\n"),
        ("1200-byte extension", ext.as_str()),
    ] {
        b.add(
            g,
            name,
            &format!("POST {{p}}/a HTTP/1.1\r\n{{H}}Transfer-Encoding: chunked\r\n\r\n{body}{{S}}"),
        );
    }
}

fn trailers(b: &mut Builder) {
    let g = "trailers";
    for (name, trailer) in [
        ("plain trailer", "X-T: 1\r\n"),
        ("Content-Length in trailer", "Content-Length: 50\r\n"),
        (
            "Transfer-Encoding in trailer",
            "Transfer-Encoding: chunked\r\n",
        ),
        ("Host in trailer", "Host: evil.example\r\n"),
        ("folded trailer", "X-T: 1\r\n 2\r\n"),
        ("bare LF in trailer", "X-T: 1\n"),
        ("trailer without colon", "X-T 1\r\n"),
    ] {
        b.add(
            g,
            name,
            &format!(
                "POST {{p}}/a HTTP/1.1\r\n{{H}}Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\n{trailer}\r\n{{S}}"
            ),
        );
    }
}
