//! Brotli (`Content-Encoding: br`) with an encoder of vigie's own, as a pingora downstream
//! module ([`BrotliCompression`]) registered next to pingora's `ResponseCompression`.
//!
//! Why not pingora's: its brotli encoder (0.9.1) only flushes at the end of the body and never
//! writes the stream's last block, so conforming decoders reject its output.
//!
//! Why a module rather than `ProxyHttp::response_body_filter`: pingora runs downstream modules
//! on every response it writes — proxied, served from the cache (hits, and misses streamed
//! from the cache, which end with a `Done` task the proxy body filter never sees), and the
//! static files vigie writes itself with `Session::write_response_*` — and it hands modules
//! the end of the response (`response_done_filter`) whatever its shape. The stream is always
//! finished there.
//!
//! Invariants:
//! - the module does nothing unless [`super::compress`] enabled it (a level above 0): that
//!   happens only when `br` is the client's best encoding, and then pingora's own module is
//!   off for the request, so a body is never encoded twice;
//! - every decision not to compress (types, size, no-transform, ranges, route off) is taken by
//!   `compress::check_response` before the header reaches this module, which adds only what
//!   depends on the response itself: no body (HEAD, 204, 304, empty), already encoded;
//! - each body chunk is compressed and flushed as it arrives (memory bounded by the window,
//!   no added latency for streamed responses); the last one finishes the stream.

use std::io::Write;

use ::brotli::CompressorWriter;
use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, ETAG,
    TRANSFER_ENCODING, VARY,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module, ModuleBuilder};
use pingora::{ErrorType, OrErr, Result};

/// The window: 2^19 = 512 KiB, nginx-brotli's default. A larger window gains little on web
/// responses and costs memory per response in flight.
const LGWIN: u32 = 19;
/// The encoder's internal output buffer.
const BUFFER: usize = 16 * 1024;

/// A streaming brotli encoder whose stream always ends with its last block.
pub struct BrotliEncoder {
    writer: Option<CompressorWriter<Vec<u8>>>,
}

impl BrotliEncoder {
    /// An encoder at `level` (0-11).
    pub fn new(level: u32) -> Self {
        BrotliEncoder {
            writer: Some(CompressorWriter::new(
                Vec::new(),
                BUFFER,
                level.min(11),
                LGWIN,
            )),
        }
    }

    /// Compress `input` and return every byte produced so far: flushed, so a decoder can
    /// decode all input given up to here. `end` finishes the stream; after that, nothing more
    /// is produced.
    pub fn encode(&mut self, input: &[u8], end: bool) -> Result<Bytes> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(Bytes::new());
        };
        writer
            .write_all(input)
            .or_err(ErrorType::InternalError, "brotli: compressing")?;
        if end {
            // `into_inner` runs the FINISH operation: the last block (ISLAST) is written.
            return Ok(self
                .writer
                .take()
                .map(|w| w.into_inner())
                .unwrap_or_default()
                .into());
        }
        if !input.is_empty() {
            writer
                .flush()
                .or_err(ErrorType::InternalError, "brotli: flushing")?;
        }
        Ok(std::mem::take(writer.get_mut()).into())
    }

    /// Compress a whole body at once (one chunk, then the end).
    pub fn compress(level: u32, body: &[u8]) -> Result<Bytes> {
        BrotliEncoder::new(level).encode(body, true)
    }
}

enum Phase {
    /// Before the response header: `level` 0 is off.
    Header { level: u32, head: bool },
    /// After it: the encoder (large: boxed), when this response is being compressed.
    Body(Option<Box<BrotliEncoder>>),
}

/// The per-request module: off unless `compress` turns it on for a `br` response.
pub struct BrotliCompression {
    phase: Phase,
}

impl BrotliCompression {
    /// Whether the response header has not been seen yet (settings may still change).
    pub fn is_header_phase(&self) -> bool {
        matches!(self.phase, Phase::Header { .. })
    }

    /// Compress this response at `level` (1-11), or not at all with 0. Ignored once the
    /// response header went through.
    pub fn set_level(&mut self, new: u32) {
        if let Phase::Header { level, .. } = &mut self.phase {
            *level = new;
        }
    }

    /// The level set for this response; 0 when off or past the header.
    pub fn level(&self) -> u32 {
        match self.phase {
            Phase::Header { level, .. } => level,
            Phase::Body(_) => 0,
        }
    }

    /// The header decision: `Some(encoder)` when this response gets compressed, with the
    /// header rewritten for it.
    fn start(level: u32, head: bool, resp: &mut ResponseHeader) -> Option<Box<BrotliEncoder>> {
        let status = resp.status.as_u16();
        if level == 0 || head || status == 204 || status == 304 || status < 200 {
            return None;
        }
        add_vary(resp);
        let encoded = resp
            .headers
            .get(CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            // Already encoded by the upstream: passed through untouched.
            return None;
        }
        resp.remove_header(&CONTENT_LENGTH);
        resp.remove_header(&ACCEPT_RANGES);
        // HTTP/1.1 framing; pingora's HTTP/2 server drops this header and frames with DATA.
        resp.insert_header(TRANSFER_ENCODING, "chunked").ok()?;
        resp.insert_header(CONTENT_ENCODING, "br").ok()?;
        weaken_etag(resp);
        Some(Box::new(BrotliEncoder::new(level)))
    }
}

/// `Vary: Accept-Encoding`, unless already there (or `Vary: *`).
fn add_vary(resp: &mut ResponseHeader) {
    let present = resp.headers.get_all(VARY).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .map(|t| t.trim_ascii())
            .any(|t| t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding"))
    });
    if !present {
        let _ = resp.append_header(VARY, HeaderValue::from_name(ACCEPT_ENCODING));
    }
}

/// A compressed body is another representation: a strong ETag becomes weak (as pingora's
/// module does), anything unparseable is dropped.
fn weaken_etag(resp: &mut ResponseHeader) {
    let Some(etag) = resp.headers.get(ETAG) else {
        return;
    };
    let bytes = etag.as_bytes();
    if bytes.starts_with(b"W/") {
        return;
    }
    let weak = bytes
        .starts_with(b"\"")
        .then(|| HeaderValue::from_bytes(&[b"W/", bytes].concat()).ok())
        .flatten();
    match weak {
        Some(w) => {
            let _ = resp.insert_header(ETAG, w);
        }
        None => {
            resp.remove_header(&ETAG);
        }
    }
}

#[async_trait]
impl HttpModule for BrotliCompression {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    async fn request_header_filter(&mut self, req: &mut RequestHeader) -> Result<()> {
        if let Phase::Header { head, .. } = &mut self.phase {
            *head = req.method == http::Method::HEAD;
        }
        Ok(())
    }

    async fn response_header_filter(&mut self, resp: &mut ResponseHeader, end: bool) -> Result<()> {
        let Phase::Header { level, head } = self.phase else {
            return Ok(());
        };
        if resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
            // 100/103: wait for the final header.
            return Ok(());
        }
        let encoder = if end {
            None
        } else {
            Self::start(level, head, resp)
        };
        self.phase = Phase::Body(encoder);
        Ok(())
    }

    fn response_body_filter(&mut self, body: &mut Option<Bytes>, end: bool) -> Result<()> {
        let Phase::Body(Some(encoder)) = &mut self.phase else {
            return Ok(());
        };
        let input = body.as_deref().unwrap_or_default();
        *body = Some(encoder.encode(input, end)?);
        Ok(())
    }

    fn response_done_filter(&mut self) -> Result<Option<Bytes>> {
        let Phase::Body(Some(encoder)) = &mut self.phase else {
            return Ok(None);
        };
        // The body ended without an end-of-stream chunk (a `Done` task): finish here. An
        // encoder that already finished returns nothing.
        let tail = encoder.encode(&[], true)?;
        Ok((!tail.is_empty()).then_some(tail))
    }

    fn response_trailer_filter(
        &mut self,
        _trailers: &mut Option<Box<http::HeaderMap>>,
    ) -> Result<Option<Bytes>> {
        // Trailers end the body: finish the stream. pingora then writes this as the last
        // body chunk instead of the trailers (an HTTP/2 upstream's trailers are dropped for a
        // response vigie compresses, which is never gRPC: not in the type list).
        self.response_done_filter()
    }
}

/// Builds [`BrotliCompression`] for each request.
pub struct BrotliCompressionBuilder;

impl BrotliCompressionBuilder {
    /// The builder, for `HttpModules::add_module`.
    pub fn module() -> ModuleBuilder {
        Box::new(BrotliCompressionBuilder)
    }
}

impl HttpModuleBuilder for BrotliCompressionBuilder {
    fn init(&self) -> Module {
        Box::new(BrotliCompression {
            phase: Phase::Header {
                level: 0,
                head: false,
            },
        })
    }

    fn order(&self) -> i16 {
        // Late, like pingora's compression module: after any module that edits the body.
        i16::MIN / 2
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ::brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn streamed_chunks_decode_after_each_flush_and_the_stream_finishes() {
        let body: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{{\"id\":{i}}},").into_bytes())
            .collect();
        let mut enc = BrotliEncoder::new(5);
        let mut out = Vec::new();
        for chunk in body.chunks(16 * 1024) {
            out.extend_from_slice(&enc.encode(chunk, false).unwrap());
        }
        out.extend_from_slice(&enc.encode(&[], true).unwrap());
        assert!(enc.encode(b"more", true).unwrap().is_empty());
        assert_eq!(decode(&out), body);
        assert!(out.len() < body.len() / 5);
    }

    #[test]
    fn an_empty_body_is_a_valid_stream() {
        let out = BrotliEncoder::compress(5, b"").unwrap();
        assert!(!out.is_empty());
        assert!(decode(&out).is_empty());
    }

    #[test]
    fn header_rules() {
        let resp = || {
            let mut r = ResponseHeader::build(200, None).unwrap();
            r.insert_header("content-length", "1000").unwrap();
            r.insert_header("etag", "\"abc\"").unwrap();
            r
        };
        let mut r = resp();
        assert!(BrotliCompression::start(5, false, &mut r).is_some());
        assert_eq!(r.headers["content-encoding"], "br");
        assert_eq!(r.headers["etag"], "W/\"abc\"");
        assert_eq!(r.headers["vary"], "accept-encoding");
        assert!(r.headers.get("content-length").is_none());
        assert!(BrotliCompression::start(0, false, &mut resp()).is_none());
        assert!(BrotliCompression::start(5, true, &mut resp()).is_none());
        let mut r = resp();
        r.set_status(304).unwrap();
        assert!(BrotliCompression::start(5, false, &mut r).is_none());
        let mut r = resp();
        r.insert_header("content-encoding", "gzip").unwrap();
        assert!(BrotliCompression::start(5, false, &mut r).is_none());
        assert_eq!(r.headers["content-length"], "1000");
    }
}
