//! Criterion benchmarks of the SMTP hot path: command parsing, the in-place dot-unstuffer,
//! and a whole pipelined transaction through the session.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gannet_core::policy::RateKey;
use gannet_core::protocol::Protocol;
use gannet_core::smtp::{
    parse_command, ConnectionPolicy, DeliveryOutcome, DotReader, DotScan, Environment, RcptRoute,
    Request, Session, SessionConfig, Step,
};

fn parser(c: &mut Criterion) {
    let lines: [&[u8]; 5] = [
        b"EHLO client.example.org",
        b"MAIL FROM:<sender@example.org> SIZE=10240 BODY=8BITMIME",
        b"RCPT TO:<alice@example.test>",
        b"DATA",
        b"BDAT 65536 LAST",
    ];
    let mut g = c.benchmark_group("smtp");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_command x5", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(parse_command(black_box(line)));
            }
        })
    });
    g.finish();
}

/// 100 KiB of text lines, every tenth one dot-stuffed.
fn message() -> Vec<u8> {
    let mut m = Vec::new();
    let mut i = 0;
    while m.len() < 100 * 1024 {
        if i % 10 == 0 {
            m.extend_from_slice(b"..a dot-stuffed line of text, as a client sends it\r\n");
        } else {
            m.extend_from_slice(b"an ordinary line of message text with some words in it ok\r\n");
        }
        i += 1;
    }
    m.extend_from_slice(b".\r\n");
    m
}

fn unstuff(c: &mut Criterion) {
    let input = message();
    let mut g = c.benchmark_group("smtp");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("dot-unstuff 100 KiB in place", |b| {
        let mut buf = input.clone();
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&input);
            let mut reader = DotReader::new(0, 0, None);
            let end = reader.advance(&mut buf);
            assert!(matches!(end, DotScan::End { .. }));
            black_box(reader.write)
        })
    });
    g.finish();
}

struct Env;

impl Environment for Env {
    fn now(&self) -> i64 {
        1_795_962_630
    }
    fn next_message_id(&mut self) -> u64 {
        1
    }
    fn route(&self, _: &str) -> RcptRoute {
        RcptRoute::Local { account: 1 }
    }
    fn admit_message(&mut self, _: RateKey) -> bool {
        true
    }
    fn quota_allows(&self, _: u32, _: u64) -> bool {
        true
    }
}

fn transaction(c: &mut Criterion) {
    let mut input = b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n".to_vec();
    let body = message();
    input.extend_from_slice(&body[..10 * 1024 - 3]);
    input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let config = Arc::new(SessionConfig::default());
    let mut g = c.benchmark_group("smtp");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("session: pipelined 10 KiB transaction", |b| {
        b.iter(|| {
            let mut s = Session::new(
                config.clone(),
                ConnectionPolicy::plain("127.0.0.1".parse().unwrap()),
                Vec::with_capacity(16384),
            );
            s.feed(&input);
            while let Step::Request(Request::Deliver) = s.step(&mut Env) {
                let d = s.take_delivery(Vec::new()).unwrap();
                black_box(d.message_len);
                s.delivered(DeliveryOutcome::Stored);
            }
            black_box(s.take_output())
        })
    });
    g.finish();
}

criterion_group!(benches, parser, unstuff, transaction);
criterion_main!(benches);
