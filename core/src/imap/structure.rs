//! ENVELOPE, BODYSTRUCTURE and BODY[section] of a stored message, from the MIME tree that
//! `mail-parser` gives (RFC 9051 sections 7.5.2 and 6.4.5).
//!
//! A message nested deeper than [`depth::MAX_DEPTH`] levels is not parsed into a tree
//! (building, walking or dropping one would overflow the stack): it is shown as its
//! top-level headers and one TEXT/PLAIN part, its raw body. The walk of BODYSTRUCTURE is
//! bounded too, and that of sections is a loop.

use std::borrow::Cow;

use mail_parser::{
    Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};

use super::response::{nstring, string};
use crate::mime::depth;
use crate::store::summary::header_block;

/// The MIME tree of a stored message (an opaque one beyond [`depth::MAX_DEPTH`]).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    let parser = parser();
    if depth::exceeds(parser, raw) {
        return opaque(parser, raw);
    }
    parser.parse(raw)
}

/// The parser IMAP uses: it decodes the fields ENVELOPE, BODYSTRUCTURE and SEARCH read,
/// as `MessageParser::default()` does, and keeps every other field raw (decoding
/// `Received:` alone took most of the time of a FETCH ENVELOPE).
fn parser() -> &'static MessageParser {
    static PARSER: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    PARSER.get_or_init(|| {
        MessageParser::new()
            .with_mime_headers()
            .header_text(HeaderName::Subject)
            .header_text(HeaderName::Comments)
            .header_address(HeaderName::From)
            .header_address(HeaderName::Sender)
            .header_address(HeaderName::ReplyTo)
            .header_address(HeaderName::To)
            .header_address(HeaderName::Cc)
            .header_address(HeaderName::Bcc)
            .header_date(HeaderName::Date)
            .header_id(HeaderName::MessageId)
            .header_id(HeaderName::InReplyTo)
            .header_id(HeaderName::References)
            .header_comma_separated(HeaderName::ContentLanguage)
            .default_header_raw()
    })
}

/// A message of its top-level headers and one text part, its raw body.
fn opaque<'x>(parser: &MessageParser, raw: &'x [u8]) -> Option<Message<'x>> {
    let (mut headers, body_start) = depth::top_level(parser, raw);
    if headers.is_empty() {
        return None;
    }
    // The body is shown as it is: the message's own type and encoding do not describe it.
    headers.retain(|h| {
        !matches!(
            h.name,
            HeaderName::ContentType | HeaderName::ContentTransferEncoding
        )
    });
    Some(Message {
        parts: vec![MessagePart {
            headers,
            is_encoding_problem: true,
            body: PartType::Text(depth::opaque_body(raw, body_start)),
            encoding: Encoding::None,
            offset_header: 0,
            offset_body: u32::try_from(body_start).unwrap_or(u32::MAX),
            offset_end: u32::try_from(raw.len()).unwrap_or(u32::MAX),
        }],
        text_body: vec![0],
        raw_message: Cow::Borrowed(raw),
        ..Message::default()
    })
}

/// Where `inner` starts in `outer`, if it is a part of it (a nested message mail-parser
/// decoded from base64 is a buffer of its own).
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start <= outer.len()).then_some(start)
}

/// The raw (still encoded, unfolded) value of a header of the root part.
fn raw_header<'a>(msg: &'a Message<'_>, name: &str) -> Option<Cow<'a, [u8]>> {
    let raw = msg.raw_message();
    let h = msg
        .root_part()
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let value = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    // Most values are valid UTF-8 on one line: borrowed, trimmed (as below).
    if let Ok(text) = std::str::from_utf8(value) {
        let line = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if !line.contains('\n') {
            return Some(Cow::Borrowed(line.trim().as_bytes()));
        }
    }
    let text = String::from_utf8_lossy(value);
    let unfolded: String = text.replace("\r\n", "").replace('\n', "");
    Some(Cow::Owned(unfolded.trim().as_bytes().to_vec()))
}

/// An address list as ENVELOPE writes it: each address `(name adl mailbox host)`; a group
/// (RFC 5322 `name: a, b;`) between `(NIL NIL "name" NIL)` and `(NIL NIL NIL NIL)`, as
/// RFC 3501 7.4.2 says.
fn addresses(out: &mut Vec<u8>, value: Option<&Address<'_>>) {
    let mut items: Vec<u8> = Vec::new();
    match value {
        Some(Address::List(list)) => {
            for a in list {
                address(&mut items, a.name.as_deref(), a.address.as_deref());
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                // mail-parser puts addresses outside any group in a group without a name.
                if let Some(name) = g.name.as_deref() {
                    items.extend_from_slice(b"(NIL NIL ");
                    nstring(&mut items, Some(name.as_bytes()));
                    items.extend_from_slice(b" NIL)");
                }
                for a in &g.addresses {
                    address(&mut items, a.name.as_deref(), a.address.as_deref());
                }
                if g.name.is_some() {
                    items.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    out.extend_from_slice(&items);
    out.push(b')');
}

fn address(out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>) {
    let (mailbox, host) = match address.and_then(|a| a.rsplit_once('@')) {
        Some((m, h)) => (Some(m), Some(h)),
        None => (address, None),
    };
    out.push(b'(');
    nstring(out, name.map(str::as_bytes));
    out.extend_from_slice(b" NIL ");
    nstring(out, mailbox.map(str::as_bytes));
    out.push(b' ');
    nstring(out, host.map(str::as_bytes));
    out.push(b')');
}

/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
pub fn envelope(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.push(b'(');
    nstring(out, raw_header(msg, "Date").as_deref());
    out.push(b' ');
    nstring(out, raw_header(msg, "Subject").as_deref());
    let from = msg.from();
    for value in [
        from,
        msg.sender().or(from),
        msg.reply_to().or(from),
        msg.to(),
        msg.cc(),
        msg.bcc(),
    ] {
        out.push(b' ');
        addresses(out, value);
    }
    out.push(b' ');
    nstring(out, raw_header(msg, "In-Reply-To").as_deref());
    out.push(b' ');
    nstring(out, raw_header(msg, "Message-ID").as_deref());
    out.push(b')');
}

fn upper(s: &str) -> Vec<u8> {
    s.to_ascii_uppercase().into_bytes()
}

fn params(out: &mut Vec<u8>, attrs: Option<&Vec<mail_parser::Attribute<'_>>>) {
    match attrs {
        Some(list) if !list.is_empty() => {
            out.push(b'(');
            for (i, a) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, &upper(&a.name));
                out.push(b' ');
                string(out, a.value.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// Disposition, language and location: the extension data shared by all part kinds.
fn extension_tail(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    out.push(b' ');
    match part.content_disposition() {
        Some(d) => {
            out.push(b'(');
            string(out, &upper(&d.c_type));
            out.push(b' ');
            params(out, d.attributes.as_ref());
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.content_language() {
        HeaderValue::Text(t) => {
            out.push(b'(');
            string(out, t.as_bytes());
            out.push(b')');
        }
        HeaderValue::TextList(list) if !list.is_empty() => {
            out.push(b'(');
            for (i, t) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, t.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(out, part.content_location().map(str::as_bytes));
}

/// BODYSTRUCTURE (`extended`) or BODY of a message.
pub fn bodystructure(out: &mut Vec<u8>, msg: &Message<'_>, extended: bool) {
    part_structure(out, msg, 0, extended, 0);
}

/// Levels of BODYSTRUCTURE written before a part is shown as an empty text part: more
/// than any parsed message has (see the module doc), a bound on the recursion whatever
/// the tree.
const STRUCTURE_LEVELS: usize = 2 * depth::MAX_DEPTH + 8;

fn part_structure(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    index: usize,
    extended: bool,
    level: usize,
) {
    let Some(part) = msg.parts.get(index) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    if level > STRUCTURE_LEVELS {
        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        return;
    }
    let raw = msg.raw_message();
    let ct = part.content_type();
    out.push(b'(');
    if let PartType::Multipart(children) = &part.body {
        for &child in children {
            part_structure(out, msg, child as usize, extended, level + 1);
        }
        if children.is_empty() {
            // An empty multipart: RFC 9051 needs at least one part.
            out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        }
        out.push(b' ');
        let subtype = ct.and_then(|c| c.c_subtype.as_deref()).unwrap_or("MIXED");
        string(out, &upper(subtype));
        if extended {
            out.push(b' ');
            params(out, ct.and_then(|c| c.attributes.as_ref()));
            extension_tail(out, part);
        }
        out.push(b')');
        return;
    }
    let (ty, subtype) = match ct {
        Some(c) => (
            c.c_type.to_string(),
            c.c_subtype
                .as_deref()
                .unwrap_or(if c.c_type.eq_ignore_ascii_case("text") {
                    "plain"
                } else {
                    "octet-stream"
                })
                .to_string(),
        ),
        None => ("text".into(), "plain".into()),
    };
    string(out, &upper(&ty));
    out.push(b' ');
    string(out, &upper(&subtype));
    out.push(b' ');
    match ct.and_then(|c| c.attributes.as_ref()) {
        Some(a) if !a.is_empty() => params(out, Some(a)),
        _ if ct.is_none() => out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")"),
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(
        out,
        part.content_id()
            .map(|id| format!("<{id}>"))
            .as_deref()
            .map(str::as_bytes),
    );
    out.push(b' ');
    nstring(out, part.content_description().map(str::as_bytes));
    out.push(b' ');
    string(
        out,
        &upper(part.content_transfer_encoding().unwrap_or("7bit")),
    );
    let body = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    // Text lines, counting a last line without its line ending.
    let lines = memchr::memchr_iter(b'\n', body).count()
        + usize::from(!body.is_empty() && !body.ends_with(b"\n"));
    if let PartType::Message(nested) = &part.body {
        out.push(b' ');
        envelope(out, nested);
        out.push(b' ');
        part_structure(out, nested, 0, extended, level + 1);
        out.extend_from_slice(format!(" {lines}").as_bytes());
    } else if ty.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {lines}").as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL");
        extension_tail(out, part);
    }
    out.push(b')');
}

/// What part of a section is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Full,
    Header,
    HeaderFields { names: Vec<String>, not: bool },
    Text,
    Mime,
}

/// The buffer a (nested) message's part offsets index. mail-parser gives the parts of a
/// nested message offsets into the buffer it parsed: the outer one when the nested
/// message is stored as it is (its raw bytes lie inside the outer buffer), its own decoded
/// copy when it was transfer-encoded.
#[derive(Clone, Copy)]
enum Source<'m> {
    /// The stored message itself.
    Raw,
    /// A decoded copy, owned by the parsed message.
    Decoded(&'m [u8]),
}

impl<'m> Source<'m> {
    /// The source of `nested`'s offsets, given that of the message containing it.
    fn of(self, raw: &[u8], nested: &'m Message<'_>) -> Source<'m> {
        let within = |outer: &[u8]| offset_in(outer, nested.raw_message()).is_some();
        match self {
            Source::Raw if within(raw) => Source::Raw,
            Source::Decoded(buf) if within(buf) => Source::Decoded(buf),
            _ => Source::Decoded(nested.raw_message()),
        }
    }

    fn slice<'a>(self, raw: &'a [u8], a: usize, b: usize) -> Option<Cow<'a, [u8]>> {
        match self {
            Source::Raw => raw.get(a..b.min(raw.len())).map(Cow::Borrowed),
            Source::Decoded(buf) => buf.get(a..b.min(buf.len())).map(|s| Cow::Owned(s.to_vec())),
        }
    }
}

/// The bytes of `BODY[path.text]`; None when the part does not exist.
pub fn section<'a>(
    raw: &'a [u8],
    msg: &Message<'_>,
    path: &[u32],
    text: &SectionText,
) -> Option<Cow<'a, [u8]>> {
    // Walk to the part, entering nested messages (each with the buffer its offsets index).
    let mut current: &Message<'_> = msg;
    let mut source = Source::Raw;
    let mut part = current.parts.first()?;
    for (depth, &n) in path.iter().enumerate() {
        if let PartType::Message(nested) = &part.body {
            if depth > 0 {
                source = source.of(raw, nested);
                current = nested;
                part = current.parts.first()?;
            }
        }
        match &part.body {
            PartType::Multipart(children) => {
                let child = *children.get(n.checked_sub(1)? as usize)?;
                part = current.parts.get(child as usize)?;
            }
            // A non-multipart message has one part, numbered 1.
            _ if n == 1 && depth == 0 => {}
            PartType::Message(nested) if n == 1 => {
                source = source.of(raw, nested);
                current = nested;
                part = current.parts.first()?;
            }
            _ => return None,
        }
    }
    let (header_start, body_start, end) = (
        part.offset_header as usize,
        part.offset_body as usize,
        part.offset_end as usize,
    );
    // HEADER and TEXT of a message/rfc822 part name the nested message's header and body.
    let (inner, h, b, e) = match (&part.body, path.is_empty(), text) {
        (
            PartType::Message(nested),
            false,
            SectionText::Header | SectionText::Text | SectionText::HeaderFields { .. },
        ) => {
            let root = nested.parts.first()?;
            (
                source.of(raw, nested),
                root.offset_header as usize,
                root.offset_body as usize,
                root.offset_end as usize,
            )
        }
        _ => (source, header_start, body_start, end),
    };
    match text {
        SectionText::Full if path.is_empty() => Some(Cow::Borrowed(raw)),
        SectionText::Full => source.slice(raw, body_start, end),
        SectionText::Mime => source.slice(raw, header_start, body_start),
        SectionText::Header if path.is_empty() => source.slice(raw, 0, body_start),
        SectionText::Header => inner.slice(raw, h, b),
        SectionText::Text => inner.slice(raw, b, e),
        SectionText::HeaderFields { names, not } => {
            let header = if path.is_empty() {
                source.slice(raw, 0, b)?
            } else {
                inner.slice(raw, h, b)?
            };
            Some(Cow::Owned(filter_headers(&header, names, *not)))
        }
    }
}

/// `BINARY[path]`: the part's content with its Content-Transfer-Encoding undone.
pub fn binary_section(raw: &[u8], msg: &Message<'_>, path: &[u32]) -> Option<Vec<u8>> {
    let content = section(raw, msg, path, &SectionText::Full)?;
    if path.is_empty() {
        return Some(content.into_owned());
    }
    let mime = section(raw, msg, path, &SectionText::Mime)?;
    let encoding = crate::mime::header_value(&mime, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match encoding.trim() {
        "base64" => {
            use base64::Engine as _;
            let clean: Vec<u8> = content
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(clean.trim_ascii_end().strip_suffix(b"=").unwrap_or(&clean))
                })
                .ok()
        }
        "quoted-printable" => Some(decode_quoted_printable(&content)),
        _ => Some(content.into_owned()),
    }
}

fn decode_quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < text.len() {
        match text[i] {
            b'=' if text.get(i + 1) == Some(&b'\r') && text.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if text.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => match (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// BODY[HEADER] and BODY[HEADER.FIELDS[.NOT] (...)] of a whole message without parsing
/// it: from its header block, where it has one ([`header_block`]: where the MIME parser
/// ends the header too, so the answer is [`section`]'s). `None`: another section, or no
/// such block (parse the message).
pub fn top_header_section<'a>(raw: &'a [u8], text: &SectionText) -> Option<Cow<'a, [u8]>> {
    let block = header_block(raw)?;
    match text {
        SectionText::Header => Some(Cow::Borrowed(block)),
        SectionText::HeaderFields { names, not } => {
            Some(Cow::Owned(filter_headers(block, names, *not)))
        }
        _ => None,
    }
}

/// The fields ENVELOPE is made of (RFC 9051 7.5.2).
const ENVELOPE_FIELDS: [&str; 10] = [
    "Date",
    "Subject",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "In-Reply-To",
    "Message-ID",
];

/// Only the fields of `header` (a header block) that ENVELOPE shows, in their order, and
/// the blank line: parsing that gives the same ENVELOPE as parsing the whole message, in
/// a fraction of the time (a header is mostly `Received:` and other fields it ignores).
pub fn envelope_header(header: &[u8]) -> Vec<u8> {
    filter_headers(header, &ENVELOPE_FIELDS, false)
}

/// The header fields named (or, with `not`, all others), and the blank line.
fn filter_headers<S: AsRef<[u8]>>(header: &[u8], names: &[S], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    let mut start = 0;
    while start < header.len() {
        let end = memchr::memchr(b'\n', &header[start..]).map_or(header.len(), |i| start + i + 1);
        let line = &header[start..end];
        start = end;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = memchr::memchr(b':', line).map_or(line, |i| &line[..i]);
            let name = name.trim_ascii();
            let named = names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(name));
            keep = named != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\nAAAA\r\n--b--\r\n";

    #[test]
    fn envelope_and_structure() {
        let msg = parse(MULTI).unwrap();
        let mut out = Vec::new();
        envelope(&mut out, &msg);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(NIL \"hi\" ((\"Alice\" NIL \"alice\" \"example.test\")) ((\"Alice\" NIL \"alice\" \"example.test\")) ((\"Alice\" NIL \"alice\" \"example.test\")) ((NIL NIL \"bob\" \"example.test\")) NIL NIL NIL \"<1@x>\")"
        );
        let mut out = Vec::new();
        bodystructure(&mut out, &msg, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 2)(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 4 ) \"MIXED\")".replace(" 4 )", " 4)")
        );
    }

    #[test]
    fn envelope_addresses_keep_their_groups() {
        let raw = b"From: a@example.test\r\nTo: friends: x@one.example, Y <y@two.example>;, solo@three.example\r\nCc: undisclosed-recipients:;\r\nSubject: g\r\n\r\nbody\r\n";
        let msg = parse(raw).unwrap();
        let mut out = Vec::new();
        envelope(&mut out, &msg);
        let text = String::from_utf8(out).unwrap();
        // RFC 3501 7.4.2: a group starts with (NIL NIL "name" NIL), ends with
        // (NIL NIL NIL NIL); addresses outside a group stand as they are.
        assert!(
            text.contains(
                "((NIL NIL \"friends\" NIL)(NIL NIL \"x\" \"one.example\")(\"Y\" NIL \"y\" \"two.example\")(NIL NIL NIL NIL)(NIL NIL \"solo\" \"three.example\"))"
            ),
            "{text}"
        );
        assert!(
            text.contains("((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"),
            "{text}"
        );
    }

    /// A message attached to a message, its own body multipart (RFC 3501 6.4.5's example
    /// shape): 1 text, 2 message/rfc822 with 2.1 text and 2.2 html.
    const NESTED: &[u8] = b"Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--i--\r\n\r\n--o--\r\n";

    #[test]
    fn sections_of_nested_messages() {
        let msg = parse(NESTED).unwrap();
        let get = |path: &[u32], text: SectionText| {
            section(NESTED, &msg, path, &text).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        assert_eq!(get(&[1], SectionText::Full).as_deref(), Some("first"));
        assert_eq!(
            get(&[1], SectionText::Mime).as_deref(),
            Some("Content-Type: text/plain\r\n\r\n")
        );
        assert_eq!(
            get(&[2], SectionText::Mime).as_deref(),
            Some("Content-Type: message/rfc822\r\n\r\n")
        );
        let header = get(&[2], SectionText::Header);
        assert!(
            header
                .as_deref()
                .is_some_and(|h| h.starts_with("Subject: inner\r\nMIME-Version: 1.0\r\n")),
            "{header:?}"
        );
        assert!(get(&[2], SectionText::Text).unwrap().starts_with("--i\r\n"));
        assert_eq!(
            get(&[2, 1], SectionText::Full).as_deref(),
            Some("inner text")
        );
        assert_eq!(
            get(&[2, 2], SectionText::Full).as_deref(),
            Some("<p>inner</p>")
        );
        assert_eq!(
            get(&[2, 2], SectionText::Mime).as_deref(),
            Some("Content-Type: text/html\r\n\r\n")
        );
        assert_eq!(get(&[2, 3], SectionText::Full), None);
        assert_eq!(get(&[3], SectionText::Full), None);
    }

    #[test]
    fn sections_of_an_encoded_nested_message() {
        // A message/rfc822 part sent in base64: its sections come from the decoded copy.
        let raw = b"Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogZW5jDQoNCmhpZGRlbg0K\r\n--o--\r\n";
        let msg = parse(raw).unwrap();
        let get = |path: &[u32], text: SectionText| {
            section(raw, &msg, path, &text).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        assert_eq!(
            get(&[2], SectionText::Header).as_deref(),
            Some("Subject: enc\r\n\r\n")
        );
        assert_eq!(get(&[2], SectionText::Text).as_deref(), Some("hidden\r\n"));
    }

    #[test]
    fn binary_sections_undo_the_transfer_encoding() {
        let msg = parse(MULTI).unwrap();
        assert_eq!(binary_section(MULTI, &msg, &[2]).unwrap(), vec![0u8, 0, 0]);
        assert_eq!(
            binary_section(MULTI, &msg, &[1]).unwrap(),
            b"hello\r\nworld"
        );
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nnext =3D"),
            "café next =".as_bytes()
        );
    }

    #[test]
    fn deep_nesting_gets_an_answer() {
        use crate::mime::fixtures::{deep_multipart, deep_rfc822, on_small_stack};
        for (name, raw) in [
            ("rfc822", deep_rfc822(30_000)),
            ("multipart", deep_multipart(5_000)),
        ] {
            let (structure, header) = on_small_stack(move || {
                let msg = parse(&raw).expect("a message");
                let mut out = Vec::new();
                bodystructure(&mut out, &msg, true);
                let header = section(&raw, &msg, &[], &SectionText::Header)
                    .map(|h| h.into_owned())
                    .unwrap_or_default();
                (String::from_utf8_lossy(&out).into_owned(), header)
            });
            assert!(
                structure.starts_with('(') && structure.ends_with(')'),
                "{name}"
            );
            assert!(header.starts_with(b"From: a@example.org\r\n"), "{name}");
        }
    }

    #[test]
    fn sections() {
        let msg = parse(MULTI).unwrap();
        let get =
            |path: &[u32], t: SectionText| section(MULTI, &msg, path, &t).map(|c| c.into_owned());
        assert_eq!(get(&[], SectionText::Full).unwrap(), MULTI);
        assert_eq!(get(&[1], SectionText::Full).unwrap(), b"hello\r\nworld");
        assert!(get(&[2], SectionText::Mime)
            .unwrap()
            .starts_with(b"Content-Type: application/pdf"));
        assert_eq!(get(&[3], SectionText::Full), None);
        let h = get(
            &[],
            SectionText::HeaderFields {
                names: vec!["subject".into(), "TO".into()],
                not: false,
            },
        )
        .unwrap();
        assert_eq!(h, b"To: bob@example.test\r\nSubject: hi\r\n\r\n");
        assert!(get(&[], SectionText::Header)
            .unwrap()
            .ends_with(b"multipart/mixed; boundary=\"b\"\r\n\r\n"));
        assert!(get(&[], SectionText::Text)
            .unwrap()
            .starts_with(b"preamble"));
    }

    #[test]
    fn the_imap_parser_answers_as_the_default_one() {
        let default = MessageParser::default();
        for raw in crate::mime::fixtures::sample_messages() {
            let (Some(ours), Some(theirs)) = (parse(&raw), default.parse(&raw[..])) else {
                assert!(depth::exceeds(&default, &raw) || default.parse(&raw[..]).is_none());
                continue;
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            envelope(&mut a, &ours);
            envelope(&mut b, &theirs);
            bodystructure(&mut a, &ours, true);
            bodystructure(&mut b, &theirs, true);
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            assert_eq!(
                ours.date().map(|d| d.to_rfc3339()),
                theirs.date().map(|d| d.to_rfc3339())
            );
        }
    }

    #[test]
    fn the_envelope_of_its_fields_alone_is_the_whole_message_s() {
        let mut compared = 0;
        for raw in crate::mime::fixtures::sample_messages() {
            let Some(whole) = parse(&raw) else {
                continue;
            };
            let end = memchr::memmem::find(&raw, b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
            let fields = envelope_header(&raw[..end]);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            envelope(&mut a, &whole);
            match parse(&fields) {
                Some(m) => envelope(&mut b, &m),
                None => b.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
            }
            assert_eq!(
                String::from_utf8_lossy(&b),
                String::from_utf8_lossy(&a),
                "{}",
                String::from_utf8_lossy(&raw[..end])
            );
            compared += 1;
        }
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
        assert!(!corpus.exists() || compared > 3000, "{compared}");
    }

    #[test]
    fn header_values_unfold_and_trim_as_before() {
        let before = |value: &[u8]| {
            let text = String::from_utf8_lossy(value);
            let unfolded: String = text.replace("\r\n", "").replace('\n', "");
            unfolded.trim().as_bytes().to_vec()
        };
        for value in [
            &b" plain\r\n"[..],
            b" folded\r\n twice\r\n",
            b"\tlf only\n",
            b" cr\r\r\n",
            b" \xc2\xa0nbsp\xc2\xa0\r\n",
            b" bad \xff\r\n",
            b"none",
            b"",
        ] {
            let mut raw = b"Subject:".to_vec();
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n\r\n");
            let m = parse(&raw).unwrap();
            let h = &m.root_part().headers[0];
            let stored = &raw[h.offset_start as usize..h.offset_end as usize];
            assert_eq!(
                raw_header(&m, "Subject").as_deref(),
                Some(&before(stored)[..]),
                "{value:?}"
            );
        }
    }
}
