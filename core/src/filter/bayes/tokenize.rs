//! Cutting a message into Bayes tokens, in the spirit of SpamAssassin's Bayes plugin:
//! the visible body text split on what is not a word character (keeping `$ , @ * ! _ ' "
//! . -` inside words: "$31,000,000", "f*ck", "Hits!", "www.example.com"), edge
//! punctuation trimmed, words of fewer than 3 characters and common English stop words
//! left out, words over 15 characters kept as `sk:` and their first 7 characters, each
//! word also as written without punctuation and in lower case; addresses and host names in
//! the text as their parts; header words under a prefix naming their header (`H*F:` for
//! From), addresses there as user (`U*`) and each domain (`D*`), of the Received headers
//! only the two oldest without dates and queue ids; the relays' addresses, names and
//! networks (`H*RU:ip*...`); URL hosts and each parent domain (`UD:`); attachment types
//! (`MIME:`).
//! Each token is then a 64-bit hash.

use crate::mime::view::MessageView;

/// Words longer than this are shortened to a "skip" token.
const MAX_TOKEN_LENGTH: usize = 15;

/// Headers that say nothing about the sender's intent, or that the receiving side writes
/// (SpamAssassin's `IGNORED_HDRS`, and Gannet's own).
const IGNORED_HEADERS: &[&str] = &[
    "sender",
    "x-sender",
    "delivered-to",
    "delivery-date",
    "envelope-to",
    "x-envelope-to",
    "subject",
    "date",
    "x-list",
    "mailing-list",
    "x-mailing-list",
    "list-archive",
    "list-help",
    "list-id",
    "list-owner",
    "list-post",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "x-unsubscribe",
    "x-mailman-version",
    "x-beenthere",
    "x-loop",
    "mail-followup-to",
    "resent-from",
    "resent-to",
    "resent-date",
    "original-from",
    "original-to",
    "x-spam-flag",
    "x-spam-score",
    "x-spam-level",
    "x-spam-status",
    "x-spam-checker-version",
    "x-spam-report",
    "x-virus-scanned",
    "x-virus-status",
    "x-gannet-quarantine",
    "content-length",
    "lines",
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
];

/// Short prefixes for frequent headers (SpamAssassin's `HEADER_NAME_COMPRESSION`).
const HEADER_PREFIXES: &[(&str, &str)] = &[
    ("message-id", "*m"),
    ("from", "*F"),
    ("to", "*T"),
    ("cc", "*c"),
    ("reply-to", "*r"),
    ("content-type", "*ct"),
    ("content-transfer-encoding", "*cte"),
    ("mime-version", "*mv"),
    ("user-agent", "*UA"),
    ("x-mailer", "*UA"),
    ("x-priority", "*xp"),
    ("importance", "*im"),
    ("return-path", "*p"),
    ("received", "*r"),
];

/// Common English words that say nothing (SpamAssassin's default Bayes stop list).
const STOP_WORDS: &[&str] = &[
    "able",
    "all",
    "already",
    "and",
    "any",
    "are",
    "because",
    "both",
    "can",
    "come",
    "each",
    "email",
    "even",
    "few",
    "first",
    "for",
    "from",
    "give",
    "has",
    "have",
    "http",
    "information",
    "into",
    "it's",
    "just",
    "know",
    "like",
    "long",
    "look",
    "made",
    "mail",
    "mailing",
    "mailto",
    "make",
    "many",
    "more",
    "most",
    "much",
    "need",
    "not",
    "now",
    "number",
    "off",
    "one",
    "only",
    "out",
    "own",
    "people",
    "place",
    "right",
    "same",
    "see",
    "such",
    "that",
    "the",
    "this",
    "through",
    "time",
    "using",
    "web",
    "where",
    "why",
    "with",
    "without",
    "work",
    "world",
    "year",
    "years",
    "you",
    "you're",
    "your",
];

/// The message's tokens, hashed, each once, sorted.
pub fn tokens(view: &MessageView) -> Vec<u64> {
    let mut out = Vec::new();
    for line in view.body.lines() {
        words(line, "", true, &mut out);
    }
    // Of the Received headers only the two oldest (the sender's end: its software and
    // HELO names), as SpamAssassin keeps them.
    let received: Vec<usize> = view
        .headers
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name.eq_ignore_ascii_case("received"))
        .map(|(i, _)| i)
        .collect();
    let oldest = &received[received.len().saturating_sub(2)..];
    for (i, field) in view.headers.iter().enumerate() {
        let name = field.name.to_ascii_lowercase();
        if IGNORED_HEADERS.contains(&name.as_str()) || name.starts_with("x-spam-") {
            continue;
        }
        if name == "received" {
            if oldest.contains(&i) {
                words(&chew_received(&field.value), "H*r:", false, &mut out);
            }
            continue;
        }
        let short = HEADER_PREFIXES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(field.name.as_str(), |(_, p)| p);
        let prefix = format!("H{short}:");
        words(&field.value, &prefix, false, &mut out);
    }
    // The relays the message came through (SpamAssassin's X-Spam-Relays-* tokens).
    for (prefix, relays) in [
        ("*RT", &view.relays.trusted),
        ("*RU", &view.relays.untrusted),
    ] {
        for relay in relays {
            for (key, value) in [
                ("ip", &relay.ip),
                ("rdns", &relay.rdns),
                ("helo", &relay.helo),
                ("by", &relay.by),
            ] {
                if !value.is_empty() {
                    out.push(hash(&format!(
                        "H{prefix}:{key}*{}",
                        value.to_ascii_lowercase()
                    )));
                }
            }
            // The client's network too: the /24 and /16 of an IPv4 address.
            let mut net = relay.ip.as_str();
            for _ in 0..2 {
                match net.rsplit_once('.') {
                    Some((up, _)) if up.contains('.') => {
                        net = up;
                        out.push(hash(&format!("H{prefix}:ip*{net}")));
                    }
                    _ => break,
                }
            }
        }
    }
    for uri in &view.uris {
        if let Some(host) = host_of(uri) {
            domains(&host, &mut out);
        }
    }
    for field in &view.mime_headers {
        if field.name.eq_ignore_ascii_case("content-type") {
            let kind = field.value.split(';').next().unwrap_or_default().trim();
            if !kind.is_empty() {
                out.push(hash(&format!("MIME:{}", kind.to_ascii_lowercase())));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A Received header without what differs in every message: the date after the `;`
/// and the queue id.
fn chew_received(value: &str) -> String {
    let before_date = value.split(';').next().unwrap_or_default();
    let mut kept = Vec::new();
    let mut skip_next = false;
    for word in before_date.split_whitespace() {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if word.eq_ignore_ascii_case("id") {
            skip_next = true;
            continue;
        }
        kept.push(word);
    }
    kept.join(" ")
}

/// The host of a URL (`scheme://host[:port]/...`, or `mailto:user@host`).
fn host_of(uri: &str) -> Option<String> {
    let rest = match uri.split_once("://") {
        Some((_, rest)) => rest,
        None => uri.strip_prefix("mailto:")?.rsplit_once('@')?.1,
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (host.contains('.') && host.len() <= 253).then_some(host)
}

/// `UD:` tokens for a host and each domain above it (`UD:a.b.example`, `UD:b.example`,
/// `UD:example`).
fn domains(host: &str, out: &mut Vec<u64>) {
    let mut rest = host;
    loop {
        out.push(hash(&format!("UD:{rest}")));
        match rest.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => rest = parent,
            _ => return,
        }
    }
}

/// Whether a character stays inside a word.
fn word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '-' | ',' | '@' | '*' | '!' | '_' | '\'' | '"' | '$' | '.'
        )
}

/// The tokens of `text`: body text (`body`: addresses and host names broken out, words
/// decomposed) or a header value, each under `prefix`.
fn words(text: &str, prefix: &str, body: bool, out: &mut Vec<u64>) {
    // Reused for every word's form without punctuation.
    let mut bare = String::new();
    for chunk in text.split(|c: char| !word_char(c)) {
        // "..." and "--" between words separate them (a common formatting slip); most
        // chunks have neither, and are a word as they are.
        let separated = chunk
            .as_bytes()
            .windows(2)
            .any(|pair| pair == b".." || pair == b"--");
        if separated {
            for word in chunk.split("...").flat_map(|w| w.split("--")) {
                one_word(word, prefix, body, &mut bare, out);
            }
        } else {
            one_word(chunk, prefix, body, &mut bare, out);
        }
    }
}

/// The tokens of one word (see [`words`]).
fn one_word(word: &str, prefix: &str, body: bool, bare: &mut String, out: &mut Vec<u64>) {
    let word = word.trim_matches(|c| matches!(c, '-' | '\'' | '"' | '.' | ','));
    let chars = word.chars().count();
    if chars < 3 || is_stop_word(word) {
        return;
    }
    if !body {
        // Addresses in headers as their parts (SpamAssassin's PRE_CHEW_ADDR_HEADERS).
        if let Some((user, domain)) = word.rsplit_once('@') {
            out.push(hash_parts(&[prefix, "U*", &user.to_lowercase()]));
            let domain = domain.to_ascii_lowercase();
            let mut rest = domain.as_str();
            while !rest.is_empty() {
                out.push(hash_parts(&[prefix, "D*", rest]));
                rest = rest.split_once('.').map_or("", |(_, parent)| parent);
            }
        }
    }
    if body {
        if let Some((user, domain)) = word
            .rsplit_once('@')
            .filter(|(u, d)| !u.is_empty() && d.contains('.'))
        {
            out.push(hash_parts(&[prefix, "U*", &user.to_lowercase()]));
            domains(&domain.to_ascii_lowercase(), out);
        } else if word.contains('.')
            && word
                .split('.')
                .nth(1)
                .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            domains(&word.to_ascii_lowercase(), out);
        }
    }
    let skipped;
    let word: &str = if chars > MAX_TOKEN_LENGTH && !word.contains('*') {
        let first: String = word.chars().take(7).collect();
        skipped = format!("sk:{first}");
        &skipped
    } else {
        word
    };
    if body {
        bare.clear();
        bare.extend(
            word.chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '*')),
        );
        if bare != word && !bare.is_empty() {
            out.push(hash_parts(&[prefix, bare]));
        }
        if word.chars().any(char::is_uppercase) {
            let lower = word.to_lowercase();
            out.push(hash_parts(&[prefix, &lower]));
            let bare_lower = bare.to_lowercase();
            if bare_lower != lower && !bare_lower.is_empty() {
                out.push(hash_parts(&[prefix, &bare_lower]));
            }
        }
    }
    out.push(hash_parts(&[prefix, word]));
}

/// A token's hash: the first 8 bytes of its BLAKE3 digest (stable across builds and
/// machines, so a learned database stays valid).
pub fn hash(token: &str) -> u64 {
    hash_parts(&[token])
}

/// The hash of the token `parts` make one after another (a prefix and a word), without
/// building it: BLAKE3 of the parts fed in turn is BLAKE3 of their concatenation.
fn hash_parts(parts: &[&str]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// Whether `word` is one of [`STOP_WORDS`] in any case: a binary search of the sorted
/// list with the word in lower case (every stop word is short ASCII).
fn is_stop_word(word: &str) -> bool {
    let mut lower = [0u8; 16];
    let Some(buf) = lower.get_mut(..word.len()) else {
        return false;
    };
    buf.copy_from_slice(word.as_bytes());
    buf.make_ascii_lowercase();
    STOP_WORDS
        .binary_search_by(|s| s.as_bytes().cmp(buf))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(tokens: &[u64], token: &str) -> bool {
        tokens.binary_search(&hash(token)).is_ok()
    }

    #[test]
    fn body_header_uri_and_attachment_tokens() {
        let raw = b"From: Prize Dept <winner@lottery.example>\r\nSubject: You WON\r\n\
            Message-ID: <x1@mail.lottery.example>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nClaim $1,000,000 NOW!!! Visit www.claims.lottery.example or \
            write to agent@claims.example... the supercalifragilisticexpialidocious offer\r\n\
            http://Tracker.Example.net/x?id=1\r\n--b\r\nContent-Type: application/zip; name=a.zip\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n";
        let view = MessageView::new(raw);
        let t = tokens(&view);
        for token in [
            "Claim",
            "claim",
            "$1,000,000",
            "NOW!!!",
            "NOW",
            "now!!!",
            "now",
            "UD:www.claims.lottery.example",
            "UD:lottery.example",
            "UD:example",
            "U*agent",
            "UD:claims.example",
            "sk:superca",
            "offer",
            "UD:tracker.example.net",
            "UD:example.net",
            "H*F:Prize",
            "H*F:U*winner",
            "H*F:D*lottery.example",
            "H*F:D*example",
            "H*m:U*x1",
            "H*m:D*mail.lottery.example",
            "MIME:application/zip",
            "MIME:text/plain",
        ] {
            assert!(has(&t, token), "{token}");
        }
        // Stop words, short words and the Subject header's own tokens are left out (the
        // subject is in the body text already, without a prefix).
        for token in ["the", "or", "to", "H*s:WON", "HSubject:WON"] {
            assert!(!has(&t, token), "{token}");
        }
        assert!(has(&t, "WON"));
        // Sorted, each once.
        assert!(t.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_sender_end_and_the_relays_are_tokens() {
        let raw = b"Return-Path: <bounce@bulk.example>\r\n\
            Received: from mx.here.example by box.here.example with LMTP id QWERTY; Sat, 5 Dec 2026 10:00:00 +0000\r\n\
            Received: from relay.isp.example ([198.51.100.7]) by mx.here.example with ESMTP id ASDFG; Sat, 5 Dec 2026 09:59:59 +0000\r\n\
            Received: from spamhost ([203.0.113.9]) by relay.isp.example with SMTP id ZXCVB; Sat, 5 Dec 2026 09:59:58 +0000\r\n\
            Received: from localhost by spamhost with local; Sat, 5 Dec 2026 09:59:57 +0000\r\n\
            From: a@b.example\r\nSubject: hi\r\n\r\nhello there\r\n";
        let view = MessageView::new(raw);
        let t = tokens(&view);
        for token in [
            "H*p:U*bounce",
            "H*p:D*bulk.example",
            "H*r:spamhost",
            "H*r:localhost",
        ] {
            assert!(has(&t, token), "{token}");
        }
        // The newer Received headers, dates and queue ids are left out.
        for token in [
            "H*r:box.here.example",
            "H*r:QWERTY",
            "H*r:ZXCVB",
            "H*r:2026",
            "H*r:Sat",
        ] {
            assert!(!has(&t, token), "{token}");
        }
        let relays = &view.relays;
        let any: Vec<_> = relays.untrusted.iter().chain(&relays.trusted).collect();
        assert!(!any.is_empty(), "{relays:?}");
        let first = any[0];
        let prefix = if relays.trusted.is_empty() {
            "*RU"
        } else {
            "*RT"
        };
        assert!(has(&t, &format!("H{prefix}:ip*{}", first.ip)), "{first:?}");
    }

    #[test]
    fn hashing_in_parts_is_hashing_the_whole() {
        assert_eq!(hash_parts(&["H*F:", "U*", "bob"]), hash("H*F:U*bob"));
        assert!(is_stop_word("The") && is_stop_word("you're") && is_stop_word("ABLE"));
        assert!(!is_stop_word("theirs") && !is_stop_word("informationally"));
        // Sorted, or the binary search would miss some.
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn hashes_are_stable() {
        // A learned database must survive a rebuild: the hash is fixed.
        assert_eq!(hash("viagra"), hash("viagra"));
        assert_ne!(hash("viagra"), hash("Viagra"));
        assert_eq!(
            hash(""),
            u64::from_le_bytes([0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6])
        );
    }
}
