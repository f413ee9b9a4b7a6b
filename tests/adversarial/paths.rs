//! Paths and hosts, vigie beside nginx: dot segments (plain, percent-encoded, double-encoded,
//! overlong UTF-8), encoded slashes and backslashes, NUL, double slashes and `;` parameters,
//! on the static route and on proxied routes.
//!
//! Asserted for vigie: no response ever holds the file beside the static root, and the
//! backend never receives a path that climbs above `/` once decoded the way a lenient origin
//! decodes it (percent-decoding once, overlong UTF-8 `.` and `/`, `\` as `/`, `;…` dropped
//! from a segment). nginx's outcomes are recorded, not asserted.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use crate::support::adversary::{exchange, Bench, Report, Who, SECRET};

/// Path tails tried after each prefix.
const TAILS: &[&str] = &[
    "../secret.txt",
    "./../secret.txt",
    "..%2fsecret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E/secret.txt",
    ".%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    "%2f%2e%2e%2fsecret.txt",
    "..%5csecret.txt",
    "..\\secret.txt",
    "%2e%2e%5c%2e%2e%5csecret.txt",
    "sub/../../secret.txt",
    "sub//../../secret.txt",
    "sub/..%2f..%2fsecret.txt",
    "sub%2f..%2f..%2fsecret.txt",
    "sub/%2e%2e/%2e%2e/secret.txt",
    "sub/page.txt/../../../secret.txt",
    "index.html/..%2f..%2fsecret.txt",
    "%252e%252e/secret.txt",
    "..%252fsecret.txt",
    "..%00/secret.txt",
    "secret.txt%00.html",
    "..;/secret.txt",
    "..;x=1/..;/secret.txt",
    "%c0%ae%c0%ae/secret.txt",
    "..%c0%afsecret.txt",
    "..%e0%80%afsecret.txt",
    "%c0%2e%c0%2e/secret.txt",
    "..%u2216secret.txt",
    ".../secret.txt",
    "//../secret.txt",
    "..",
    "../",
    "..%2f..%2f..%2fetc%2fpasswd",
];

/// Where the tails go: the static route and two proxied prefixes.
const PREFIXES: &[&str] = &["/static/", "/", "/t/deep/"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paths_never_leave_the_root_side_by_side() {
    let bench = Bench::start().await;
    let cases: Vec<(String, String)> = PREFIXES
        .iter()
        .flat_map(|p| TAILS.iter().map(move |t| format!("{p}{t}")))
        .enumerate()
        .map(|(i, path)| (format!("p{i:03}"), path))
        .collect();
    let mut report = Report::new(
        "paths",
        "Paths",
        &format!(
            "{} request targets on the static route (`/static/`, whose root's parent holds a \
             secret) and on proxied routes; outcome = status, then what the backend received \
             (`·` when nothing). A problem is a response holding the secret or a path \
             reaching the backend that climbs above `/` once decoded leniently.",
            cases.len()
        ),
        &["#", "target", "vigie", "nginx"],
    );
    let mut outcomes: Vec<Vec<(String, Vec<String>)>> = Vec::new();
    for t in bench.targets() {
        let got: Vec<_> = stream::iter(cases.iter())
            .map(|(id, path)| async move {
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: example.com\r\nX-Case: {id}\r\nConnection: close\r\n\r\n"
                );
                exchange(&t.addr, req.as_bytes(), Duration::from_secs(2), false).await
            })
            .buffered(16)
            .collect()
            .await;
        let seen = t.recorder.seen();
        let mut rows = Vec::new();
        for ((id, _), ex) in cases.iter().zip(&got) {
            let mut problems = Vec::new();
            if String::from_utf8_lossy(&ex.raw).contains(SECRET) {
                problems.push("SERVED THE SECRET".to_string());
            }
            let arrived: Vec<String> = seen
                .iter()
                .filter(|r| r.get("x-case").as_deref() == Some(id.as_str()))
                .map(|r| r.target.clone())
                .collect();
            for a in &arrived {
                if climbs_above_root(a) {
                    problems.push(format!("backend got `{a}`, above /"));
                }
            }
            let status = ex
                .responses
                .first()
                .map(|r| r.status.to_string())
                .unwrap_or_else(|| "—".into());
            let backend = if arrived.is_empty() {
                "·".to_string()
            } else {
                format!("`{}`", arrived.join(" "))
            };
            rows.push((format!("{status} {backend}"), problems));
        }
        outcomes.push(rows);
    }
    let mut failures = Vec::new();
    let mut counts = [[0usize; 2]; 2];
    for (i, (_, path)) in cases.iter().enumerate() {
        let mut cells = vec![cases[i].0.clone(), format!("`{path}`")];
        for (k, t) in bench.targets().iter().enumerate() {
            let (outcome, problems) = &outcomes[k][i];
            counts[k][usize::from(!problems.is_empty())] += 1;
            let mut cell = outcome.clone();
            if !problems.is_empty() {
                cell.push_str(&format!(" **{}**", problems.join("; ")));
                if t.who == Who::Vigie {
                    failures.push(format!("{path}: {}", problems.join("; ")));
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
        "### Summary\n\n{} targets: vigie {} safe, {} with a problem; nginx {} safe, {} with a problem.",
        cases.len(),
        counts[0][0],
        counts[0][1],
        counts[1][0],
        counts[1][1]
    ));
    report.write();
    assert!(
        failures.is_empty(),
        "vigie let {} path(s) through:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether `target` climbs above `/` for a lenient origin: its path percent-decoded once,
/// overlong UTF-8 forms of `.` and `/` taken as those, `\` as `/`, `;…` cut off a segment.
fn climbs_above_root(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or_default();
    let mut bytes = Vec::new();
    let raw = path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let hex = |j: usize| {
            raw.get(j..j + 2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        if raw[i] == b'%' {
            if let Some(b) = hex(i + 1) {
                bytes.push(b);
                i += 3;
                continue;
            }
        }
        bytes.push(raw[i]);
        i += 1;
    }
    let mut text = Vec::new();
    let mut j = 0;
    while j < bytes.len() {
        match &bytes[j..] {
            [0xc0, 0xae, ..] | [0xc0, 0x2e, ..] => {
                text.push(b'.');
                j += 2;
            }
            [0xc0, 0xaf, ..] => {
                text.push(b'/');
                j += 2;
            }
            [0xe0, 0x80, 0xaf, ..] => {
                text.push(b'/');
                j += 3;
            }
            [b'\\', ..] => {
                text.push(b'/');
                j += 1;
            }
            [b, ..] => {
                text.push(*b);
                j += 1;
            }
            [] => break,
        }
    }
    let mut depth: i32 = 0;
    for seg in text.split(|&b| b == b'/') {
        let seg = seg.split(|&b| b == b';').next().unwrap_or_default();
        match seg {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}
