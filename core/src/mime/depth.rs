//! How deep a message's MIME structure goes, measured before anything builds a tree of it.
//!
//! Why: anyone on the MX port can send a message that nests `message/rfc822` 30,000 levels
//! deep in 1 MB, or multiparts a few thousand deep. mail-parser builds its tree in a loop,
//! but a nested message becomes a `Message` inside a part of a `Message`: dropping or
//! copying one recurses once a level (so does mail-parser's own `into_owned` of a nested
//! message it decoded from base64), and so does every walk of the tree (IMAP
//! BODYSTRUCTURE). Enough levels overflow the thread's stack, which aborts the process (no
//! `catch_unwind` helps); the sender retries and the appliance crash-loops, and a stored
//! message would abort the IMAP server on every FETCH.
//!
//! What: [`exceeds`] follows mail-parser's own steps over the raw bytes (the same header
//! parser, the same search for `--boundary`, the same treatment of nested messages, the
//! same three levels of base64 or quoted-printable nested messages it decodes) but keeps
//! only the number of open levels: a multipart opens one, a nested message another. No
//! tree is built and nothing recurses except into an encoded nested message (three levels
//! at most, as mail-parser). Leaves are skipped with a substring search, so the pass costs
//! little next to the parse it guards.
//!
//! Beyond [`MAX_DEPTH`] levels the message is opaque: its deep parts are not parsed. The
//! spam view reads its top-level headers and its body as one text/plain part; IMAP shows
//! its top-level headers (ENVELOPE) and one TEXT/PLAIN part whose content is the raw body.
//! So such mail is still accepted, scanned, stored and readable; only its structure is
//! not shown. Real mail nests a handful of levels: 50 is far beyond it.

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, HeaderName, HeaderValue, MessageParser};

/// MIME levels (multiparts and nested messages) a message may have and still be parsed.
pub const MAX_DEPTH: usize = 50;

/// Levels of base64 or quoted-printable nested messages mail-parser decodes and parses
/// (its `MAX_NESTED_ENCODED`).
const ENCODED_LEVELS: usize = 3;

/// Whether `raw`, parsed with `parser`, would nest deeper than [`MAX_DEPTH`].
pub fn exceeds(parser: &MessageParser, raw: &[u8]) -> bool {
    depth(parser, raw, MAX_DEPTH, ENCODED_LEVELS) > MAX_DEPTH
}

/// The deepest nesting mail-parser reaches in `raw`, or a number above `limit` as soon as
/// one exceeds it.
pub fn depth(parser: &MessageParser, raw: &[u8], limit: usize, encoded_left: usize) -> usize {
    let mut stream = MessageStream::new(raw);
    // The level being read, and the open ones around it (with whether each is a nested
    // message rather than a multipart): mail-parser's state and state stack.
    let mut state = Level::default();
    let mut open: Vec<(Level, bool)> = Vec::new();
    let mut deepest = 0;
    let mut headers = Vec::new();
    // Every round reads at least a byte; a round that would not cannot be parsed either.
    let mut rounds = 0usize;
    'outer: loop {
        rounds += 1;
        if rounds > raw.len().saturating_add(2) {
            return limit + 1;
        }
        headers.clear();
        if !stream.parse_headers(parser, &mut headers) {
            break;
        }
        let ct = headers
            .header_value(&HeaderName::ContentType)
            .and_then(|c| c.as_content_type());
        let kind = match ct {
            Some(c) if c.ctype() == "multipart" => Kind::Multipart {
                digest: c.subtype() == Some("digest"),
            },
            Some(c)
                if c.ctype() == "message" && matches!(c.subtype(), Some("rfc822" | "global")) =>
            {
                Kind::Message
            }
            Some(_) => Kind::Leaf,
            // A part without a type is a message in a digest, else text.
            None if state.kind == (Kind::Multipart { digest: true }) => Kind::Message,
            None => Kind::Leaf,
        };
        if let Kind::Multipart { .. } = kind {
            let boundary = ct
                .and_then(|c| c.attribute("boundary"))
                .map(|b| b.as_bytes().to_vec());
            if let Some(boundary) = boundary {
                if skip_past_boundary(&mut stream, &boundary) {
                    let inner = Level {
                        kind,
                        boundary: Some(boundary),
                    };
                    open.push((std::mem::replace(&mut state, inner), false));
                    deepest = deepest.max(open.len());
                    if deepest > limit {
                        return deepest;
                    }
                    stream.skip_crlf();
                    continue;
                }
            }
        }
        let encoding = match headers.header_value(&HeaderName::ContentTransferEncoding) {
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
                Encoding::QuotedPrintable
            }
            _ => Encoding::None,
        };
        if kind == Kind::Message && encoding == Encoding::None {
            // The nested message's header follows at once; it ends where its parent does.
            let inner = Level {
                kind: Kind::Message,
                boundary: state.boundary.take(),
            };
            open.push((std::mem::replace(&mut state, inner), true));
            deepest = deepest.max(open.len());
            if deepest > limit {
                return deepest;
            }
            continue;
        }
        // A leaf: every decoder of mail-parser stops at the first `--boundary` (or, with no
        // boundary, at the end), so a search finds where it ends; only an encoded nested
        // message is decoded, to be measured in turn.
        let boundary = state.boundary.clone().unwrap_or_default();
        let found = if kind == Kind::Message {
            let (end, bytes) = match encoding {
                Encoding::Base64 => stream.decode_base64_mime(&boundary),
                _ => stream.decode_quoted_printable_mime(&boundary),
            };
            if end != usize::MAX && encoded_left > 0 {
                let room = limit.saturating_sub(open.len() + 1);
                let nested = depth(parser, bytes.as_ref(), room, encoded_left - 1);
                deepest = deepest.max(open.len() + 1 + nested);
                if deepest > limit {
                    return deepest;
                }
            }
            end != usize::MAX || skip_past_boundary(&mut stream, &boundary)
        } else {
            skip_past_boundary(&mut stream, &boundary)
        };
        if !found {
            // No boundary after it (or none to look for): the part runs to the end.
            stream.seek_end();
            state.boundary = None;
        }
        if state.boundary.is_some() {
            loop {
                if state.kind == Kind::Message {
                    // A nested message ends with its part: back to its parent.
                    match open.pop() {
                        Some((mut parent, true)) => {
                            parent.boundary = state.boundary.take();
                            state = parent;
                        }
                        _ => break 'outer,
                    }
                }
                if !stream.is_multipart_end() {
                    // Another part of the same multipart follows.
                    break;
                }
                // `--boundary--`: the multipart is closed; its parent's next boundary next.
                if let Some((parent, _)) = open.pop() {
                    state = parent;
                    if let Some(b) = state.boundary.clone() {
                        if skip_past_boundary(&mut stream, &b) {
                            continue;
                        }
                    }
                }
                break 'outer;
            }
        } else if stream.offset() >= raw.len() {
            break;
        }
    }
    deepest
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Kind {
    Multipart {
        digest: bool,
    },
    /// A message (the top level is one).
    #[default]
    Message,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    None,
    Base64,
    QuotedPrintable,
}

#[derive(Debug, Default)]
struct Level {
    kind: Kind,
    /// The boundary that ends the parts read at this level.
    boundary: Option<Vec<u8>>,
}

/// Moves `stream` past the first `--boundary` from where it is, as mail-parser's
/// searches do (anywhere, not only at the start of a line); false (the stream unmoved)
/// when there is none or the boundary is empty.
fn skip_past_boundary(stream: &mut MessageStream<'_>, boundary: &[u8]) -> bool {
    if boundary.is_empty() {
        return false;
    }
    let start = stream.offset();
    let rest = stream.bytes(start..start + stream.remaining());
    let mut pattern = Vec::with_capacity(boundary.len() + 2);
    pattern.extend_from_slice(b"--");
    pattern.extend_from_slice(boundary);
    match memchr::memmem::find(rest, &pattern) {
        Some(i) => {
            stream.skip_bytes(i + pattern.len());
            true
        }
        None => false,
    }
}

/// The top-level header fields of `raw` parsed with `parser`, and where its body starts:
/// all that is read of an opaque message.
pub fn top_level<'x>(
    parser: &MessageParser,
    raw: &'x [u8],
) -> (Vec<mail_parser::Header<'x>>, usize) {
    let mut stream = MessageStream::new(raw);
    let mut headers = Vec::new();
    stream.parse_headers(parser, &mut headers);
    (headers, stream.offset())
}

/// The body of an opaque message as text.
pub fn opaque_body(raw: &[u8], body_start: usize) -> Cow<'_, str> {
    super::lossy_utf8(raw.get(body_start..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::fixtures::{deep_multipart, deep_rfc822, on_small_stack};

    fn measured(raw: &[u8]) -> usize {
        depth(
            &MessageParser::default(),
            raw,
            usize::MAX - 1,
            ENCODED_LEVELS,
        )
    }

    #[test]
    fn counts_multiparts_and_nested_messages() {
        assert_eq!(measured(b"Subject: x\r\n\r\nbody\r\n"), 0);
        for n in [1, 2, 7, MAX_DEPTH] {
            assert_eq!(measured(&deep_rfc822(n)), n, "rfc822 {n}");
            assert_eq!(measured(&deep_multipart(n)), n, "multipart {n}");
        }
        // Side by side is not deeper: three attached messages in one multipart.
        let mut m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..3 {
            m.extend_from_slice(
                b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ntext\r\n",
            );
        }
        m.extend_from_slice(b"--b--\r\n");
        assert_eq!(measured(&m), 2);
        assert!(!exceeds(&MessageParser::default(), &m));
    }

    #[test]
    fn sees_into_encoded_nested_messages() {
        use base64::Engine as _;
        let inner = base64::engine::general_purpose::STANDARD.encode(deep_rfc822(60));
        let m = format!(
            "Subject: x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{inner}\r\n"
        );
        assert!(measured(m.as_bytes()) > MAX_DEPTH);
        assert!(exceeds(&MessageParser::default(), m.as_bytes()));
    }

    #[test]
    fn stops_early_on_hostile_depth_without_overflowing() {
        let raw = deep_rfc822(30_000);
        let multi = deep_multipart(5_000);
        let (a, b) = on_small_stack(move || {
            let p = MessageParser::default();
            (exceeds(&p, &raw), exceeds(&p, &multi))
        });
        assert!(a && b);
    }

    /// The depth of mail-parser's tree (recursively: test inputs are shallow).
    fn tree_depth(msg: &mail_parser::Message<'_>, part: usize) -> usize {
        use mail_parser::PartType;
        match msg.parts.get(part).map(|p| &p.body) {
            Some(PartType::Multipart(children)) => {
                1 + children
                    .iter()
                    .filter(|&&c| c as usize != part)
                    .map(|&c| tree_depth(msg, c as usize))
                    .max()
                    .unwrap_or(0)
            }
            Some(PartType::Message(m)) => 1 + tree_depth(m, 0),
            _ => 0,
        }
    }

    #[test]
    fn never_below_the_depth_mail_parser_builds() {
        use base64::Engine as _;
        let b64 = |m: &[u8]| base64::engine::general_purpose::STANDARD.encode(m);
        let mut samples: Vec<Vec<u8>> = vec![
            deep_rfc822(5),
            deep_multipart(5),
            // A boundary found mid-line, an unclosed multipart, a digest's untyped parts.
            b"Content-Type: multipart/digest; boundary=d\r\n\r\nx--d\r\n\r\nSubject: a\r\n\r\none\r\n--d\r\nSubject: b\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\ntwo\r\n".to_vec(),
            // Nested messages inside multiparts, closed and not.
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nin\r\n--c--\r\n--b\r\nContent-Type: text/plain\r\n\r\nafter\r\n--b--\r\n".to_vec(),
            format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
                b64(&deep_multipart(4))
            )
            .into_bytes(),
        ];
        // Every cut of them, too: unclosed levels are where parsers differ.
        for s in samples.clone() {
            for cut in (0..s.len()).step_by(7) {
                samples.push(s[..cut].to_vec());
            }
        }
        for s in &samples {
            let Some(msg) = MessageParser::default().parse(s) else {
                continue;
            };
            let (tree, measured) = (tree_depth(&msg, 0), measured(s));
            assert!(
                measured >= tree,
                "{tree} > {measured}: {}",
                String::from_utf8_lossy(s)
            );
        }
        let top = top_level(&MessageParser::default(), &samples[2]);
        assert_eq!(top.1, 46);
        assert_eq!(opaque_body(&samples[2], top.1).lines().next(), Some("x--d"));
    }
}
