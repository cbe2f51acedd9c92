//! Text parts that name no charset (or US-ASCII) yet carry 8-bit bytes: read as Latin-1.
//! A UTF-8 reading turns each such byte into U+FFFD and the text loses it, while
//! SpamAssassin's rules match the bytes themselves (`\xa3` is a pound sign in its money
//! rules); Latin-1 keeps one character per byte, which is what those rules expect.

use base64::Engine as _;
use mail_parser::{MessagePart, MimeHeaders};

/// The part's text read as Latin-1, when the usual reading (`decoded`) lost bytes to
/// U+FFFD, the part declares no charset or US-ASCII and its decoded bytes are not valid
/// UTF-8; None otherwise (the usual reading stands).
pub(super) fn undeclared_eight_bit(
    raw: &[u8],
    part: &MessagePart<'_>,
    decoded: &str,
) -> Option<String> {
    if !decoded.contains('\u{FFFD}') {
        return None;
    }
    let declared = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::trim);
    if declared.is_some_and(|c| !c.eq_ignore_ascii_case("us-ascii")) {
        return None;
    }
    let body = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    let encoding = part
        .content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase());
    let bytes = match encoding.as_deref() {
        Some("quoted-printable") => quoted_printable(body),
        Some("base64") => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
                .collect();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&clean)
                .ok()?
        }
        _ => body.to_vec(),
    };
    if std::str::from_utf8(&bytes).is_ok() {
        return None;
    }
    Some(bytes.iter().map(|&b| char::from(b)).collect())
}

/// Quoted-printable decoded leniently: `=XX` is a byte, `=` at a line end joins the
/// lines, anything else stays as written.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b == b'=' {
            match (body.get(i + 1).copied(), body.get(i + 2).copied()) {
                (Some(b'\r'), Some(b'\n')) => {
                    i += 3;
                    continue;
                }
                (Some(b'\n'), _) => {
                    i += 2;
                    continue;
                }
                (Some(h), Some(l)) => {
                    if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::mime::view::MessageView;

    #[test]
    fn eight_bit_text_without_a_charset_reads_as_latin1() {
        let v = MessageView::new(b"Subject: s\r\n\r\nIt will cost \xa397m in back pay.\r\n");
        assert!(v.body.contains("\u{a3}97m"), "{:?}", v.body);
        let qp = MessageView::new(
            b"Subject: s\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncost =A313m a ye=\r\nar\r\n",
        );
        assert!(qp.body.contains("\u{a3}13m a year"), "{:?}", qp.body);
        // A declared charset, or valid UTF-8, is read as it says.
        let utf8 = MessageView::new("Subject: s\r\n\r\ncosts £5\r\n".as_bytes());
        assert!(utf8.body.contains("£5"));
        let declared = MessageView::new(
            b"Subject: s\r\nContent-Type: text/plain; charset=iso-8859-15\r\n\r\ncosts \xa45\r\n",
        );
        assert!(declared.body.contains("\u{20ac}5"), "{:?}", declared.body);
    }
}
