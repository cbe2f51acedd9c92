//! Delivery status notifications (RFC 3464): the `multipart/report` that tells a sender
//! which recipients could not be reached and why. A DSN goes out with the null
//! reverse-path, so that a DSN that cannot be delivered makes no DSN of its own.

use crate::smtp::format_rfc5322_date;

/// One recipient that will not get the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub recipient: String,
    /// What the remote server (or Gannet, for an expiry) said.
    pub diagnostic: String,
}

impl Failure {
    /// The enhanced status code (RFC 3463): the one in the reply text, else one derived
    /// from the reply's basic code.
    pub fn status(&self) -> String {
        let mut words = self.diagnostic.split_whitespace();
        let basic = words.next().unwrap_or("");
        if let Some(enhanced) = words.next().filter(|w| is_enhanced_code(w)) {
            return enhanced.to_string();
        }
        match basic.as_bytes().first() {
            Some(b'4') => "4.0.0".into(),
            _ => "5.0.0".into(),
        }
    }
}

fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The header section of a message (up to the first empty line, after CRLF or a bare
/// LF), for `text/rfc822-headers`. A scan of the bytes: the message is never parsed, so
/// no structure it has (nesting, broken MIME) matters here.
fn header_section(message: &[u8]) -> &[u8] {
    let mut line_start = 0;
    for nl in memchr::memchr_iter(b'\n', message) {
        let line = message.get(line_start..nl).unwrap_or_default();
        if line.is_empty() || line == b"\r" {
            return message.get(..line_start).unwrap_or(message);
        }
        line_start = nl + 1;
    }
    message
}

/// The DSN for `failures` of the message `original`, which `sender` sent and which
/// arrived at `arrived` (Unix seconds), reported by `hostname` at `now`.
pub fn build(
    hostname: &str,
    sender: &str,
    queue_id: u64,
    original: &[u8],
    arrived: i64,
    failures: &[Failure],
    now: i64,
) -> Vec<u8> {
    let boundary = format!("{queue_id:016x}.{now}/{hostname}");
    let mut list = String::new();
    let mut per_recipient = String::new();
    for f in failures {
        list.push_str(&format!("<{}>: {}\r\n", f.recipient, f.diagnostic));
        per_recipient.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            f.recipient,
            f.status(),
            f.diagnostic
        ));
    }
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{sender}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{queue_id:016x}.{now}.dsn@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is the mail system at {hostname}.\r\n\
         \r\n\
         Your message could not be delivered to one or more recipients:\r\n\
         \r\n\
         {list}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Gannet-Queue-ID: {queue_id:016x}\r\n\
         Arrival-Date: {arrival}\r\n\
         {per_recipient}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n",
        date = format_rfc5322_date(now),
        arrival = format_rfc5322_date(arrived),
    )
    .into_bytes();
    out.extend_from_slice(header_section(original));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_parts_and_status_codes() {
        let failures = [
            Failure {
                recipient: "nobody@example.org".into(),
                diagnostic: "550 5.1.1 <nobody@example.org>: user unknown".into(),
            },
            Failure {
                recipient: "late@example.org".into(),
                diagnostic: "452 too many".into(),
            },
        ];
        assert_eq!(failures[0].status(), "5.1.1");
        assert_eq!(failures[1].status(), "4.0.0");
        let original = b"From: a@example.test\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let dsn = String::from_utf8(build(
            "mx.example.test",
            "a@example.test",
            7,
            original,
            1_700_000_000,
            &failures,
            1_700_000_100,
        ))
        .unwrap();
        assert!(dsn.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(dsn.contains(
            "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(dsn.contains("Subject: hi\r\n"), "the original headers");
        assert!(!dsn.contains("secret body"), "not the original body");
        let parsed = mail_parser::MessageParser::default()
            .parse(dsn.as_bytes())
            .unwrap();
        assert_eq!(parsed.parts.len(), 4, "report, text, status, headers");
    }

    #[test]
    fn only_the_header_of_any_message_is_returned() {
        use crate::mime::fixtures::{deep_rfc822, on_small_stack};
        let f = [Failure {
            recipient: "x@example.org".into(),
            diagnostic: "550 no".into(),
        }];
        // Bare line feeds: the header still ends at the first empty line.
        let lf = b"From: a@example.test\nSubject: lf\n\nsecret body\n".to_vec();
        // Nested 30,000 deep: returned without being parsed.
        let deep = deep_rfc822(30_000);
        let dsns = on_small_stack(move || {
            [lf, deep]
                .map(|m| String::from_utf8_lossy(&build("h", "a@b", 1, &m, 0, &f, 0)).into_owned())
        });
        assert!(dsns[0].contains("Subject: lf") && !dsns[0].contains("secret body"));
        assert!(dsns[1].contains("Subject: deep") && dsns[1].len() < 2_000);
    }
}
