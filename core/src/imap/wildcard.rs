//! LIST and LSUB mailbox patterns (RFC 9051 section 6.3.9): `*` matches any run of
//! characters, `%` any run without the hierarchy delimiter `/`.

/// IMAP LIST wildcards: `*` matches anything, `%` anything but the delimiter.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(&c) => n.first().is_some_and(|&d| d == c) && go(&p[1..], &n[1..]),
        }
    }
    let pattern = if pattern.len() >= 5 && pattern[..5].eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_string()
    };
    go(pattern.as_bytes(), name.as_bytes())
}

