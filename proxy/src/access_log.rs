//! The access log: one line per request, written in the `logging` phase.
//!
//! Formats: nginx's `combined` (so goaccess, fail2ban and existing parsers keep working) or
//! JSON lines with more fields (request time, upstream address and time, request id, limiter
//! decision, cache status). Lines go through a channel to a writer thread, so the request path never waits
//! for the disk; the thread flushes when idle and at least every 200 ms. A file target is
//! reopened on SIGUSR1 (logrotate's `postrotate kill -USR1`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use vigie_config::{AccessFormat, LogTarget};

/// What one line says.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Client address (after trusted-proxy resolution), or `-`.
    pub client: String,
    /// When the request started.
    pub time: SystemTime,
    /// Method.
    pub method: &'a str,
    /// Path and query as received.
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: &'a str,
    /// Status sent (0: none).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// `Referer` header.
    pub referer: &'a str,
    /// `User-Agent` header.
    pub user_agent: &'a str,
    /// Host asked for.
    pub host: &'a str,
    /// Whole request time.
    pub request_time: Duration,
    /// Upstream server and its response time, when proxied.
    pub upstream: Option<(String, Duration)>,
    /// The request id.
    pub request_id: &'a str,
    /// Rate-limit decision (`-`, `delayed`, `rejected`).
    pub limit: &'a str,
    /// What the cache did (`HIT`, `MISS`...), `-` on routes without cache.
    pub cache: &'a str,
}

enum Msg {
    Line(String),
    Reopen,
}

/// The access log writer handle.
pub struct AccessLog {
    format: AccessFormat,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format)
            .finish()
    }
}

fn open(target: &LogTarget) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        LogTarget::Stdout => Box::new(std::io::stdout()),
        LogTarget::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    })
}

fn writer(target: LogTarget, rx: Receiver<Msg>) {
    let mut out = match open(&target) {
        Ok(o) => std::io::BufWriter::with_capacity(64 * 1024, o),
        Err(e) => {
            tracing::error!(error = %e, "cannot open the access log");
            return;
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Msg::Line(line)) => {
                let _ = out.write_all(line.as_bytes());
            }
            Ok(Msg::Reopen) => {
                let _ = out.flush();
                match open(&target) {
                    Ok(o) => out = std::io::BufWriter::with_capacity(64 * 1024, o),
                    Err(e) => tracing::error!(error = %e, "cannot reopen the access log"),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

fn quote(s: &str) -> String {
    // nginx escapes `"` and `\` and non-printable bytes as \xHH in log variables.
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => out.push_str(&format!("\\x{b:02X}")),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

impl AccessLog {
    /// Start writing to `target` in `format`.
    pub fn start(target: LogTarget, format: AccessFormat) -> std::io::Result<AccessLog> {
        // Open once here so a bad path is reported at start-up.
        drop(open(&target)?);
        let (tx, rx) = sync_channel(64 * 1024);
        std::thread::Builder::new()
            .name("vigie-access-log".into())
            .spawn(move || writer(target, rx))?;
        Ok(AccessLog {
            format,
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Reopen the file (after logrotate moved it).
    pub fn reopen(&self) {
        let _ = self.tx.send(Msg::Reopen);
    }

    /// Write one line; if the writer is far behind, the line is dropped and counted.
    pub fn write(&self, e: &Entry<'_>) {
        let line = match self.format {
            AccessFormat::Combined => combined(e),
            AccessFormat::Json => json(e),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Line(line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
pub fn combined(e: &Entry<'_>) -> String {
    let t = time::OffsetDateTime::from(e.time);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::from(u8::from(t.month())) - 1];
    format!(
        "{} - - [{:02}/{}/{}:{:02}:{:02}:{:02} +0000] \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
        e.client,
        t.day(),
        month,
        t.year(),
        t.hour(),
        t.minute(),
        t.second(),
        quote(e.method),
        quote(e.uri),
        e.version,
        e.status,
        e.bytes,
        quote(e.referer),
        quote(e.user_agent),
    )
}

/// One JSON object per line.
pub fn json(e: &Entry<'_>) -> String {
    let t = time::OffsetDateTime::from(e.time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (up_addr, up_time) = match &e.upstream {
        Some((a, d)) => (
            serde_json::Value::from(a.as_str()),
            serde_json::Value::from(d.as_secs_f64()),
        ),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };
    let v = serde_json::json!({
        "time": t,
        "client": e.client,
        "host": e.host,
        "method": e.method,
        "uri": e.uri,
        "protocol": e.version,
        "status": e.status,
        "bytes_sent": e.bytes,
        "referer": e.referer,
        "user_agent": e.user_agent,
        "request_time": e.request_time.as_secs_f64(),
        "upstream_addr": up_addr,
        "upstream_time": up_time,
        "request_id": e.request_id,
        "limit": e.limit,
        "cache": e.cache,
    });
    format!("{v}\n")
}

/// The path of a file target, for messages.
pub fn target_name(t: &LogTarget) -> String {
    match t {
        LogTarget::Stdout => "stdout".into(),
        LogTarget::File(p) => PathBuf::from(p).display().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn combined_matches_nginx() {
        let e = Entry {
            client: "203.0.113.9".into(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
            method: "GET",
            uri: "/api/cv?x=\"1\"",
            version: "HTTP/1.1",
            status: 200,
            bytes: 1234,
            referer: "",
            user_agent: "curl/8.0",
            host: "example.com",
            request_time: Duration::from_millis(12),
            upstream: None,
            request_id: "abc",
            limit: "-",
            cache: "-",
        };
        assert_eq!(
            combined(&e),
            "203.0.113.9 - - [24/Nov/2025:16:00:00 +0000] \"GET /api/cv?x=\\x221\\x22 HTTP/1.1\" 200 1234 \"-\" \"curl/8.0\"\n"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&e)).unwrap();
        assert_eq!(j["status"], 200);
        assert_eq!(j["upstream_addr"], serde_json::Value::Null);
    }
}
