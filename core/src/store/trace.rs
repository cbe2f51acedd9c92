//! The message trace: what happened to each message, as events in [`Cf::Events`], written
//! in the same commit as what they record (a delivery, a hold, a queue attempt), so a
//! trace never tells of something that did not happen and costs no sync of its own.
//!
//! Keys:
//! * `e` + message id + time + sequence: the events of one message, together, in order.
//! * `t` + time + message id: messages by when they arrived (the time-range search).
//! * `x` + field + value + `\0` + time + message id: arrivals by sender (`s`), recipient
//!   (`r`), Message-ID (`m`) and client address (`i`), lower case (the field searches).
//!
//! Only the arrival ([`EventKind::Received`]) is indexed; the rest are found by message
//! id. [`purge`] deletes messages that arrived before the retention.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::kv::{Cf, StoreError};
use super::schema::{decode, encode};
use super::{Changes, Store};

/// Longest subject, Message-ID or answer kept in an event.
const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time.
    pub at: i64,
    /// The message: its SMTP transaction id (the id in its `Received:` header, the queue
    /// and the quarantine use the same).
    pub message: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// Accepted over SMTP (250).
    Received {
        client: Option<String>,
        sender: String,
        recipients: Vec<String>,
        message_id: String,
        subject: String,
        size: u64,
    },
    /// The spam verdict: the score, the rules that hit, SPF and blocklist results.
    Scored { score: f64, rules: Vec<String> },
    /// Put into a local mailbox.
    Filed { recipient: String, folder: String },
    /// Queued for delivery elsewhere.
    Queued { recipients: Vec<String> },
    /// Held in the quarantine.
    Held { reason: String },
    /// Released from the quarantine, by whom ("admin", "link").
    Released { by: String },
    /// One delivery attempt to another server, and its answer.
    Attempt {
        recipients: Vec<String>,
        answer: String,
        delivered: bool,
    },
    /// Returned to its sender (a DSN), for these recipients.
    Bounced {
        recipients: Vec<String>,
        why: String,
    },
    /// Refused after its data was sent (SPF, a full mailbox, a virus or attachment from
    /// inside, a failed scan): the client got a 4xx or 5xx, nothing was stored.
    Refused { reason: String },
    /// Turned away before any data: a recipient refused at RCPT (unknown, relay, a
    /// limit, a full mailbox), or the client refused at connect (a blocklist; no sender
    /// and no recipients then). Indexed as an arrival is; nothing follows it.
    TurnedAway {
        client: Option<String>,
        sender: String,
        recipients: Vec<String>,
        reason: String,
    },
}

impl Event {
    /// One line for people: "filed in Junk for a@b", ...
    pub fn describe(&self) -> String {
        match &self.kind {
            EventKind::Received {
                client,
                sender,
                recipients,
                message_id,
                subject,
                size,
            } => format!(
                "received from {} <{sender}> for {} ({size} bytes), Message-ID {message_id}, Subject: {subject}",
                client.as_deref().unwrap_or("this server"),
                recipients.join(", "),
            ),
            EventKind::Scored { score, rules } => {
                format!("spam score {score:.1}: {}", rules.join(" "))
            }
            EventKind::Filed { recipient, folder } => format!("filed in {folder} for {recipient}"),
            EventKind::Queued { recipients } => format!("queued for {}", recipients.join(", ")),
            EventKind::Held { reason } => format!("held in quarantine: {reason}"),
            EventKind::Released { by } => format!("released from quarantine (by {by})"),
            EventKind::Attempt {
                recipients,
                answer,
                delivered,
            } => format!(
                "{} for {}: {answer}",
                if *delivered { "delivered" } else { "attempt failed" },
                recipients.join(", ")
            ),
            EventKind::Bounced { recipients, why } => {
                format!("returned to sender for {}: {why}", recipients.join(", "))
            }
            EventKind::Refused { reason } => format!("refused: {reason}"),
            EventKind::TurnedAway {
                client,
                sender,
                recipients,
                reason,
            } => {
                let client = client.as_deref().unwrap_or("this server");
                if recipients.is_empty() && sender.is_empty() {
                    format!("refused at connect from {client}: {reason}")
                } else {
                    format!(
                        "refused before data from {client} <{sender}> for {}: {reason}",
                        recipients.join(", ")
                    )
                }
            }
        }
    }

    /// The searchable fields of an arrival or a turning away: client, sender,
    /// recipients, Message-ID.
    fn arrival(&self) -> Option<(Option<&str>, &str, &[String], &str)> {
        match &self.kind {
            EventKind::Received {
                client,
                sender,
                recipients,
                message_id,
                ..
            } => Some((client.as_deref(), sender, recipients, message_id)),
            EventKind::TurnedAway {
                client,
                sender,
                recipients,
                ..
            } => Some((client.as_deref(), sender, recipients, "")),
            _ => None,
        }
    }
}

/// Cuts `text` to [`MAX_TEXT`] characters (on a character boundary).
pub fn short(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// Tells events of one message at one second apart.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Adds `event` to `changes` (and its index entries, for an arrival).
pub fn record(changes: &mut Changes, event: &Event) {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mut key = vec![b'e'];
    key.extend_from_slice(&event.message.to_be_bytes());
    key.extend_from_slice(&time(event.at));
    key.extend_from_slice(&seq.to_be_bytes());
    changes.put(Cf::Events, key, encode(event));
    for index in index_keys(event) {
        changes.put(Cf::Events, index, Vec::new());
    }
}

/// Times as keys: big-endian with the sign bit flipped, so they sort as numbers.
fn time(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_back(bytes: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
}

/// The index keys of an arrival or a turning away (none for other events).
fn index_keys(event: &Event) -> Vec<Vec<u8>> {
    let Some((client, sender, recipients, message_id)) = event.arrival() else {
        return Vec::new();
    };
    let mut keys = vec![[&[b't'][..], &time(event.at), &event.message.to_be_bytes()].concat()];
    let mut field = |tag: u8, value: &str| {
        if !value.is_empty() {
            keys.push(field_key(tag, value, event.at, event.message));
        }
    };
    field(b's', sender);
    for r in recipients {
        field(b'r', r);
    }
    field(b'm', message_id);
    if let Some(c) = client {
        field(b'i', c);
    }
    keys
}

fn field_prefix(tag: u8, value: &str) -> Vec<u8> {
    let mut key = vec![b'x', tag];
    key.extend_from_slice(value.trim().to_lowercase().as_bytes());
    key.push(0);
    key
}

fn field_key(tag: u8, value: &str, at: i64, message: u64) -> Vec<u8> {
    let mut key = field_prefix(tag, value);
    key.extend_from_slice(&time(at));
    key.extend_from_slice(&message.to_be_bytes());
    key
}

/// What to look for: every field given must match (exactly, without case); times are
/// Unix times, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub message_id: Option<String>,
    pub client: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Most messages answered (the newest); 0: 100.
    pub limit: usize,
}

/// One message's trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub message: u64,
    pub events: Vec<Event>,
}

/// The messages that match `query`, newest first, with all their events.
pub fn search(store: &Store, query: &Query) -> Result<Vec<Trace>, StoreError> {
    let limit = if query.limit == 0 { 100 } else { query.limit };
    let since = query.since.unwrap_or(i64::MIN);
    let until = query.until.unwrap_or(i64::MAX);
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let fields: Vec<(u8, String)> = [
        (b'm', nonempty(&query.message_id)),
        (b's', nonempty(&query.sender)),
        (b'r', nonempty(&query.recipient)),
        (b'i', nonempty(&query.client)),
    ]
    .into_iter()
    .filter_map(|(tag, v)| v.map(|v| (tag, v)))
    .collect();
    // The candidates: from the most selective field's index (the first given), else from
    // the time index; in time order.
    let mut found: Vec<(i64, u64)> = Vec::new();
    let prefix = match fields.first() {
        Some((tag, value)) => field_prefix(*tag, value),
        None => vec![b't'],
    };
    let start = [&prefix[..], &time(since)].concat();
    let kv = store.kv();
    kv.scan_prefix_from(Cf::Events, &prefix, &start, &mut |k, _| {
        let rest = k.get(prefix.len()..).unwrap_or_default();
        let (Some(at), Some(id)) = (
            rest.get(..8).and_then(time_back),
            rest.get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
        ) else {
            return true;
        };
        if at > until {
            return false;
        }
        found.push((at, id));
        true
    })?;
    let mut traces = Vec::new();
    // Newest first; the other fields checked against each candidate's arrival.
    for (_, id) in found.iter().rev() {
        if traces.len() >= limit {
            break;
        }
        let events = events_of(store, *id)?;
        if fields
            .iter()
            .skip(1)
            .all(|(tag, value)| arrival_has(&events, *tag, value))
        {
            traces.push(Trace {
                message: *id,
                events,
            });
        }
    }
    Ok(traces)
}

/// Whether the message's arrival has `value` in the field `tag`.
fn arrival_has(events: &[Event], tag: u8, value: &str) -> bool {
    let value = value.trim().to_lowercase();
    events.iter().any(|e| match e.arrival() {
        Some((client, sender, recipients, message_id)) => match tag {
            b's' => sender.to_lowercase() == value,
            b'r' => recipients.iter().any(|r| r.to_lowercase() == value),
            b'm' => message_id.to_lowercase() == value,
            _ => client.is_some_and(|c| c.to_lowercase() == value),
        },
        None => false,
    })
}

/// Every event of one message, in order.
pub fn events_of(store: &Store, message: u64) -> Result<Vec<Event>, StoreError> {
    let prefix = [&[b'e'][..], &message.to_be_bytes()].concat();
    let mut events = Vec::new();
    let mut error = None;
    store.kv().scan_prefix(Cf::Events, &prefix, &mut |_, v| {
        match decode::<Event>(Cf::Events, v) {
            Ok(e) => events.push(e),
            Err(e) => error = Some(e),
        }
        error.is_none()
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(events),
    }
}

/// Deletes the trace of every message that arrived before `before` (and events of
/// messages with no arrival, older than it). Returns how many messages went.
pub fn purge(store: &Store, before: i64) -> Result<usize, StoreError> {
    let mut old: Vec<(i64, u64)> = Vec::new();
    store.kv().scan_prefix(Cf::Events, b"t", &mut |k, _| {
        let (Some(at), Some(id)) = (
            k.get(1..9).and_then(time_back),
            k.get(9..17)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
        ) else {
            return true;
        };
        if at >= before {
            return false;
        }
        old.push((at, id));
        true
    })?;
    let mut purged = 0;
    for chunk in old.chunks(256) {
        let mut changes = Changes::new();
        for (_, id) in chunk {
            let prefix = [&[b'e'][..], &id.to_be_bytes()].concat();
            let mut keys = Vec::new();
            let mut arrivals = Vec::new();
            store.kv().scan_prefix(Cf::Events, &prefix, &mut |k, v| {
                keys.push(k.to_vec());
                if let Ok(e) = decode::<Event>(Cf::Events, v) {
                    arrivals.push(e);
                }
                true
            })?;
            for e in &arrivals {
                keys.extend(index_keys(e));
            }
            for key in keys {
                changes.delete(Cf::Events, key);
            }
            purged += 1;
        }
        store.commit_blocking(changes)?;
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(message: u64, at: i64, sender: &str, rcpt: &str) -> Event {
        Event {
            at,
            message,
            kind: EventKind::Received {
                client: Some("192.0.2.7".into()),
                sender: sender.into(),
                recipients: vec![rcpt.into()],
                message_id: format!("<m{message}@x.test>"),
                subject: "hi".into(),
                size: 10,
            },
        }
    }

    fn store_with(events: &[Event]) -> super::super::StoreOwner {
        let owner = Store::open_in_memory().unwrap();
        let mut c = Changes::new();
        for e in events {
            record(&mut c, e);
        }
        owner.store().commit_blocking(c).unwrap();
        owner
    }

    /// A recipient refused at RCPT and a client refused at connect are found as
    /// arrivals are, by recipient, sender and client.
    #[test]
    fn refusals_before_data_are_found_like_arrivals() {
        let turned = |message: u64, sender: &str, rcpt: &[&str], client: &str| Event {
            at: 50,
            message,
            kind: EventKind::TurnedAway {
                client: Some(client.into()),
                sender: sender.into(),
                recipients: rcpt.iter().map(|r| r.to_string()).collect(),
                reason: "550 5.1.1 user unknown".into(),
            },
        };
        let owner = store_with(&[
            turned(7, "s@x.test", &["nobody@h.test"], "192.0.2.9"),
            turned(8, "", &[], "192.0.2.10"),
            arrival(9, 60, "s@x.test", "a@h.test"),
        ]);
        let s = owner.store();
        let ids =
            |q: Query| -> Vec<u64> { search(s, &q).unwrap().iter().map(|t| t.message).collect() };
        let by = |recipient: Option<&str>, sender: Option<&str>, client: Option<&str>| Query {
            recipient: recipient.map(str::to_string),
            sender: sender.map(str::to_string),
            client: client.map(str::to_string),
            ..Query::default()
        };
        assert_eq!(ids(by(Some("NOBODY@h.test"), None, None)), [7]);
        assert_eq!(ids(by(None, Some("s@x.test"), None)), [9, 7]);
        assert_eq!(ids(by(None, Some("s@x.test"), Some("192.0.2.9"))), [7]);
        assert_eq!(ids(by(None, None, Some("192.0.2.10"))), [8]);
        let events = events_of(s, 8).unwrap();
        assert_eq!(
            events[0].describe(),
            "refused at connect from 192.0.2.10: 550 5.1.1 user unknown"
        );
        assert_eq!(
            events_of(s, 7).unwrap()[0].describe(),
            "refused before data from 192.0.2.9 <s@x.test> for nobody@h.test: 550 5.1.1 user unknown"
        );
    }

    #[test]
    fn messages_are_found_by_field_and_time_with_all_their_events() {
        let filed = Event {
            at: 101,
            message: 1,
            kind: EventKind::Filed {
                recipient: "a@h.test".into(),
                folder: "Junk".into(),
            },
        };
        let owner = store_with(&[
            arrival(1, 100, "s@x.test", "a@h.test"),
            filed.clone(),
            arrival(2, 200, "S@x.test", "b@h.test"),
            arrival(3, 300, "t@x.test", "a@h.test"),
            arrival(4, -5, "old@x.test", "a@h.test"),
        ]);
        let s = owner.store();
        let ids =
            |q: Query| -> Vec<u64> { search(s, &q).unwrap().iter().map(|t| t.message).collect() };
        let by_sender = Query {
            sender: Some("s@X.test".into()),
            ..Query::default()
        };
        assert_eq!(ids(by_sender.clone()), [2, 1], "newest first, case ignored");
        let traces = search(s, &by_sender).unwrap();
        assert_eq!(traces[1].events.len(), 2);
        assert_eq!(traces[1].events[1], filed);
        let both = Query {
            sender: Some("s@x.test".into()),
            recipient: Some("a@h.test".into()),
            ..Query::default()
        };
        assert_eq!(ids(both), [1]);
        let window = Query {
            since: Some(150),
            until: Some(300),
            ..Query::default()
        };
        assert_eq!(ids(window), [3, 2]);
        assert_eq!(
            ids(Query::default()),
            [3, 2, 1, 4],
            "negative times sort first"
        );
        let by_id = Query {
            message_id: Some("<m3@x.test>".into()),
            ..Query::default()
        };
        assert_eq!(ids(by_id), [3]);
        let by_client = Query {
            client: Some("192.0.2.7".into()),
            limit: 2,
            ..Query::default()
        };
        assert_eq!(ids(by_client), [3, 2]);
    }

    #[test]
    fn the_purge_takes_old_messages_and_their_index() {
        let owner = store_with(&[
            arrival(1, 100, "s@x.test", "a@h.test"),
            arrival(2, 200, "s@x.test", "a@h.test"),
        ]);
        let s = owner.store();
        assert_eq!(purge(s, 150).unwrap(), 1);
        let q = Query {
            sender: Some("s@x.test".into()),
            ..Query::default()
        };
        let left: Vec<u64> = search(s, &q).unwrap().iter().map(|t| t.message).collect();
        assert_eq!(left, [2]);
        assert!(events_of(s, 1).unwrap().is_empty());
        let mut keys = 0;
        s.kv()
            .scan_prefix(Cf::Events, b"", &mut |_, _| {
                keys += 1;
                true
            })
            .unwrap();
        // Message 2: its event, the time key and four field keys.
        assert_eq!(keys, 6);
    }
}
