//! The CPU cost of compressing a realistic 100 KB JSON response (`json_body.rs`) per encoding
//! and level, through the encoders vigie runs: pingora's gzip and zstd (`Algorithm::
//! compressor`, the code of pingora's compression module) and vigie's brotli
//! (`filters::brotli::BrotliEncoder`). The body is fed in 64 KiB chunks, the size pingora
//! reads from an upstream or vigie reads from a file; brotli flushes after each chunk, as it
//! does in vigie. Time per body is criterion's; the compressed sizes are printed first.
//! Run with `cargo bench -p vigie --bench compress`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "json_body.rs"]
mod json_body;

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pingora::protocols::http::compression::Algorithm;
use vigie::filters::brotli::BrotliEncoder;

const SIZE: usize = 100 * 1024;
const CHUNK: usize = 64 * 1024;

const CASES: &[(&str, u32)] = &[
    ("gzip", 1),
    ("gzip", 5),
    ("gzip", 6),
    ("gzip", 9),
    ("zstd", 1),
    ("zstd", 3),
    ("zstd", 5),
    ("zstd", 9),
    ("br", 1),
    ("br", 4),
    ("br", 5),
    ("br", 6),
    ("br", 11),
];

/// Compress `body` chunk by chunk as vigie does; the compressed length.
fn compress(encoding: &str, level: u32, body: &[u8], chunk: usize) -> usize {
    let mut out = 0;
    let mut feed = |encode: &mut dyn FnMut(&[u8], bool) -> Bytes| {
        let mut chunks = body.chunks(chunk).peekable();
        while let Some(c) = chunks.next() {
            out += encode(c, chunks.peek().is_none()).len();
        }
    };
    match encoding {
        "br" => {
            let mut e = BrotliEncoder::new(level);
            feed(&mut |c, end| e.encode(c, end).unwrap());
        }
        _ => {
            let algorithm = Algorithm::from(encoding);
            let mut e = algorithm.compressor(level).expect("a compressor");
            feed(&mut |c, end| e.encode(c, end).unwrap());
        }
    }
    out
}

fn sizes(body: &[u8]) {
    println!(
        "\ncompressed size of the {} byte JSON body (64 KiB chunks):",
        body.len()
    );
    println!("| encoding | level | bytes | ratio | bytes, one chunk | bytes, 16 KiB chunks |");
    println!("|---|---|---|---|---|---|");
    for &(encoding, level) in CASES {
        let n = compress(encoding, level, body, CHUNK);
        println!(
            "| {encoding} | {level} | {n} | {:.2} | {} | {} |",
            body.len() as f64 / n as f64,
            compress(encoding, level, body, body.len()),
            compress(encoding, level, body, 16 * 1024),
        );
    }
    println!();
}

fn bench(c: &mut Criterion) {
    let body = json_body::json_body(SIZE);
    assert_eq!(body.len(), SIZE);
    serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
    sizes(&body);
    let mut g = c.benchmark_group("compress_100k_json");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for &(encoding, level) in CASES {
        g.bench_with_input(BenchmarkId::new(encoding, level), &body, |b, body| {
            b.iter(|| compress(encoding, level, body, CHUNK))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
