//! The client side of SMTP, sans-IO: one message to one or more recipients at one
//! server. Fed the server's bytes, it says what to write next: EHLO (HELO if refused),
//! STARTTLS when the server offers it and the runtime can (RFC 3207), MAIL with SIZE and
//! BODY=8BITMIME when offered (RFC 1870, 6152), the RCPTs and DATA pipelined when
//! offered (RFC 2920), the message dot-stuffed, QUIT. The outcome is per recipient:
//! delivered, failed for now (4xx, or the session broke), or failed for good (5xx).

use std::mem;

/// Longest reply line read from a server (RFC 5321 4.5.3.1.5 allows 512 octets; real
/// servers stay far below this).
const MAX_REPLY_LINE: usize = 4096;

/// Most lines in one multi-line reply (an EHLO reply has a dozen or two).
const MAX_REPLY_LINES: usize = 100;

/// One server reply: its code and its text lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    pub code: u16,
    pub text: String,
}

impl ServerReply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// "550 5.1.1 no such user", for logs, queue listings and bounces.
    pub fn summary(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    Delivered,
    /// Try again later: a 4xx reply, or the session ended before an answer.
    Deferred(String),
    /// Bounce: a 5xx reply.
    Failed(String),
}

/// What the runtime must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    /// Write the message, dot-stuffed and ended by `.` (see [`dot_stuff`]).
    SendMessage,
    /// Run the TLS handshake now, then call [`Client::tls_established`].
    StartTls,
    /// The session is over: close the connection.
    Close,
    /// The message is done and the session is idle: the connection may carry the next
    /// message to the same server ([`Client::reuse`]), or be closed.
    Keep,
}

/// What the server offered in this session, for the next message on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    pub pipelining: bool,
    pub size: bool,
    pub eight_bit_mime: bool,
    pub tls: bool,
}

/// What the client needs to know about its session.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name to announce in EHLO.
    pub helo: String,
    /// Whether the runtime can upgrade to TLS (opportunistic STARTTLS).
    pub tls_available: bool,
    /// User name and password for AUTH PLAIN (a smart host that wants them), sent only
    /// on an encrypted session: without TLS the message is deferred instead.
    pub auth: Option<(String, String)>,
    /// After a delivered message, leave the session open ([`Action::Keep`]) instead of
    /// QUIT.
    pub keep_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    /// Waiting for the replies to MAIL, the RCPTs and DATA, in that order.
    Envelope,
    /// The message was sent; waiting for the final reply.
    Message,
    Quit,
    Done,
}

pub struct Client {
    config: ClientConfig,
    reverse_path: String,
    recipients: Vec<String>,
    size: u64,
    body_8bit: bool,
    state: State,
    /// Bytes of a reply not yet complete.
    pending: Vec<u8>,
    lines: Vec<String>,
    tls: bool,
    pipelining: bool,
    size_ext: bool,
    eight_bit_mime: bool,
    starttls_offered: bool,
    auth_offered: bool,
    /// Replies still expected in the envelope phase: 0 = MAIL, 1..=n = RCPT, n+1 = DATA.
    next_reply: usize,
    mail_reply: Option<ServerReply>,
    outcomes: Vec<Option<RcptOutcome>>,
    /// The server answered about this message (MAIL or RCPT), not only about the session.
    answered: bool,
}

impl Client {
    pub fn new(
        config: ClientConfig,
        reverse_path: &str,
        recipients: Vec<String>,
        size: u64,
        body_8bit: bool,
    ) -> Client {
        let n = recipients.len();
        Client {
            config,
            reverse_path: reverse_path.to_string(),
            recipients,
            size,
            body_8bit,
            state: State::Greeting,
            pending: Vec::new(),
            lines: Vec::new(),
            tls: false,
            pipelining: false,
            size_ext: false,
            eight_bit_mime: false,
            starttls_offered: false,
            auth_offered: false,
            next_reply: 0,
            mail_reply: None,
            outcomes: vec![None; n],
            answered: false,
        }
    }

    /// Whether the server answered about the message itself (its MAIL or RCPT replies);
    /// if not, the session failed as a whole and another server may be tried.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// A client for the next message on a session left open by [`Action::Keep`]: it
    /// starts with MAIL. Returns the actions that start it.
    pub fn reuse(
        config: ClientConfig,
        negotiated: Negotiated,
        reverse_path: &str,
        recipients: Vec<String>,
        size: u64,
        body_8bit: bool,
    ) -> (Client, Vec<Action>) {
        let mut c = Client::new(config, reverse_path, recipients, size, body_8bit);
        c.pipelining = negotiated.pipelining;
        c.size_ext = negotiated.size;
        c.eight_bit_mime = negotiated.eight_bit_mime;
        c.tls = negotiated.tls;
        let mut actions = Vec::new();
        c.send_envelope(&mut actions);
        (c, actions)
    }

    /// What the server offered, for [`Client::reuse`].
    pub fn negotiated(&self) -> Negotiated {
        Negotiated {
            pipelining: self.pipelining,
            size: self.size_ext,
            eight_bit_mime: self.eight_bit_mime,
            tls: self.tls,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the session is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Bytes from the server; the actions to take, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Done {
            return actions;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(reply) = self.next_complete_reply() {
            self.on_reply(reply, &mut actions);
            if self.state == State::Done {
                return actions;
            }
        }
        // A server that never ends its line or its reply is broken or hostile: what it
        // sent is not buffered further, and the session ends without waiting for QUIT.
        let abuse = if self.pending.len() > MAX_REPLY_LINE {
            Some("the server sent a reply line too long")
        } else if self.lines.len() > MAX_REPLY_LINES {
            Some("the server sent a reply with too many lines (too long)")
        } else {
            None
        };
        if let Some(why) = abuse {
            self.pending = Vec::new();
            self.lines = Vec::new();
            for o in self.outcomes.iter_mut().filter(|o| o.is_none()) {
                *o = Some(RcptOutcome::Deferred(why.to_string()));
            }
            self.state = State::Done;
            actions.push(Action::Close);
        }
        actions
    }

    /// After the TLS handshake that [`Action::StartTls`] asked for: EHLO again.
    pub fn tls_established(&mut self) -> Vec<Action> {
        self.tls = true;
        self.pending.clear();
        self.state = State::Ehlo;
        vec![self.ehlo()]
    }

    /// The outcome of every recipient. Called at the end of the session, however it
    /// ended: a recipient without an answer (the connection broke, a timeout) is
    /// deferred with `why`.
    pub fn finish(&mut self, why: &str) -> Vec<RcptOutcome> {
        self.state = State::Done;
        mem::take(&mut self.outcomes)
            .into_iter()
            .map(|o| o.unwrap_or_else(|| RcptOutcome::Deferred(why.to_string())))
            .collect()
    }

    fn next_complete_reply(&mut self) -> Option<ServerReply> {
        loop {
            if self.lines.len() > MAX_REPLY_LINES {
                return None;
            }
            let end = memchr::memchr(b'\n', &self.pending)?;
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let last = line.as_bytes().get(3) != Some(&b'-');
            self.lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                let text = mem::take(&mut self.lines).join(" ");
                // A line that is not a reply at all counts as a temporary failure.
                return Some(ServerReply {
                    code: code.filter(|c| (200..600).contains(c)).unwrap_or(421),
                    text,
                });
            }
        }
    }

    fn ehlo(&self) -> Action {
        Action::Send(format!("EHLO {}\r\n", self.config.helo).into_bytes())
    }

    /// Every recipient still open gets `outcome`; then QUIT.
    fn fail_all(&mut self, outcome: RcptOutcome, actions: &mut Vec<Action>) {
        for o in self.outcomes.iter_mut().filter(|o| o.is_none()) {
            *o = Some(outcome.clone());
        }
        self.quit(actions);
    }

    fn quit(&mut self, actions: &mut Vec<Action>) {
        actions.push(Action::Send(b"QUIT\r\n".to_vec()));
        self.state = State::Quit;
    }

    fn outcome_of(reply: &ServerReply) -> RcptOutcome {
        if reply.is_positive() {
            RcptOutcome::Delivered
        } else if reply.is_permanent() {
            RcptOutcome::Failed(reply.summary())
        } else {
            RcptOutcome::Deferred(reply.summary())
        }
    }

    fn on_reply(&mut self, reply: ServerReply, actions: &mut Vec<Action>) {
        match self.state {
            State::Greeting => {
                if reply.code == 220 {
                    self.state = State::Ehlo;
                    actions.push(self.ehlo());
                } else {
                    // A server that will not talk now: its refusal applies to all.
                    let outcome = Self::outcome_of(&reply);
                    self.fail_all(outcome, actions);
                }
            }
            State::Ehlo | State::Helo => {
                if reply.code == 250 {
                    if self.state == State::Ehlo {
                        self.read_extensions(&reply);
                    }
                    if self.starttls_offered && !self.tls && self.config.tls_available {
                        actions.push(Action::Send(b"STARTTLS\r\n".to_vec()));
                        self.state = State::StartTls;
                    } else {
                        self.authenticate_or_send_envelope(actions);
                    }
                } else if self.state == State::Ehlo && reply.is_permanent() {
                    self.state = State::Helo;
                    actions.push(Action::Send(
                        format!("HELO {}\r\n", self.config.helo).into_bytes(),
                    ));
                } else {
                    let outcome = Self::outcome_of(&reply);
                    self.fail_all(outcome, actions);
                }
            }
            State::StartTls => {
                if reply.code == 220 {
                    actions.push(Action::StartTls);
                } else {
                    // Opportunistic: a refused STARTTLS means plain text.
                    self.authenticate_or_send_envelope(actions);
                }
            }
            State::Auth => {
                if reply.code == 235 {
                    self.send_envelope(actions);
                } else {
                    // Wrong credentials are the sender's configuration, not the
                    // message's fault: keep the mail and say why.
                    let why = format!("authentication failed: {}", reply.summary());
                    self.fail_all(RcptOutcome::Deferred(why), actions);
                }
            }
            State::Envelope => self.on_envelope_reply(reply, actions),
            State::Message => {
                let outcome = Self::outcome_of(&reply);
                for o in self.outcomes.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(outcome.clone());
                }
                if self.config.keep_open && reply.is_positive() {
                    // The transaction is over; the session can take another.
                    self.state = State::Done;
                    actions.push(Action::Keep);
                } else {
                    self.quit(actions);
                }
            }
            State::Quit => {
                self.state = State::Done;
                actions.push(Action::Close);
            }
            State::Done => {}
        }
    }

    fn read_extensions(&mut self, reply: &ServerReply) {
        // The first line is the greeting; the rest are keywords. `text` joined them with
        // spaces, so look at words.
        let upper = reply.text.to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        self.pipelining = words.contains(&"PIPELINING");
        self.size_ext = words.contains(&"SIZE");
        self.eight_bit_mime = words.contains(&"8BITMIME");
        self.starttls_offered = words.contains(&"STARTTLS");
        self.auth_offered = words.iter().any(|w| *w == "AUTH" || w.starts_with("AUTH="));
    }

    fn authenticate_or_send_envelope(&mut self, actions: &mut Vec<Action>) {
        let Some((user, password)) = &self.config.auth else {
            return self.send_envelope(actions);
        };
        if !self.tls {
            // A password never crosses the network in clear: a smart host without
            // STARTTLS, or one whose STARTTLS was refused or stripped on the way, keeps
            // the mail queued until it offers TLS again.
            let why = "the smart host offers no TLS; credentials are not sent unencrypted";
            return self.fail_all(RcptOutcome::Deferred(why.to_string()), actions);
        }
        if !self.auth_offered {
            let why = "the server does not offer AUTH; not sent unauthenticated".to_string();
            return self.fail_all(RcptOutcome::Deferred(why), actions);
        }
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        actions.push(Action::Send(format!("AUTH PLAIN {token}\r\n").into_bytes()));
        self.state = State::Auth;
    }

    fn mail_command(&self) -> Vec<u8> {
        let mut mail = format!("MAIL FROM:<{}>", self.reverse_path);
        if self.size_ext {
            mail.push_str(&format!(" SIZE={}", self.size));
        }
        if self.body_8bit && self.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        mail.push_str("\r\n");
        mail.into_bytes()
    }

    fn rcpt_command(&self, i: usize) -> Vec<u8> {
        format!("RCPT TO:<{}>\r\n", self.recipients[i]).into_bytes()
    }

    fn send_envelope(&mut self, actions: &mut Vec<Action>) {
        self.state = State::Envelope;
        self.next_reply = 0;
        if self.pipelining {
            let mut all = self.mail_command();
            for i in 0..self.recipients.len() {
                all.extend(self.rcpt_command(i));
            }
            all.extend_from_slice(b"DATA\r\n");
            actions.push(Action::Send(all));
        } else {
            actions.push(Action::Send(self.mail_command()));
        }
    }

    fn on_envelope_reply(&mut self, reply: ServerReply, actions: &mut Vec<Action>) {
        self.answered = true;
        let n = self.recipients.len();
        let step = self.next_reply;
        self.next_reply += 1;
        if step == 0 {
            if !reply.is_positive() {
                self.mail_reply = Some(reply.clone());
                if self.pipelining {
                    // The RCPT and DATA replies still come; they are all refusals.
                    return;
                }
                let outcome = Self::outcome_of(&reply);
                self.fail_all(outcome, actions);
                return;
            }
            if !self.pipelining {
                actions.push(Action::Send(self.rcpt_command(0)));
            }
            return;
        }
        if step <= n {
            if let Some(mail) = &self.mail_reply {
                self.outcomes[step - 1] = Some(Self::outcome_of(&mail.clone()));
            } else if !reply.is_positive() {
                self.outcomes[step - 1] = Some(Self::outcome_of(&reply));
            }
            if !self.pipelining {
                if step < n {
                    actions.push(Action::Send(self.rcpt_command(step)));
                } else if self.outcomes.iter().all(Option::is_some) {
                    // Every recipient refused: no DATA.
                    self.quit(actions);
                } else {
                    actions.push(Action::Send(b"DATA\r\n".to_vec()));
                }
            }
            return;
        }
        // The reply to DATA.
        let accepted = self.outcomes.iter().any(Option::is_none);
        if reply.code == 354 && accepted {
            actions.push(Action::SendMessage);
            self.state = State::Message;
        } else if reply.code == 354 {
            // Pipelined DATA after every RCPT failed: send an empty message's end?
            // RFC 2920 says the server must refuse DATA then; if it did not, abort by
            // closing (nothing may be delivered to no one).
            actions.push(Action::Close);
            self.state = State::Done;
        } else {
            let outcome = Self::outcome_of(&reply);
            self.fail_all(outcome, actions);
        }
    }
}

/// `message` as DATA sends it: lines starting with `.` get another, CRLF ensured at the
/// end, then the `.` line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tls: bool, auth: Option<(&str, &str)>, keep_open: bool) -> ClientConfig {
        ClientConfig {
            helo: "mx.example.test".into(),
            tls_available: tls,
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            keep_open,
        }
    }

    /// A client for one small message to b@example.org.
    fn to_one(config: ClientConfig) -> Client {
        Client::new(
            config,
            "a@example.test",
            vec!["b@example.org".into()],
            10,
            false,
        )
    }

    fn client(tls: bool) -> Client {
        Client::new(
            config(tls, None, false),
            "a@example.test",
            vec!["b@example.org".into(), "c@example.org".into()],
            1234,
            true,
        )
    }

    fn sent(actions: &[Action]) -> String {
        actions
            .iter()
            .map(|a| match a {
                Action::Send(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("<{other:?}>"),
            })
            .collect()
    }

    #[test]
    fn pipelined_session_with_starttls_and_a_refused_recipient() {
        let mut c = client(true);
        assert_eq!(sent(&c.feed(b"220 ok\r\n")), "EHLO mx.example.test\r\n");
        let a = c.feed(
            b"250-sink\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
        );
        assert_eq!(sent(&a), "STARTTLS\r\n");
        assert_eq!(c.feed(b"220 go\r\n"), vec![Action::StartTls]);
        assert_eq!(sent(&c.tls_established()), "EHLO mx.example.test\r\n");
        let a = c.feed(b"250-sink\r\n250-PIPELINING\r\n250-SIZE\r\n250 8BITMIME\r\n");
        assert_eq!(
            sent(&a),
            "MAIL FROM:<a@example.test> SIZE=1234 BODY=8BITMIME\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
        );
        // Replies may arrive split anywhere.
        let mut a = c.feed(b"250 ok\r\n550 5.1.1 no such user\r\n25");
        a.extend(c.feed(b"0 ok\r\n354 go\r\n"));
        assert_eq!(a, vec![Action::SendMessage]);
        assert_eq!(sent(&c.feed(b"250 queued\r\n")), "QUIT\r\n");
        assert_eq!(c.feed(b"221 bye\r\n"), vec![Action::Close]);
        assert!(c.is_done() && c.is_tls());
        assert_eq!(
            c.finish("unused"),
            vec![
                RcptOutcome::Failed("550 5.1.1 no such user".into()),
                RcptOutcome::Delivered
            ]
        );
    }

    #[test]
    fn one_step_at_a_time_helo_fallback_and_failures() {
        let mut c = client(false);
        c.feed(b"220 old\r\n");
        assert_eq!(sent(&c.feed(b"502 what\r\n")), "HELO mx.example.test\r\n");
        assert_eq!(
            sent(&c.feed(b"250 hi\r\n")),
            "MAIL FROM:<a@example.test>\r\n"
        );
        assert_eq!(sent(&c.feed(b"250 ok\r\n")), "RCPT TO:<b@example.org>\r\n");
        assert_eq!(
            sent(&c.feed(b"451 later\r\n")),
            "RCPT TO:<c@example.org>\r\n"
        );
        assert_eq!(sent(&c.feed(b"250 ok\r\n")), "DATA\r\n");
        assert_eq!(c.feed(b"354 go\r\n"), vec![Action::SendMessage]);
        // The connection drops before the final reply.
        assert_eq!(
            c.finish("connection lost"),
            vec![
                RcptOutcome::Deferred("451 later".into()),
                RcptOutcome::Deferred("connection lost".into())
            ]
        );

        // A greeting refusal fails everyone; garbage is a temporary failure.
        let mut c = client(false);
        assert_eq!(sent(&c.feed(b"554 go away\r\n")), "QUIT\r\n");
        assert!(matches!(c.finish("x")[0], RcptOutcome::Failed(_)));
        let mut c = client(false);
        c.feed(b"HTTP/1.1 400 Bad Request\r\n");
        assert!(matches!(c.finish("x")[1], RcptOutcome::Deferred(_)));
    }

    #[test]
    fn auth_plain_after_starttls() {
        let mut c = to_one(config(true, Some(("relay", "s3cret")), false));
        c.feed(b"220 hi\r\n");
        assert_eq!(sent(&c.feed(b"250-x\r\n250 STARTTLS\r\n")), "STARTTLS\r\n");
        c.feed(b"220 go\r\n");
        c.tls_established();
        assert_eq!(
            sent(&c.feed(b"250-x\r\n250 AUTH PLAIN LOGIN\r\n")),
            "AUTH PLAIN AHJlbGF5AHMzY3JldA==\r\n"
        );
        assert_eq!(
            sent(&c.feed(b"235 ok\r\n")),
            "MAIL FROM:<a@example.test>\r\n"
        );
        // Refused credentials keep the mail.
        let mut c = to_one(config(true, Some(("u", "p")), false));
        c.feed(b"220 hi\r\n");
        c.feed(b"250-x\r\n250 STARTTLS\r\n");
        c.feed(b"220 go\r\n");
        c.tls_established();
        c.feed(b"250-x\r\n250 AUTH PLAIN\r\n");
        assert_eq!(sent(&c.feed(b"535 5.7.8 no\r\n")), "QUIT\r\n");
        assert!(matches!(&c.finish("x")[0], RcptOutcome::Deferred(e) if e.contains("535")));
    }

    #[test]
    fn a_kept_session_carries_the_next_message() {
        let config = config(false, None, true);
        let mut c = Client::new(
            config.clone(),
            "a@x.test",
            vec!["b@y.test".into()],
            5,
            false,
        );
        c.feed(b"220 hi\r\n");
        c.feed(b"250-y\r\n250 PIPELINING\r\n");
        assert_eq!(
            c.feed(b"250 ok\r\n250 ok\r\n354 go\r\n"),
            vec![Action::SendMessage]
        );
        assert_eq!(c.feed(b"250 queued\r\n"), vec![Action::Keep]);
        assert_eq!(c.finish("x"), vec![RcptOutcome::Delivered]);
        let (mut next, start) = Client::reuse(
            config,
            c.negotiated(),
            "a@x.test",
            vec!["c@y.test".into()],
            5,
            false,
        );
        assert_eq!(
            sent(&start),
            "MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n"
        );
        assert_eq!(
            next.feed(b"250 ok\r\n250 ok\r\n354 go\r\n"),
            vec![Action::SendMessage]
        );
        // A refused message is not a reason to keep the session.
        assert_eq!(sent(&next.feed(b"554 no\r\n")), "QUIT\r\n");
    }

    /// A hostile server that sends an endless reply line, or endless continuation lines,
    /// ends the session (every recipient deferred) instead of growing memory without
    /// bound.
    #[test]
    fn endless_replies_end_the_session() {
        let mut c = client(false);
        let chunk = vec![b'x'; 1024];
        let mut closed = false;
        for _ in 0..64 {
            if c.feed(&chunk).contains(&Action::Close) {
                closed = true;
                break;
            }
        }
        assert!(closed, "a 64 KiB reply line must close the session");
        assert!(c.is_done());
        assert!(c
            .finish("x")
            .iter()
            .all(|o| matches!(o, RcptOutcome::Deferred(e) if e.contains("too long"))));

        let mut c = client(false);
        c.feed(b"220 hi\r\n");
        let mut closed = false;
        for _ in 0..10_000 {
            if c.feed(b"250-more\r\n").contains(&Action::Close) {
                closed = true;
                break;
            }
        }
        assert!(closed, "a reply of 10,000 lines must close the session");
        assert!(c.pending.len() < 8192 && c.lines.len() < 1000);
    }

    /// Credentials for a smart host are never sent on a session that is not encrypted:
    /// a server that offers AUTH but not STARTTLS (or a STARTTLS stripped on the way)
    /// gets no password, and the mail waits.
    #[test]
    fn credentials_need_tls() {
        let mut c = to_one(config(true, Some(("relay", "s3cret")), false));
        c.feed(b"220 hi\r\n");
        let a = c.feed(b"250-x\r\n250 AUTH PLAIN LOGIN\r\n");
        assert_eq!(sent(&a), "QUIT\r\n");
        assert!(matches!(&c.finish("x")[0], RcptOutcome::Deferred(e) if e.contains("TLS")));
        // STARTTLS offered but refused: no AUTH in plain text either.
        let mut c = to_one(config(true, Some(("relay", "s3cret")), false));
        c.feed(b"220 hi\r\n");
        c.feed(b"250-x\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
        assert_eq!(sent(&c.feed(b"454 not now\r\n")), "QUIT\r\n");
        // Without credentials, TLS stays opportunistic.
        let mut c = to_one(config(false, None, false));
        c.feed(b"220 hi\r\n");
        assert_eq!(
            sent(&c.feed(b"250 x\r\n")),
            "MAIL FROM:<a@example.test>\r\n"
        );
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n..c"), b"..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b"x\r\n"), b"x\r\n.\r\n");
    }
}
