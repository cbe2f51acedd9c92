//! What a verdict does to a delivered message besides filing it, from the rule files:
//! SpamAssassin's `rewrite_header Subject` tag and `add_header` lines, with their
//! template tags (`_SCORE_`, `_REQD_`, `_TESTS_`, `_YESNO_`, `_YESNOCAPS_`, `_STARS_`)
//! expanded. `report_safe` is read and not applied: spam is filed in Junk intact.

use super::scan::Verdict;

/// Which messages an `add_header` line is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Spam,
    Ham,
    All,
}

/// The `X-Spam-*` headers Gannet writes itself; `add_header` does not replace them.
const OWN_HEADERS: &[&str] = &["Flag", "Score", "Level", "Status"];

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Actions {
    /// Prefix of the Subject of spam (`rewrite_header Subject ...`).
    pub subject_tag: Option<String>,
    /// `add_header spam|ham|all Name template`: `X-Spam-Name` headers.
    pub add_headers: Vec<(When, String, String)>,
}

impl Actions {
    /// Reads `add_header`'s arguments; false if they do not parse.
    pub fn add_header(&mut self, args: &str) -> bool {
        let mut parts = args.trim().splitn(3, char::is_whitespace);
        let when = match parts.next().map(str::to_ascii_lowercase).as_deref() {
            Some("spam") => When::Spam,
            Some("ham") => When::Ham,
            Some("all") => When::All,
            _ => return false,
        };
        let (Some(name), Some(template)) = (parts.next(), parts.next()) else {
            return false;
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            self.add_headers
                .push((when, name.to_string(), template.trim().to_string()));
        }
        valid
    }

    /// Header lines (CRLF-terminated) that `add_header` asks for on this verdict.
    pub fn headers(&self, verdict: &Verdict, required: Option<f64>, spam: bool) -> String {
        let mut out = String::new();
        for (when, name, template) in &self.add_headers {
            let applies = match when {
                When::All => true,
                When::Spam => spam,
                When::Ham => !spam,
            };
            if applies && !OWN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                let value = expand(template, verdict, required, spam);
                out.push_str(&format!("X-Spam-{name}: {value}\r\n"));
            }
        }
        out
    }

    /// The Subject prefix for this verdict, when it is spam and a tag is configured.
    pub fn subject_tag(
        &self,
        verdict: &Verdict,
        required: Option<f64>,
        spam: bool,
    ) -> Option<String> {
        let tag = self.subject_tag.as_deref().filter(|_| spam)?;
        Some(expand(tag, verdict, required, spam))
    }
}

/// A template with SpamAssassin's tags replaced; CR and LF removed, so that a template
/// can never add a header line of its own.
fn expand(template: &str, verdict: &Verdict, required: Option<f64>, spam: bool) -> String {
    let tests: Vec<&str> = verdict.hits.iter().map(|h| h.name.as_str()).collect();
    let tests = if tests.is_empty() {
        "none".to_string()
    } else {
        tests.join(",")
    };
    template
        .replace("_SCORE_", &format!("{:.1}", verdict.score))
        .replace(
            "_REQD_",
            &required.map_or_else(|| "none".to_string(), |r| format!("{r:.1}")),
        )
        .replace("_TESTS_", &tests)
        .replace("_YESNOCAPS_", if spam { "YES" } else { "NO" })
        .replace("_YESNO_", if spam { "Yes" } else { "No" })
        .replace(
            "_STARS_",
            &"*".repeat(verdict.score.clamp(0.0, 50.0) as usize),
        )
        .replace(['\r', '\n'], " ")
}

/// `message` with `tag` and a space in front of its Subject (a Subject line is added if
/// it has none). Only the header section is looked at.
pub fn tag_subject(message: &[u8], tag: &str) -> Vec<u8> {
    let header_end = memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
    let mut line_start = 0;
    while line_start < header_end {
        let line_end = memchr::memmem::find(&message[line_start..header_end], b"\r\n")
            .map_or(header_end, |i| line_start + i + 2);
        let line = &message[line_start..line_end];
        if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") {
            let mut value_start = line_start + 8;
            while message.get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            let mut out = Vec::with_capacity(message.len() + tag.len() + 1);
            out.extend_from_slice(&message[..value_start]);
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&message[value_start..]);
            return out;
        }
        line_start = line_end;
    }
    let mut out = Vec::with_capacity(message.len() + tag.len() + 12);
    out.extend_from_slice(&message[..header_end]);
    out.extend_from_slice(format!("Subject: {tag}\r\n").as_bytes());
    out.extend_from_slice(&message[header_end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Hit;

    fn verdict() -> Verdict {
        Verdict {
            score: 7.25,
            hits: vec![Hit {
                name: "A".into(),
                score: 7.25,
                describe: String::new(),
            }],
            ..Verdict::default()
        }
    }

    #[test]
    fn templates_headers_and_subject() {
        let mut a = Actions {
            subject_tag: Some("[SPAM _SCORE_/_REQD_]".into()),
            ..Actions::default()
        };
        assert!(a.add_header("all Report tests=_TESTS_ _YESNO_"));
        assert!(a.add_header("spam Checker-Version Gannet"));
        assert!(a.add_header("all Status overridden"));
        assert!(!a.add_header("sometimes X y"));
        assert!(!a.add_header("all Bad:Name y"));
        let v = verdict();
        assert_eq!(
            a.headers(&v, Some(5.0), true),
            "X-Spam-Report: tests=A Yes\r\nX-Spam-Checker-Version: Gannet\r\n"
        );
        assert_eq!(a.headers(&v, None, false), "X-Spam-Report: tests=A No\r\n");
        assert_eq!(
            a.subject_tag(&v, Some(5.0), true).as_deref(),
            Some("[SPAM 7.2/5.0]")
        );
        assert_eq!(a.subject_tag(&v, Some(5.0), false), None);

        let m =
            b"Return-Path: <a@b>\r\nsubject:  Hello\r\n folded\r\nTo: x\r\n\r\nSubject: body\r\n";
        assert_eq!(
            tag_subject(m, "[SPAM]"),
            b"Return-Path: <a@b>\r\nsubject:  [SPAM] Hello\r\n folded\r\nTo: x\r\n\r\nSubject: body\r\n"
        );
        assert_eq!(
            tag_subject(b"To: x\r\n\r\nbody", "[S]"),
            b"To: x\r\nSubject: [S]\r\n\r\nbody"
        );
    }
}
