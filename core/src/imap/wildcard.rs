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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `wildcard_match` on a thread and gives up after five seconds, so a matcher that
    /// backtracks exponentially fails the test instead of hanging it.
    fn match_within_5s(pattern: String, name: String) -> bool {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(wildcard_match(&pattern, &name));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the match took longer than five seconds (or its thread panicked)")
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "Archive/2024"));
        assert!(!wildcard_match("%", "Archive/2024"));
        assert!(wildcard_match("%", "Archive"));
        assert!(wildcard_match("Archive/%", "Archive/2024"));
        assert!(!wildcard_match("Archive/%", "Archive/2024/Q1"));
        assert!(wildcard_match("Archive/*", "Archive/2024/Q1"));
        assert!(wildcard_match("A*4", "Archive/2024"));
        assert!(!wildcard_match("A%4", "Archive/2024"));
        assert!(wildcard_match("%/%", "Archive/2024"));
        assert!(wildcard_match("*Y%c", "Y/Yc"));
        assert!(!wildcard_match("%Y%c", "Y/Yc"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(wildcard_match("InBoX/%", "INBOX/Sub"));
        assert!(!wildcard_match("Sent", "Sent Items"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "x"));
        assert!(wildcard_match("%*%", ""));
    }

    #[test]
    fn alternating_wildcards_do_not_backtrack_exponentially() {
        let pattern = format!("{}x", "*%".repeat(18));
        let name = "a".repeat(60);
        assert!(!match_within_5s(pattern, name.clone()));
        let pattern = format!("{}x", "*a".repeat(200));
        assert!(!match_within_5s(pattern, "a".repeat(2000)));
        assert!(match_within_5s("*%".repeat(18), name));
    }

    #[test]
    fn long_patterns_do_not_recurse_per_byte() {
        let name = "a".repeat(60_000);
        assert!(match_within_5s("*".repeat(60_000), name.clone()));
        assert!(match_within_5s("%".repeat(60_000), name.clone()));
        assert!(!match_within_5s(name, "a".repeat(1_000)));
        assert!(match_within_5s("a".repeat(5_000), "a".repeat(5_000)));
    }

    #[test]
    fn non_ascii_patterns_do_not_panic() {
        for pattern in [
            "é%",
            "abcdé%",
            "INBOé",
            "ééé",
            "INBOX\u{e9}%",
            "%\u{1F600}*",
        ] {
            for name in ["é", "abcdé", "INBOX", "INBOXé/x", "\u{1F600}"] {
                let _ = match_within_5s(pattern.to_string(), name.to_string());
            }
        }
        assert!(wildcard_match("abcdé%", "abcdéf"));
        assert!(wildcard_match("INBOXé%", "INBOXéf"));
    }
}
