//! Spam reports (`spam.report_address`): a message an authenticated user sends to the
//! report account (the SMTP session refuses anyone else, [`crate::smtp::RcptRoute::Report`])
//! teaches the site-wide Bayes database: each message it carries is learned as spam
//! ([`crate::filter::bayes::report`]). The report itself is kept in the report account's
//! INBOX for the administrator (`gannet spam reports`), and the reporter finds an
//! acknowledgement in their own INBOX. All of it is part of the delivery's one commit.

use crate::smtp::format_rfc5322_date;
use crate::store::{Changes, Folder, NewMail};

/// The reported messages' Bayes ids and tokens. CPU work in proportion to the report:
/// run on a reader thread.
pub fn learnables(report: &[u8]) -> Vec<([u8; 32], Vec<u64>)> {
    crate::filter::bayes::report::reported_messages(report)
        .iter()
        .map(|m| crate::filter::bayes::learnable(m))
        .collect()
}

/// Who reported, and what their report is called in the acknowledgement.
pub struct Reporter<'a> {
    pub account: u32,
    pub address: &'a str,
    pub subject: &'a str,
}

/// Adds the learning of `learned` as spam (site-wide) and, when the reporter is known,
/// the acknowledgement in their INBOX.
pub fn add_report(
    changes: &mut Changes,
    learned: Vec<([u8; 32], Vec<u64>)>,
    reporter: Option<Reporter<'_>>,
    hostname: &str,
    now: i64,
) {
    let count = learned.len();
    for (id, tokens) in learned {
        changes.learn(0, id, tokens, Some(true));
    }
    changes.count("spam_reports", 1);
    if let Some(r) = reporter {
        let ack = acknowledgement(hostname, r.address, r.subject, count, now);
        let size = ack.len() as u64;
        let blob = changes.store_blob(ack);
        changes.append(
            r.account,
            Folder::inbox(),
            NewMail::arrived(blob, size, now),
        );
    }
}

/// The reply a reporter finds in their INBOX.
pub fn acknowledgement(hostname: &str, to: &str, subject: &str, count: usize, now: i64) -> Vec<u8> {
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let what = match count {
        0 => "It carried no message the filter could learn from.".to_string(),
        1 => "The filter has learned the message you reported as spam.".to_string(),
        n => format!("The filter has learned the {n} messages you reported as spam."),
    };
    format!(
        "From: Spam filter <postmaster@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: Spam report received: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <report.{now}.{count}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Thank you for your report.\r\n\
         {what}\r\n\
         Similar mail will score higher from now on.\r\n",
        date = format_rfc5322_date(now),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acknowledgement_says_how_many_were_learned() {
        let ack = acknowledgement(
            "mx.example.test",
            "alice@example.test",
            "spam\r\nBcc: x",
            2,
            0,
        );
        let text = String::from_utf8(ack).unwrap();
        assert!(
            text.contains("Subject: Spam report received: spam  Bcc: x\r\n"),
            "{text}"
        );
        assert!(text.contains("learned the 2 messages"));
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"));
    }
}
