//! What every protocol's connection driver shares: admission (the per-IP connection
//! limit), TLS handshakes, writing replies and waiting for input with the idle timeout and
//! the shutdown signal in view.
//!
//! The idle timeout bounds a whole request, not only silence: it runs from the first byte
//! of a request until the server answers (see [`Pace`]), so a client that trickles a byte
//! now and then (slowloris) cannot hold a connection forever.

use std::future::Future;
use std::net::{IpAddr, Shutdown};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_uring::net::TcpStream;

use super::socket::Readable;
use super::tls::{TlsStream, Transport};
use super::worker::WorkerContext;
use crate::auth::sasl::Credentials;
use crate::auth::service::AuthOutcome;
use crate::policy::ConnectionPermit;
use crate::protocol::Protocol;

/// A locked-out client waits this long for its refusal.
const LOCKOUT_DELAY: Duration = Duration::from_secs(2);

/// A connection let in: who it is from, and its transport (TLS already up on an
/// implicit-TLS port).
pub(super) struct Opened {
    pub ip: IpAddr,
    pub trusted: bool,
    pub transport: Transport,
    _permit: Option<ConnectionPermit>,
}

/// Admits a new connection (the per-IP limit; `refusal` is sent in the clear to those over
/// it) and runs the TLS handshake of implicit-TLS ports. None: the connection is closed.
pub(super) async fn open(
    ctx: &WorkerContext,
    stream: &TcpStream,
    peer: std::net::SocketAddr,
    implicit_tls: bool,
    refusal: &'static [u8],
) -> Option<Opened> {
    // Without TCP_NODELAY, pipelined replies stall on delayed ACKs.
    let _ = stream.set_nodelay(true);
    let ip = canonical(peer.ip());
    let (trusted, permit) = match admit(ctx, ip) {
        Admission::Trusted => (true, None),
        Admission::Counted(permit) => (false, Some(permit)),
        Admission::Refused => {
            tracing::info!(%ip, "refused: too many connections");
            if implicit_tls {
                let _ = stream.shutdown(Shutdown::Both);
            } else {
                refuse(stream, refusal).await;
            }
            return None;
        }
    };
    let readable = Readable::default();
    let transport = if implicit_tls {
        match handshake(ctx, stream, &readable).await {
            Some(tls) => Transport::tls(tls, readable),
            None => {
                let _ = stream.shutdown(Shutdown::Both);
                return None;
            }
        }
    } else {
        Transport::plain(readable)
    };
    Some(Opened {
        ip,
        trusted,
        transport,
        _permit: permit,
    })
}

/// Writes a session's pending output; false if the client is gone or stopped reading.
pub(super) async fn flush<P: Protocol>(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &Transport,
    session: &mut P,
) -> bool {
    if !session.buffers_ref().has_output() {
        return true;
    }
    let out = session.buffers().take_output();
    let (sent, buf) = write_out(ctx, stream, transport, out).await;
    if let Some(buf) = buf {
        session.buffers().output_written(buf);
    }
    // An answer: the next request has the whole idle timeout again.
    transport.pace.set(Pace::default());
    sent
}

/// STARTTLS / STLS: writes the session's "go ahead", then upgrades the transport.
pub(super) async fn start_tls<P: Protocol>(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &mut Transport,
    session: &mut P,
) -> bool {
    if !flush(ctx, stream, transport, session).await {
        return false;
    }
    match handshake(ctx, stream, transport.readable()).await {
        Some(tls) => {
            transport.start_tls(tls);
            true
        }
        None => false,
    }
}

/// Verifies a login on the auth threads; a locked-out client waits before its refusal.
pub(super) async fn authenticate(
    ctx: &WorkerContext,
    credentials: Credentials,
    ip: IpAddr,
) -> AuthOutcome {
    let outcome = ctx.server.auth.authenticate(credentials, ip).await;
    if outcome == AuthOutcome::LockedOut {
        tokio::time::sleep(LOCKOUT_DELAY).await;
    }
    outcome
}

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d: use the IPv4 form.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// How a new connection is let in.
pub(super) enum Admission {
    /// From a trusted network: no limit applies.
    Trusted,
    /// Counted against its IP's limit while the permit lives.
    Counted(ConnectionPermit),
    /// Over the limit: refused.
    Refused,
}

pub(super) fn admit(ctx: &WorkerContext, ip: IpAddr) -> Admission {
    if ctx.server.trusted.load().contains(ip) {
        return Admission::Trusted;
    }
    match ctx.server.connections.acquire(ip) {
        Some(permit) => Admission::Counted(permit),
        None => Admission::Refused,
    }
}

/// Sends a last line in the clear and closes (for refusals before any session).
pub(super) async fn refuse(stream: &TcpStream, line: &[u8]) {
    let _ = stream.write_all(line.to_vec()).await;
    let _ = stream.shutdown(Shutdown::Both);
}

/// Runs a TLS handshake with the current certificate; None if it fails or times out.
pub(super) async fn handshake(
    ctx: &WorkerContext,
    stream: &TcpStream,
    readable: &Readable,
) -> Option<TlsStream> {
    let config = ctx.server.tls.load_full();
    // A handshake stalled halfway is a silent client too.
    let limit = HANDSHAKE_TIMEOUT.min(ctx.server.idle_timeout);
    match tokio::time::timeout(limit, TlsStream::accept(stream, readable, config)).await {
        Ok(Ok(tls)) => {
            tracing::debug!(protocol = ?tls.protocol(), "TLS established");
            Some(tls)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// Writes `out` (bounded by the idle timeout); returns the buffer and whether it went out.
pub(super) async fn write_out(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &Transport,
    out: Vec<u8>,
) -> (bool, Option<Vec<u8>>) {
    let mut write = std::pin::pin!(transport.write_all(stream, out));
    // A reply the socket takes at once (the usual case) needs no timer.
    let at_once = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    let written = match at_once {
        Poll::Ready(written) => Ok(written),
        Poll::Pending => tokio::time::timeout(ctx.server.idle_timeout, write).await,
    };
    match written {
        Ok((Ok(()), out)) => (true, Some(out)),
        Ok((Err(_), out)) => (false, Some(out)),
        Err(_) => (false, None),
    }
}

/// The clocks of one connection: its unauthenticated lifetime (a session that has not
/// authenticated — on the MX port: that has had no message accepted — for
/// `limits.unauthenticated_lifetime` is closed, however steadily it trickles bytes) and
/// the alarm that ends a wait for input.
pub(super) struct Clocks {
    started: Instant,
    mark: Option<u64>,
    alarm: Alarm,
}

impl Clocks {
    /// The clocks of a connection opened now, with `idle` as its first wait.
    pub(super) fn start(idle: Duration) -> Clocks {
        let now = Instant::now();
        Clocks {
            started: now,
            mark: Some(0),
            alarm: Alarm::new(now + idle),
        }
    }

    /// When the session must be closed in the state it is in now; None once it has
    /// authenticated.
    fn deadline<P: Protocol>(&mut self, session: &P, limit: Duration) -> Option<Instant> {
        let mark = session.lifetime_mark();
        if mark != self.mark {
            self.mark = mark;
            self.started = Instant::now();
        }
        mark.map(|_| self.started + limit)
    }
}

/// One timer per connection for its waits for input. Each answer gives the next request
/// the whole idle timeout, so a wait's deadline is almost always later than the last
/// one's: the timer then stays where it is, and when it goes off before the deadline it
/// is set again for the deadline as it is then. Setting a timer at every read cost the
/// timer wheel an insertion and a removal per request.
struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// When `sleep` goes off.
    set_for: Instant,
}

impl Alarm {
    fn new(at: Instant) -> Alarm {
        Alarm {
            sleep: Box::pin(tokio::time::sleep_until(at.into())),
            set_for: at,
        }
    }

    /// Returns once `deadline` has passed.
    async fn until(&mut self, deadline: Instant) {
        if let Some(at) = alarm_setting(self.set_for, deadline, None) {
            self.set(at);
        }
        loop {
            self.sleep.as_mut().await;
            match alarm_setting(self.set_for, deadline, Some(Instant::now())) {
                None => return,
                Some(at) => self.set(at),
            }
        }
    }

    fn set(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at.into());
        self.set_for = at;
    }
}

/// Where an alarm set for `set_for` must be set to wake a wait for `deadline` (None: it
/// can stay). With `fired_at`, the alarm went off then: None means the deadline has
/// passed, and the wait is over.
fn alarm_setting(
    set_for: Instant,
    deadline: Instant,
    fired_at: Option<Instant>,
) -> Option<Instant> {
    match fired_at {
        // The timer wheel's tick is a millisecond: within one, the deadline is here.
        Some(now) if now + Duration::from_millis(1) >= deadline => None,
        Some(_) => Some(deadline),
        None if deadline < set_for => Some(deadline),
        None => None,
    }
}

/// Writes the session's replies and waits for more input (or the idle timeout, the end
/// of its unauthenticated lifetime, or, between commands, the shutdown). False when the
/// connection is over.
pub(super) async fn await_input<P: Protocol>(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &Transport,
    session: &mut P,
    stop: &mut watch::Receiver<bool>,
    clocks: &mut Clocks,
) -> bool {
    if !flush(ctx, stream, transport, session).await {
        return false;
    }
    let idle = session.is_idle();
    let deadline = clocks.deadline(session, ctx.server.unauthenticated_lifetime);
    let room = session.prepare_read();
    let buf = session.buffers().take_input(room);
    let before = buf.len();
    let wait = Wait {
        idle,
        deadline,
        alarm: &mut clocks.alarm,
    };
    match read_input(ctx, stream, transport, buf, stop, wait).await {
        Wake::Data(buf) => {
            let mut pace = transport.pace.get();
            pace.received(buf.len().saturating_sub(before), Instant::now());
            transport.pace.set(pace);
            session.buffers().input_filled(buf)
        }
        Wake::Closed => return false,
        Wake::IdleTimeout => session.close_idle(),
        Wake::Stop => session.close_shutdown(),
    }
    true
}

/// What ended a wait for input.
pub(super) enum Wake {
    /// Bytes were appended to the buffer.
    Data(Vec<u8>),
    /// The client closed or the connection failed.
    Closed,
    /// The client was silent too long, or its session outlived its unauthenticated
    /// lifetime.
    IdleTimeout,
    /// The server is shutting down (reported only while the session is idle).
    Stop,
}

/// Bytes that count as progress by themselves: a client sending at least this much per
/// idle timeout is slow but working (a large message over a poor link).
const PROGRESS_BYTES: usize = 16 * 1024;

/// How far a client has come with its current request. The idle timeout runs from the
/// request's first byte, not from the latest one: a client trickling bytes without ever
/// completing a request is cut when it is up, unless the server answered meanwhile or
/// enough bytes arrived to count as progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Pace {
    /// When the first byte of the current request (or the latest progress) arrived.
    since: Option<Instant>,
    /// Bytes received since then.
    bytes: usize,
}

impl Pace {
    /// Counts `n` bytes received at `now`.
    pub(super) fn received(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.since.get_or_insert(now);
        self.bytes += n;
        if self.bytes >= PROGRESS_BYTES {
            // Enough for progress: the clock starts again.
            self.since = Some(now);
            self.bytes = 0;
        }
    }

    /// How long to wait for more input, from `now`.
    pub(super) fn wait(&self, now: Instant, idle: Duration) -> Duration {
        match self.since {
            None => idle,
            Some(since) => (since + idle).saturating_duration_since(now),
        }
    }
}

/// What a wait for input looks out for besides the input.
struct Wait<'a> {
    /// The session is between requests: the server's shutdown ends the wait.
    idle: bool,
    /// The end of the unauthenticated lifetime, if it runs.
    deadline: Option<Instant>,
    alarm: &'a mut Alarm,
}

/// Reads more input into `buf`, unless the client takes too long (see [`Pace`]), the
/// wait's deadline (the unauthenticated lifetime) passes, or, for an idle session, the
/// server shuts down.
async fn read_input(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &Transport,
    buf: Vec<u8>,
    stop: &mut watch::Receiver<bool>,
    wait: Wait<'_>,
) -> Wake {
    let now = Instant::now();
    let silence = now + transport.pace.get().wait(now, ctx.server.idle_timeout);
    let until = wait.deadline.map_or(silence, |d| d.min(silence));
    tokio::select! {
        (result, buf) = transport.read(stream, buf) => match result {
            Ok(n) if n > 0 => Wake::Data(buf),
            _ => Wake::Closed,
        },
        _ = wait.alarm.until(until) => Wake::IdleTimeout,
        _ = stop.wait_for(|stop| *stop), if wait.idle => Wake::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(15);

    #[test]
    fn silence_waits_the_whole_idle_timeout() {
        let pace = Pace::default();
        assert_eq!(pace.wait(Instant::now(), IDLE), IDLE);
    }

    #[test]
    fn a_trickle_does_not_extend_the_request_past_the_timeout() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.received(1, t0);
        pace.received(1, t0 + Duration::from_secs(10));
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(10), IDLE),
            Duration::from_secs(5)
        );
        pace.received(1, t0 + Duration::from_secs(14));
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(16), IDLE),
            Duration::ZERO
        );
    }

    #[test]
    fn enough_bytes_count_as_progress_and_an_answer_starts_afresh() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.received(PROGRESS_BYTES - 1, t0);
        pace.received(1, t0 + Duration::from_secs(10));
        assert_eq!(pace.wait(t0 + Duration::from_secs(10), IDLE), IDLE);
        // The clock restarted at the progress, not at later bytes.
        pace.received(0, t0 + Duration::from_secs(12));
        pace.received(5, t0 + Duration::from_secs(12));
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(20), IDLE),
            Duration::from_secs(5)
        );
        assert_eq!(Pace::default().wait(t0, IDLE), IDLE);
    }

    #[test]
    fn the_alarm_moves_only_when_a_deadline_comes_sooner_or_it_went_off_early() {
        let t0 = Instant::now();
        let later = t0 + IDLE;
        // A later deadline keeps the alarm; a sooner one sets it there.
        assert_eq!(alarm_setting(t0, later, None), None);
        assert_eq!(alarm_setting(later, t0, None), Some(t0));
        // Gone off early: set for the deadline; gone off at (or within a tick of) the
        // deadline: the wait is over.
        assert_eq!(alarm_setting(t0, later, Some(t0)), Some(later));
        assert_eq!(alarm_setting(later, later, Some(later)), None);
        let almost = later - Duration::from_micros(500);
        assert_eq!(alarm_setting(later, later, Some(almost)), None);
    }
}
