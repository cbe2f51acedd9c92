//! The one connection driver: runs any protocol session ([`Protocol`]) over a connection.
//! It writes what the session wrote, reads when it needs input (with the idle timeout,
//! the unauthenticated lifetime and the shutdown in view), runs TLS handshakes and
//! logins, and hands the session's requests to its [`Service`] (a delivery, a store read
//! or write) and the answers back. IMAP's IDLE waits for input and for changes of its
//! mailbox (the store tells it of each, once durable).

use std::net::IpAddr;
use std::time::Duration;

use tokio_uring::net::TcpStream;

use super::conn;
use super::tls::Transport;
use super::worker::WorkerContext;
use crate::protocol::{Protocol, Step};

/// Output this large is written out before the next request: a FETCH over a large
/// mailbox then streams batch by batch instead of piling up.
const FLUSH_BEFORE_REQUEST: usize = 64 * 1024;
/// How often an idling session looks for changes besides being told of them (for a
/// session that watches nothing it can be told of).
const IDLE_POLL: Duration = Duration::from_secs(30);

/// Carries out what one protocol's sessions ask of the world.
pub(super) trait Service<P: Protocol> {
    /// Does `request` for `session` (which it may read or change: SMTP hands over its
    /// message buffer) and returns the answer for [`Protocol::answer`].
    async fn fulfil(&mut self, session: &mut P, request: P::Request) -> P::Answer;
}

/// Runs `session` over `stream` until it closes, the client goes, or the server stops.
pub(super) async fn drive<P: Protocol, S: Service<P>>(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &mut Transport,
    ip: IpAddr,
    session: &mut P,
    cx: &mut P::Context<'_>,
    service: &mut S,
) {
    let mut stop = ctx.stop.clone();
    let mut clocks = conn::Clocks::start(ctx.server.idle_timeout);
    loop {
        match session.step(cx) {
            Step::Close => {
                conn::flush(ctx, stream, transport, session).await;
                transport.close(stream).await;
                return;
            }
            Step::StartTls => {
                if !conn::start_tls(ctx, stream, transport, session).await {
                    return;
                }
                session.tls_started();
            }
            Step::Authenticate(credentials) => {
                let outcome = conn::authenticate(ctx, credentials, ip).await;
                session.auth_result(outcome);
            }
            Step::Request(request) => {
                if session.buffers_ref().output_len() >= FLUSH_BEFORE_REQUEST
                    && !conn::flush(ctx, stream, transport, session).await
                {
                    return;
                }
                let answer = service.fulfil(session, request).await;
                session.answer(answer);
            }
            Step::Idle => {
                if !idle(ctx, stream, transport, session, cx, service, &mut stop).await {
                    return;
                }
            }
            Step::NeedInput => {
                if !conn::await_input(ctx, stream, transport, session, &mut stop, &mut clocks).await
                {
                    return;
                }
            }
        }
    }
}

/// IDLE: waits for input while looking for changes when the store says the session's
/// mailbox changed (and once at the start, for changes since the session last looked),
/// writing what they produce. One read stays pending through the whole IDLE (a wait for
/// readiness, which the looks for changes do not disturb). False when the connection is
/// over.
async fn idle<P: Protocol, S: Service<P>>(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &Transport,
    session: &mut P,
    cx: &mut P::Context<'_>,
    service: &mut S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if !conn::flush(ctx, stream, transport, session).await {
        return false;
    }
    let room = session.prepare_read();
    let read = transport.read(stream, session.buffers().take_input(room));
    tokio::pin!(read);
    let mut polls = tokio::time::interval(IDLE_POLL);
    polls.tick().await;
    let mut changes = session.watched_mailbox().map(|(account, mailbox)| {
        let mut receiver = ctx.server.store.watch().subscribe(account, mailbox);
        receiver.mark_changed();
        receiver
    });
    let woke = loop {
        tokio::select! {
            (result, buf) = &mut read => break Some((result, buf)),
            _ = mailbox_changed(&mut changes) => {
                if let Some(receiver) = &mut changes {
                    receiver.borrow_and_update();
                }
                if !look_for_changes(stream, transport, session, cx, service).await {
                    break None;
                }
            }
            _ = polls.tick() => {
                if !look_for_changes(stream, transport, session, cx, service).await {
                    break None;
                }
            }
            _ = stop.wait_for(|stop| *stop) => break None,
        }
    };
    match woke {
        Some((Ok(n), buf)) if n > 0 => {
            session.buffers().input_filled(buf);
            true
        }
        _ => false,
    }
}

/// Waits until the watched mailbox changed (forever when there is none to watch, or its
/// channel is gone: the periodic look then takes over).
async fn mailbox_changed(changes: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match changes {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                *changes = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Lets the idling session look for changes (reading what it asks for) and writes what it
/// has to say; false when the client is gone.
async fn look_for_changes<P: Protocol, S: Service<P>>(
    stream: &TcpStream,
    transport: &Transport,
    session: &mut P,
    cx: &mut P::Context<'_>,
    service: &mut S,
) -> bool {
    session.idle_poll();
    while let Step::Request(request) = session.step(cx) {
        let answer = service.fulfil(session, request).await;
        session.answer(answer);
    }
    if session.buffers_ref().has_output() {
        let out = session.buffers().take_output();
        let (result, out) = transport.write_all(stream, out).await;
        session.buffers().output_written(out);
        if result.is_err() {
            return false;
        }
    }
    true
}
