//! The adversarial bench: vigie and Debian's nginx side by side, each in front of its own
//! [`Recorder`], an exact-byte client, and the Markdown table of what each did.
//!
//! Both proxies get equivalent settings: one site `example.com` (any other host gets 421),
//! `/` proxied to the recorder over HTTP/1.1 keep-alive with `Host` kept and the forwarding
//! headers set by the proxy (`X-Forwarded-For` among them: a request reaching a backend
//! without it went through a proxy unparsed), `/cache/` the same with a cache (200 for five
//! minutes when the backend says nothing, key: scheme, host, target), `/static/` served from
//! a directory whose parent holds a file that must never be served.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::nginx::Nginx;
use super::recorder::Recorder;
use super::Vigie;

/// What the file outside the static root holds; seeing it in a response is an escape.
pub const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// The proxies under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// vigie, this branch's binary.
    Vigie,
    /// Debian's nginx.
    Nginx,
}

/// One proxy in front of its own recorder.
pub struct Target {
    /// Which proxy.
    pub who: Who,
    /// Its listener.
    pub addr: String,
    /// The backend only it talks to.
    pub recorder: Recorder,
}

/// vigie and nginx with their recorders and the static root they share.
pub struct Bench {
    /// vigie's side.
    pub vigie: Target,
    /// nginx's side; `None` when nginx is not installed.
    pub nginx: Option<Target>,
    /// The vigie process (checked for crashes).
    pub vigie_proc: Vigie,
    /// The nginx process.
    pub nginx_proc: Option<Nginx>,
    /// Directory holding `root/` (served under `/static/`) and the secret beside it.
    pub www: tempfile::TempDir,
}

impl Bench {
    /// Start both proxies (nginx only when installed), each before a fresh recorder.
    pub async fn start() -> Bench {
        let www = tempfile::tempdir().expect("tempdir");
        let root = www.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("static root");
        std::fs::write(root.join("index.html"), "static index\n").expect("index");
        std::fs::write(root.join("sub/page.txt"), "static page\n").expect("page");
        std::fs::write(www.path().join("secret.txt"), format!("{SECRET}\n")).expect("secret");
        for p in [www.path().to_path_buf(), root.clone(), root.join("sub")] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let rec = Recorder::start().await;
        let vigie_proc = Vigie::start(&vigie_config(&rec.addr, &root)).await;
        let vigie = Target {
            who: Who::Vigie,
            addr: vigie_proc.http.clone(),
            recorder: rec,
        };
        let (nginx, nginx_proc) = if Nginx::available() {
            let rec = Recorder::start().await;
            let proc = Nginx::start(&nginx_config(&rec.addr, &root)).await;
            let t = Target {
                who: Who::Nginx,
                addr: proc.http.clone(),
                recorder: rec,
            };
            (Some(t), Some(proc))
        } else {
            eprintln!("nginx is not installed (`make deps`): vigie runs alone");
            (None, None)
        };
        Bench {
            vigie,
            nginx,
            vigie_proc,
            nginx_proc,
            www,
        }
    }

    /// The targets: vigie, then nginx when there is one.
    pub fn targets(&self) -> Vec<&Target> {
        let mut v = vec![&self.vigie];
        v.extend(self.nginx.as_ref());
        v
    }
}

fn vigie_config(rec: &str, root: &std::path::Path) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
unknown_host = 421

[cache.adv]
memory = "8MiB"

[upstreams.rec]
servers = ["{rec}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "rec"
  [[sites.routes]]
  path = "/cache/"
  upstream = "rec"
  cache = {{ zone = "adv", valid = {{ "200" = "5m" }} }}
  [[sites.routes]]
  path = "/static/"
  static = {{ root = "{root}" }}
"#,
        root = root.display()
    )
}

fn nginx_config(rec: &str, root: &std::path::Path) -> String {
    let proxy = "proxy_pass http://rec; proxy_http_version 1.1; \
                 proxy_set_header Connection \"\"; proxy_set_header Host $host; \
                 proxy_set_header X-Forwarded-For $remote_addr; \
                 proxy_set_header X-Real-IP $remote_addr; \
                 proxy_set_header X-Forwarded-Proto $scheme; \
                 proxy_set_header X-Forwarded-Host $host;";
    format!(
        r#"
  upstream rec {{ server {rec}; keepalive 16; }}
  proxy_cache_path {{dir}}/cache keys_zone=adv:8m;
  server {{ listen {{http}} default_server; server_name _; return 421; }}
  server {{
    listen {{http}};
    server_name example.com;
    location / {{ {proxy} }}
    location /cache/ {{ {proxy} proxy_cache adv; proxy_cache_valid 200 5m;
                       proxy_cache_key $scheme$host$request_uri; }}
    location /static/ {{ alias {root}/; }}
  }}
"#,
        root = root.display()
    )
}

/// One response as the client read it.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The backend request index this response names (`X-Seen`), if it came from a backend.
    pub fn seen(&self) -> Option<u64> {
        self.get("x-seen").and_then(|v| v.parse().ok())
    }
}

/// What one connection gave back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Every byte read.
    pub raw: Vec<u8>,
    /// The responses parsed from them, in order (interim 1xx responses left out).
    pub responses: Vec<Resp>,
    /// Bytes after the last parsable response that are not a response.
    pub garbage: bool,
    /// The proxy closed the connection (rather than the client giving up while it was idle).
    pub closed: bool,
}

impl Exchange {
    /// `"400"`, `"200 200"` or `"—"`, then `/ close` or `/ open`.
    pub fn outcome(&self) -> String {
        let mut s = if self.responses.is_empty() {
            "—".to_string()
        } else {
            let v: Vec<String> = self
                .responses
                .iter()
                .map(|r| r.status.to_string())
                .collect();
            v.join(" ")
        };
        if self.garbage {
            s.push_str(" +garbage");
        }
        s.push_str(if self.closed { " / close" } else { " / open" });
        s
    }
}

/// Open a fresh connection to `addr`, write `bytes`, read until the peer closes, `idle`
/// passes without a byte, or five seconds in all. `head`: responses carry no body.
pub async fn exchange(addr: &str, bytes: &[u8], idle: Duration, head: bool) -> Exchange {
    let mut ex = Exchange::default();
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
    else {
        return ex;
    };
    // A proxy may answer and close before every byte was written: not an error here.
    let _ = s.write_all(bytes).await;
    let start = Instant::now();
    let mut chunk = [0u8; 16384];
    loop {
        let left = Duration::from_secs(5).saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(idle.min(left), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                ex.closed = true;
                break;
            }
            Ok(Ok(n)) => ex.raw.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let (responses, garbage) = parse_responses(&ex.raw, head);
    ex.responses = responses;
    ex.garbage = garbage;
    ex
}

/// Parse a stream of HTTP/1.1 responses; the flag says bytes were left that are not one.
pub fn parse_responses(mut buf: &[u8], head: bool) -> (Vec<Resp>, bool) {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = r.parse(buf) else {
            return (out, true);
        };
        let status = r.code.unwrap_or(0);
        let fields: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).to_string(),
                )
            })
            .collect();
        buf = &buf[n..];
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Resp {
            status,
            headers: fields,
            body: Vec::new(),
        };
        if !(head || status == 204 || status == 304) {
            let chunked = resp
                .get("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let len = resp.get("content-length").and_then(|v| v.parse().ok());
            if chunked {
                match dechunk(buf) {
                    Some((body, used)) => {
                        resp.body = body;
                        buf = &buf[used..];
                    }
                    None => {
                        out.push(resp);
                        return (out, true);
                    }
                }
            } else if let Some(len) = len {
                let len: usize = len;
                let take = len.min(buf.len());
                resp.body = buf[..take].to_vec();
                buf = &buf[take..];
            } else {
                resp.body = buf.to_vec();
                buf = &[];
            }
        }
        out.push(resp);
    }
    (out, false)
}

fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let nl = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let line = std::str::from_utf8(&buf[at..nl]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = nl + 2;
        if size == 0 {
            // Trailers: up to the empty line.
            loop {
                let nl = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
                let empty = nl == at;
                at = nl + 2;
                if empty {
                    return Some((body, at));
                }
            }
        }
        body.extend_from_slice(buf.get(at..at + size)?);
        at += size + 2;
    }
}

/// A Markdown table, written to `target/adversarial/<part>.md` and echoed to stderr.
pub struct Report {
    part: String,
    text: String,
}

impl Report {
    /// A report for `part` with its title, what it checks, and the table's header.
    pub fn new(part: &str, title: &str, intro: &str, columns: &[&str]) -> Report {
        let mut text = format!("## {title}\n\n{intro}\n\n| {} |\n|", columns.join(" | "));
        for _ in columns {
            text.push_str("---|");
        }
        text.push('\n');
        Report {
            part: part.to_string(),
            text,
        }
    }

    /// One row; `|` in cells is escaped.
    pub fn row(&mut self, cells: &[String]) {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    /// Text after the table.
    pub fn note(&mut self, text: &str) {
        let _ = write!(self.text, "\n{text}\n");
    }

    /// Write the file; returns its path.
    pub fn write(&self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/adversarial");
        std::fs::create_dir_all(&dir).expect("target/adversarial");
        let path = dir.join(format!("{}.md", self.part));
        std::fs::write(&path, &self.text).expect("write the report");
        eprintln!("{}\n(written to {})", self.text, path.display());
        path
    }
}

/// Bytes shown in a table cell: printable ASCII as is, the rest escaped, at most `max` chars.
pub fn shown(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'`' => s.push('\''),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
        if s.len() >= max {
            s.truncate(max);
            s.push('…');
            break;
        }
    }
    s
}
