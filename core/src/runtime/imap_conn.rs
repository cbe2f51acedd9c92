//! Drives one IMAP session: TLS (STARTTLS or implicit), logins through the auth service,
//! and the session's store requests: listings and message bodies on the reader threads,
//! changes through the commit thread. IDLE polls the selected mailbox twice a second.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio_uring::net::TcpStream;

use super::conn;
use super::worker::WorkerContext;
use super::PortKind;
use crate::clock::unix_now;
use crate::imap::{Answer, ImapPolicy, MailboxSummary, Request, Session, Step};
use crate::store::mail;
use crate::store::schema::flags;

/// Output this large is written out before the next store request: a FETCH over a large
/// mailbox then streams batch by batch instead of piling up.
const FLUSH_BEFORE_REQUEST: usize = 64 * 1024;
/// How often an IDLE session looks for changes.
const IDLE_POLL: Duration = Duration::from_millis(500);
const TOO_MANY_CONNECTIONS: &[u8] = b"* BYE Too many connections from your address\r\n";

pub(super) async fn serve(
    ctx: &WorkerContext,
    stream: TcpStream,
    peer: SocketAddr,
    kind: PortKind,
) {
    let implicit = kind == PortKind::Imaps;
    let Some(opened) = conn::open(ctx, &stream, peer, implicit, TOO_MANY_CONNECTIONS).await else {
        return;
    };
    let (ip, mut transport) = (opened.ip, opened.transport);
    let server = &ctx.server;
    let policy = ImapPolicy {
        tls: transport.is_tls(),
        starttls: true,
        auth_without_tls: server.plaintext_on_loopback && ip.is_loopback(),
    };
    let mut session = Session::new(server.imap.clone(), policy, ctx.buffers.take());
    let mut stop = ctx.stop.clone();
    let mut lifetime = conn::Lifetime::start();
    loop {
        match session.step(unix_now()) {
            Step::Close => {
                conn::flush(ctx, &stream, &transport, &mut session).await;
                transport.close(&stream).await;
                break;
            }
            Step::StartTls => {
                if !conn::start_tls(ctx, &stream, &mut transport, &mut session).await {
                    break;
                }
                session.tls_started();
            }
            Step::Authenticate => {
                if let Some(credentials) = session.take_credentials() {
                    let outcome = conn::authenticate(ctx, credentials, ip).await;
                    session.auth_result(outcome);
                }
            }
            Step::Request(request) => {
                if session.output_len() >= FLUSH_BEFORE_REQUEST
                    && !conn::flush(ctx, &stream, &transport, &mut session).await
                {
                    break;
                }
                let answer = fulfil(ctx, request).await;
                session.answer(answer);
            }
            Step::Idle => {
                if !conn::flush(ctx, &stream, &transport, &mut session).await {
                    break;
                }
                // The read stays pending while changes are looked for and reported: a
                // tokio-uring read cannot be cancelled without losing what it reads.
                let read = transport.read(&stream, session.take_input());
                tokio::pin!(read);
                let mut polls = tokio::time::interval(IDLE_POLL);
                polls.tick().await;
                let woke = loop {
                    tokio::select! {
                        (result, buf) = &mut read => break Some((result, buf)),
                        _ = polls.tick() => {
                            session.idle_poll();
                            while let Step::Request(request) = session.step(unix_now()) {
                                let answer = fulfil(ctx, request).await;
                                session.answer(answer);
                            }
                            if session.has_output() {
                                let (result, out) = transport.write_all(&stream, session.take_output()).await;
                                session.output_written(out);
                                if result.is_err() {
                                    break None;
                                }
                            }
                        }
                        _ = stop.wait_for(|stop| *stop) => break None,
                    }
                };
                match woke {
                    Some((Ok(n), buf)) if n > 0 => session.input_filled(buf),
                    _ => break,
                }
            }
            Step::NeedInput => {
                if !conn::await_input(
                    ctx,
                    &stream,
                    &transport,
                    &mut session,
                    &mut stop,
                    &mut lifetime,
                )
                .await
                {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_input_buffer());
}

/// Answers a session's store request: reads on the reader threads, writes through the
/// commit thread.
async fn fulfil(ctx: &WorkerContext, request: Request) -> Answer {
    let server = &ctx.server;
    match request {
        Request::Mailboxes { account } => {
            let list = server
                .readers
                .run(move |store| {
                    let mut out = Vec::new();
                    for (name, meta) in mail::mailboxes(store, account).ok()? {
                        let messages = mail::list(store, account, meta.id).ok()?;
                        let count = |bit: u32, on: bool| {
                            messages
                                .iter()
                                .filter(|(_, e)| (e.flags & bit != 0) == on)
                                .count() as u32
                        };
                        out.push(MailboxSummary {
                            messages: messages.len() as u32,
                            unseen: count(flags::SEEN, false),
                            deleted: count(flags::DELETED, true),
                            size: messages.iter().map(|(_, e)| e.size).sum(),
                            name,
                            meta,
                        });
                    }
                    Some(out)
                })
                .await
                .flatten()
                .unwrap_or_default();
            let usage = server.quotas.usage(account);
            Answer::Mailboxes {
                list,
                used: usage.map_or(0, |u| u.used.max(0) as u64),
                limit: usage.map_or(u64::MAX, |u| u.limit),
            }
        }
        Request::Mailbox { account, name } => {
            let found = server
                .readers
                .run(move |store| {
                    let meta = mail::mailbox(store, account, &name).ok().flatten()?;
                    let messages = mail::list(store, account, meta.id).ok()?;
                    Some((meta, messages))
                })
                .await
                .flatten();
            Answer::Mailbox(found)
        }
        Request::Blobs(ids) => {
            // What is in memory is read here; the rest on a reader thread.
            let mut map = HashMap::with_capacity(ids.len());
            let mut missing = Vec::new();
            for id in ids {
                match mail::blob_cached(&server.store, &id) {
                    Some(Some(bytes)) => {
                        map.insert(id, Arc::new(bytes));
                    }
                    Some(None) => {}
                    None => missing.push(id),
                }
            }
            if !missing.is_empty() {
                let read = server
                    .readers
                    .run(move |store| {
                        let mut map = HashMap::with_capacity(missing.len());
                        for id in missing {
                            if let Ok(Some(bytes)) = mail::blob(store, &id) {
                                map.insert(id, Arc::new(bytes));
                            }
                        }
                        map
                    })
                    .await
                    .unwrap_or_default();
                map.extend(read);
            }
            Answer::Blobs(map)
        }
        Request::Write(changes) => Answer::Committed(server.store.commit(changes).await),
    }
}
