//! LIST and LSUB mailbox patterns (RFC 9051 section 6.3.9): `*` matches any run of
//! characters, `%` any run without the hierarchy delimiter `/`.

/// True when `name` matches `pattern`. INBOX is case-insensitive, so a pattern starting
/// with it in any case is taken as starting with `INBOX`.
///
/// One pass over the pattern, keeping the set of name positions the pattern so far can
/// reach: O(pattern × name) time, no recursion and no backtracking (a recursive matcher
/// backtracks exponentially on `*%*%…x` and recurses once per pattern byte). Works on
/// bytes, so a pattern or name that is not ASCII needs no care with char boundaries.
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.as_bytes();
    let (head, rest): (&[u8], &[u8]) = match pattern.split_at_checked(5) {
        Some((head, rest)) if head.eq_ignore_ascii_case(b"INBOX") => (b"INBOX", rest),
        _ => (b"", pattern),
    };
    let name = name.as_bytes();
    // reach[j]: the pattern so far matches name[..j].
    let mut reach = vec![false; name.len() + 1];
    let mut next = vec![false; name.len() + 1];
    reach[0] = true;
    let mut previous = None;
    for &c in head.iter().chain(rest) {
        // A run of wildcards is one `*` if it has one, else one `%`.
        if (c == b'%' || c == b'*') && previous == Some(b'*') {
            continue;
        }
        if c == b'%' && previous == Some(b'%') {
            continue;
        }
        step(c, name, &reach, &mut next);
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
        previous = Some(c);
    }
    reach[name.len()]
}

/// The positions reachable after the pattern byte `c`, from those reachable before it.
fn step(c: u8, name: &[u8], reach: &[bool], next: &mut [bool]) {
    match c {
        b'*' => {
            let mut any = false;
            for (out, &r) in next.iter_mut().zip(reach) {
                any |= r;
                *out = any;
            }
        }
        b'%' => {
            // Like `*`, but a run cannot cross the delimiter.
            let mut run = reach[0];
            next[0] = run;
            for ((out, &r), &b) in next[1..].iter_mut().zip(&reach[1..]).zip(name) {
                if b == b'/' {
                    run = false;
                }
                run |= r;
                *out = run;
            }
        }
        c => {
            next[0] = false;
            for ((out, &r), &b) in next[1..].iter_mut().zip(reach).zip(name) {
                *out = r && b == c;
            }
        }
    }
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
