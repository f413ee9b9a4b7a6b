//! HTTP/1 framing and smuggling, vigie beside nginx: every case of [`super::smuggling_cases`]
//! is written byte for byte on a fresh connection to each proxy, whose recorder keeps exactly
//! what reached it.
//!
//! For vigie the test asserts, case by case: no request reached the backend unparsed (each
//! forwarded request carries the proxy's `X-Forwarded-For`) or unanswered (each one's answer
//! went back to the client), no client got another request's answer, the backend never had
//! to read ambiguous or broken framing (`Transfer-Encoding` with `Content-Length`, a bad
//! chunk…), no hop-by-hop or `Connection`-nominated field was forwarded, the forwarded `Host`
//! is the site's, nothing after `Connection: close` was forwarded, and a new connection still
//! gets an answer afterwards. nginx's outcomes are recorded, not asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::smuggling_cases::{self, Case};
use crate::support::adversary::{exchange, shown, Bench, Exchange, Report, Target, Who};
use crate::support::recorder::{BackendError, Recorded};

/// Cases vigie fails today because of a defect another change fixes: `(group, name, why)`.
/// The lead removes an entry once the fix is merged (the test then asserts the case).
pub(super) const EXPECTED_TO_CHANGE: &[(&str, &str, &str)] = &[];

/// Cases vigie fails today for a reason found by this suite and not fixed yet:
/// `(group, name, why)`. Reported in the table and on stderr, not asserted.
pub(super) const OPEN_FINDINGS: &[(&str, &str, &str)] = &[];

/// How long a connection may stay silent before the client stops reading.
const IDLE: Duration = Duration::from_millis(400);
/// Cases in flight at once (per proxy).
const PARALLEL: usize = 16;

/// One case's result at one proxy.
struct Verdict {
    outcome: String,
    problems: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn framing_and_smuggling_side_by_side() {
    let bench = Bench::start().await;
    let cases = smuggling_cases::all();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let started = std::time::Instant::now();
    let mut results: BTreeMap<Who, Vec<(Exchange, bool)>> = BTreeMap::new();
    for target in bench.targets() {
        let runs: Vec<(Exchange, bool)> = stream::iter(cases.iter())
            .map(|c| run_case(target, c))
            .buffered(PARALLEL)
            .collect()
            .await;
        results.insert(target.who, runs);
    }
    let elapsed = started.elapsed();

    let mut report = Report::new(
        "smuggling",
        "HTTP/1 framing and smuggling",
        &format!(
            "{} raw-byte cases, each on a fresh connection; outcome = the statuses the client \
             read, then whether the proxy closed the connection. A problem is named after the \
             outcome (none for either proxy means: nothing smuggled, nothing desynchronised, \
             no hop-by-hop field forwarded).",
            cases.len()
        ),
        &["#", "group", "case", "bytes", "vigie", "nginx"],
    );
    let mut failures = Vec::new();
    let mut expected_seen = Vec::new();
    let mut counts: BTreeMap<(&str, Who), [usize; 3]> = BTreeMap::new();
    let mut group_order: Vec<&str> = Vec::new();
    let judged: BTreeMap<Who, Vec<Verdict>> = bench
        .targets()
        .iter()
        .map(|t| {
            let seen = t.recorder.seen();
            let errors = t.recorder.errors();
            let v = cases
                .iter()
                .zip(&results[&t.who])
                .map(|(c, (ex, next_ok))| judge(c, ex, *next_ok, &seen, &errors))
                .collect();
            (t.who, v)
        })
        .collect();
    for (i, case) in cases.iter().enumerate() {
        if !group_order.contains(&case.group) {
            group_order.push(case.group);
        }
        let mut cells = vec![
            case.id.clone(),
            case.group.to_string(),
            case.name.clone(),
            format!("`{}`", shown(&case.bytes, 70)),
        ];
        for who in [Who::Vigie, Who::Nginx] {
            let Some(v) = judged.get(&who).map(|v| &v[i]) else {
                cells.push("not run".into());
                continue;
            };
            let entry = counts.entry((case.group, who)).or_default();
            let rejected = !v.outcome.starts_with('2') && !v.outcome.starts_with('1');
            entry[usize::from(rejected)] += 1;
            if !v.problems.is_empty() {
                entry[2] += 1;
            }
            let mut cell = v.outcome.clone();
            if !v.problems.is_empty() {
                cell.push_str(&format!(" **{}**", v.problems.join("; ")));
            }
            cells.push(cell);
            if who == Who::Vigie && !v.problems.is_empty() {
                let expected = EXPECTED_TO_CHANGE
                    .iter()
                    .chain(OPEN_FINDINGS)
                    .any(|(g, n, _)| *g == case.group && *n == case.name);
                let line = format!(
                    "{} {} / {}: {} — bytes `{}`",
                    case.id,
                    case.group,
                    case.name,
                    v.problems.join("; "),
                    shown(&case.bytes, 200)
                );
                if expected {
                    expected_seen.push(line);
                } else {
                    failures.push(line);
                }
            }
        }
        report.row(&cells);
    }
    let mut summary = String::from(
        "| group | cases | vigie accepted / refused / problems | nginx accepted / refused / problems |\n|---|---|---|---|\n",
    );
    for g in &group_order {
        let n = cases.iter().filter(|c| c.group == *g).count();
        let cell = |who| {
            counts
                .get(&(*g, who))
                .map(|c| format!("{} / {} / {}", c[0], c[1], c[2]))
                .unwrap_or_else(|| "not run".into())
        };
        summary.push_str(&format!(
            "| {g} | {n} | {} | {} |\n",
            cell(Who::Vigie),
            cell(Who::Nginx)
        ));
    }
    report.note(&format!(
        "### Summary\n\n{summary}\nRun time: {:.1} s for both proxies.",
        elapsed.as_secs_f64()
    ));
    report.write();

    let mut global = Vec::new();
    for t in bench.targets() {
        let stray = unattributed(t, &cases);
        if t.who == Who::Vigie {
            global.extend(stray);
        } else if !stray.is_empty() {
            eprintln!("nginx's backend saw bytes no case accounts for: {stray:?}");
        }
    }
    let mut bench = bench;
    assert!(
        bench.vigie_proc.alive(),
        "vigie died during the suite:\n{}",
        bench.vigie_proc.log()
    );
    if !expected_seen.is_empty() {
        eprintln!(
            "failing as listed in EXPECTED_TO_CHANGE / OPEN_FINDINGS:\n{}",
            expected_seen.join("\n")
        );
    }
    assert!(
        failures.is_empty() && global.is_empty(),
        "vigie failed {} case(s):\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        global.join("\n")
    );
}

/// Run one case on a fresh connection, then check that a new connection still gets an
/// answer from the backend.
async fn run_case(t: &Target, c: &Case) -> (Exchange, bool) {
    let ex = exchange(&t.addr, &c.bytes, IDLE, false).await;
    let next = format!(
        "GET /t/next-{} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        c.id
    );
    let after = exchange(&t.addr, next.as_bytes(), Duration::from_secs(3), false).await;
    let ok = after
        .responses
        .first()
        .is_some_and(|r| r.status == 200 && r.seen().is_some());
    (ex, ok)
}

/// The problems of one case at one proxy.
fn judge(
    c: &Case,
    ex: &Exchange,
    next_ok: bool,
    seen: &[Recorded],
    errors: &[BackendError],
) -> Verdict {
    let tag = format!("/{}/", c.id);
    let mine: Vec<&Recorded> = seen
        .iter()
        .filter(|r| r.target.contains(&tag) || r.get("x-case").as_deref() == Some(&c.id))
        .collect();
    let idxs: BTreeSet<u64> = mine.iter().map(|r| r.idx).collect();
    let answered: BTreeSet<u64> = ex.responses.iter().filter_map(|r| r.seen()).collect();
    let nominated = nominated(&c.bytes);
    let mut problems = Vec::new();
    for r in &mine {
        let path = r.target.rsplit(&tag).next().unwrap_or_default();
        if r.get("x-forwarded-for").is_none() {
            problems.push(format!("SMUGGLED {path} (reached the backend unparsed)"));
        } else if !answered.contains(&r.idx) {
            problems.push(format!("HIDDEN {path} (forwarded, its answer never sent)"));
        }
        if r.target.contains("after-close") {
            problems.push("forwarded a request after Connection: close".into());
        }
        problems.extend(hop_by_hop(r, &nominated));
        let hosts = r.all("host");
        let host_ok = hosts.len() == 1 && site_host(&hosts[0]);
        if !host_ok {
            problems.push(format!("forwarded Host {hosts:?}"));
        }
    }
    for i in answered.difference(&idxs) {
        problems.push(format!("CROSSED: got the answer of backend request #{i}"));
    }
    for e in errors {
        let text = String::from_utf8_lossy(&e.bytes).to_ascii_lowercase();
        if !e.truncated && (text.contains(&tag) || text.contains(&format!("x-case: {}", c.id))) {
            problems.push(format!("BACKEND REFUSED what the proxy sent: {}", e.what));
        }
    }
    if !next_ok {
        problems.push("the next connection got no answer".into());
    }
    problems.dedup();
    Verdict {
        outcome: ex.outcome(),
        problems,
    }
}

/// Hop-by-hop fields a proxy must not forward, and those the client nominated.
fn hop_by_hop(r: &Recorded, nominated: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let websocket = r
        .get("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    for (name, _) in &r.headers {
        let n = name.to_ascii_lowercase();
        let hop = matches!(
            n.as_str(),
            "keep-alive" | "te" | "proxy-connection" | "http2-settings"
        ) || (n == "upgrade" && !websocket)
            || nominated.contains(&n);
        if hop {
            out.push(format!("hop-by-hop {name} forwarded"));
        }
    }
    for v in r.all("connection") {
        for token in v.split(',').map(|t| t.trim().to_ascii_lowercase()) {
            let fine =
                token == "keep-alive" || token == "close" || (token == "upgrade" && websocket);
            if !fine && !token.is_empty() {
                out.push(format!("Connection: {token} forwarded"));
            }
        }
    }
    out
}

/// The fields the client's first request nominates in `Connection` (framing fields, `Host`
/// and the proxy's own forwarding fields left out: a proxy writes those itself).
fn nominated(bytes: &[u8]) -> Vec<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(bytes).is_err() {
        return Vec::new();
    }
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|t| t.trim().trim_matches('"').to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|t| {
            !matches!(
                t.as_str(),
                "" | "close"
                    | "keep-alive"
                    | "upgrade"
                    | "host"
                    | "x-forwarded-for"
                    | "content-length"
                    | "transfer-encoding"
            )
        })
        .collect()
}

/// `example.com`, any case, with a trailing dot or a numeric port.
fn site_host(h: &str) -> bool {
    let h = h.to_ascii_lowercase();
    let name = match h.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
        _ => h,
    };
    name == "example.com" || name == "example.com."
}

/// Backend requests and errors no case accounts for (not the follow-up requests).
fn unattributed(t: &Target, cases: &[Case]) -> Vec<String> {
    let tags: Vec<String> = cases.iter().map(|c| format!("/{}/", c.id)).collect();
    let mut out = Vec::new();
    for r in t.recorder.seen() {
        let tagged = tags.iter().any(|t| r.target.contains(t)) || r.get("x-case").is_some();
        if !r.target.starts_with("/t/next-") && !tagged {
            out.push(format!(
                "backend got an unattributed request {:?}",
                r.target
            ));
        }
    }
    for e in t.recorder.errors() {
        let text = String::from_utf8_lossy(&e.bytes);
        if !e.truncated
            && !tags.iter().any(|t| text.contains(t))
            && !text.to_ascii_lowercase().contains("x-case")
        {
            out.push(format!(
                "backend error {}: `{}`",
                e.what,
                shown(&e.bytes, 200)
            ));
        }
    }
    out
}
