//! The attachment policy (issue #14): whether a message carries a program or a script,
//! named as one or disguised, and so should be held rather than delivered.
//!
//! Sans-IO: bytes of a message in, findings out; nothing here delivers, holds or logs.
//!
//! What is looked at: every MIME part of the message (nested `message/rfc822` included),
//! walked without recursion. A message nested deeper than [`depth::MAX_DEPTH`] is opaque,
//! as everywhere else: its top-level names are checked and its body is sniffed as one part.
//! A part's file names are every `filename` of its `Content-Disposition` and every `name`
//! of its `Content-Type`: mail-parser undoes RFC 2047 encoded words and RFC 2231
//! (`filename*=charset'lang'...` and names continued over `filename*0*=`, `filename*1*=`,
//! ...; see the tests). All of them are checked, not only the first: a client that prefers
//! `filename*` to `filename` shows the other one.
//!
//! The rules, in the order they are tried on a part (the first that matches names it):
//! 1. [`Rule::DoubleExtension`]: a blocked extension behind a document's
//!    (`holiday.jpg.pif`, `invoice.pdf      .exe`, `a.jpg...exe`);
//! 2. [`Rule::Extension`]: a blocked extension (`attachments.blocked_extensions`), in any
//!    case, trailing dots and spaces ignored as Windows ignores them;
//! 3. [`Rule::Executable`]: the content, transfer encoding undone, is a program whatever the
//!    name: PE (`MZ` and a `PE\0\0` header where the DOS header says), ELF, Mach-O (thin
//!    and fat, both byte orders); or a `#!` script under a document's name (`notes.txt`).
//!    A `#!` script named as a script, or with no name (a mail body that starts with
//!    `#!`), is not held: it does not run by a double click anywhere, and people send
//!    scripts to each other (the ham corpus has two, attached as `swasort` and `rotate`);
//! 4. [`Rule::InArchive`]: a ZIP archive (by its content, or named or typed as one), one
//!    level deep: rules 1 and 2 on the names of its entries (readable in an encrypted
//!    archive too), rule 3 on the first bytes of its unencrypted entries. Bounded: at most
//!    [`ZIP_ENTRIES_READ`] entries are read, [`SNIFF_BYTES`] of each (more only up to a PE
//!    header, [`PE_HEADER_REACH`] at most), entries that share their bytes are read once, so a
//!    zip bomb is never expanded. An archive that cannot be read is not held by this rule
//!    (no mail client could open it either); its own name is still checked by rules 1-2.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::{Cursor, Read};

use mail_parser::parsers::MessageStream;
use mail_parser::{
    Encoding, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, PartType,
};

use crate::config;
use crate::mime::depth;

/// Extensions of documents, pictures, media and archives: what a double extension shows
/// in front of the blocked one, and the names under which a `#!` script is disguised.
pub const DOCUMENT_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "pdf", "doc", "docx", "xls",
    "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "text", "csv", "log", "htm", "html",
    "xml", "eml", "zip", "rar", "7z", "gz", "tar", "mp3", "mp4", "m4a", "wav", "avi", "mov", "mpg",
    "mpeg", "wmv",
];

/// Bytes of a ZIP entry read to recognise a program.
pub const SNIFF_BYTES: usize = 4096;
/// How far into a ZIP entry a PE header is looked for (the DOS header says where it is;
/// real programs put it within the first kilobyte).
pub const PE_HEADER_REACH: usize = 64 * 1024;
/// Entries of one ZIP archive whose first bytes are read (their names are all checked).
pub const ZIP_ENTRIES_READ: usize = 64;
/// End-of-central-directory records an archive may contain and still be read (see
/// [`few_end_records`]).
const ZIP_END_RECORDS: usize = 16;
/// Raw bytes of a text part decoded again to sniff its content (mail-parser hands text
/// parts over converted to UTF-8, which mangles binary bytes).
const TEXT_PART_PREFIX: usize = 128 * 1024;
/// Findings listed for one message at most.
pub const MAX_FINDINGS: usize = 64;

/// The attachment policy as configured (`[attachments]`).
#[derive(Debug, Clone)]
pub struct AttachmentPolicy {
    pub enabled: bool,
    /// Lower case, without the dot.
    blocked: HashSet<String>,
    pub double_extensions: bool,
    pub content: bool,
    pub zip: bool,
}

impl AttachmentPolicy {
    /// The policy of a configuration section; extensions are taken in any case, with or
    /// without their dot, surrounding blanks ignored.
    pub fn new(config: &config::Attachments) -> AttachmentPolicy {
        AttachmentPolicy {
            enabled: config.enabled,
            blocked: config
                .blocked_extensions
                .iter()
                .map(|e| e.trim().trim_start_matches('.').to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            double_extensions: config.double_extensions,
            content: config.content,
            zip: config.zip,
        }
    }

    /// Whether `extension` (lower case, without the dot) is blocked.
    pub fn is_blocked(&self, extension: &str) -> bool {
        self.blocked.contains(extension)
    }
}

impl AttachmentPolicy {
    /// A policy that holds nothing.
    pub fn off() -> AttachmentPolicy {
        AttachmentPolicy::new(&config::Attachments {
            enabled: false,
            ..config::Attachments::default()
        })
    }
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        AttachmentPolicy::new(&config::Attachments::default())
    }
}

/// A part of a message that the policy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The part's number as IMAP counts them: `1` for a message of one part, `2` for the
    /// second part of a multipart, `2.1` for the first part of the message attached as 2.
    pub part: String,
    /// The part's file name, when it has one (the one the rule is about, if any).
    pub filename: Option<String>,
    pub rule: Rule,
}

/// Why a part is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The name ends with a blocked extension (lower case, without the dot).
    Extension(String),
    /// A document's extension (`shown`) in front of a blocked one (`hidden`).
    DoubleExtension { shown: String, hidden: String },
    /// The content is a program, whatever the name says.
    Executable(Executable),
    /// An entry of the ZIP archive (`entry`: its path in the archive) is held by `inner`.
    InArchive { entry: String, inner: Box<Rule> },
    /// MIME parts nested deeper than the walk goes (`mime::depth::MAX_DEPTH`): what is
    /// inside cannot be checked, and no real mail nests that deep, so it is held rather
    /// than let through unseen.
    TooDeep,
}

/// The kinds of programs recognised by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executable {
    /// A Windows program or library (`MZ`, then `PE\0\0`).
    Pe,
    /// A Linux or Unix program (`\x7fELF`).
    Elf,
    /// A macOS program (Mach-O, 32 or 64 bits, either byte order, or a fat binary).
    MachO,
    /// A `#!` script under the name of a document.
    Script,
}

impl fmt::Display for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Executable::Pe => "a Windows program (PE)",
            Executable::Elf => "a Linux program (ELF)",
            Executable::MachO => "a macOS program (Mach-O)",
            Executable::Script => "a script (#!)",
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Extension(ext) => write!(f, "a blocked file type (.{ext})"),
            Rule::DoubleExtension { hidden, .. } => {
                write!(f, "a double extension hiding a .{hidden} program")
            }
            Rule::Executable(Executable::Script) => {
                write!(f, "{} named as a document", Executable::Script)
            }
            Rule::Executable(kind) => write!(f, "{kind}, whatever its name"),
            Rule::InArchive { entry, inner } => write!(f, "contains {entry}, {inner}"),
            Rule::TooDeep => write!(
                f,
                "parts nested more than {} levels deep, which cannot be checked",
                depth::MAX_DEPTH
            ),
        }
    }
}

impl fmt::Display for Held {
    /// As a notice says it: `holiday.jpg.pif: a double extension hiding a .pif program`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filename {
            Some(name) => write!(f, "{name}: {}", self.rule),
            None => write!(f, "part {}: {}", self.part, self.rule),
        }
    }
}

/// The first part of `message` the policy holds, in the order of the message; `None`
/// when it holds none (or is disabled).
pub fn check(policy: &AttachmentPolicy, message: &[u8]) -> Option<Held> {
    scan(policy, message, 1).into_iter().next()
}

/// Every part of `message` the policy holds (one finding a part, [`MAX_FINDINGS`] at most).
pub fn findings(policy: &AttachmentPolicy, message: &[u8]) -> Vec<Held> {
    scan(policy, message, MAX_FINDINGS)
}

fn scan(policy: &AttachmentPolicy, raw: &[u8], limit: usize) -> Vec<Held> {
    let mut out = Vec::new();
    if !policy.enabled || limit == 0 {
        return out;
    }
    // Only the MIME headers are parsed into structure; the others are kept raw.
    let parser = MessageParser::new()
        .with_mime_headers()
        .default_header_raw();
    if depth::exceeds(&parser, raw) {
        // Opaque (see `mime::depth`): the top-level names, and the body as one part.
        let (headers, body_start) = depth::top_level(&parser, raw);
        let body = raw.get(body_start..).unwrap_or_default();
        let body = transfer_decoded(body, transfer_encoding(&headers), usize::MAX);
        let names = names(&headers);
        out.extend(check_leaf(policy, "1", &names, &headers, &body));
        if out.is_empty() {
            out.push(Held {
                part: "1".into(),
                filename: None,
                rule: Rule::TooDeep,
            });
        }
        return out;
    }
    let Some(msg) = parser.parse(raw) else {
        // Nothing mail-parser reads as a message (no header at all): the bytes as one part.
        out.extend(check_leaf(policy, "1", &[], &[], raw));
        return out;
    };
    let mut stack: Vec<(&Message<'_>, usize, String)> = Vec::new();
    push_message(&msg, String::new(), &mut stack);
    // Parts come out of mail-parser as a tree (a child's id is above its parent's, which
    // the walk checks); the budget is one more guard against walking anything twice.
    let mut budget = raw.len().saturating_mul(4).saturating_add(64);
    while let Some((m, id, path)) = stack.pop() {
        if out.len() >= limit || budget == 0 {
            break;
        }
        budget -= 1;
        let Some(part) = m.parts.get(id) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(children) => {
                for (k, &child) in children.iter().enumerate().rev() {
                    if (child as usize) > id {
                        let child_path = match path.as_str() {
                            "" => format!("{}", k + 1),
                            p => format!("{p}.{}", k + 1),
                        };
                        stack.push((m, child as usize, child_path));
                    }
                }
            }
            // An attached message: its own parts are checked; its name is not (a client
            // opens it as a message, whatever it is called).
            PartType::Message(nested) => push_message(nested, path, &mut stack),
            PartType::Text(_) | PartType::Html(_) => {
                // Text comes converted to UTF-8: the raw body is decoded again (its first
                // bytes), so that a program sent as text keeps its bytes.
                let body = m
                    .raw_message
                    .get(part.offset_body as usize..part.offset_end as usize)
                    .map(|b| transfer_decoded(b, part.encoding, TEXT_PART_PREFIX))
                    .unwrap_or(Cow::Borrowed(part.contents()));
                out.extend(check_part(policy, &path, part, &body));
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                out.extend(check_part(policy, &path, part, b));
            }
        }
    }
    out
}

/// Queues the parts of `m`, attached as `path` ("" for the message itself): the children
/// of a multipart are numbered from `path`, a single part is `path.1` (or `1`).
fn push_message<'a>(
    m: &'a Message<'a>,
    path: String,
    stack: &mut Vec<(&'a Message<'a>, usize, String)>,
) {
    let multipart = matches!(
        m.parts.first().map(|p| &p.body),
        Some(PartType::Multipart(_))
    );
    let path = match (multipart, path.is_empty()) {
        (true, _) => path,
        (false, true) => "1".to_string(),
        (false, false) => format!("{path}.1"),
    };
    stack.push((m, 0, path));
}

fn check_part(
    policy: &AttachmentPolicy,
    path: &str,
    part: &MessagePart<'_>,
    body: &[u8],
) -> Option<Held> {
    check_leaf(policy, path, &names(&part.headers), &part.headers, body)
}

/// The rules on one part: its names, then its content, then (a ZIP archive) its entries.
fn check_leaf(
    policy: &AttachmentPolicy,
    path: &str,
    names: &[String],
    headers: &[Header<'_>],
    body: &[u8],
) -> Option<Held> {
    let held = |filename: Option<&String>, rule| Held {
        part: path.to_string(),
        filename: filename.cloned(),
        rule,
    };
    for name in names {
        if let Some(rule) = name_rule(policy, name) {
            return Some(held(Some(name), rule));
        }
    }
    if policy.content {
        if let Some(kind) = sniff(body, names) {
            return Some(held(names.first(), Rule::Executable(kind)));
        }
    }
    if policy.zip && is_zip(body, names, headers) {
        if let Some(rule) = zip_rule(policy, body) {
            return Some(held(names.first(), rule));
        }
    }
    None
}

/// Every `filename` of the part's `Content-Disposition` and `name` of its `Content-Type`
/// (decoded by mail-parser), each once, in that order.
fn names(headers: &[Header<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (field, attribute) in [
        (HeaderName::ContentDisposition, "filename"),
        (HeaderName::ContentType, "name"),
    ] {
        let values = headers
            .iter()
            .filter(|h| h.name == field)
            .filter_map(|h| h.value.as_content_type())
            .flat_map(|ct| ct.attributes().unwrap_or_default())
            .filter(|a| a.name.eq_ignore_ascii_case(attribute))
            .map(|a| a.value.as_ref());
        for value in values {
            if !value.trim().is_empty() && !out.iter().any(|n| n == value) {
                out.push(value.to_string());
            }
        }
    }
    out
}

/// The transfer encoding a part's header names.
fn transfer_encoding(headers: &[Header<'_>]) -> Encoding {
    match headers
        .iter()
        .find(|h| h.name == HeaderName::ContentTransferEncoding)
        .map(|h| &h.value)
    {
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
            Encoding::QuotedPrintable
        }
        _ => Encoding::None,
    }
}

/// `raw` (at most its first `limit` bytes, cut after a line) with its transfer encoding
/// undone by mail-parser's own decoders; as it is when it does not decode.
fn transfer_decoded(raw: &[u8], encoding: Encoding, limit: usize) -> Cow<'_, [u8]> {
    let raw = match raw.get(..limit) {
        Some(head) => match memchr::memrchr(b'\n', head) {
            Some(nl) => head.get(..=nl).unwrap_or(head),
            None => head,
        },
        None => raw,
    };
    let (end, bytes) = match encoding {
        Encoding::Base64 => {
            // mail-parser's decoder refuses anything past the base64 (it expects a part to
            // end at its boundary); what comes first is decoded: the lines before the first
            // one with something else on it (an opaque body's nested parts).
            let clean = raw
                .iter()
                .position(|&b| {
                    !(b.is_ascii_alphanumeric()
                        || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n' | b'\t' | b' '))
                })
                .and_then(|bad| raw.get(..bad))
                .map(|before| match memchr::memrchr(b'\n', before) {
                    Some(nl) => before.get(..=nl).unwrap_or_default(),
                    None => &[],
                })
                .unwrap_or(raw);
            MessageStream::new(clean).decode_base64_mime(b"")
        }
        Encoding::QuotedPrintable => MessageStream::new(raw).decode_quoted_printable_mime(b""),
        Encoding::None => return Cow::Borrowed(raw),
    };
    if end == usize::MAX {
        Cow::Borrowed(raw)
    } else {
        bytes
    }
}

/// Characters that pad a name without being part of its extension: Windows drops
/// trailing dots and spaces; other blanks and invisible marks only hide what follows.
fn is_padding(c: char) -> bool {
    c == '.'
        || c == '\0'
        || c.is_whitespace()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// The last component of a name (after any `/` or `\`) split at its extension, padding
/// dropped: `("holiday.jpg", "pif")`; the extension in lower case.
fn split_extension(name: &str) -> Option<(&str, String)> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = base.trim_end_matches(is_padding).rsplit_once('.')?;
    (!ext.is_empty()).then(|| (stem, ext.to_lowercase()))
}

/// Rules 1 and 2 on a file name.
fn name_rule(policy: &AttachmentPolicy, name: &str) -> Option<Rule> {
    let (stem, ext) = split_extension(name)?;
    if !policy.is_blocked(&ext) {
        return None;
    }
    if policy.double_extensions {
        if let Some((_, shown)) = split_extension(stem) {
            if DOCUMENT_EXTENSIONS.contains(&shown.as_str()) {
                return Some(Rule::DoubleExtension { shown, hidden: ext });
            }
        }
    }
    Some(Rule::Extension(ext))
}

/// Whether a name shows a document's extension.
fn named_as_document(name: &str) -> bool {
    split_extension(name).is_some_and(|(_, ext)| DOCUMENT_EXTENSIONS.contains(&ext.as_str()))
}

/// Rule 3: the program `data` starts, or a `#!` script under one of `names` that is a
/// document's.
fn sniff(data: &[u8], names: &[String]) -> Option<Executable> {
    if let Some(kind) = program(data) {
        return Some(kind);
    }
    (data.starts_with(b"#!") && names.iter().any(|n| named_as_document(n)))
        .then_some(Executable::Script)
}

/// Where the DOS header of `data` says its PE header is, if `data` starts with `MZ`.
fn pe_header_offset(data: &[u8]) -> Option<usize> {
    if !data.starts_with(b"MZ") {
        return None;
    }
    let offset = data.get(0x3c..0x40)?;
    Some(u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize)
}

/// The kind of program `data` starts, by its magic numbers. `MZ` alone is not enough
/// (text may start so): the PE signature must be where the DOS header points.
fn program(data: &[u8]) -> Option<Executable> {
    if let Some(offset) = pe_header_offset(data) {
        if offset
            .checked_add(4)
            .and_then(|end| data.get(offset..end))
            .is_some_and(|sig| sig == b"PE\0\0")
        {
            return Some(Executable::Pe);
        }
    }
    let word = |at: usize, big_endian: bool| {
        data.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
    };
    match data.get(..4)? {
        b"\x7fELF" => Some(Executable::Elf),
        // Thin Mach-O, 32 and 64 bits, in either byte order.
        [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => {
            Some(Executable::MachO)
        }
        // Fat Mach-O (32 or 64-bit tables); `cafebabe` is also a Java class file, whose
        // version (45 and up) sits where a fat binary counts its architectures.
        [0xca, 0xfe, 0xba, 0xbe | 0xbf] => word(4, true)
            .is_some_and(|n| (1..45).contains(&n))
            .then_some(Executable::MachO),
        [0xbe | 0xbf, 0xba, 0xfe, 0xca] => word(4, false)
            .is_some_and(|n| (1..45).contains(&n))
            .then_some(Executable::MachO),
        _ => None,
    }
}

/// Whether a part is a ZIP archive to look into: by its content (a local header, or the
/// end record of an empty archive), its name or its type.
fn is_zip(body: &[u8], names: &[String], headers: &[Header<'_>]) -> bool {
    body.starts_with(b"PK\x03\x04")
        || body.starts_with(b"PK\x05\x06")
        || names
            .iter()
            .any(|n| split_extension(n).is_some_and(|(_, ext)| ext == "zip"))
        || headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentType)
            .filter_map(|h| h.value.as_content_type())
            .any(|ct| {
                ct.subtype()
                    .is_some_and(|s| s.to_ascii_lowercase().contains("zip"))
            })
}

/// Whether the zip crate may be given `data`. It looks for the end-of-central-directory
/// record from the end backwards and, when one does not lead to a readable directory,
/// scans again from the one before: a real archive has one (a few with stored archives
/// inside), but bytes made of thousands would cost quadratic time. Such an archive is not
/// read (nor held by the ZIP rule).
fn few_end_records(data: &[u8]) -> bool {
    memchr::memmem::find_iter(data, b"PK\x05\x06")
        .take(ZIP_END_RECORDS + 1)
        .count()
        <= ZIP_END_RECORDS
}

/// Rule 4 on a ZIP archive: rules 1-2 on every entry's name, then rule 3 on the first
/// bytes of the first [`ZIP_ENTRIES_READ`] unencrypted entries.
fn zip_rule(policy: &AttachmentPolicy, data: &[u8]) -> Option<Rule> {
    if !few_end_records(data) {
        return None;
    }
    // An archive that does not parse is not held by this rule: no client could open it
    // to run what it holds (its name was checked by rules 1-2 already).
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).ok()?;
    let in_archive = |entry: &str, inner| Rule::InArchive {
        entry: entry.to_string(),
        inner: Box::new(inner),
    };
    let is_dir = |name: &str| name.ends_with(['/', '\\']);
    for i in 0..archive.len() {
        let Some(name) = archive.name_for_index(i) else {
            continue;
        };
        if !is_dir(name) {
            if let Some(rule) = name_rule(policy, name) {
                return Some(in_archive(name, rule));
            }
        }
    }
    if !policy.content {
        return None;
    }
    // Bytes already read: entries that share them (a zip bomb's trick) are read once.
    let mut read: Vec<(u64, u64)> = Vec::new();
    for i in 0..archive.len() {
        if read.len() >= ZIP_ENTRIES_READ {
            break;
        }
        let Some(name) = archive.name_for_index(i).map(str::to_string) else {
            continue;
        };
        if is_dir(&name) {
            continue;
        }
        // Encrypted entries (a password is required), unsupported compression methods and
        // broken local headers are skipped: their names were checked above.
        let Ok(mut file) = archive.by_index(i) else {
            continue;
        };
        let Some(start) = file.data_start() else {
            continue;
        };
        let end = start.saturating_add(file.compressed_size());
        if read.iter().any(|&(s, e)| start < e && s < end) {
            continue;
        }
        read.push((start, end));
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        // A read error ends the read; what was read before it is kept.
        let _ = (&mut file).take(SNIFF_BYTES as u64).read_to_end(&mut head);
        if let Some(offset) = pe_header_offset(&head) {
            let want = offset.saturating_add(4).min(PE_HEADER_REACH);
            if want > head.len() {
                let more = (want - head.len()) as u64;
                let _ = (&mut file).take(more).read_to_end(&mut head);
            }
        }
        if let Some(kind) = sniff(&head, std::slice::from_ref(&name)) {
            return Some(in_archive(&name, Rule::Executable(kind)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::fixtures::{deep_multipart, deep_rfc822, on_small_stack};
    use base64::Engine as _;
    use std::io::Write as _;

    fn b64(data: &[u8]) -> String {
        let text = base64::engine::general_purpose::STANDARD.encode(data);
        let mut out = String::new();
        for line in text.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push_str("\r\n");
        }
        out
    }

    /// A message of a text part and one attachment, given its header fields and content.
    fn with_part(fields: &str, content: &[u8]) -> Vec<u8> {
        format!(
            "From: a@example.org\r\nTo: b@example.test\r\nSubject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--b\r\n{fields}Content-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
            b64(content)
        )
        .into_bytes()
    }

    /// A message with `content` attached as `name` (a quoted string in both fields).
    fn attached(name: &str, content: &[u8]) -> Vec<u8> {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        with_part(
            &format!("Content-Type: application/octet-stream; name=\"{quoted}\"\r\nContent-Disposition: attachment; filename=\"{quoted}\"\r\n"),
            content,
        )
    }

    fn held(raw: &[u8]) -> Option<Held> {
        check(&AttachmentPolicy::default(), raw)
    }

    fn rule(raw: &[u8]) -> Option<Rule> {
        held(raw).map(|h| h.rule)
    }

    fn ext(e: &str) -> Rule {
        Rule::Extension(e.into())
    }

    fn double(shown: &str, hidden: &str) -> Rule {
        Rule::DoubleExtension {
            shown: shown.into(),
            hidden: hidden.into(),
        }
    }

    fn inside(entry: &str, inner: Rule) -> Rule {
        Rule::InArchive {
            entry: entry.into(),
            inner: Box::new(inner),
        }
    }

    /// A minimal PE: DOS header pointing at 0x80, the signature there.
    fn pe() -> Vec<u8> {
        let mut p = vec![0u8; 0x200];
        p[..2].copy_from_slice(b"MZ");
        p[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        p[0x80..0x84].copy_from_slice(b"PE\0\0");
        p[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        p
    }

    fn elf() -> Vec<u8> {
        let mut e = b"\x7fELF\x02\x01\x01\0".to_vec();
        e.resize(64, 0);
        e
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        zip_with(entries, zip::write::SimpleFileOptions::default())
    }

    fn zip_with(entries: &[(&str, &[u8])], options: zip::write::SimpleFileOptions) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(content).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn every_default_extension_is_held_in_any_case_and_padding() {
        for e in config::DEFAULT_BLOCKED_EXTENSIONS {
            let upper = e.to_uppercase();
            for name in [
                format!("file.{e}"),
                format!("File.{upper}"),
                format!("file.{e}."),
                format!("file.{e}  "),
                format!("file.{e} . ."),
                format!("C:\\Users\\me\\file.{e}"),
            ] {
                let h = held(&attached(&name, b"hello")).unwrap_or_else(|| panic!("{name}"));
                assert_eq!(h.rule, ext(e), "{name}");
                assert_eq!(h.part, "2");
                assert_eq!(h.filename.as_deref(), Some(name.as_str()));
            }
        }
        // Only the extension counts.
        for name in [
            "exe",
            "setup.exe.txt",
            "notes.exefile",
            "report.ex e",
            "a.js.map",
        ] {
            assert_eq!(held(&attached(name, b"hello")), None, "{name}");
        }
    }

    #[test]
    fn double_extensions_with_padding() {
        for (name, shown, hidden) in [
            ("holiday.jpg.pif", "jpg", "pif"),
            ("invoice.pdf      .exe", "pdf", "exe"),
            ("a.jpg...exe", "jpg", "exe"),
            ("Scan.PDF.Scr", "pdf", "scr"),
            ("notes.txt . . .vbs. ", "txt", "vbs"),
            ("song.mp3\u{200b}.exe", "mp3", "exe"),
        ] {
            assert_eq!(
                rule(&attached(name, b"x")),
                Some(double(shown, hidden)),
                "{name}"
            );
        }
        // Not a document's extension in front: a blocked one, plainly.
        assert_eq!(rule(&attached("setup.v2.exe", b"x")), Some(ext("exe")));
        let h = held(&attached("holiday.jpg.pif", b"x")).unwrap();
        assert_eq!(
            h.to_string(),
            "holiday.jpg.pif: a double extension hiding a .pif program"
        );
        let plain = AttachmentPolicy {
            double_extensions: false,
            ..AttachmentPolicy::default()
        };
        assert_eq!(
            check(&plain, &attached("holiday.jpg.pif", b"x")).map(|h| h.rule),
            Some(ext("pif"))
        );
    }

    #[test]
    fn configured_extensions() {
        let policy = AttachmentPolicy::new(&config::Attachments {
            blocked_extensions: vec![".ISO".into(), " sh ".into(), "".into()],
            ..config::Attachments::default()
        });
        assert!(policy.is_blocked("iso") && policy.is_blocked("sh"));
        assert!(!policy.is_blocked("exe") && !policy.is_blocked(""));
        assert_eq!(
            check(&policy, &attached("disk.iso", b"x")).map(|h| h.rule),
            Some(ext("iso"))
        );
        assert_eq!(check(&policy, &attached("setup.exe", b"x")), None);
        let off = AttachmentPolicy {
            enabled: false,
            ..AttachmentPolicy::default()
        };
        assert_eq!(check(&off, &attached("setup.exe", &pe())), None);
        assert!(findings(&off, &attached("setup.exe", &pe())).is_empty());
    }

    #[test]
    fn programs_are_held_by_content_whatever_the_name() {
        let text = |name: &str, content: &[u8]| {
            with_part(
                &format!("Content-Type: text/plain; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n"),
                content,
            )
        };
        let exe = Some(Rule::Executable(Executable::Pe));
        assert_eq!(rule(&text("readme.txt", &pe())), exe);
        assert_eq!(rule(&attached("photo.jpg", &pe())), exe);
        assert_eq!(
            rule(&text("readme.txt", &elf())),
            Some(Rule::Executable(Executable::Elf))
        );
        // Mach-O, thin in both byte orders and widths, and fat.
        for magic in [
            &[0xfe, 0xed, 0xfa, 0xce][..],
            &[0xfe, 0xed, 0xfa, 0xcf],
            &[0xce, 0xfa, 0xed, 0xfe],
            &[0xcf, 0xfa, 0xed, 0xfe],
            &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2],
            &[0xca, 0xfe, 0xba, 0xbf, 0, 0, 0, 1],
            &[0xbe, 0xba, 0xfe, 0xca, 2, 0, 0, 0],
        ] {
            let mut m = magic.to_vec();
            m.resize(64, 0);
            assert_eq!(
                rule(&attached("report.pdf", &m)),
                Some(Rule::Executable(Executable::MachO)),
                "{magic:x?}"
            );
        }
        // A Java class file shares the fat magic; its version is not an architecture count.
        let mut class = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52];
        class.resize(64, 0);
        assert_eq!(held(&attached("Main.class", &class)), None);
        // A script named as a document.
        let h = held(&text("notes.txt", b"#!/bin/sh\nrm -rf ~\n")).unwrap();
        assert_eq!(h.rule, Rule::Executable(Executable::Script));
        assert_eq!(
            h.to_string(),
            "notes.txt: a script (#!) named as a document"
        );
        // Unencoded and quoted-printable parts are decoded the same way.
        let qp = b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=\"a.txt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=7FELF=02=01=01=00=00=00\r\n--b\r\nContent-Type: text/plain; name=\"b.txt\"\r\n\r\n#!/usr/bin/perl\r\nprint 1;\r\n--b--\r\n";
        let all = findings(&AttachmentPolicy::default(), qp);
        assert_eq!(
            all.iter()
                .map(|h| (h.part.as_str(), &h.rule))
                .collect::<Vec<_>>(),
            [
                ("1", &Rule::Executable(Executable::Elf)),
                ("2", &Rule::Executable(Executable::Script))
            ]
        );
        let names_only = AttachmentPolicy {
            content: false,
            ..AttachmentPolicy::default()
        };
        assert_eq!(check(&names_only, &text("readme.txt", &pe())), None);
    }

    #[test]
    fn text_that_merely_starts_like_a_program_is_not_held() {
        for body in [
            "MZ is the signature of a DOS program, as you asked.\r\n",
            "#!/bin/sh\r\necho this is the script I told you about\r\n",
        ] {
            let plain = format!("From: a@example.org\r\nSubject: x\r\n\r\n{body}");
            assert_eq!(held(plain.as_bytes()), None, "{body}");
            let b64 = format!(
                "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                b64(body.as_bytes())
            );
            assert_eq!(held(b64.as_bytes()), None, "{body}");
        }
        // MZ with a header offset out of range, or pointing at no signature.
        let mut fake = b"MZ".to_vec();
        fake.resize(0x40, b' ');
        assert_eq!(held(&attached("a.txt", &fake)), None);
        fake[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(held(&attached("a.txt", &fake)), None);
        fake[0x3c..0x40].copy_from_slice(&0x10u32.to_le_bytes());
        assert_eq!(held(&attached("a.txt", &fake)), None);
        // Scripts named as scripts, or not named at all, are what they say they are.
        assert_eq!(held(&attached("swasort", b"#!/bin/tcsh -f\n")), None);
        assert_eq!(held(&attached("install.sh", b"#!/bin/sh\n")), None);
        let unnamed = with_part("Content-Type: application/x-sh\r\n", b"#!/bin/sh\n");
        assert_eq!(held(&unnamed), None);
        // A program in the body, not named: held all the same.
        let body = format!(
            "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64(&pe())
        );
        assert_eq!(
            held(body.as_bytes()),
            Some(Held {
                part: "1".into(),
                filename: None,
                rule: Rule::Executable(Executable::Pe)
            })
        );
        assert_eq!(
            held(body.as_bytes()).unwrap().to_string(),
            "part 1: a Windows program (PE), whatever its name"
        );
    }

    #[test]
    fn clean_documents_are_not_held() {
        let docx = zip_of(&[
            ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
            ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships/>"),
            ("word/", b""),
            ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
            ("word/media/image1.png", b"\x89PNG\r\n\x1a\n"),
            ("docProps/app.xml", b"<?xml version=\"1.0\"?><Properties/>"),
        ]);
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
        let jpg = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9";
        for (name, content) in [
            ("report.docx", &docx[..]),
            ("report.pdf", pdf),
            ("holiday.jpg", jpg),
            ("notes.txt", b"MZ and PE are letters.\n"),
        ] {
            assert_eq!(held(&attached(name, content)), None, "{name}");
        }
        let typed = with_part(
            "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\n",
            &docx,
        );
        assert_eq!(held(&typed), None);
    }

    #[test]
    fn programs_inside_zip_archives_are_held() {
        let plain = zip_of(&[("readme.txt", b"hello"), ("bin/setup.exe", b"x")]);
        let h = held(&attached("files.zip", &plain)).unwrap();
        assert_eq!(h.rule, inside("bin/setup.exe", ext("exe")));
        assert_eq!(
            h.to_string(),
            "files.zip: contains bin/setup.exe, a blocked file type (.exe)"
        );
        let double_in = zip_of(&[("holiday.jpg.scr", b"x")]);
        assert_eq!(
            rule(&attached("photos.zip", &double_in)),
            Some(inside("holiday.jpg.scr", double("jpg", "scr")))
        );
        // A program under an innocent name, deflated, and one stored; found by content
        // whatever the archive is called.
        let mut big_pe = pe();
        big_pe.resize(200_000, 7);
        let by_content = zip_of(&[("a.txt", b"hi"), ("invoice.pdf", &big_pe)]);
        assert_eq!(
            rule(&attached("documents.dat", &by_content)),
            Some(inside("invoice.pdf", Rule::Executable(Executable::Pe)))
        );
        let stored = zip_with(
            &[("run.txt", &elf())],
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        );
        assert_eq!(
            rule(&attached("x.zip", &stored)),
            Some(inside("run.txt", Rule::Executable(Executable::Elf)))
        );
        // A PE header past the first 4 KiB is followed (within its reach).
        let mut far = vec![0u8; 0x3000];
        far[..2].copy_from_slice(b"MZ");
        far[0x3c..0x40].copy_from_slice(&0x2000u32.to_le_bytes());
        far[0x2000..0x2004].copy_from_slice(b"PE\0\0");
        assert_eq!(
            rule(&attached("x.zip", &zip_of(&[("far.txt", &far)]))),
            Some(inside("far.txt", Rule::Executable(Executable::Pe)))
        );
        let names_only = AttachmentPolicy {
            content: false,
            ..AttachmentPolicy::default()
        };
        assert_eq!(check(&names_only, &attached("x.zip", &stored)), None);
        let no_zip = AttachmentPolicy {
            zip: false,
            ..AttachmentPolicy::default()
        };
        assert_eq!(check(&no_zip, &attached("files.zip", &plain)), None);
        // A blocked archive name is held by its name first.
        assert_eq!(rule(&attached("app.jar", &plain)), Some(ext("jar")));
        // Archives in archives are not opened.
        let nested = zip_of(&[("inner.zip", &plain)]);
        assert_eq!(held(&attached("outer.zip", &nested)), None);
    }

    #[test]
    fn encrypted_archives_show_their_names() {
        use zip::unstable::write::FileOptionsExt as _;
        let options = zip::write::SimpleFileOptions::default()
            .with_deprecated_encryption(b"infected")
            .unwrap();
        let locked = zip_with(&[("invoice.pdf.exe", &pe())], options);
        assert_eq!(
            rule(&attached("invoice.zip", &locked)),
            Some(inside("invoice.pdf.exe", double("pdf", "exe")))
        );
        // Its content cannot be read without the password: not held by content.
        let locked = zip_with(&[("invoice.pdf", &pe())], options);
        assert_eq!(held(&attached("invoice.zip", &locked)), None);
    }

    #[test]
    fn broken_archives_and_zip_bombs_do_not_hurt() {
        let good = zip_of(&[("a.txt", b"hello"), ("setup.exe", &pe())]);
        assert!(held(&attached("x.zip", &good)).is_some());
        // Every cut of an archive: parsed or not, no panic.
        for cut in 0..good.len() {
            let _ = held(&attached("x.zip", &good[..cut]));
        }
        // Garbage after the magic, and a flipped byte everywhere.
        let _ = held(&attached("x.zip", b"PK\x03\x04garbage garbage garbage"));
        let _ = held(&attached("x.bin", b"PK\x05\x06"));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            let _ = held(&attached("x.zip", &bad));
        }
        // Thousands of end records: not read (and not held by the ZIP rule).
        let mut many = good.clone();
        for _ in 0..5000 {
            many.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0\x10\0\0\0\0\0\0\0\0\0");
        }
        assert_eq!(held(&attached("x.zip", &many)), None);
        // A bomb: 64 MB of zeros (64 KB deflated) under a text name, and many entries:
        // only the first bytes of a few are inflated.
        let zeros = vec![0u8; 64 << 20];
        let entries: Vec<(String, &[u8])> = (0..200)
            .map(|i| {
                (
                    format!("part{i}.txt"),
                    &zeros[..if i == 0 { zeros.len() } else { 1000 }],
                )
            })
            .collect();
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let bomb = zip_of(&entries);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let started = std::time::Instant::now();
        assert_eq!(held(&attached("bomb.zip", &bomb)), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn rfc2231_names_split_over_several_parameters() {
        for (fields, name, expected) in [
            (
                "Content-Disposition: attachment; filename*0*=utf-8''holiday.jpg; filename*1*=.p; filename*2=if\r\n",
                "holiday.jpg.pif",
                double("jpg", "pif"),
            ),
            (
                "Content-Disposition: attachment;\r\n filename*0*=iso-8859-1'en'f%E9rias.jpg;\r\n filename*1*=%20%20.exe\r\n",
                "f\u{e9}rias.jpg  .exe",
                double("jpg", "exe"),
            ),
            (
                "Content-Disposition: attachment; filename*1=\"b.exe\"; filename*0=\"a.\"\r\n",
                "a.b.exe",
                ext("exe"),
            ),
            (
                "Content-Type: application/octet-stream;\r\n name*0=\"very long name \";\r\n name*1=\"continued.pdf\"; name*2=\".exe\"\r\n",
                "very long name continued.pdf.exe",
                double("pdf", "exe"),
            ),
            (
                "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.scr\r\n",
                "\u{20ac} rates.scr",
                ext("scr"),
            ),
            // Both forms: a client that prefers `filename*` shows the second one.
            (
                "Content-Disposition: attachment; filename=\"x.txt\"; filename*=utf-8''x.exe\r\n",
                "x.exe",
                ext("exe"),
            ),
            // The type's name counts too, when the disposition's is innocent.
            (
                "Content-Type: application/octet-stream; name=\"x.exe\"\r\nContent-Disposition: attachment; filename=\"x.txt\"\r\n",
                "x.exe",
                ext("exe"),
            ),
        ] {
            let h = held(&with_part(fields, b"data")).unwrap_or_else(|| panic!("{fields}"));
            assert_eq!(h.filename.as_deref(), Some(name), "{fields}");
            assert_eq!(h.rule, expected, "{fields}");
        }
    }

    #[test]
    fn rfc2047_encoded_names() {
        for (fields, name) in [
            (
                "Content-Disposition: attachment; filename=\"=?UTF-8?B?aG9saWRheS5qcGcucGlm?=\"\r\n",
                "holiday.jpg.pif",
            ),
            (
                "Content-Type: application/octet-stream; name=\"=?iso-8859-1?Q?f=E9rias.jpg.exe?=\"\r\n",
                "f\u{e9}rias.jpg.exe",
            ),
            (
                "Content-Disposition: attachment;\r\n filename=\"=?utf-8?q?Rechnung_2024=2Epdf?= =?utf-8?q?=2Eexe?=\"\r\n",
                // mail-parser keeps the blank between the two encoded words (RFC 2047
                // drops it); the padding rule reads through it.
                "Rechnung 2024.pdf .exe",
            ),
        ] {
            let h = held(&with_part(fields, b"data")).unwrap_or_else(|| panic!("{fields}"));
            assert_eq!(h.filename.as_deref(), Some(name), "{fields}");
            assert!(matches!(h.rule, Rule::DoubleExtension { .. }), "{fields}");
        }
    }

    #[test]
    fn parts_are_numbered_as_imap_numbers_them_nested_messages_included() {
        let exe = b64(b"x");
        let m = format!(
            "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nhi\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--a--\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner\r\n--i\r\nContent-Type: application/octet-stream; name=\"inner.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{exe}--i--\r\n--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--o\r\nContent-Type: application/octet-stream; name=\"last.bat\"\r\n\r\nx\r\n--o--\r\n",
            b64(b"From: d@example.org\r\nContent-Type: application/octet-stream; name=\"encoded.pif\"\r\n\r\nx\r\n")
        );
        let all = findings(&AttachmentPolicy::default(), m.as_bytes());
        let found: Vec<(&str, &str)> = all
            .iter()
            .map(|h| (h.part.as_str(), h.filename.as_deref().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("2.2", "inner.exe"),
                ("3.1", "encoded.pif"),
                ("4", "last.bat")
            ]
        );
        assert_eq!(
            check(&AttachmentPolicy::default(), m.as_bytes()),
            Some(all[0].clone())
        );
        let single = b"From: a@example.org\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nx\r\n";
        assert_eq!(held(single).unwrap().part, "1");
    }

    #[test]
    fn deep_nesting_neither_overflows_nor_hides_the_top() {
        let (a, b) = on_small_stack(|| {
            let p = AttachmentPolicy::default();
            (
                check(&p, &deep_rfc822(30_000)),
                check(&p, &deep_multipart(5_000)),
            )
        });
        // Too deep to check what is inside: held for that (never walked, never overflowed).
        assert_eq!(
            (a.map(|h| h.rule), b.map(|h| h.rule)),
            (Some(Rule::TooDeep), Some(Rule::TooDeep))
        );
        // A message just within the limit is walked, and clean.
        assert_eq!(
            on_small_stack(|| check(&AttachmentPolicy::default(), &deep_rfc822(40))),
            None
        );
        // Opaque: the top level's names are checked, the body is sniffed as one part.
        let mut named =
            b"From: a@example.org\r\nContent-Type: message/rfc822; name=\"x.exe\"\r\n\r\n".to_vec();
        named.extend_from_slice(&deep_rfc822(100));
        assert_eq!(rule(&named), Some(ext("exe")));
        let mut encoded = b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        encoded.extend_from_slice(b64(&elf()).as_bytes());
        encoded.extend_from_slice(&deep_multipart(100));
        assert_eq!(rule(&encoded), Some(Rule::Executable(Executable::Elf)));
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let samples: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\r\n\r\n".to_vec(),
            b"MZ".to_vec(),
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n".to_vec(),
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n--\r\n".to_vec(),
            attached("\u{202e}exe.jpg", &pe()),
            attached(".", b""),
            attached("...", b""),
        ];
        for s in &samples {
            let _ = findings(&AttachmentPolicy::default(), s);
            for cut in 0..s.len() {
                let _ = findings(&AttachmentPolicy::default(), &s[..cut]);
            }
        }
    }
}
