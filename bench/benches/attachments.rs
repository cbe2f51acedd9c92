//! Criterion benchmarks of the attachment policy (`policy::attachments::check`): a 10 KiB
//! plain-text message, and a ~1 MB message with a PDF-like attachment in base64.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gannet_core::policy::attachments::{check, AttachmentPolicy};

const HEADER: &str = "From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: the report\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n";

/// About 10 KiB of plain text.
fn plain() -> Vec<u8> {
    let mut m = format!("{HEADER}Content-Type: text/plain; charset=utf-8\r\n\r\n");
    let mut i = 0;
    while m.len() < 10 * 1024 {
        m.push_str(&format!(
            "Line {i} of the report: the numbers for the quarter are in, and they look fine.\r\n"
        ));
        i += 1;
    }
    m.into_bytes()
}

/// A text part and a ~750 KB PDF-like attachment, base64: about 1 MB in all.
fn with_pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut x: u32 = 1;
    while pdf.len() < 750_000 {
        // Pseudo-random bytes, as a compressed stream is.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pdf.extend_from_slice(&x.to_le_bytes());
    }
    pdf.extend_from_slice(b"\n%%EOF\n");
    let mut b64 = String::new();
    for chunk in pdf.chunks(57) {
        b64.push_str(&base64(chunk));
        b64.push_str("\r\n");
    }
    format!(
        "{HEADER}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n--b\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}--b--\r\n"
    )
    .into_bytes()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let policy = AttachmentPolicy::default();
    let mut g = c.benchmark_group("attachments");
    for (name, msg) in [
        ("10 KiB plain message", plain()),
        ("1 MB message with a PDF attachment", with_pdf()),
    ] {
        assert!(check(&policy, &msg).is_none(), "{name} is held");
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(check(&policy, black_box(&msg))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
