//! Criterion benchmarks of the spam engine: the prefilter pass alone, and a whole scan
//! (MIME view, prefilter, candidate regexes, metas) with the built-in rules, and with the
//! stock SpamAssassin rules when Debian's package is installed.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gannet_core::filter::rules::Kind;
use gannet_core::mime::view::MessageView;

/// A realistic spam: HTML alternative, links, the usual vocabulary.
fn message() -> Vec<u8> {
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!("Dear friend, limited offer number {i}: click here to claim your prize at http://deals{i}.shop.biz/offer and save money today.\r\n"));
    }
    format!(
        "From: Deals <deals@shop.example>\r\nTo: you@example.test\r\nSubject: FREE offer inside\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><body><p><b>{body}</b></p><img src=\"http://img.shop.biz/a.png\"></body></html>\r\n--b--\r\n"
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let msg = message();
    let mut sets = vec![(
        "built-in",
        gannet_core::filter::load(&[] as &[&str]).expect("built-in rules"),
    )];
    let stock = std::path::Path::new("/usr/share/spamassassin");
    if stock.is_dir() {
        sets.push((
            "stock",
            gannet_core::filter::load(&[stock]).expect("stock rules"),
        ));
    }
    let view = MessageView::new(&msg);
    let mut g = c.benchmark_group("spam");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    for (name, rules) in &sets {
        g.bench_function(format!("prefilter pass over the body, {name} rules"), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                rules.candidates(Kind::Body, black_box(&view.body), &mut out);
                black_box(out.len())
            })
        });
        g.bench_function(format!("whole scan, {name} rules"), |b| {
            b.iter(|| black_box(rules.scan(black_box(&msg))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
