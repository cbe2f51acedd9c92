//! Header fields of a raw message, found without parsing the whole message.

/// A header field's raw value (after its colon, unfolded or not) with RFC 2047 encoded
/// words decoded, as SpamAssassin and IMAP SEARCH read it.
pub fn decode_encoded_words(raw_value: &[u8]) -> String {
    // The parser reads up to the end of the field's line: give it one.
    let mut line = raw_value.to_vec();
    if !line.ends_with(b"\n") {
        line.extend_from_slice(b"\r\n");
    }
    match mail_parser::parsers::MessageStream::new(&line).parse_unstructured() {
        mail_parser::HeaderValue::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}

/// The unfolded value of the first header field called `name` (case-insensitive), or None.
/// Only the header section (up to the first empty line) is searched.
pub fn header_value(message: &[u8], name: &str) -> Option<String> {
    header_values(message, name, 1).into_iter().next()
}

/// The unfolded values of the first `limit` header fields called `name`, in order.
pub fn header_values(message: &[u8], name: &str, limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = message.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if found.len() >= limit {
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
        {
            continue;
        }
        let mut value = super::lossy_utf8(line[colon + 1..].trim_ascii()).into_owned();
        // Folded continuation lines start with white space.
        while let Some(next) = lines.peek() {
            if !next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                break;
            }
            let next = lines.next().unwrap_or_default();
            let next = next.strip_suffix(b"\r").unwrap_or(next);
            value.push(' ');
            value.push_str(&super::lossy_utf8(next.trim_ascii()));
        }
        found.push(value);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_unfolds() {
        let m = b"From: a@b\r\nSubject: hello\r\n  world\r\nX: y\r\n\r\nSubject: body\r\n";
        assert_eq!(header_value(m, "subject").as_deref(), Some("hello world"));
        assert_eq!(header_value(m, "X").as_deref(), Some("y"));
        assert_eq!(header_value(m, "To"), None);
        assert_eq!(header_value(b"\r\nSubject: x\r\n", "Subject"), None);
        let r = b"Received: one\r\nX: y\r\nreceived: two\r\n three\r\n\r\nReceived: body\r\n";
        assert_eq!(header_values(r, "Received", 10), ["one", "two three"]);
        assert_eq!(header_values(r, "Received", 1), ["one"]);
    }
}
