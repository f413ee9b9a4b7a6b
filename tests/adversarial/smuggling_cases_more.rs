//! The smuggling suite's cases about HTTP/1.0 and `Expect`, upgrades and hop-by-hop fields,
//! hosts and request targets, and pipelining (the template language is
//! [`super::smuggling_cases`]'s).

use super::smuggling_cases::{smuggled, Builder, HOST};

pub(super) fn http10_and_expect(b: &mut Builder) {
    let g = "HTTP/1.0 with bodies";
    b.add(
        g,
        "POST with Content-Length",
        "POST {p}/a HTTP/1.0\r\n{H}Content-Length: 5\r\n\r\nhello",
    );
    b.add(
        g,
        "POST chunked (undefined in 1.0)",
        "POST {p}/a HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{S}",
    );
    b.add_with(g, "CL then TE", |p| {
        let body = format!("0\r\n\r\n{}", smuggled(p));
        format!("POST {p}/a HTTP/1.0\r\n{HOST}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}", body.len()).into_bytes()
    });
    b.add(g, "keep-alive then a pipelined GET", "POST {p}/a HTTP/1.0\r\n{H}Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhelloGET {p}/second HTTP/1.0\r\n{H}\r\n");
    b.add(g, "no Host", "GET {p}/a HTTP/1.0\r\n\r\n");
    b.add(
        g,
        "body without length",
        "POST {p}/a HTTP/1.0\r\n{H}\r\nhello{S}",
    );
    b.add(
        g,
        "GET with a body",
        "GET {p}/a HTTP/1.0\r\n{H}Content-Length: 5\r\n\r\nhello",
    );
    let g = "Expect: 100-continue";
    b.add(
        g,
        "body sent at once",
        "POST {p}/a HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    );
    b.add(
        g,
        "body never sent",
        "POST {p}/a HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    b.add(g, "chunked body", "POST {p}/a HTTP/1.1\r\n{H}Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    b.add(
        g,
        "mixed case",
        "POST {p}/a HTTP/1.1\r\n{H}Expect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello",
    );
    b.add(
        g,
        "unknown expectation",
        "POST {p}/a HTTP/1.1\r\n{H}Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello",
    );
    b.add(
        g,
        "in HTTP/1.0",
        "POST {p}/a HTTP/1.0\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    );
    b.add(
        g,
        "with a hidden request in the body",
        "POST {p}/a HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello{S}",
    );
}

pub(super) fn upgrades_and_hop_by_hop(b: &mut Builder) {
    let g = "Upgrade without 101";
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    b.add(
        g,
        "WebSocket, then a request",
        &format!("GET {{p}}/ws HTTP/1.1\r\n{{H}}{ws}\r\n{{S}}"),
    );
    b.add(
        g,
        "WebSocket with a body, then a request",
        &format!("POST {{p}}/ws HTTP/1.1\r\n{{H}}{ws}Content-Length: 5\r\n\r\nhello{{S}}"),
    );
    b.add(g, "h2c upgrade, then a request", "GET {p}/h2c HTTP/1.1\r\n{H}Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n{S}");
    b.add(
        g,
        "unknown protocol",
        "GET {p}/up HTTP/1.1\r\n{H}Upgrade: foo/1\r\nConnection: Upgrade\r\n\r\n{S}",
    );
    b.add(
        g,
        "Upgrade without Connection",
        "GET {p}/up HTTP/1.1\r\n{H}Upgrade: websocket\r\n\r\n{S}",
    );
    b.add(
        g,
        "Connection: Upgrade without Upgrade",
        "GET {p}/up HTTP/1.1\r\n{H}Connection: Upgrade\r\n\r\n{S}",
    );
    let g = "Connection-nominated headers";
    for (name, fields) in [
        ("one nominated", "Connection: X-Hop-A\r\nX-Hop-A: 1\r\n"),
        ("with close", "Connection: close, X-Hop-A\r\nX-Hop-A: 1\r\n"),
        (
            "two nominated",
            "Connection: keep-alive, X-Hop-A, x-hop-b\r\nX-Hop-A: 1\r\nX-Hop-B: 2\r\n",
        ),
        (
            "two Connection fields",
            "Connection: X-Hop-A\r\nConnection: X-Hop-B\r\nX-Hop-A: 1\r\nX-Hop-B: 2\r\n",
        ),
        (
            "nominated before it appears",
            "X-Hop-A: 1\r\nConnection: X-Hop-A\r\n",
        ),
        (
            "quoted nomination",
            "Connection: \"X-Hop-A\"\r\nX-Hop-A: 1\r\n",
        ),
        ("Host nominated", "Connection: Host\r\n"),
        (
            "X-Forwarded-For nominated",
            "Connection: X-Forwarded-For\r\nX-Forwarded-For: 10.0.0.1\r\n",
        ),
        ("Cookie nominated", "Connection: Cookie\r\nCookie: a=b\r\n"),
        (
            "Keep-Alive",
            "Connection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\n",
        ),
        (
            "TE: trailers nominated",
            "Connection: TE\r\nTE: trailers\r\n",
        ),
        ("TE: gzip", "TE: gzip\r\n"),
        ("Proxy-Connection", "Proxy-Connection: keep-alive\r\n"),
    ] {
        b.add(
            g,
            name,
            &format!("GET {{p}}/a HTTP/1.1\r\n{{H}}{fields}\r\n"),
        );
    }
    b.add(
        g,
        "Content-Length nominated",
        "POST {p}/a HTTP/1.1\r\n{H}Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello{S}",
    );
    b.add(g, "Transfer-Encoding nominated", "POST {p}/a HTTP/1.1\r\n{H}Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{S}");
}

pub(super) fn hosts_and_targets(b: &mut Builder) {
    let g = "Host";
    for (name, fields) in [
        ("two equal", "Host: example.com\r\nHost: example.com\r\n"),
        (
            "two different",
            "Host: example.com\r\nHost: evil.example\r\n",
        ),
        (
            "two different, evil first",
            "Host: evil.example\r\nHost: example.com\r\n",
        ),
        ("missing in HTTP/1.1", ""),
        ("empty", "Host: \r\n"),
        ("with port", "Host: example.com:80\r\n"),
        ("userinfo", "Host: evil.example@example.com\r\n"),
        ("with a path", "Host: example.com/evil\r\n"),
        ("with a space", "Host: example.com evil.example\r\n"),
        ("trailing dot", "Host: example.com.\r\n"),
        ("upper case", "Host: EXAMPLE.COM\r\n"),
        ("NUL inside", "Host: example.com\0.evil\r\n"),
        ("unknown host", "Host: evil.example\r\n"),
        ("port not a number", "Host: example.com:abc\r\n"),
        ("port too large", "Host: example.com:99999\r\n"),
        ("IPv6 literal", "Host: [::1]\r\n"),
        ("list of two", "Host: example.com, evil.example\r\n"),
    ] {
        b.add(g, name, &format!("GET {{p}}/a HTTP/1.1\r\n{fields}\r\n"));
    }
    let g = "absolute-form and odd targets";
    b.add(
        g,
        "absolute-form, same Host",
        "GET http://example.com{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(
        g,
        "absolute-form example.com, Host evil",
        "GET http://example.com{p}/a HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    );
    b.add(
        g,
        "absolute-form evil, Host example.com",
        "GET http://evil.example{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(
        g,
        "absolute-form https",
        "GET https://example.com{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(
        g,
        "absolute-form with userinfo",
        "GET http://evil.example@example.com{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(
        g,
        "absolute-form upper-case scheme",
        "GET HTTP://EXAMPLE.COM{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(
        g,
        "absolute-form, no Host",
        "GET http://example.com{p}/a HTTP/1.1\r\n\r\n",
    );
    b.add(
        g,
        "authority-like path //host",
        "GET //evil.example{p}/a HTTP/1.1\r\n{H}\r\n",
    );
    b.add(g, "no leading slash", "GET t{p}/a HTTP/1.1\r\n{H}\r\n");
    // Targets without the case's path: `X-Case` names the case instead.
    b.add(
        g,
        "asterisk with GET",
        "GET * HTTP/1.1\r\n{H}X-Case: {id}\r\n\r\n",
    );
    b.add(
        g,
        "OPTIONS *",
        "OPTIONS * HTTP/1.1\r\n{H}X-Case: {id}\r\n\r\n",
    );
    b.add(
        g,
        "CONNECT",
        "CONNECT example.com:80 HTTP/1.1\r\n{H}X-Case: {id}\r\n\r\n{S}",
    );
}

pub(super) fn pipelining(b: &mut Builder) {
    let g = "pipelining";
    let get = |path: &str| format!("GET {{p}}/{path} HTTP/1.1\r\n{{H}}\r\n");
    b.add(g, "two GETs", &format!("{}{}", get("one"), get("two")));
    b.add(
        g,
        "three GETs",
        &format!("{}{}{}", get("one"), get("two"), get("three")),
    );
    b.add(
        g,
        "twenty GETs",
        &(0..20).map(|i| get(&format!("n{i}"))).collect::<String>(),
    );
    b.add(
        g,
        "POST with body, then GET",
        &format!(
            "POST {{p}}/one HTTP/1.1\r\n{{H}}Content-Length: 5\r\n\r\nhello{}",
            get("two")
        ),
    );
    b.add(g, "chunked POST, then GET", &format!("POST {{p}}/one HTTP/1.1\r\n{{H}}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{}", get("two")));
    b.add(
        g,
        "GET with a body, then GET",
        &format!(
            "GET {{p}}/one HTTP/1.1\r\n{{H}}Content-Length: 5\r\n\r\nhello{}",
            get("two")
        ),
    );
    b.add(
        g,
        "Connection: close, then another",
        &format!(
            "GET {{p}}/one HTTP/1.1\r\n{{H}}Connection: close\r\n\r\n{}",
            get("after-close")
        ),
    );
    b.add(
        g,
        "HTTP/1.0 without keep-alive, then another",
        &format!("GET {{p}}/one HTTP/1.0\r\n{{H}}\r\n{}", get("after-close")),
    );
    b.add(
        g,
        "then half a request",
        &format!("{}GET {{p}}/two HTTP/1.1\r\nHo", get("one")),
    );
    b.add(
        g,
        "then garbage",
        &format!("{}\x01\x02\x03 garbage\r\n\r\n", get("one")),
    );
}
