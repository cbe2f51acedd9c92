//! SMTP replies with RFC 3463 enhanced status codes, written straight into an output buffer.

use std::fmt::Write as _;

/// One (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The RFC 3463 enhanced status code ("2.1.0"), or "" where RFC 2034 exempts the reply
    /// (the greeting, the EHLO/HELO answer and the 354 intermediate reply).
    pub enhanced: &'static str,
    pub text: &'static str,
}

impl Reply {
    pub const fn new(code: u16, enhanced: &'static str, text: &'static str) -> Self {
        Reply {
            code,
            enhanced,
            text,
        }
    }

    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_line(out, self.code, self.enhanced, self.text, true);
    }
}

/// Appends one reply line; `last` picks the space (final line) or the hyphen separator.
pub(crate) fn write_line(out: &mut Vec<u8>, code: u16, enhanced: &str, text: &str, last: bool) {
    let mut line = String::with_capacity(8 + enhanced.len() + text.len());
    let sep = if last { ' ' } else { '-' };
    let _ = write!(line, "{code}{sep}");
    if !enhanced.is_empty() {
        line.push_str(enhanced);
        line.push(' ');
    }
    line.push_str(text);
    line.push_str("\r\n");
    out.extend_from_slice(line.as_bytes());
}

/// The replies the session sends, named for what they say.
pub(crate) mod replies {
    use super::Reply;

    pub(crate) const OK: Reply = Reply::new(250, "2.0.0", "Ok");
    pub(crate) const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender ok");
    pub(crate) const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient ok");
    pub(crate) const QUEUED: Reply = Reply::new(250, "2.0.0", "Message accepted for delivery");
    pub(crate) const START_DATA: Reply = Reply::new(354, "", "End data with <CR><LF>.<CR><LF>");
    pub(crate) const BYE: Reply = Reply::new(221, "2.0.0", "Bye");
    pub(crate) const VRFY: Reply = Reply::new(
        252,
        "2.5.0",
        "Cannot VRFY user, but will accept message and attempt delivery",
    );

    pub(crate) const UNRECOGNIZED: Reply = Reply::new(500, "5.5.2", "Command unrecognized");
    pub(crate) const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
    pub(crate) const SYNTAX: Reply =
        Reply::new(501, "5.5.4", "Syntax error in parameters or arguments");
    pub(crate) const BAD_ADDRESS: Reply = Reply::new(501, "5.1.3", "Bad address syntax");
    pub(crate) const BAD_SENDER_ADDRESS: Reply =
        Reply::new(501, "5.1.7", "Bad sender address syntax");
    pub(crate) const NEED_SMTPUTF8: Reply = Reply::new(
        553,
        "5.6.7",
        "Non-ASCII address requires the SMTPUTF8 parameter",
    );
    pub(crate) const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
    pub(crate) const NEED_HELO: Reply = Reply::new(503, "5.5.1", "Send HELO/EHLO first");
    pub(crate) const NESTED_MAIL: Reply = Reply::new(503, "5.5.1", "Sender already specified");
    pub(crate) const NEED_MAIL: Reply = Reply::new(503, "5.5.1", "Need MAIL command first");
    pub(crate) const NEED_RCPT: Reply = Reply::new(554, "5.5.1", "No valid recipients");
    pub(crate) const MIXED_DATA_BDAT: Reply =
        Reply::new(503, "5.5.1", "DATA not allowed after BDAT");
    pub(crate) const BAD_PARAM: Reply = Reply::new(555, "5.5.4", "Unsupported parameter");
    pub(crate) const TOO_BIG_DECLARED: Reply = Reply::new(
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size",
    );
    pub(crate) const TOO_BIG: Reply = Reply::new(552, "5.3.4", "Message too big for system");
    pub(crate) const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
    pub(crate) const UNKNOWN_USER: Reply =
        Reply::new(550, "5.1.1", "Recipient address rejected: user unknown");
    pub(crate) const RELAY_DENIED: Reply = Reply::new(554, "5.7.1", "Relay access denied");
    pub(crate) const REPORT_DENIED: Reply = Reply::new(
        550,
        "5.7.1",
        "Spam reports are accepted from authenticated users only",
    );
    pub(crate) const BARE_LINE_ENDING: Reply = Reply::new(
        554,
        "5.6.0",
        "Message refused: bare CR or LF in message data (lines must end with CRLF)",
    );
    pub(crate) const TOO_MANY_ERRORS: Reply =
        Reply::new(421, "4.7.0", "Too many errors, closing connection");
    pub(crate) const SPF_FAIL: Reply = Reply::new(
        550,
        "5.7.23",
        "SPF validation failed: the sender's domain does not allow this client",
    );
    pub(crate) const SCAN_FAILED: Reply = Reply::new(
        451,
        "4.7.1",
        "The message could not be scanned for viruses, try again later",
    );
    pub(crate) const STORE_FAILED: Reply =
        Reply::new(451, "4.3.0", "Local error in processing, try again later");
    pub(crate) const INSUFFICIENT_STORAGE: Reply =
        Reply::new(452, "4.3.1", "Insufficient system storage, try again later");
    pub(crate) const SHUTTING_DOWN: Reply =
        Reply::new(421, "4.3.2", "Service shutting down, try again later");
    pub(crate) const READY_FOR_TLS: Reply = Reply::new(220, "2.0.0", "Ready to start TLS");
    pub(crate) const TLS_ACTIVE: Reply = Reply::new(503, "5.5.1", "TLS already active");
    pub(crate) const NEED_STARTTLS: Reply =
        Reply::new(530, "5.7.0", "Must issue a STARTTLS command first");
    pub(crate) const NEED_AUTH: Reply = Reply::new(530, "5.7.0", "Authentication required");
    pub(crate) const ALREADY_AUTHENTICATED: Reply =
        Reply::new(503, "5.5.1", "Already authenticated");
    pub(crate) const AUTH_IN_TRANSACTION: Reply =
        Reply::new(503, "5.5.1", "AUTH not permitted during a mail transaction");
    pub(crate) const UNKNOWN_MECHANISM: Reply =
        Reply::new(504, "5.5.4", "Unrecognized authentication type");
    pub(crate) const AUTH_CANCELLED: Reply = Reply::new(501, "5.0.0", "Authentication cancelled");
    pub(crate) const AUTH_MALFORMED: Reply = Reply::new(501, "5.5.2", "Cannot decode the response");
    pub(crate) const AUTH_OK: Reply = Reply::new(235, "2.7.0", "Authentication successful");
    pub(crate) const AUTH_FAILED: Reply =
        Reply::new(535, "5.7.8", "Authentication credentials invalid");
    pub(crate) const AUTH_LOCKED: Reply = Reply::new(
        421,
        "4.7.0",
        "Too many failed authentication attempts, try again later",
    );
    pub(crate) const AUTH_UNAVAILABLE: Reply =
        Reply::new(454, "4.7.0", "Temporary authentication failure");
    pub(crate) const SENDER_NOT_OWNED: Reply =
        Reply::new(553, "5.7.1", "Sender address rejected: not owned by user");
    pub(crate) const RATE_LIMITED: Reply =
        Reply::new(451, "4.7.1", "Message rate limit exceeded, try again later");
    pub(crate) const MAILBOX_FULL_TEMPORARY: Reply = Reply::new(452, "4.2.2", "Mailbox full");
    pub(crate) const MAILBOX_FULL_PERMANENT: Reply = Reply::new(552, "5.2.2", "Mailbox full");
    pub(crate) const IDLE_TIMEOUT: Reply =
        Reply::new(421, "4.4.2", "Idle timeout, closing connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_code_enhanced_code_and_text() {
        let mut out = Vec::new();
        replies::SENDER_OK.write_to(&mut out);
        assert_eq!(out, b"250 2.1.0 Sender ok\r\n");
        out.clear();
        replies::START_DATA.write_to(&mut out);
        assert_eq!(out, b"354 End data with <CR><LF>.<CR><LF>\r\n");
    }
}
