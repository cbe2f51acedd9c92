//! Modified UTF-7 (RFC 3501 5.1.3): how IMAP4rev1 clients that did not enable UTF8=ACCEPT
//! write mailbox names that are not ASCII (`&AOk-t&AOk-` for "été"). Gannet keeps names in
//! UTF-8; the session turns a rev1 client's names into UTF-8 as they come, and back as
//! they go out.

use base64::alphabet::IMAP_MUTF7;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::Engine;

const ENGINE: GeneralPurpose = GeneralPurpose::new(&IMAP_MUTF7, NO_PAD);

/// A name in modified UTF-7 as UTF-8; None when it is not valid modified UTF-7 (a bare
/// `&` run, bad base64, an odd number of bytes, a printable ASCII character encoded).
pub fn decode(name: &str) -> Option<String> {
    if !name.contains('&') {
        return Some(name.to_string());
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at)?);
        let after = rest.get(at + 1..)?;
        let end = after.find('-')?;
        let encoded = after.get(..end)?;
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = (bytes.chunks_exact(2))
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be encoded (RFC 3501): a name has one spelling.
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        rest = after.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// A UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_both_ways() {
        for (utf8, utf7) in [
            ("INBOX", "INBOX"),
            ("été", "&AOk-t&AOk-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("日本語", "&ZeVnLIqe-"),
            ("Entwürfe/März", "Entw&APw-rfe/M&AOQ-rz"),
            ("😀", "&2D3eAA-"),
        ] {
            assert_eq!(encode(utf8), utf7, "{utf8}");
            assert_eq!(decode(utf7).as_deref(), Some(utf8), "{utf7}");
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in ["&", "a&b", "&AOk", "&AA-", "&AGEAYg-", "&!!-"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
