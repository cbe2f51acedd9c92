//! Drives one IMAP session: TLS (STARTTLS or implicit), logins through the auth service,
//! and the session's store requests: listings, message bodies and header blocks (the
//! store's summaries) on the reader threads,
//! changes through the commit thread. IDLE polls the selected mailbox twice a second.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use tokio_uring::net::TcpStream;

use super::conn;
use super::driver::{self, Service};
use super::worker::WorkerContext;
use super::PortKind;
use crate::clock::unix_now;
use crate::imap::recent::unclaimed;
use crate::imap::{Answer, ImapPolicy, MailboxSummary, Request, Session};
use crate::protocol::Clock;
use crate::store::schema::{flags, BlobId};
use crate::store::summary::{header_block, HeaderMemo};
use crate::store::{bayes, mail};

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
        auth_without_tls: server.auth_without_tls(kind, ip),
    };
    let mut session = Session::new(server.imap.load_full(), policy, ctx.buffers.take());
    driver::drive(
        ctx,
        &stream,
        &mut transport,
        ip,
        &mut session,
        &mut SystemClock,
        &mut Mailboxes(ctx),
    )
    .await;
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_buffers().into_input());
}

/// How much memory the header blocks read lately may take (process-wide).
const HEADER_MEMO_BYTES: usize = 64 << 20;

/// The header blocks read lately, shared by every worker: blob ids are content hashes, so
/// one memo serves any store without ever going stale.
fn header_memo() -> &'static HeaderMemo {
    static MEMO: std::sync::OnceLock<HeaderMemo> = std::sync::OnceLock::new();
    MEMO.get_or_init(|| HeaderMemo::new(HEADER_MEMO_BYTES))
}

/// The wall clock, for the session's internal dates.
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        unix_now()
    }
}

/// Serves a session's store requests.
struct Mailboxes<'a>(&'a WorkerContext);

impl Service<Session> for Mailboxes<'_> {
    async fn fulfil(&mut self, _: &mut Session, request: Request) -> Answer {
        fulfil(self.0, request).await
    }
}

/// Answers a session's store request: reads on the reader threads, writes through the
/// commit thread.
async fn fulfil(ctx: &WorkerContext, request: Request) -> Answer {
    let server = &ctx.server;
    match request {
        Request::Mailboxes { account } => {
            let book = server.imap.load().recent.clone();
            let (list, lost) = server
                .readers
                .run(move |store| {
                    let lost = mail::lost_subscriptions(store, account).ok()?;
                    let mut out = Vec::new();
                    for (name, meta) in mail::mailboxes(store, account).ok()? {
                        let messages = mail::listing(store, account, &meta).ok()?;
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
                            recent: unclaimed(&book, account, meta.id, &messages),
                            name,
                            meta,
                        });
                    }
                    Some((out, lost))
                })
                .await
                .flatten()
                .unwrap_or_default();
            let usage = server.quotas.usage(account);
            Answer::Mailboxes {
                list,
                used: usage.map_or(0, |u| u.used.max(0) as u64),
                limit: usage.map_or(u64::MAX, |u| u.limit),
                lost,
            }
        }
        Request::Mailbox { account, name } => {
            let found = server
                .readers
                .run(move |store| {
                    let meta = mail::mailbox(store, account, &name).ok().flatten()?;
                    let messages = mail::listing(store, account, &meta).ok()?;
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
                map.extend(read_on_readers(&server.readers, missing, mail::blob).await);
            }
            Answer::Blobs(map)
        }
        Request::Headers(mut ids) => {
            // Header blocks read lately are in memory; summaries in RocksDB's memory are
            // read here; the rest (and the messages without one, read whole) on a reader
            // thread.
            let memo = header_memo();
            let mut map = memo.take_known(&mut ids);
            let mut missing = Vec::new();
            for id in ids {
                match mail::header_cached(&server.store, &id) {
                    Some(Some(header)) => {
                        let header = Arc::new(header);
                        memo.keep(id, header.clone());
                        map.insert(id, header);
                    }
                    _ => missing.push(id),
                }
            }
            if !missing.is_empty() {
                let read = read_on_readers(&server.readers, missing, mail::header_or_message).await;
                for (id, bytes) in &read {
                    // Only header blocks, not whole messages read for want of one.
                    if header_block(bytes).is_some_and(|b| b.len() == bytes.len()) {
                        memo.keep(*id, bytes.clone());
                    }
                }
                map.extend(read);
            }
            Answer::Blobs(map)
        }
        Request::Write(changes) => Answer::Committed(server.store.commit(changes).await),
        Request::WriteAndLearn(changes, learn) => {
            let committed = server.store.commit(changes).await;
            if committed.is_ok() {
                // The client does not wait for the classifier: learned on a reader thread.
                let readers = server.readers.clone();
                let scope = server.inbound.bayes_scope(learn.account);
                tokio_uring::spawn(async move {
                    let learned = readers
                        .run(move |store| {
                            bayes::learn_stored(store, scope, &learn.blobs, learn.spam)
                        })
                        .await;
                    if let Some(Err(e)) = learned {
                        tracing::warn!(error = %e, "learning from a Junk move failed");
                    }
                });
            }
            Answer::Committed(committed)
        }
    }
}

/// A read of one message, or of its header block, from the store.
type ReadBlob =
    fn(&crate::store::Store, &BlobId) -> Result<Option<Vec<u8>>, crate::store::StoreError>;

/// Reads `ids` with `read` on a reader thread: those found (a read error counts as not
/// found: the session answers NIL for it).
async fn read_on_readers(
    readers: &crate::store::reader::Readers,
    ids: Vec<BlobId>,
    read: ReadBlob,
) -> HashMap<BlobId, Arc<Vec<u8>>> {
    readers
        .run(move |store| {
            let mut map = HashMap::with_capacity(ids.len());
            for id in ids {
                if let Ok(Some(bytes)) = read(store, &id) {
                    map.insert(id, Arc::new(bytes));
                }
            }
            map
        })
        .await
        .unwrap_or_default()
}
