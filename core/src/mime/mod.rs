//! Reading messages: header fields of a raw message, and the decoded view the spam rules see.

mod alternative;
pub mod depth;
mod header;
pub mod html_style;
mod latin1;
pub mod relays;
pub mod view;

pub use header::{decode_encoded_words, header_value, header_values};

use std::borrow::Cow;

/// `bytes` as text, each invalid UTF-8 sequence replaced by U+FFFD: what
/// `String::from_utf8_lossy` gives, but checked first by `std::str::from_utf8`, which
/// passes over ASCII a word at a time where the lossy decoder goes a byte at a time.
/// Most of a message is valid, and the view and the scan turn whole messages into text.
pub fn lossy_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Hostile messages for the tests of every module that parses or walks MIME.
#[cfg(test)]
pub(crate) mod fixtures {
    /// A message nesting `message/rfc822` `levels` deep (32 bytes a level).
    pub(crate) fn deep_rfc822(levels: usize) -> Vec<u8> {
        let mut m = b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".to_vec();
        for _ in 0..levels {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"Subject: bottom\r\n\r\nhello from the bottom\r\n");
        m
    }

    /// A message nesting `multipart/mixed` `levels` deep, each level with its own
    /// boundary, a text part at the bottom.
    pub(crate) fn deep_multipart(levels: usize) -> Vec<u8> {
        let mut m = b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".to_vec();
        for i in 0..levels {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nhello from the bottom\r\n");
        for i in (0..levels).rev() {
            m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        m
    }

    /// The messages the header-block and header-decoding tests run on: a few odd ones, and the corpus when it
    /// is unpacked (`scripts/unpack-corpus.sh`), as stored and with CRLF line ends.
    pub(crate) fn sample_messages() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![
            b"Subject: hi\r\nFrom: a@b.example\r\n\r\nhello there\r\n".to_vec(),
            b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\none\r\n--XX--\r\n".to_vec(),
            b"Subject: =?utf-8?q?caf=C3=A9?=\r\nTo: undisclosed:;\r\nCc: G: a@b.example, \"X\" <x@y.example>;\r\n\r\n".to_vec(),
            b"From: a@b.example\r\nSubject: folded\r\n  twice\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n".to_vec(),
        ];
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
        let mut stack = vec![corpus];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(raw) = std::fs::read(&path) {
                    let mut crlf = Vec::with_capacity(raw.len() + raw.len() / 20);
                    for (i, &b) in raw.iter().enumerate() {
                        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                            crlf.push(b'\r');
                        }
                        crlf.push(b);
                    }
                    out.push(raw);
                    out.push(crlf);
                }
            }
        }
        out
    }

    /// Runs `f` on a thread with a 2 MB stack (Rust's default for spawned threads), so
    /// that recursion a level per MIME level overflows as it would in the server.
    pub(crate) fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .expect("spawn a test thread")
            .join()
            .expect("the test thread finished")
    }
}
