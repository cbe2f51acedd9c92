//! Drives one POP3 session: TLS (STLS or implicit), logins through the auth service, the
//! maildrop lock (one POP3 session per mailbox), message reads on the reader threads, and
//! the removal of deleted messages at QUIT through the commit thread.

use std::collections::HashSet;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_uring::net::TcpStream;

use super::conn;
use super::driver::{self, Service};
use super::worker::WorkerContext;
use super::PortKind;
use crate::pop3::read_ahead::ReadAhead;
use crate::pop3::{Answer, DropMessage, MaildropError, Pop3Policy, Request, Session};
use crate::store::listings::Listing;
use crate::store::schema::BlobId;
use crate::store::{mail, Changes};

/// Accounts with an open POP3 maildrop, across all workers.
#[derive(Default)]
pub struct MaildropLocks {
    held: Mutex<HashSet<u32>>,
}

/// Holds an account's maildrop until dropped.
struct MaildropLock {
    locks: Arc<MaildropLocks>,
    account: u32,
}

impl MaildropLocks {
    fn lock(self: &Arc<Self>, account: u32) -> Option<MaildropLock> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(account).then(|| MaildropLock {
            locks: self.clone(),
            account,
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.account);
    }
}

/// The open maildrop: what the session lists, with what the runtime needs to serve it.
struct Maildrop {
    account: u32,
    mailbox_id: u32,
    /// In UID order.
    entries: Listing,
    _lock: MaildropLock,
}

const TOO_MANY_CONNECTIONS: &[u8] = b"-ERR [SYS/TEMP] Too many connections from your address\r\n";

pub(super) async fn serve(
    ctx: &WorkerContext,
    stream: TcpStream,
    peer: SocketAddr,
    kind: PortKind,
) {
    let implicit = kind == PortKind::Pop3s;
    let Some(opened) = conn::open(ctx, &stream, peer, implicit, TOO_MANY_CONNECTIONS).await else {
        return;
    };
    let (ip, mut transport) = (opened.ip, opened.transport);
    let server = &ctx.server;
    let policy = Pop3Policy {
        tls: transport.is_tls(),
        stls: true,
        auth_without_tls: server.auth_without_tls(kind, ip),
    };
    let mut session = Session::new(server.pop3.clone(), policy, ctx.buffers.take());
    let mut maildrops = Maildrops {
        ctx,
        maildrop: None,
        ahead: ReadAhead::default(),
    };
    driver::drive(
        ctx,
        &stream,
        &mut transport,
        ip,
        &mut session,
        &mut (),
        &mut maildrops,
    )
    .await;
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_buffers().into_input());
}

/// Serves one session's maildrop: opens (locks and lists) it, reads its messages, and
/// removes the deleted ones at QUIT.
struct Maildrops<'a> {
    ctx: &'a WorkerContext,
    maildrop: Option<Maildrop>,
    /// The messages after the one last retrieved, read ahead on a reader thread.
    ahead: ReadAhead<Prefetch>,
}

/// Messages read ahead (a batch), in maildrop order: being read, then read (each taken
/// once).
enum Prefetch {
    Reading(oneshot::Receiver<Vec<Option<Vec<u8>>>>),
    Read(Vec<Option<Vec<u8>>>),
}

impl Prefetch {
    /// The batch's message at `at`, waiting for the read if it is still going; None if
    /// it could not be read (or was taken).
    async fn take(&mut self, at: usize) -> Option<Vec<u8>> {
        if let Prefetch::Reading(read) = self {
            *self = Prefetch::Read(read.await.unwrap_or_default());
        }
        match self {
            Prefetch::Read(messages) => messages.get_mut(at).and_then(Option::take),
            Prefetch::Reading(_) => None,
        }
    }
}

/// Reads one message: here, on the worker, when it is in memory (a few microseconds,
/// less than handing it to another thread); else on a reader thread.
async fn read_message(ctx: &WorkerContext, id: BlobId) -> Option<Vec<u8>> {
    let server = &ctx.server;
    match mail::blob_cached(&server.store, &id) {
        Some(cached) => cached,
        None => server
            .readers
            .run(move |store| mail::blob(store, &id).ok().flatten())
            .await
            .flatten(),
    }
}

impl Service<Session> for Maildrops<'_> {
    async fn fulfil(&mut self, _: &mut Session, request: Request) -> Answer {
        let (ctx, server) = (self.ctx, &self.ctx.server);
        match request {
            Request::OpenMaildrop { account } => {
                let opened = open_maildrop(ctx, account).await;
                let listing = opened
                    .as_ref()
                    .map(|(_, list)| list.clone())
                    .map_err(|e| *e);
                if let Ok((drop, _)) = opened {
                    self.maildrop = Some(drop);
                }
                Answer::Maildrop(listing)
            }
            Request::Retrieve { uid, top } => {
                let Some(m) = self.maildrop.as_ref() else {
                    return Answer::Message { message: None, top };
                };
                let Ok(index) = m.entries.find(uid) else {
                    return Answer::Message { message: None, top };
                };
                let blob = m.entries.get(index).map(|(_, e)| e.blob);
                // TOP reads the message alone: a client asking for headers only may not
                // want the rest of the maildrop.
                let mut message = None;
                if top.is_none() {
                    if let Some((batch, at)) = self.ahead.find(index) {
                        message = batch.take(at).await;
                    }
                    let entries = &m.entries;
                    let size = |i: usize| entries.get(i).map_or(0, |(_, e)| e.size);
                    if let Some(range) = self.ahead.plan(index, entries.len(), size) {
                        let ids: Vec<_> =
                            entries.range(range.clone()).map(|(_, e)| e.blob).collect();
                        let read = server.readers.submit(move |store| {
                            ids.iter()
                                .map(|id| mail::blob(store, id).ok().flatten())
                                .collect()
                        });
                        self.ahead.push(range, Prefetch::Reading(read));
                    }
                }
                if message.is_none() {
                    if let Some(id) = blob {
                        message = read_message(ctx, id).await;
                    }
                }
                Answer::Message { message, top }
            }
            Request::Commit { deleted } => {
                let committed = match &self.maildrop {
                    Some(m) => expunge(ctx, m, &deleted).await,
                    None => deleted.is_empty(),
                };
                // The session ends with this answer: the maildrop is released before the
                // client reads it, so a client that logs in again at once finds it free.
                self.maildrop = None;
                self.ahead = ReadAhead::default();
                Answer::Committed(committed)
            }
        }
    }
}

/// Locks and lists the account's INBOX.
async fn open_maildrop(
    ctx: &WorkerContext,
    account: u32,
) -> Result<(Maildrop, Vec<DropMessage>), MaildropError> {
    let lock = ctx
        .server
        .pop3_locks
        .lock(account)
        .ok_or(MaildropError::InUse)?;
    let listed = ctx
        .server
        .readers
        .run(move |store| {
            let meta = mail::mailbox(store, account, "INBOX").ok().flatten()?;
            let entries = mail::listing(store, account, &meta).ok()?;
            Some((meta, entries))
        })
        .await
        .flatten();
    let (meta, entries) = listed.ok_or(MaildropError::Failed)?;
    let list = entries
        .iter()
        .map(|(uid, e)| DropMessage {
            uid: *uid,
            size: e.size,
            uidl: format!("{}.{}", meta.uidvalidity, uid),
        })
        .collect();
    Ok((
        Maildrop {
            account,
            mailbox_id: meta.id,
            entries,
            _lock: lock,
        },
        list,
    ))
}

/// Removes the messages deleted in the session (QUIT). Messages that another session
/// (IMAP) removed meanwhile are skipped by the store, so usage and references are counted
/// once.
async fn expunge(ctx: &WorkerContext, maildrop: &Maildrop, deleted: &[u32]) -> bool {
    if deleted.is_empty() {
        return true;
    }
    let mut changes = Changes::new();
    changes.expunge(
        maildrop.account,
        maildrop.mailbox_id,
        deleted.to_vec(),
        false,
    );
    match ctx.server.store.commit(changes).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "POP3 expunge failed");
            false
        }
    }
}
