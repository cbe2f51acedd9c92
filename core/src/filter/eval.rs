//! The `eval:` tests Gannet implements natively. Unknown ones are reported and never fire.

use super::rules::HeaderSource;
use super::scan::header_text;
use crate::mime::view::MessageView;

/// `html_test` arguments [`run`] knows.
const HTML_TESTS: &[&str] = &[
    "html",
    "image",
    "font_low_contrast",
    "font_invalid_color",
    "font_face_bad",
];

/// Network tests: SPF results and DNS list lookups. The DNS checks answer them before
/// the scan (`policy::dns_checks`) and the scan is told which fired; without that (no
/// network, as SpamAssassin's `-L`) they do not fire.
pub fn answered_by_dns_checks(function: &str) -> bool {
    function.starts_with("check_for_spf_") || function.starts_with("check_rbl")
}

/// `check_bayes(min, max)`: whether the Bayes probability is in (min, max] (from 0
/// itself when min is 0), as SpamAssassin's Bayes plugin tests it.
pub fn bayes_in_range(probability: f64, args: &[String]) -> bool {
    let number = |i: usize| {
        args.get(i).and_then(|a| {
            a.trim_matches(|c| c == '\'' || c == '"')
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    match (number(0), number(1)) {
        (Some(min), Some(max)) => (min == 0.0 || probability > min) && probability <= max,
        _ => false,
    }
}

/// Whether [`run`] knows this eval function with these arguments.
pub fn implemented(function: &str, args: &[String]) -> bool {
    let first = args.first().map(String::as_str).unwrap_or("");
    if answered_by_dns_checks(function) || function == "check_bayes" {
        return true;
    }
    match function {
        "html_test" => HTML_TESTS.contains(&first),
        "html_range" => matches!(first, "ratio" | "max_size" | "length"),
        "check_for_mime" => matches!(first, "mime_base64_count" | "mime_attachment"),
        "check_body_length" => args.first().is_some_and(|a| a.parse::<f64>().is_ok()),
        "check_freemail_replyto" => matches!(first, "" | "replyto" | "reply"),
        f if f.starts_with("html_") && super::html_evals::implemented(f, args) => true,
        "check_for_mime_html" | "check_for_mime_html_only" => true,
        "check_for_ascii_text_illegal" => true,
        "html_title_subject_ratio" => args.first().is_some_and(|a| a.parse::<f64>().is_ok()),
        "tvd_vertical_words" | "check_for_uppercase" => {
            args.iter().all(|a| a.parse::<f64>().is_ok()) && args.len() == 2
        }
        "multipart_alternative_difference" => {
            args.len() == 2
                && args[0].parse::<f64>().is_ok()
                && (args[1] == "undef" || args[1].parse::<f64>().is_ok())
        }
        _ => matches!(
            function,
            "check_for_missing_to_header"
                | "check_all_trusted"
                | "check_freemail_from"
                | "check_freemail_header"
                | "check_equal_from_domains"
                | "check_for_shifted_date"
                | "check_no_relays"
                | "helo_ip_mismatch"
                | "sorted_recipients"
                | "similar_recipients"
                | "check_for_forged_yahoo_received_headers"
                | "check_for_no_rdns_dotcom_helo"
                | "check_header_count_range"
                | "check_illegal_chars"
                | "subject_is_all_caps"
                | "check_for_missing_date"
                | "check_for_missing_date_header"
                | "check_for_missing_from"
                | "check_from_in_whitelist"
                | "check_from_in_welcomelist"
                | "check_from_in_blacklist"
                | "check_from_in_blocklist"
                | "check_outlook_message_id"
                | "gated_through_received_hdr_remover"
                | "check_mailfrom_matches_rcvd"
                | "check_for_no_hotmail_received_headers"
                | "check_relays_unparseable"
        ),
    }
}

/// What eval tests compute once per message though several read it (the stock rules
/// have eight date-shift ranges and three capitals ranges).
#[derive(Debug, Default)]
pub struct Memo {
    date_shift: Option<f64>,
    recipients: Option<Recipients>,
    uppercase: Option<f64>,
    /// The body's free mail addresses (None inside: too many to tell).
    body_freemails: Option<Option<Vec<String>>>,
    /// The header texts evals read (several read the same: From's addresses, the
    /// envelope sender, the Received headers), by source.
    texts: Vec<(String, Option<String>)>,
}

impl Memo {
    /// [`header_text`] of the source `name` (as in a header rule: `From:addr`).
    fn text(&mut self, view: &MessageView, name: &str) -> Option<String> {
        if let Some((_, text)) = self.texts.iter().find(|(n, _)| n == name) {
            return text.clone();
        }
        let text = get(view, name);
        self.texts.push((name.to_string(), text.clone()));
        text
    }
}

/// Result of an eval test, or None when the function is not implemented.
pub fn run(
    function: &str,
    args: &[String],
    view: &MessageView,
    rules: &super::compile::Globals,
    memo: &mut Memo,
) -> Option<bool> {
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<f64>().ok());
    Some(match function {
        "check_for_missing_to_header" => view.header_values("To").next().is_none(),
        "check_all_trusted" => !view.relays.trusted.is_empty() && view.relays.untrusted.is_empty(),
        "check_no_relays" => view.relays.trusted.is_empty() && view.relays.untrusted.is_empty(),
        "helo_ip_mismatch" => view.relays.helo_ip_mismatch(),
        // An HTML part; and (html_only) no plain-text part beside it.
        "check_for_mime_html" | "check_for_mime_html_only" => {
            let (html, plain) = text_part_kinds(view);
            html && (function == "check_for_mime_html" || !plain)
        }
        // check_for_mime('mime_base64_count' | 'mime_qp_count'): a part (the message
        // itself when it is not multipart) sent in that transfer encoding.
        // check_for_mime('mime_base64_count'): a part (the message itself when it is not
        // multipart) sent in base64. (SpamAssassin's 'mime_qp_count' ends up counting
        // needlessly encoded characters, not parts: not implemented.)
        // check_for_mime('mime_attachment'): a Content-Disposition that says attachment.
        "check_for_mime" if args.first().is_some_and(|a| a == "mime_attachment") => {
            view.has_attachment
        }
        "check_for_mime" => {
            if args.first().map(String::as_str) != Some("mime_base64_count") {
                return None;
            }
            let encoding = "base64";
            let multipart = view.header_values("Content-Type").next().is_some_and(|f| {
                f.value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/")
            });
            let top = view.headers.iter().filter(|_| !multipart);
            top.chain(&view.mime_headers)
                .filter(|f| f.name.eq_ignore_ascii_case("content-transfer-encoding"))
                .any(|f| f.value.to_ascii_lowercase().contains(encoding))
        }
        "check_for_forged_yahoo_received_headers" => forged_yahoo_received(view, memo),
        "check_for_ascii_text_illegal" => view.ascii_text_illegal,
        // html_title_subject_ratio(r): an HTML title more than r times as long as the
        // Subject (SpamAssassin's length of the Subject counts its line end).
        "html_title_subject_ratio" => {
            let ratio = num(0)?;
            match view.header_values("Subject").next() {
                None => false,
                Some(subject) => {
                    let length = subject.value.chars().count() as f64 + 1.0;
                    view.html_texts
                        .titles
                        .iter()
                        .filter(|t| !t.is_empty() && t.as_str() != "0")
                        .any(|t| t.chars().count() as f64 / length > ratio)
                }
            }
        }
        "sorted_recipients" => {
            memo.recipients
                .get_or_insert_with(|| recipients(view))
                .sorted
        }
        // similar_recipients(min, max): min <= similarity < max ('undef': no bound).
        "similar_recipients" => {
            let similarity = memo
                .recipients
                .get_or_insert_with(|| recipients(view))
                .similarity;
            let bound = |i: usize| args.get(i).and_then(|a| a.parse::<f64>().ok());
            bound(0).is_none_or(|min| similarity >= min)
                && bound(1).is_none_or(|max| similarity < max)
        }
        "check_for_no_rdns_dotcom_helo" => view.relays.no_rdns_dotcom_helo(),
        "check_header_count_range" => {
            let n = view.header_values(args.first()?).count() as f64;
            n >= num(1)? && n <= num(2)?
        }
        "html_test" => match args.first().map(String::as_str) {
            Some("html") => view.has_html,
            Some("image") => view.html_images > 0,
            Some("font_low_contrast") => view.html_style.font_low_contrast,
            Some("font_invalid_color") => view.html_style.font_invalid_color,
            Some("font_face_bad") => view.html_style.font_face_bad,
            _ => return None,
        },
        // html_range(test, min, max): SpamAssassin's min < value <= max (max may be
        // 'inf'), for 'ratio' (share of the HTML parts that is markup) and 'max_size'
        // (the largest font size; 3 is the default).
        "html_range" if args.first().is_some_and(|a| a == "length") => {
            super::html_evals::length_in_range(view, args)?
        }
        "html_range" => {
            let value = match args.first().map(String::as_str) {
                Some("ratio") => view.html_ratio,
                Some("max_size") => f64::from(view.html_style.max_size),
                _ => return None,
            };
            let max = args
                .get(2)
                .and_then(|a| a.parse::<f64>().ok())
                .unwrap_or(f64::INFINITY);
            view.has_html && value > num(1)? && value <= max
        }
        // check_illegal_chars('Header', ratio, count): bytes RFC 2045 does not allow in a
        // raw header (8-bit, C0 controls but TAB, LF and CR; DEL), at least `count` of
        // them and a share of at least `ratio`. Valid UTF-8 without controls passes.
        "check_illegal_chars" => {
            let header = args.first()?;
            let (ratio, count) = (num(1)?, num(2)?);
            let values: Vec<&str> = if header == "ALL" {
                view.headers.iter().map(|f| f.raw.as_str()).collect()
            } else {
                view.header_values(header).map(|f| f.raw.as_str()).collect()
            };
            illegal_chars(&values.join("\n"), header.eq_ignore_ascii_case("Subject")).is_some_and(
                |(illegal, length)| {
                    illegal as f64 / length as f64 >= ratio && illegal as f64 >= count
                },
            )
        }
        "subject_is_all_caps" => view
            .header_values("Subject")
            .next()
            .is_some_and(|s| subject_is_all_caps(&s.value, &s.raw)),
        "check_for_missing_date" | "check_for_missing_date_header" => {
            view.header_values("Date").next().is_none()
        }
        "check_for_missing_from" => view.header_values("From").next().is_none(),
        // FreeMail: an address of the From header (or of the named header) at a free mail
        // provider, optionally also matching a regex.
        "check_freemail_from" | "check_freemail_header" => {
            let (source, regex) = if function == "check_freemail_from" {
                ("From:addr".to_string(), args.first())
            } else {
                let header = args.first()?;
                let source = if header.contains(':') {
                    header.clone()
                } else {
                    format!("{header}:addr")
                };
                (source, args.get(1))
            };
            let addresses = memo.text(view, &source).unwrap_or_default();
            let mut free = addresses
                .lines()
                .map(str::to_ascii_lowercase)
                .filter(|a| is_freemail(a, rules));
            match regex {
                None => free.next().is_some(),
                Some(r) => with_regex(r, |re| free.any(|a| re.is_match(&a)))?,
            }
        }
        // The second-level domains of From and of the envelope sender differ.
        "check_equal_from_domains" => {
            let mut domain = |source: &str| {
                let addr = memo.text(view, source)?;
                let first = addr.lines().next()?.to_ascii_lowercase();
                let domain = registered_domain(first.rsplit_once('@')?.1);
                (!domain.is_empty()).then_some(domain)
            };
            match (domain("From:addr"), domain("EnvelopeFrom:addr")) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            }
        }
        // check_for_shifted_date(min, max): hours from the Received dates to the Date
        // header ('undef' for no bound).
        "check_for_shifted_date" => {
            let hours = *memo.date_shift.get_or_insert_with(|| date_shift(view)) / 3600.0;
            let bound = |i: usize| {
                args.get(i)
                    .filter(|a| *a != "undef")
                    .and_then(|a| a.parse::<f64>().ok())
            };
            bound(0).is_none_or(|min| hours >= min) && bound(1).is_none_or(|max| hours < max)
        }
        "check_from_in_whitelist" | "check_from_in_welcomelist" => {
            from_listed(view, &rules.whitelist_from)
        }
        "check_from_in_blacklist" | "check_from_in_blocklist" => {
            from_listed(view, &rules.blacklist_from)
        }
        "check_outlook_message_id" => outlook_message_id_invalid(view, memo),
        "gated_through_received_hdr_remover" => received_headers_removed(view, memo),
        "check_mailfrom_matches_rcvd" => sender_matches_relay(view, memo),
        // check_body_length(n): the body (after the header, as sent) is at most n bytes.
        "check_body_length" => view.body_length as f64 <= num(0)?,
        "check_for_no_hotmail_received_headers" => hotmail_without_hotmail_received(view, memo),
        "check_freemail_replyto" => {
            let reply = args.first().is_some_and(|a| a == "reply");
            freemail_replyto(view, rules, reply, memo)
        }
        "check_relays_unparseable" => view.relays.unparseable > 0,
        // multipart_alternative_difference(min, max): the difference is in (min, max]
        // (from 0 itself when min is 0; no upper bound when max is `undef`).
        "multipart_alternative_difference" => {
            let difference = view.alternative_difference;
            let min = num(0)?;
            (min == 0.0 || difference > min)
                && (args.get(1).is_some_and(|a| a == "undef") || difference <= num(1)?)
        }
        // check_for_uppercase(min, max): the share of capitals is in (min, max].
        "check_for_uppercase" => {
            let share = *memo
                .uppercase
                .get_or_insert_with(|| uppercase_percent(view));
            share > num(0)? && share <= num(1)?
        }
        "tvd_vertical_words" => {
            // SpamAssassin: a maximum of 100 or more means "up to 100 inclusive".
            let (min, max) = (num(0)?, num(1)?);
            let max = if max >= 100.0 { 101.0 } else { max };
            vertical_words(&view.body).is_some_and(|pct| pct as f64 >= min && (pct as f64) < max)
        }
        f if f.starts_with("html_") => super::html_evals::run(f, args, view)?,
        _ => return None,
    })
}

/// SpamAssassin's count of illegal bytes in a raw header, and the header's length in
/// bytes; None when it is empty or blank, or valid UTF-8 without control characters.
/// The raw header reached here through a lossy conversion: each U+FFFD stands for a
/// byte that was not UTF-8 (counted as one illegal byte, as a Latin-1 byte is).
fn illegal_chars(text: &str, subject: bool) -> Option<(usize, usize)> {
    if text.trim().is_empty() {
        return None;
    }
    let control = |c: char| matches!(c, '\x00'..='\x08' | '\x0b' | '\x0c' | '\x0e'..='\x1f');
    let valid_utf8 = !text.contains('\u{FFFD}');
    if valid_utf8 && !text.is_ascii() && !text.chars().any(control) {
        return None;
    }
    let (mut illegal, mut length) = (0usize, 0usize);
    for c in text.chars() {
        let bytes = if c == '\u{FFFD}' { 1 } else { c.len_utf8() };
        length += bytes;
        if control(c) || c == '\x7f' || !c.is_ascii() {
            illegal += bytes;
        }
    }
    // The subject may have one cent, pound or registered sign (bytes A2, A3, AE).
    if subject && illegal > 0 && valid_utf8 {
        let exempt = text
            .bytes()
            .filter(|b| matches!(b, 0xa2 | 0xa3 | 0xae))
            .count();
        if exempt == 1 {
            illegal -= 1;
        }
    }
    (length > 0).then_some((illegal, length))
}

/// A charset whose text looks like capitals to a byte-wise count (SpamAssassin's
/// CHARSETS_LIKELY_TO_FP_AS_CAPS: Japanese, Chinese, Cyrillic, Thai ones).
fn capitals_heavy_charset(charset: &str) -> bool {
    const NAMES: [&str; 12] = [
        "koi",
        "jp",
        "jis",
        "euc",
        "gb",
        "big5",
        "isoir",
        "cp1251",
        "windows-1251",
        "georgianps",
        "pt154",
        "tis",
    ];
    let charset = charset.to_ascii_lowercase();
    !charset.is_empty()
        && charset
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && NAMES.iter().any(|name| charset.contains(name))
}

/// What `check_for_uppercase` counts in a line.
#[derive(Debug, Default, PartialEq)]
struct LetterCounts {
    /// Lower-case ASCII letters and digits.
    lower: usize,
    /// Capitals.
    upper: usize,
    /// Bytes that continue a UTF-8 sequence (the line's characters are the others).
    continuing: usize,
}

/// [`LetterCounts`] of `line`, counted in blocks of up to 255 bytes with byte-wide sums,
/// which the compiler turns into vector compares and adds (a body is read a few
/// kilobytes at a time for every message).
fn letter_counts(line: &[u8]) -> LetterCounts {
    let mut counts = LetterCounts::default();
    for block in line.chunks(255) {
        let count = |test: fn(u8) -> bool| -> usize {
            usize::from(block.iter().fold(0u8, |n, &b| n + u8::from(test(b))))
        };
        counts.lower += count(|b| b.wrapping_sub(b'a') < 26 || b.wrapping_sub(b'0') < 10);
        counts.upper += count(|b| b.wrapping_sub(b'A') < 26);
        counts.continuing += count(|b| b & 0xC0 == 0x80);
    }
    counts
}

/// SpamAssassin's `check_for_uppercase` measure: over the body's lines with a space
/// between words (not lines of base64), the share of capitals among letters and digits,
/// in percent; 0 for under 200 characters of such lines or a capitals-heavy charset.
fn uppercase_percent(view: &MessageView) -> f64 {
    let top = view.header_values("Content-Type");
    let html_parts = view
        .mime_headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("Content-Type"))
        .filter(|f| f.value.to_ascii_lowercase().starts_with("text/html"));
    if top
        .chain(html_parts)
        .filter_map(|f| charset_of(&f.value))
        .any(|c| capitals_heavy_charset(&c))
    {
        return 0.0;
    }
    let (mut length, mut lower, mut upper) = (0usize, 0usize, 0usize);
    let base64_word = |w: &str| {
        (60..=76).contains(&w.len())
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    };
    for line in view.body.lines() {
        let mut words = line.split_whitespace();
        let (Some(first), Some(second)) = (words.next(), words.next()) else {
            continue;
        };
        if base64_word(first) && base64_word(second) {
            continue;
        }
        let counts = letter_counts(line.as_bytes());
        length += line.len() - counts.continuing;
        lower += counts.lower;
        upper += counts.upper;
    }
    if length < 200 || upper + lower == 0 {
        return 0.0;
    }
    upper as f64 / (upper + lower) as f64 * 100.0
}

/// The charset parameter of a Content-Type value, as SpamAssassin reads it.
fn charset_of(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("charset=")? + "charset=".len();
    let rest = content_type.get(at..)?;
    let value = match rest.chars().next()? {
        quote @ ('"' | '\'') => rest.get(1..)?.split(quote).next()?,
        _ => rest.split(char::is_whitespace).next()?,
    };
    Some(value.to_string())
}

/// SpamAssassin's `subject_is_all_caps`: a subject of several words and at least 10
/// characters (past any `Re:`/`Fwd:` prefixes) whose ASCII letters are all capitals,
/// unless it is encoded in a charset whose encoded form is mostly capitals anyway.
fn subject_is_all_caps(decoded: &str, raw: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "re", "fwd", "fw", "aw", "antwort", "wg", "sv", "vb", "vs", "vl",
    ];
    let mut subject = decoded.trim();
    // Strip reply and forward prefixes, however many.
    'prefixes: loop {
        for prefix in PREFIXES {
            let rest = subject
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .and_then(|_| subject.get(prefix.len()..))
                .and_then(|rest| rest.strip_prefix(':'));
            if let Some(rest) = rest {
                subject = rest.trim_start();
                continue 'prefixes;
            }
        }
        break;
    }
    if !subject.contains(char::is_whitespace) || subject.chars().count() < 10 {
        return false;
    }
    let lower = raw.to_ascii_lowercase();
    let capitals_charset = lower.split("=?").skip(1).any(|encoded| {
        encoded.contains('?') && capitals_heavy_charset(encoded.split('?').next().unwrap_or(""))
    });
    if capitals_charset {
        return false;
    }
    let mut letters = subject.bytes().filter(u8::is_ascii_alphabetic).peekable();
    letters.peek().is_some() && letters.all(|b| b.is_ascii_uppercase())
}

/// SpamAssassin's `tvd_vertical_words` measure: over the body's lines (the subject, then
/// a paragraph per line) longer than 5 characters, the highest share of spaces against
/// other characters, in whole percent (100 when spaces are the majority); None when no
/// line is that long. Text with words spelled out letter by letter scores high, text
/// with hardly a space (a run of words glued together) scores low.
fn vertical_words(body: &str) -> Option<u32> {
    body.lines()
        .filter_map(|line| {
            let length = line.chars().count();
            if length <= 5 {
                return None;
            }
            let spaces = line.bytes().filter(|&b| b == b' ').count();
            let others = length - spaces;
            Some(if spaces > others || others == 0 {
                100
            } else {
                (100 * spaces / others) as u32
            })
        })
        .max()
}

/// True when the From address matches one of the patterns (`*@domain`, `user@*`, exact).
pub fn from_listed(view: &MessageView, patterns: &[String]) -> bool {
    let Some(from) = view.header_values("From").next() else {
        return false;
    };
    let address = from
        .value
        .rsplit_once('<')
        .map_or(from.value.as_str(), |(_, a)| a.trim_end_matches('>'))
        .trim()
        .to_lowercase();
    patterns.iter().any(|p| address_matches(&address, p))
}

pub fn address_matches(address: &str, pattern: &str) -> bool {
    let pattern = pattern.to_lowercase();
    match pattern.split_once('*') {
        None => address == pattern,
        Some((head, tail)) => {
            address.len() >= head.len() + tail.len()
                && address.starts_with(head)
                && address.ends_with(tail)
        }
    }
}

/// Seconds from the dates of the `Received` headers to the `Date` header, as
/// SpamAssassin measures it: the local delivery and fetchmail hops at the top are left
/// out, a last hop with no difference too, and of the rest the smallest difference in
/// absolute value counts. 0 when either side has no date.
fn date_shift(view: &MessageView) -> f64 {
    let Some(date) = view
        .header_values("Date")
        .next()
        .and_then(|d| super::dates::parse(&d.value))
    else {
        return 0.0;
    };
    let date = date as f64;
    let mut received: Vec<&str> = view
        .header_values("Received")
        .map(|f| f.value.as_str())
        .collect();
    let is_local = |r: &str| {
        r.starts_with("from localhost ")
            || r.split(" by ")
                .next()
                .is_some_and(|from| from.contains("127.0.0.1"))
            || r.contains(" invoked by uid ")
    };
    if received.first().is_some_and(|r| is_local(r))
        && received
            .get(1)
            .is_some_and(|r| r.contains("by localhost with") && r.contains("(fetchmail-"))
    {
        received.drain(..2);
    }
    let mut diffs: Vec<f64> = received
        .iter()
        .filter_map(|r| received_date(r))
        .map(|t| date - t as f64)
        .collect();
    if diffs.len() > 1 && diffs.last() == Some(&0.0) {
        diffs.pop();
    }
    diffs
        .into_iter()
        .min_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(0.0)
}

/// The date of a `Received` header: "D Mon YYYY HH:MM:SS ZONE" after its semicolon.
fn received_date(received: &str) -> Option<i64> {
    let after = received
        .rsplit_once(';')
        .map_or(received, |(_, d)| d)
        .trim();
    super::dates::parse(after)
}

/// A fixed regex of the evals here, compiled on first use (case-sensitive unless it says
/// otherwise, as SpamAssassin writes them).
macro_rules! pattern {
    ($name:ident, $re:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($re).expect("valid"));
    };
}

pattern!(
    OUTLOOK_MSGID,
    r"^<[0-9a-f]{4}([0-9a-f]{8})\$[0-9a-f]{8}\$[0-9a-f]{8}@"
);
pattern!(EZMLM_LIST, r"(?m)^contact \S+@\S+; run by ezmlm$");
pattern!(EZMLM_DELIVERED_TO, r"(?m)^mailing list \S+@\S+");
pattern!(
    QMAIL_INVOKED,
    r"qmail \d+ invoked (?:from network|by .{3,20})\); \d+ ... \d+"
);
pattern!(MSN_GROUPS, r"from groups\.msn\.com \(\S+\.msn\.com ");

/// A header as SpamAssassin's `get` gives it: every value, one per line.
fn get(view: &MessageView, name: &str) -> Option<String> {
    header_text(view, &HeaderSource::parse(name))
}

/// SpamAssassin's check_outlook_message_id: a Message-ID in Outlook's form carries a
/// time token; it must be near the time of the Date header or of the first Received.
fn outlook_message_id_invalid(view: &MessageView, memo: &mut Memo) -> bool {
    let Some(id) = memo.text(view, "MESSAGEID") else {
        return false;
    };
    let Some(token) = OUTLOOK_MSGID
        .captures(&id)
        .and_then(|c| i64::from_str_radix(&c[1], 16).ok())
    else {
        return false;
    };
    // Outlook's clock: the token grows by one every 2^32 / 10^7 / 42.95... seconds.
    let expected = |seconds: i64| (seconds as f64 * 0.0023283064365387 + 27111902.8329849) as i64;
    let fudge = 250;
    let date = view
        .header_values("Date")
        .next()
        .and_then(|d| mail_parser::DateTime::parse_rfc822(&d.value))
        .map_or(0, |d| d.to_timestamp());
    if (token - expected(date)).abs() < fudge {
        return false;
    }
    let received = view
        .header_values("Received")
        .find_map(|r| received_date(&r.value))
        .unwrap_or(0);
    (token - expected(received)).abs() >= fudge
}

/// The domain a name is registered under: its last two labels, three under the
/// common second-level public suffixes of country domains (`example.co.uk`).
fn registered_domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    let keep = match labels.as_slice() {
        [.., second, tld]
            if n >= 3
                && tld.len() == 2
                && matches!(
                    *second,
                    "co" | "com" | "net" | "org" | "gov" | "ac" | "edu" | "ne" | "or"
                ) =>
        {
            3
        }
        _ => 2,
    };
    labels[n.saturating_sub(keep)..].join(".")
}

/// SpamAssassin's check_mailfrom_matches_rcvd: the envelope sender's domain is that of
/// the relay that handed the message in (the first untrusted one, else any trusted one),
/// by its reverse DNS name.
fn sender_matches_relay(view: &MessageView, memo: &mut Memo) -> bool {
    let Some(sender) = memo.text(view, "EnvelopeFrom:addr") else {
        return false;
    };
    let Some((_, domain)) = sender.lines().next().unwrap_or("").rsplit_once('@') else {
        return false;
    };
    if !domain.contains('.') {
        return false;
    }
    let domain = registered_domain(domain);
    let relays = match view.relays.untrusted.first() {
        Some(first) => std::slice::from_ref(first),
        None => view.relays.trusted.as_slice(),
    };
    relays
        .iter()
        .filter(|r| !r.rdns.is_empty())
        .any(|r| registered_domain(&r.rdns) == domain)
}

pattern!(YAHOO_FROM, r"(?i)\byahoo\.com$");
// Received lines of Yahoo's own servers (SpamAssassin 4.0.1's exemptions): web mail,
// sonic web mail, SMTP submission, groups, "mail this story to a friend".
pattern!(
    YAHOO_OWN_SERVERS,
    r"by web\S+\.mail\S*\.yahoo\.com via HTTP|by sonic\S+\.consmr\.mail\S*\.yahoo\.com with HTTP|by smtp\S+\.yahoo\.com with SMTP|from \[\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\] by \S+\.(?:groups|scd|dcn)\.yahoo\.com with NNFMP|by \w+\.\w+\.yahoo\.com \(\d+\.\d+\.\d+/\d+\.\d+\.\d+\)(?: with ESMTP)? id \w+"
);
pattern!(YAHOO_BULK, r"\bmailer\d+\.bulk\.scd\.yahoo\.com\b");

/// SpamAssassin 4.0.1's check_for_forged_yahoo_received_headers (FORGED_YAHOO_RCVD): From
/// a yahoo.com address, but not handed over by a host with Yahoo's reverse name, and no
/// Received header of Yahoo's own servers (web mail, SMTP submission, groups, bulk "mail
/// this story"). Mail through lists that drop Received headers is not judged.
fn forged_yahoo_received(view: &MessageView, memo: &mut Memo) -> bool {
    let from = memo.text(view, "From:addr").unwrap_or_default();
    if !YAHOO_FROM.is_match(&from) {
        return false;
    }
    let resent = memo.text(view, "Resent-From").is_some() && memo.text(view, "Resent-To").is_some();
    let received = resent
        .then(|| memo.text(view, "X-Received"))
        .flatten()
        .or_else(|| memo.text(view, "Received"))
        .unwrap_or_default();
    let received = received.split_whitespace().collect::<Vec<_>>().join(" ");
    if received_headers_removed(view, memo) {
        return false;
    }
    let yahoo_rdns = |relays: &[crate::mime::relays::Relay]| {
        relays.iter().any(|r| r.rdns.ends_with(".yahoo.com"))
    };
    // Handed over by a host with Yahoo's reverse name (a trusted relay, or the first
    // untrusted one).
    if yahoo_rdns(&view.relays.trusted)
        || yahoo_rdns(view.relays.untrusted.get(..1).unwrap_or_default())
    {
        return false;
    }
    let exempt = YAHOO_OWN_SERVERS.is_match(&received)
        || (YAHOO_BULK.is_match(&received)
            && from.to_ascii_lowercase().ends_with("@reply.yahoo.com"));
    !exempt
}

pattern!(RECIPIENT_ADDRESS, r"[\w.=-]+@\w+(?:[\w.-]+\.)+\w+");
pattern!(COMMENT, r"\(.*?\)");

/// What SpamAssassin's recipient checks find in To/Cc (and Bcc when those have fewer
/// than five addresses).
#[derive(Debug, Clone, Copy)]
struct Recipients {
    /// Seven or more addresses, in sorted order (a list worked through alphabetically).
    sorted: bool,
    /// Of every pair of five or more addresses: how often the first two letters of the
    /// user agree, or those of two different hosts (a dictionary attack's neighbours).
    similarity: f64,
}

fn recipients(view: &MessageView) -> Recipients {
    let mut found: Vec<String> = Vec::new();
    for header in ["ToCc", "Bcc"] {
        let text = get(view, header).unwrap_or_default();
        let text = COMMENT.replace_all(&text, "");
        found.extend(
            RECIPIENT_ADDRESS
                .find_iter(&text)
                .map(|m| m.as_str().to_string()),
        );
        if found.len() >= 5 {
            break;
        }
    }
    // Repeats next to each other count once; at most 256.
    let mut addresses: Vec<String> = Vec::new();
    for a in found {
        if addresses.len() == 256 {
            break;
        }
        if addresses.last().is_none_or(|p| !p.eq_ignore_ascii_case(&a)) {
            addresses.push(a);
        }
    }
    let sorted = addresses.len() >= 7 && addresses.windows(2).all(|w| w[0] <= w[1]);
    let mut similarity = 0.0;
    if addresses.len() >= 5 {
        // Each address's user prefix, host and host prefix, cut once.
        let prefix = |s: &str| s.chars().take(2).collect::<String>();
        let parts: Vec<(String, &str, String)> = addresses
            .iter()
            .map(|a| {
                let host = a.split_once('@').map_or("", |(_, h)| h);
                (prefix(a), host, prefix(host))
            })
            .collect();
        let (mut hits, mut pairs) = (0usize, 0usize);
        for (i, (user_i, host_i, host_prefix_i)) in parts.iter().enumerate() {
            for (user_j, host_j, host_prefix_j) in &parts[i + 1..] {
                hits += usize::from(user_i == user_j);
                hits += usize::from(host_prefix_i == host_prefix_j && host_i != host_j);
                pairs += 1;
            }
        }
        similarity = hits as f64 / pairs as f64;
    }
    Recipients { sorted, similarity }
}

/// Whether the message has a text/html part, and a text/plain one (a message without a
/// Content-Type is plain text).
fn text_part_kinds(view: &MessageView) -> (bool, bool) {
    let top = view
        .header_values("Content-Type")
        .next()
        .map_or("text/plain".to_string(), |f| f.value.to_ascii_lowercase());
    let kinds = std::iter::once(top).chain(
        view.mime_headers
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("content-type"))
            .map(|f| f.value.to_ascii_lowercase()),
    );
    let (mut html, mut plain) = (false, false);
    for kind in kinds {
        let kind = kind.split(';').next().unwrap_or_default().trim();
        html |= kind == "text/html";
        plain |= kind.starts_with("text") && kind != "text/html";
    }
    (html, plain)
}

/// SpamAssassin's gated_through_received_hdr_remover: lists that remove Received
/// headers (ezmlm's, MSN groups), or none at all, make Message-ID tests meaningless.
fn received_headers_removed(view: &MessageView, memo: &mut Memo) -> bool {
    let Some(received) = memo.text(view, "Received") else {
        return true;
    };
    let ezmlm = memo
        .text(view, "Mailing-List")
        .is_some_and(|l| EZMLM_LIST.is_match(&l))
        && memo
            .text(view, "Delivered-To")
            .is_some_and(|d| EZMLM_DELIVERED_TO.is_match(&d))
        && QMAIL_INVOKED.is_match(&received);
    ezmlm || MSN_GROUPS.is_match(&received)
}

// Role and machine addresses the FreeMail plugin never counts (its default welcomelist).
pattern!(
    FREEMAIL_EXEMPT,
    r"(?i)^(?:abuse|support|sales|info|helpdesk|contact|kontakt|(?:post|host|domain)master|undisclosed.*|request-[a-f0-9]{16}|bounced?-|[a-f0-9]{8}(?:\.[a-f0-9]{8}|-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})|.+=.+=.+)@"
);

/// Whether `address` (lower case) is at a free mail provider.
fn is_freemail(address: &str, rules: &super::compile::Globals) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !FREEMAIL_EXEMPT.is_match(address)
        && (rules.freemail.contains(domain)
            || rules
                .freemail_wildcards
                .as_ref()
                .is_some_and(|r| r.is_match(domain)))
}

thread_local! {
    /// Regexes that eval arguments carry, compiled once per thread.
    static EVAL_REGEXES: std::cell::RefCell<std::collections::HashMap<String, Option<regex::Regex>>> =
        Default::default();
}

/// Runs `f` with the case-insensitive regex `pattern` (None if it does not compile).
fn with_regex<T>(pattern: &str, f: impl FnOnce(&regex::Regex) -> T) -> Option<T> {
    EVAL_REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(&format!("(?i){pattern}")).ok());
        re.as_ref().map(f)
    })
}

pattern!(
    PICKUP_SERVICE,
    r"from mail pickup service by hotmail\.com with Microsoft SMTPSVC;"
);
pattern!(
    HOTMAIL_RELAYED,
    r"from (?:\S*\.)?hotmail.com \(\S+\.hotmail(?:\.msn)?\.com[ )]"
);
pattern!(
    OUTLOOK_PROTECTION,
    r"from \S*\.outbound\.protection\.outlook\.com \(\S+\.outbound\.protection\.outlook\.com[ )]"
);
pattern!(
    OUTLOOK_PRD,
    r"from \S*\.(?:eur|nam)prd\d+\.prod\.outlook\.com \((?:\d{1,3}\.){3}\d{1,3}|from \S*\.(?:eur|nam)prd\d+\.prod\.outlook\.com \([0-9a-fA-F]*:[0-9a-fA-F:.]+\)"
);
pattern!(
    HOTMAIL_BRACKETED,
    r"from \S*\.hotmail.com \(\[(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F]*:[0-9a-fA-F:.]+)\][ ):]"
);
pattern!(
    HOTMAIL_HTTP,
    r"from \S+ by \S+\.hotmail(?:\.msn)?\.com with HTTP;"
);
pattern!(YAHOO_WEB, r"from \[66\.218.\S+\] by \S+\.yahoo\.com");
pattern!(HOTMAIL_HELO, r"(?:from |HELO |helo=)\S*hotmail\.com\b");
pattern!(
    IP_ADDRESS,
    r"(?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F]{0,4}:[0-9a-fA-F:.]*:[0-9a-fA-F.]+"
);
pattern!(MSN_GROUPS_TO, r"(?i)<(\S+)@groups\.msn\.com>");
pattern!(
    MSN_GROUPS_PICKUP,
    r"from mail pickup service by ((?:p\d\d\.)groups\.msn\.com)\b"
);

/// SpamAssassin's `check_for_msn_groups_headers`: mail of an MSN group, which Microsoft
/// passes from Hotmail straight to the group's servers.
fn msn_groups(view: &MessageView, memo: &mut Memo) -> bool {
    let to = memo.text(view, "To").unwrap_or_default();
    let Some(list) = MSN_GROUPS_TO.captures(&to).and_then(|c| c.get(1)) else {
        return false;
    };
    let list = list.as_str();
    let received = memo.text(view, "Received").unwrap_or_default();
    let Some(server) = MSN_GROUPS_PICKUP.captures(&received).and_then(|c| c.get(1)) else {
        return false;
    };
    let id = memo.text(view, "Message-Id").unwrap_or_default();
    if list == "notifications" {
        id.starts_with('<') && id.contains(&format!("@{}>", server.as_str()))
    } else {
        let sender = memo.text(view, "EnvelopeFrom:addr").unwrap_or_default();
        id.starts_with(&format!("<{list}-"))
            && id.contains("@groups.msn.com>")
            && sender.contains(&format!("{list}-bounce@groups.msn.com"))
    }
}

/// SpamAssassin's `check_for_no_hotmail_received_headers` (FORGED_HOTMAIL_RCVD2): From a
/// hotmail.com address, though no Received header shows Hotmail's servers (nor a relay
/// that only claims the name: that is FORGED_HOTMAIL_RCVD's).
fn hotmail_without_hotmail_received(view: &MessageView, memo: &mut Memo) -> bool {
    // The From test first: it is the only cheap one, and most mail is not from Hotmail
    // (the Received tests below cost ~10 µs a message).
    let from = memo.text(view, "From:addr").unwrap_or_default();
    let first = from.lines().next().unwrap_or_default().to_ascii_lowercase();
    let from_hotmail = first.ends_with("hotmail.com")
        && first
            .strip_suffix("hotmail.com")
            .and_then(|before| before.chars().last())
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
    if !from_hotmail {
        return false;
    }
    let received = memo
        .text(view, "Received")
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if PICKUP_SERVICE.is_match(&received) || msn_groups(view, memo) {
        return false;
    }
    let ip = memo
        .text(view, "X-Originating-Ip")
        .is_some_and(|v| IP_ADDRESS.is_match(&v));
    let originator = memo
        .text(view, "X-OriginatorOrg")
        .is_some_and(|v| v.contains("hotmail.com") || v.contains("msonline-outlook"));
    if received_headers_removed(view, memo) {
        return false;
    }
    let relayed = (ip
        && (HOTMAIL_RELAYED.is_match(&received)
            || HOTMAIL_BRACKETED.is_match(&received)
            || HOTMAIL_HTTP.is_match(&received)
            || YAHOO_WEB.is_match(&received)))
        || (originator
            && (OUTLOOK_PROTECTION.is_match(&received) || OUTLOOK_PRD.is_match(&received)));
    !relayed && !HOTMAIL_HELO.is_match(&received)
}

// Envelope senders of lists and robots: FreeMail's freemail_skip_bulk_envfrom.
pattern!(
    BULK_ENVELOPE_SENDER,
    r"(?i)(?:^(?:post|host|domain)master|^double-bounce|^(?:sentto|owner|return|(?:gr)?bounced?)-.+|-(?:request|bounces?|admin|owner)|\b(?:do[._-t]?)?no[._-t]?repl(?:y|ies)|.+=.+)@"
);
// FreeMail's email_regex (the valid-TLD list approximated by letters).
pattern!(
    BODY_EMAIL,
    r"(?i)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,59}[a-z0-9])?\.){1,4}[a-z]{2,24}\b"
);
pattern!(URL_WITH_AT, r"(?i)<?https?://\S{0,255}(?:@|%40)\S{0,255}");
pattern!(QUOTED_BY, r"(?i)^\s{1,10}([a-z]{2,11}):");

/// FreeMail's `_parse_body`: the free mail addresses the body gives (mailto links, then
/// the text's addresses, but those in `<>` or before a `wrote:`-like word), or None when
/// it names too many addresses (5) or free mail addresses (3) to tell.
fn body_freemails(view: &MessageView, rules: &super::compile::Globals) -> Option<Vec<String>> {
    let mut emails: Vec<String> = Vec::new();
    let add = |email: String, emails: &mut Vec<String>| {
        if !emails.contains(&email) {
            emails.push(email);
        }
    };
    // SpamAssassin reads mailto links from HTML anchors only (the text's addresses come
    // below); Gannet's URI list does not say where each came from, so only HTML mail.
    for uri in view.uris.iter().filter(|_| view.has_html) {
        if let Some(rest) = uri
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("mailto:"))
            .and(uri.get(7..))
        {
            if let Some(m) = BODY_EMAIL.find(rest).filter(|m| m.start() == 0) {
                add(m.as_str().to_ascii_lowercase(), &mut emails);
                if emails.len() >= 20 {
                    break;
                }
            }
        }
    }
    'body: for line in view.body.lines() {
        let line = URL_WITH_AT.replace_all(line, " ");
        for m in BODY_EMAIL.find_iter(&line) {
            let before = line.get(..m.start()).unwrap_or_default();
            let after = line.get(m.end()..).unwrap_or_default();
            let lower_before = before.to_ascii_lowercase();
            let in_brackets = after.starts_with('>')
                && !lower_before.ends_with("mailto:")
                && !lower_before.ends_with("mailto:<");
            let quoted = QUOTED_BY
                .captures(after)
                .and_then(|c| c.get(1))
                .is_some_and(|w| {
                    let w = w.as_str().to_ascii_lowercase();
                    ![
                        "fax", "facsi", "tel", "phone", "mail", "email", "e-mail", "emai", "e-mai",
                    ]
                    .iter()
                    .any(|p| w.starts_with(p))
                });
            if in_brackets || quoted {
                continue;
            }
            add(m.as_str().to_ascii_lowercase(), &mut emails);
            if emails.len() >= 40 {
                break 'body;
            }
        }
    }
    let mut free = Vec::new();
    for (n, email) in emails.into_iter().enumerate() {
        if n + 1 == 5 {
            return None;
        }
        if is_freemail(&email, rules) {
            if free.len() + 1 == 3 {
                return None;
            }
            free.push(email);
        }
    }
    Some(free)
}

/// FreeMail's `check_freemail_replyto` (FREEMAIL_REPLYTO): From and Reply-To are
/// different free mail addresses, or Reply-To is one and the body gives another. With
/// `reply` (FREEMAIL_REPLY): the address replies go to (Reply-To, else From) is free mail
/// and the body gives another.
/// `memo` keeps [`body_freemails`] for the message, which both forms may read.
fn freemail_replyto(
    view: &MessageView,
    rules: &super::compile::Globals,
    reply: bool,
    memo: &mut Memo,
) -> bool {
    if memo
        .text(view, "EnvelopeFrom")
        .and_then(|e| e.lines().next().map(str::to_owned))
        .is_some_and(|e| BULK_ENVELOPE_SENDER.is_match(&e))
    {
        return false;
    }
    let mut addresses = |source: &str| -> Vec<String> {
        memo.text(view, source)
            .unwrap_or_default()
            .lines()
            .map(str::to_ascii_lowercase)
            .filter(|a| !a.is_empty())
            .collect()
    };
    let from = addresses("From:addr");
    let reply_to = addresses("Reply-To:addr");
    let from_free = from.iter().any(|a| is_freemail(a, rules));
    let reply_free = reply_to.iter().any(|a| is_freemail(a, rules));
    let from_not_in_reply_to = !from.iter().any(|f| reply_to.contains(f));
    if from_free && reply_free && from_not_in_reply_to {
        return true;
    }
    let replies_to = if !reply {
        if !reply_free {
            return false;
        }
        &reply_to
    } else if (!reply_to.is_empty() && !reply_free) || !from_free {
        return false;
    } else if reply_free {
        &reply_to
    } else {
        &from
    };
    memo.body_freemails
        .get_or_insert_with(|| body_freemails(view, rules))
        .as_ref()
        .is_some_and(|body| body.iter().any(|b| replies_to.iter().any(|r| r != b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_counts_count_as_byte_by_byte() {
        let line = "Hello WORLD 42 é ü Ж €uro ~!@ ".repeat(40);
        let bytes = line.as_bytes();
        let expected = LetterCounts {
            lower: bytes
                .iter()
                .filter(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                .count(),
            upper: bytes.iter().filter(|b| b.is_ascii_uppercase()).count(),
            continuing: line.len() - line.chars().count(),
        };
        assert!(line.len() > 1000, "several blocks");
        assert_eq!(letter_counts(bytes), expected);
        assert_eq!(letter_counts(b""), LetterCounts::default());
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            letter_counts(&all),
            LetterCounts {
                lower: 36,
                upper: 26,
                continuing: 64
            }
        );
    }
}
