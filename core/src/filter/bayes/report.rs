//! What a spam report teaches: the messages a user sent to the report address. A report
//! made with a mail client's "forward as attachment" carries each spam whole as a
//! `message/rfc822` part: those are learned as they are. A report forwarded inline has
//! only the spam's text in its body: that body is learned, under the report's Subject
//! without its `Fwd:`, never with the reporter's own headers (their address would become
//! a spam token).

use mail_parser::{MessageParser, PartType};

use crate::mime::depth;

/// At most this many attached messages are learned from one report.
pub const MAX_REPORTED: usize = 20;

/// The messages of a report, each ready for [`super::learnable`].
pub fn reported_messages(raw: &[u8]) -> Vec<Vec<u8>> {
    let parser = MessageParser::new();
    if depth::exceeds(&parser, raw) {
        // Opaque (see `mime::depth`): its body as forwarded text.
        let (_, body_start) = depth::top_level(&parser, raw);
        return vec![forwarded(None, raw.get(body_start..).unwrap_or_default())];
    }
    let Some(message) = parser.parse(raw) else {
        return vec![forwarded(None, raw)];
    };
    let attached: Vec<Vec<u8>> = message
        .parts
        .iter()
        .filter_map(|part| match &part.body {
            PartType::Message(nested) => Some(nested.raw_message().to_vec()),
            _ => None,
        })
        .take(MAX_REPORTED)
        .collect();
    if !attached.is_empty() {
        return attached;
    }
    let text: String = (0..message.text_body.len())
        .filter_map(|i| message.body_text(i))
        .collect::<Vec<_>>()
        .join("\r\n");
    vec![forwarded(message.subject(), text.as_bytes())]
}

/// An inline forward as a message of its own: the Subject without its forwarding prefix,
/// and the forwarded text.
fn forwarded(subject: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    if let Some(subject) = subject.map(strip_forward_prefix).filter(|s| !s.is_empty()) {
        out.extend_from_slice(b"Subject: ");
        out.extend_from_slice(subject.replace(['\r', '\n'], " ").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// "Fwd: Fw: [SPAM] Cheap pills" without the "Fwd:" and "Fw:" prefixes.
fn strip_forward_prefix(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.get(..4).map(str::to_ascii_lowercase);
        let skip = match lower.as_deref() {
            Some("fwd:") => 4,
            Some(l) if l.starts_with("fw:") => 3,
            _ => return s,
        };
        s = s.get(skip..).unwrap_or_default().trim_start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAM: &str = "From: Winner <win@prizes.example>\r\nSubject: You won\r\n\
                        Message-ID: <1@prizes.example>\r\n\r\nClaim your lottery prize now!\r\n";

    fn report_with(parts: &[&str]) -> Vec<u8> {
        let mut raw = String::from(
            "From: Alice <alice@example.test>\r\nTo: spam@example.test\r\nSubject: spam\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThis is spam.\r\n",
        );
        for part in parts {
            raw.push_str("--b\r\nContent-Type: message/rfc822\r\n\r\n");
            raw.push_str(part);
        }
        raw.push_str("--b--\r\n");
        raw.into_bytes()
    }

    #[test]
    fn attached_messages_are_learned_whole_and_alone() {
        let other = SPAM.replace("<1@", "<2@");
        let found = reported_messages(&report_with(&[SPAM, &other]));
        assert_eq!(found.len(), 2);
        let first = String::from_utf8(found[0].clone()).unwrap();
        assert!(first.starts_with("From: Winner"), "{first}");
        assert!(first.contains("Claim your lottery prize"));
        assert!(!first.contains("alice@example.test"));
        assert_eq!(super::super::learnable(&found[1]).0, {
            let id = blake3::hash(b"<2@prizes.example>");
            *id.as_bytes()
        });
    }

    #[test]
    fn an_inline_forward_is_learned_without_the_reporters_headers() {
        let raw = b"From: Alice <alice@example.test>\r\nTo: spam@example.test\r\n\
                    Subject: Fwd: FW: Cheap pills\r\n\r\n---- Forwarded ----\r\nBuy cheap pills here\r\n";
        let found = reported_messages(raw);
        assert_eq!(found.len(), 1);
        let text = String::from_utf8(found[0].clone()).unwrap();
        assert!(text.contains("Subject: Cheap pills\r\n"), "{text}");
        assert!(text.contains("Buy cheap pills here"));
        assert!(!text.contains("alice"), "{text}");
    }

    #[test]
    fn a_report_is_bounded_in_what_it_teaches() {
        let many: Vec<String> = (0..30)
            .map(|i| SPAM.replace("<1@", &format!("<{i}x@")))
            .collect();
        let parts: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(reported_messages(&report_with(&parts)).len(), MAX_REPORTED);
        assert_eq!(strip_forward_prefix("Fwd:"), "");
        assert_eq!(strip_forward_prefix("Fw: é"), "é");
        assert_eq!(strip_forward_prefix("Fwé"), "Fwé");
    }
}
