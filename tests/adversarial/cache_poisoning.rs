//! Cache poisoning and deception, vigie beside nginx: a first client sends something only it
//! should see the effect of, a second, clean client asks for the same URL; the backend
//! reflects request headers in its bodies and answers `/cache/` for 60 s (see `Recorder`).
//!
//! Asserted for vigie (the cases marked so): forwarding headers vigie writes itself cannot
//! poison, `Set-Cookie`, `private`, `no-store` and `Authorization` responses never reach
//! another client, `Vary` is honoured, `Vary: *` is not stored, HEAD and GET never serve each
//! other a wrong body, absolute-form cannot plant another host. The rest (headers an origin
//! reflects though no cache keys them, deception by a path suffix without cache headers,
//! cached 400s) depend on the origin; both proxies' outcomes are recorded.

use std::time::Duration;

use crate::support::adversary::{exchange, Bench, Report, Resp, Target, Who};

/// What makes the second answer wrong.
#[derive(Clone, Copy)]
enum Check {
    /// Its body holds this text (planted by the first request).
    Leak(&'static str),
    /// It carries the first answer's `Set-Cookie`.
    SameCookie,
    /// It is the first answer again (must not have been stored).
    Stored,
    /// It has no body (a GET answered from a HEAD).
    NoBody,
    /// It is not a 200 (an error stored for everyone).
    NotOk,
}

struct CacheCase {
    name: &'static str,
    /// After `/cache/kNN/`.
    tail: &'static str,
    /// First request: method, raw target override (absolute-form) and extra fields.
    first: (&'static str, Option<&'static str>, &'static [&'static str]),
    second_fields: &'static [&'static str],
    check: Check,
    asserted: bool,
}

const fn case(
    name: &'static str,
    tail: &'static str,
    first: &'static [&'static str],
    check: Check,
    asserted: bool,
) -> CacheCase {
    CacheCase {
        name,
        tail,
        first: ("GET", None, first),
        second_fields: &[],
        check,
        asserted,
    }
}

const CASES: &[CacheCase] = &[
    case(
        "X-Forwarded-Host (vigie writes it)",
        "xfh",
        &["X-Forwarded-Host: evil.example"],
        Check::Leak("evil.example"),
        true,
    ),
    case(
        "X-Forwarded-For (vigie writes it)",
        "xff",
        &["X-Forwarded-For: 6.6.6.6"],
        Check::Leak("6.6.6.6"),
        true,
    ),
    case(
        "X-Real-IP (vigie writes it)",
        "xri",
        &["X-Real-IP: 6.6.6.6"],
        Check::Leak("6.6.6.6"),
        true,
    ),
    case(
        "X-Forwarded-Proto (vigie writes it)",
        "xfp",
        &["X-Forwarded-Proto: gopher"],
        Check::Leak("gopher"),
        true,
    ),
    case(
        "X-Host reflected by the origin",
        "xhost",
        &["X-Host: evil.example"],
        Check::Leak("evil.example"),
        false,
    ),
    case(
        "X-Forwarded-Scheme reflected",
        "xfs",
        &["X-Forwarded-Scheme: nothttps"],
        Check::Leak("nothttps"),
        false,
    ),
    case(
        "X-Original-URL reflected",
        "xou",
        &["X-Original-URL: /admin"],
        Check::Leak("/admin"),
        false,
    ),
    case(
        "Cookie reflected, no cache headers",
        "nocc",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        false,
    ),
    case(
        "Set-Cookie response",
        "setcookie",
        &[],
        Check::SameCookie,
        true,
    ),
    case(
        "Set-Cookie response, no cache headers",
        "setcookie-nocc",
        &[],
        Check::SameCookie,
        true,
    ),
    case(
        "request with Authorization",
        "auth",
        &["Authorization: Bearer alice-token"],
        Check::Leak("alice-token"),
        true,
    ),
    case(
        "Cache-Control: private",
        "private",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        true,
    ),
    case(
        "Cache-Control: no-store",
        "nostore",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        true,
    ),
    case(
        "deception /account.php/x.css, private",
        "account.php/x.css?private",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        true,
    ),
    case(
        "deception /account.php/x.css, no cache headers",
        "account.php/x.css?nocc",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        false,
    ),
    case(
        "deception /account.php;x.css, private",
        "account.php;x.css?private",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        true,
    ),
    case(
        "deception %2f-encoded suffix, private",
        "account.php%2fx.css?private",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        true,
    ),
    CacheCase {
        name: "Vary: Accept-Language",
        tail: "varylang",
        first: ("GET", None, &["Accept-Language: evil-lang"]),
        second_fields: &["Accept-Language: en"],
        check: Check::Leak("evil-lang"),
        asserted: true,
    },
    case("Vary: *", "varystar", &[], Check::Stored, true),
    CacheCase {
        name: "HEAD first, then GET",
        tail: "headfirst",
        first: ("HEAD", None, &[]),
        second_fields: &[],
        check: Check::NoBody,
        asserted: true,
    },
    CacheCase {
        name: "absolute-form example.com, Host evil",
        tail: "abs",
        first: (
            "GET",
            Some("http://example.com"),
            &["X-Forwarded-Host: evil.example"],
        ),
        second_fields: &[],
        check: Check::Leak("evil.example"),
        asserted: true,
    },
    case(
        "400 with max-age after a bad header (CPDoS)",
        "err400",
        &["X-Metachar: 1"],
        Check::NotOk,
        false,
    ),
    case(
        "Cookie in the request, cacheable response",
        "cookie",
        &["Cookie: user=alice"],
        Check::Leak("alice"),
        false,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_poisoning_side_by_side() {
    let bench = Bench::start().await;
    let mut report = Report::new(
        "cache_poisoning",
        "Cache poisoning and deception",
        "A first client plants something, a second clean client asks for the same URL \
         (the backend reflects request headers and marks `/cache/` answers fresh for 60 s). \
         Outcome: whether the second answer came from the cache. Asserted cases are the ones \
         a proxy alone must get right; the others depend on what the origin does.",
        &["case", "asserted", "vigie", "nginx"],
    );
    let mut failures = Vec::new();
    let mut bad = [0usize; 2];
    for (i, c) in CASES.iter().enumerate() {
        let mut cells = vec![
            c.name.to_string(),
            if c.asserted { "yes" } else { "no" }.into(),
        ];
        for (k, t) in bench.targets().iter().enumerate() {
            let (outcome, problem) = run(t, c, i).await;
            let mut cell = outcome;
            if let Some(p) = problem {
                bad[k] += 1;
                cell.push_str(&format!(" **{p}**"));
                if t.who == Who::Vigie && c.asserted {
                    failures.push(format!("{}: {p}", c.name));
                }
            }
            cells.push(cell);
        }
        if bench.nginx.is_none() {
            cells.push("not run".into());
        }
        report.row(&cells);
    }
    report.note(&format!(
        "### Summary\n\n{} cases: the second client got something it should not in {} at vigie, {} at nginx.",
        CASES.len(),
        bad[0],
        bad[1]
    ));
    report.write();
    assert!(failures.is_empty(), "vigie: {}", failures.join("\n"));
}

/// Both requests of a case; the outcome text and the problem, if any.
async fn run(t: &Target, c: &CacheCase, i: usize) -> (String, Option<String>) {
    let path = format!("/cache/k{i:02}/{}", c.tail);
    let (method, authority, fields) = c.first;
    let target = format!("{}{path}", authority.unwrap_or_default());
    let host = if authority.is_some() {
        "evil.example"
    } else {
        "example.com"
    };
    let first = request(t, method, &target, host, fields).await;
    let second = request(t, "GET", &path, "example.com", c.second_fields).await;
    let (Some(first), Some(second)) = (first, second) else {
        return ("no answer".into(), None);
    };
    let cached = first.seen().is_some() && first.seen() == second.seen();
    let outcome = format!(
        "{} {} → {} {}",
        first.status,
        method,
        second.status,
        if cached { "from cache" } else { "from backend" }
    );
    let body = String::from_utf8_lossy(&second.body);
    let problem = match c.check {
        Check::Leak(text) if body.contains(text) => Some(format!("second client got `{text}`")),
        Check::SameCookie
            if second.get("set-cookie").is_some()
                && second.get("set-cookie") == first.get("set-cookie") =>
        {
            Some("second client got the first one's Set-Cookie".into())
        }
        Check::Stored if cached => Some("stored and served again".into()),
        Check::NoBody if !body.contains("seen ") => Some("GET answered without its body".into()),
        Check::NotOk if second.status != 200 => {
            Some(format!("second client got {}", second.status))
        }
        _ => None,
    };
    (outcome, problem)
}

async fn request(
    t: &Target,
    method: &str,
    target: &str,
    host: &str,
    fields: &[&str],
) -> Option<Resp> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for f in fields {
        req.push_str(f);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    let ex = exchange(
        &t.addr,
        req.as_bytes(),
        Duration::from_secs(2),
        method == "HEAD",
    )
    .await;
    ex.responses.into_iter().next()
}
