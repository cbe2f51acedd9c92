//! Writing IMAP response syntax: strings (quoted or literal), NIL, flags, dates.

use super::parse::is_atom;
use crate::smtp::format_rfc5322_date;
use crate::store::schema::flags;

/// An IMAP string: quoted when it can be, a literal otherwise (8-bit, CR, LF, long).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|&b| (0x20..0x7f).contains(&b));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// The system flags of a message, then its keywords, as `(\Seen $Junk)`. A keyword that
/// is not an atom (stored before keywords were checked) is left out: written raw, its
/// bytes could end the response line.
pub fn flag_list(out: &mut Vec<u8>, bits: u32, keywords: &[String]) {
    out.push(b'(');
    let mut first = true;
    let recent = (bits & RECENT != 0).then_some((RECENT, "\\Recent"));
    for (bit, name) in SYSTEM_FLAGS.into_iter().chain(recent) {
        if bits & bit != 0 {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(name.as_bytes());
            first = false;
        }
    }
    for k in keywords.iter().filter(|k| is_atom(k.as_bytes())) {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(k.as_bytes());
        first = false;
    }
    out.push(b')');
}

/// The bit of \Recent in the flags a session shows (never stored: which messages are
/// recent depends on the session, see `imap::recent`).
pub const RECENT: u32 = 1 << 31;

pub const SYSTEM_FLAGS: [(u32, &str); 5] = [
    (flags::SEEN, "\\Seen"),
    (flags::ANSWERED, "\\Answered"),
    (flags::FLAGGED, "\\Flagged"),
    (flags::DELETED, "\\Deleted"),
    (flags::DRAFT, "\\Draft"),
];

/// The bit of a system flag name, case-insensitively.
pub fn system_flag(name: &str) -> Option<u32> {
    SYSTEM_FLAGS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(b, _)| *b)
}

/// INTERNALDATE syntax: "29-Nov-2026 14:30:30 +0000".
pub fn internal_date(unix: i64) -> String {
    // From "Sun, 29 Nov 2026 14:30:30 +0000".
    let full = format_rfc5322_date(unix);
    let parts: Vec<&str> = full.split(' ').collect();
    format!(
        "\"{}-{}-{} {} {}\"",
        parts[1], parts[2], parts[3], parts[4], parts[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"");
        assert_eq!(out, b"\"a \\\"b\\\"\"");
        out.clear();
        string(&mut out, "ä".as_bytes());
        assert_eq!(out, "{2}\r\nä".as_bytes());
        out.clear();
        nstring(&mut out, None);
        assert_eq!(out, b"NIL");
        out.clear();
        flag_list(&mut out, flags::SEEN | flags::DELETED, &["$Junk".into()]);
        assert_eq!(out, b"(\\Seen \\Deleted $Junk)");
        out.clear();
        flag_list(
            &mut out,
            0,
            &["a\r\nb".into(), "$Work".into(), "x y".into()],
        );
        assert_eq!(out, b"($Work)");
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
    }
}
