//! What every protocol session (SMTP, POP3, IMAP) shares and shows the runtime: its byte
//! buffers ([`Buffers`]), the one shape of what it needs next ([`Step`]), and the trait
//! the one connection driver (`runtime::driver`) runs ([`Protocol`]). Sans-IO like the
//! sessions themselves: no sockets, no clock, no async.

use crate::auth::sasl::Credentials;
use crate::auth::service::AuthOutcome;

/// A session's input and output bytes. The runtime reads into the spare capacity of the
/// input (taken and given back, so a read owns its buffer as io_uring requires) and writes
/// the output out; the session parses the one and appends replies to the other.
#[derive(Debug, Default)]
pub struct Buffers {
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
}

impl Buffers {
    /// Buffers whose input reuses `input` (a pooled buffer, cleared here).
    pub fn new(mut input: Vec<u8>) -> Buffers {
        input.clear();
        Buffers {
            input,
            output: Vec::with_capacity(256),
        }
    }

    /// Pending output; the runtime writes it, then gives it back ([`Self::output_written`]).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Returns the output buffer after it was written, to be reused.
    pub fn output_written(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if self.output.is_empty() {
            self.output = buf;
        }
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The number of bytes of output waiting to be written.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// The input buffer with room at its end for the next read: when less than half of
    /// `room` is spare, `room` more is reserved.
    pub fn take_input(&mut self, room: usize) -> Vec<u8> {
        if self.input.capacity() - self.input.len() < room / 2 {
            self.input.reserve(room);
        }
        std::mem::take(&mut self.input)
    }

    /// Gives back the buffer from [`Self::take_input`] with new bytes appended.
    pub fn input_filled(&mut self, buf: Vec<u8>) {
        self.input = buf;
    }

    /// Appends received bytes (tests, fuzzing, TLS plaintext).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The input buffer, for reuse once the session is over.
    pub fn into_input(self) -> Vec<u8> {
        self.input
    }

    /// Appends `text` and CRLF to the output.
    pub(crate) fn line(&mut self, text: &str) {
        self.output.extend_from_slice(text.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    /// Appends `n` in decimal to the output (without the formatting machinery: a reply
    /// per message of a download has one).
    pub(crate) fn push_decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.output
            .extend_from_slice(digits.get(at..).unwrap_or_default());
    }
}

/// What a session needs from the runtime next.
#[derive(Debug, PartialEq)]
pub enum Step<R> {
    /// Write the pending output, then read more input.
    NeedInput,
    /// Write the pending output and close the connection.
    Close,
    /// Write the pending output, run the TLS handshake, then [`Protocol::tls_started`].
    StartTls,
    /// Verify these credentials, then [`Protocol::auth_result`].
    Authenticate(Credentials),
    /// Carry out this request (a store read or write, a delivery), then
    /// [`Protocol::answer`].
    Request(R),
    /// IMAP IDLE: wait for input, calling [`Protocol::idle_poll`] now and then and
    /// stepping the session for what the poll asks.
    Idle,
}

/// The time, for sessions that need it while they step (IMAP: internal dates, \Recent).
pub trait Clock {
    /// Unix seconds.
    fn now(&self) -> i64;
}

/// A protocol session as the connection driver runs it.
pub trait Protocol {
    /// What the session asks of the runtime ([`Step::Request`]).
    type Request;
    /// The runtime's answer to a request.
    type Answer;
    /// What the session reads from the world while it steps (SMTP: routes, limits and
    /// ids through its `Environment`; IMAP: the time; POP3: nothing).
    type Context<'a>: ?Sized;

    /// Runs as far as the input allows; what the runtime must do next.
    fn step(&mut self, cx: &mut Self::Context<'_>) -> Step<Self::Request>;
    fn answer(&mut self, answer: Self::Answer);
    fn tls_started(&mut self);
    fn auth_result(&mut self, outcome: AuthOutcome);

    fn buffers(&mut self) -> &mut Buffers;
    fn buffers_ref(&self) -> &Buffers;
    /// Drops consumed input before a read; the room the next read wants.
    fn prepare_read(&mut self) -> usize;

    /// Between requests: a shutdown may close the session now.
    fn is_idle(&self) -> bool;
    /// None once the client has authenticated (no lifetime limit then); before, a count
    /// that grows with the session's progress (messages accepted on the MX port), which
    /// restarts the unauthenticated-lifetime clock when it changes.
    fn lifetime_mark(&self) -> Option<u64>;
    /// Ends the session with the protocol's goodbye for an idle timeout.
    fn close_idle(&mut self);
    /// Ends the session with the protocol's goodbye for a server shutdown.
    fn close_shutdown(&mut self);
    /// IMAP IDLE: look for changes to report (others never idle).
    fn idle_poll(&mut self) {}
    /// IMAP IDLE: the mailbox whose changes the session reports, by (account, mailbox
    /// id): the runtime wakes it when the mailbox changes.
    fn watched_mailbox(&self) -> Option<(u32, u32)> {
        None
    }

    /// Appends received bytes as a read would (tests, fuzzing, benches).
    fn feed(&mut self, bytes: &[u8]) {
        self.prepare_read();
        self.buffers().feed(bytes);
    }

    /// Takes the output written so far (tests, fuzzing, benches).
    fn take_output(&mut self) -> Vec<u8> {
        self.buffers().take_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_whole() {
        let mut b = Buffers::default();
        for n in [0, 7, 10, 4852, u64::MAX] {
            b.push_decimal(n);
            b.output.push(b' ');
        }
        assert_eq!(b.output, b"0 7 10 4852 18446744073709551615 ");
    }

    #[test]
    fn buffers_hand_out_room_and_reuse_what_comes_back() {
        let mut b = Buffers::new(Vec::with_capacity(8));
        let input = b.take_input(4096);
        assert!(input.capacity() >= 4096);
        let mut input = input;
        input.extend_from_slice(b"abc");
        b.input_filled(input);
        b.feed(b"def");
        assert_eq!(b.input, b"abcdef");
        b.line("+OK");
        let out = b.take_output();
        assert_eq!(out, b"+OK\r\n");
        assert!(!b.has_output());
        b.output_written(out);
        assert!(b.output.is_empty() && b.output.capacity() >= 5);
    }
}
