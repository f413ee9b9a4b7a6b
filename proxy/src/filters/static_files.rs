//! Static files from a directory (nginx `root` + `try_files $uri $uri/ =404`), run in
//! `request_filter`; always handles the request.
//!
//! Safety: the path below the route prefix is percent-decoded segment by segment; a segment
//! that decodes to `..`, or contains a NUL or a backslash, is refused; the resolved file must
//! lie under the canonical root after symlinks are followed, so nothing outside the root is
//! ever served. GET and HEAD only. Answers carry `Content-Type` (from the extension),
//! `ETag` and `Last-Modified`, and honour `If-None-Match` / `If-Modified-Since` with 304, and
//! a single byte range (`Range`, `If-Range`; see [`super::range`]) with 206 or 416.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use vigie_config::{Compression, HeaderOps};

use super::{apply_response_ops, range, send_error};
use crate::plan::pages::ErrorPages;

const CHUNK: usize = 64 * 1024;

/// Decode `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file system path for `rest` (the request path below the route prefix) under `root`,
/// or `None` when the path is not acceptable.
pub fn resolve_under(root: &Path, rest: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for raw in rest.split('/') {
        let seg = percent_decode(raw)?;
        if seg.is_empty() || seg == "." {
            continue;
        }
        if seg == ".." || seg.contains('\0') || seg.contains('\\') || seg.contains('/') {
            return None;
        }
        path.push(seg);
    }
    Some(path)
}

fn etag_of(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!("\"{mtime:x}-{:x}\"", meta.len())
}

fn not_modified(session: &Session, etag: &str, modified: Option<SystemTime>) -> bool {
    let headers = &session.req_header().headers;
    if let Some(inm) = headers.get(http::header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else {
            return false;
        };
        return inm.trim() == "*"
            || inm
                .split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag);
    }
    let (Some(ims), Some(modified)) = (headers.get(http::header::IF_MODIFIED_SINCE), modified)
    else {
        return false;
    };
    let Some(since) = ims
        .to_str()
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
    else {
        return false;
    };
    // HTTP dates have one-second resolution.
    let modified_secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let since_secs = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    modified_secs <= since_secs
}

/// Serve the request from `root`; `rest` is the normalised path below the route prefix.
pub async fn serve(
    session: &mut Session,
    pages: &ErrorPages,
    root: &Path,
    index: &str,
    rest: &str,
    ops: &HeaderOps,
    compression: Option<&Compression>,
) -> Result<()> {
    let method = session.req_header().method.clone();
    if method != http::Method::GET && method != http::Method::HEAD {
        let allow = [("allow", "GET, HEAD")];
        return super::send_error_with(session, pages, 405, "GET or HEAD", &allow, Some(ops)).await;
    }
    let Some(mut path) = resolve_under(root, rest) else {
        return send_error(session, pages, 404, "", Some(ops)).await;
    };
    let Ok(canonical_root) = tokio::fs::canonicalize(root).await else {
        tracing::error!(root = %root.display(), "static root does not exist");
        return send_error(session, pages, 404, "", Some(ops)).await;
    };
    let mut meta = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(_) => return send_error(session, pages, 404, "", Some(ops)).await,
    };
    if meta.is_dir() {
        if !session.req_header().uri.path().ends_with('/') {
            // From the normalised path: `//host/../dir` must not become `//host/../dir/`.
            let path = format!("{}/", super::location::request_path(session));
            let location = super::location::with_query(session, path);
            return super::respond::redirect(session, 301, &location, ops).await;
        }
        path.push(index);
        meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            _ => return send_error(session, pages, 404, "", Some(ops)).await,
        };
    }
    let inside = tokio::fs::canonicalize(&path)
        .await
        .is_ok_and(|p| p.starts_with(&canonical_root));
    if !inside || !meta.is_file() {
        return send_error(session, pages, 404, "", Some(ops)).await;
    }
    let etag = etag_of(&meta);
    let modified = meta.modified().ok();
    let mut resp = ResponseHeader::build(200, Some(7))?;
    super::request_id::echo(session, &mut resp)?;
    resp.insert_header(http::header::ETAG, etag.as_str())?;
    if let Some(m) = modified {
        resp.insert_header(http::header::LAST_MODIFIED, httpdate::fmt_http_date(m))?;
    }
    if not_modified(session, &etag, modified) {
        resp.set_status(304)?;
        apply_response_ops(&mut resp, ops)?;
        super::compress::off(session);
        return session.write_response_header(Box::new(resp), true).await;
    }
    let content_type = content_type_of(&path);
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::ACCEPT_RANGES, "bytes")?;
    let headers = &session.req_header().headers;
    let header = |n| headers.get(n).and_then(|v| v.to_str().ok());
    let answer = if method == http::Method::GET
        && range::if_range_matches(header(http::header::IF_RANGE), &etag, modified)
    {
        range::evaluate(header(http::header::RANGE), meta.len())
    } else {
        range::Answer::Full
    };
    let (start, len) = match answer {
        range::Answer::Full => (0, meta.len()),
        range::Answer::Part { start, end } => {
            resp.set_status(206)?;
            let total = meta.len();
            resp.insert_header(
                http::header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            )?;
            (start, end - start + 1)
        }
        range::Answer::Unsatisfiable => {
            let range = format!("bytes */{}", meta.len());
            let extra = [("content-range", range.as_str())];
            let detail = "the range is outside the file";
            return super::send_error_with(session, pages, 416, detail, &extra, Some(ops)).await;
        }
    };
    resp.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
    apply_response_ops(&mut resp, ops)?;
    super::compress::check_response(session, compression, &resp);
    let head = method == http::Method::HEAD || len == 0;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return send_error(session, pages, 404, "", Some(ops)).await,
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| {
                pingora::Error::because(pingora::ErrorType::ReadError, "seeking static file", e)
            })?;
    }
    session.write_response_header(Box::new(resp), head).await?;
    if head {
        return Ok(());
    }
    stream_file(session, file, len).await
}

/// The content type for a file, from its extension; text gets `charset=utf-8`.
fn content_type_of(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    match mime.type_() {
        mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
        _ if mime.subtype() == "javascript" || mime.subtype() == "json" => {
            format!("{mime}; charset=utf-8")
        }
        _ => mime.to_string(),
    }
}

async fn stream_file(session: &mut Session, mut file: tokio::fs::File, len: u64) -> Result<()> {
    let mut sent = 0u64;
    while sent < len {
        let mut buf = vec![0u8; CHUNK.min((len - sent) as usize)];
        let n = file.read(&mut buf).await.map_err(|e| {
            pingora::Error::because(pingora::ErrorType::ReadError, "reading static file", e)
        })?;
        if n == 0 {
            // The file shrank while being served: end the response short (the client sees a
            // truncated body rather than a hang).
            return pingora::Error::e_explain(
                pingora::ErrorType::ReadError,
                "static file shrank while being served",
            );
        }
        buf.truncate(n);
        sent += n as u64;
        session
            .write_response_body(Some(Bytes::from(buf)), sent >= len)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_root() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve_under(root, "a/b.html").unwrap(),
            Path::new("/srv/a/b.html")
        );
        assert_eq!(resolve_under(root, "").unwrap(), Path::new("/srv"));
        assert!(resolve_under(root, "%2e%2e/etc/passwd").is_none());
        assert!(resolve_under(root, "a/%2fetc").is_none());
        assert!(resolve_under(root, "a%00b").is_none());
        assert!(resolve_under(root, "a%5c..").is_none());
        assert!(resolve_under(root, "bad%zz").is_none());
        assert_eq!(
            resolve_under(root, "hello%20world.txt").unwrap(),
            Path::new("/srv/hello world.txt")
        );
    }
}
