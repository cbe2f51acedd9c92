//! What happens to a message once the SMTP session has it, before the 250: SPF (and
//! refusing its `fail` when configured), the scoring blocklists for the client and the
//! relays its Received headers name, the quota of every local recipient (the message is
//! refused whole if one mailbox is full), one spam scan, the placement of each local copy
//! (INBOX or the account's Junk, by its level and whitelist), the scan-relay copy, and the
//! commit through the mail store. Async, but independent of io_uring: the runtime only
//! calls [`Inbound::accept`].

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::local::{delivery_changes, placements, ScanCopy, JUNK};
use super::outbound::Wake;
use super::quarantine::{self, Links, ReleaseKey};
use super::report;
use super::routing::SharedDirectory;
use super::screening::{screens_recipient, Origin, Screened, Screens};
use crate::filter::bayes::Learned;
use crate::filter::{Ruleset, ScanInput};
use crate::mime::relays::Relays;
use crate::policy::dns_checks::{DnsChecks, SpfQuery, SpfVerdict};
use crate::policy::QuotaBook;
use crate::smtp::{Delivery, DeliveryOutcome};
use crate::store::bayes::StoreLearned;
use crate::store::reader::Readers;
use crate::store::trace::{self, Event, EventKind};
use crate::store::{Store, StoreError};

/// Messages up to this size are scanned on the caller's thread; larger ones on a reader
/// thread, so that a worker stays responsive.
const INLINE_SCAN_LIMIT: usize = 256 * 1024;

/// Everything the inbound path reads: shared by every worker.
pub struct Inbound {
    pub store: Store,
    pub directory: SharedDirectory,
    pub quotas: Arc<QuotaBook>,
    /// The compiled spam rules (replaced on reload; scans in flight keep theirs).
    pub rules: Arc<ArcSwap<Ruleset>>,
    pub dns_checks: DnsChecks,
    /// Threads for work that must not run on a worker (large scans).
    pub readers: Readers,
    /// Wakes the outbound runner when a message for remote recipients is queued.
    pub outbound: Wake,
    /// Virus and attachment screening.
    pub screens: Screens,
    /// Where held messages go, and how their recipients are told.
    pub quarantine: QuarantineSettings,
    /// Whether the Bayes database is ready (scans then go to a reader thread).
    pub bayes: crate::store::bayes::ReadyGate,
    /// Auto-learning's thresholds (`spam.bayes_auto_learn`; None: off).
    pub auto_learn: Option<crate::filter::bayes::auto_learn::Thresholds>,
    /// Accounts have Bayes databases of their own (`spam.bayes_per_account`).
    pub bayes_per_account: bool,
    /// Whether deliveries write the message trace (`trace.enabled`).
    pub trace: bool,
}

/// How held messages are kept and announced.
pub struct QuarantineSettings {
    pub key: Arc<ReleaseKey>,
    pub links: Links,
    pub retention_secs: i64,
    pub hostname: String,
}

impl Inbound {
    /// The Bayes database an account's Junk moves teach: its own when accounts have
    /// their own, else the site-wide one.
    pub fn bayes_scope(&self, account: u32) -> u32 {
        if self.bayes_per_account {
            account
        } else {
            0
        }
    }

    /// Holds `message` for the recipients screening covers and delivers it as usual to
    /// the others (backup-MX recipients); one commit.
    async fn hold(
        &self,
        envelope: crate::smtp::Envelope,
        message: Vec<u8>,
        reason: String,
        origin: Origin,
    ) -> DeliveryOutcome {
        let settings = &self.quarantine;
        let (held, others): (Vec<_>, Vec<_>) = envelope
            .recipients
            .iter()
            .cloned()
            .partition(|r| screens_recipient(origin, r.account, r.scan));
        let rest = crate::smtp::Envelope {
            recipients: others,
            ..envelope.clone()
        };
        let mut changes = if rest.recipients.is_empty() {
            crate::store::Changes::new()
        } else {
            delivery_changes(&rest, message.clone(), &[], None)
        };
        let held_envelope = crate::smtp::Envelope {
            recipients: held,
            ..envelope.clone()
        };
        if self.trace {
            let mut received = arrival_event(&envelope, &message, message.len() as u64);
            trace::record(&mut changes, &received);
            received.kind = EventKind::Held {
                reason: trace::short(&reason),
            };
            trace::record(&mut changes, &received);
        }
        changes.extend(quarantine::hold(
            quarantine::Hold {
                envelope: &held_envelope,
                message,
                reason: reason.clone(),
                now: envelope.received_at,
                retention_secs: settings.retention_secs,
                hostname: &settings.hostname,
            },
            &settings.key,
            &settings.links,
        ));
        match self.store.commit(changes).await {
            Ok(_) => {
                // Notices for scan-relay recipients, and backup-MX copies, are queued.
                if envelope.recipients.iter().any(|r| r.account.is_none()) {
                    self.outbound.notify_one();
                }
                tracing::info!(
                    id = format_args!("{:016x}", envelope.id),
                    from = %envelope.reverse_path,
                    recipients = envelope.recipients.len(),
                    reason,
                    "held in quarantine"
                );
                DeliveryOutcome::Stored
            }
            Err(e) => {
                tracing::error!(id = format_args!("{:016x}", envelope.id), error = %e, "holding failed");
                match e {
                    StoreError::NoSpace(_) => DeliveryOutcome::NoSpace,
                    _ => DeliveryOutcome::Failed,
                }
            }
        }
    }
}

/// Whether SPF's verdict refuses the message: `fail`, when the site says so.
pub fn spf_refuses(verdict: &SpfVerdict, reject_fail: bool) -> bool {
    reject_fail && verdict.result == "fail"
}

/// The first of `accounts` that has no room for `size` more bytes.
pub fn first_full(accounts: &[u32], size: u64, allows: impl Fn(u32, u64) -> bool) -> Option<u32> {
    accounts.iter().copied().find(|&a| !allows(a, size))
}

impl Inbound {
    /// Decides what becomes of `delivery` and makes it durable; only then may the session
    /// say 250. `spf`: the query for mail from the outside (none for trusted networks,
    /// authenticated users and the submission ports), which also asks for the scoring
    /// blocklists.
    pub async fn accept(
        &self,
        delivery: Delivery,
        spf: Option<SpfQuery>,
        origin: Origin,
    ) -> DeliveryOutcome {
        let started = std::time::Instant::now();
        let outcome = self.deliver(delivery, spf, origin).await;
        crate::metrics::DELIVERY.observe(started.elapsed());
        outcome
    }

    /// [`Inbound::accept`] without its timing.
    async fn deliver(
        &self,
        delivery: Delivery,
        spf: Option<SpfQuery>,
        origin: Origin,
    ) -> DeliveryOutcome {
        let Delivery {
            envelope,
            mut buffer,
            message_len,
        } = delivery;
        buffer.truncate(message_len);
        // Mail from the outside (the SPF query says so) is also looked up in the scoring
        // blocklists: the client and the public addresses its Received headers name.
        // Both lookups at once: they wait on the DNS-checks thread, not on this worker.
        let checks = &self.dns_checks;
        let (listings, spf) = match spf {
            Some(query) => {
                let mut ips = vec![query.ip];
                if checks.has_scoring_lists() {
                    let received = crate::mime::header_values(&buffer, "Received", 20);
                    let relays = Relays::from_received(received.iter().map(String::as_str));
                    for ip in relays.public_addresses() {
                        if !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                }
                let (listings, verdict) =
                    tokio::join!(checks.scored_listings(ips), checks.spf(query));
                (listings, Some(verdict))
            }
            None => (Vec::new(), None),
        };
        if let Some(v) = &spf {
            if spf_refuses(v, self.dns_checks.reject_spf_fail) {
                tracing::info!(id = format_args!("{:016x}", envelope.id), from = %envelope.reverse_path, "refused: SPF fail");
                let arrival = self
                    .trace
                    .then(|| arrival_event(&envelope, &buffer, buffer.len() as u64));
                self.record_refusal(arrival, &format!("SPF {}", v.result));
                return DeliveryOutcome::SpfFail;
            }
            // After the Return-Path line, in the buffer itself (no second copy of the message).
            let at = memchr::memmem::find(&buffer, b"\r\n").map_or(0, |i| i + 2);
            buffer.splice(at..at, v.header.bytes());
        }
        let size = buffer.len();
        let arrival = self
            .trace
            .then(|| arrival_event(&envelope, &buffer, size as u64));
        let accounts = envelope.local_accounts();
        if let Some(full) = first_full(&accounts, size as u64, |a, n| self.quotas.allows(a, n)) {
            // Refused whole, never half-stored: the client retries for every recipient.
            tracing::info!(
                id = format_args!("{:016x}", envelope.id),
                account = full,
                "mailbox full"
            );
            self.record_refusal(arrival, &format!("mailbox full (account {full})"));
            return DeliveryOutcome::OverQuota;
        }
        let buffer = match self.screens.screen(&envelope, buffer, origin).await {
            Screened::Pass(message) => message,
            Screened::Refuse(outcome) => {
                let why = match &outcome {
                    DeliveryOutcome::Virus(name) => format!("virus {name}"),
                    DeliveryOutcome::Attachment(what) => format!("forbidden attachment {what}"),
                    DeliveryOutcome::ScanFailed => "the virus scan failed (try again)".into(),
                    other => format!("{other:?}"),
                };
                self.record_refusal(arrival, &why);
                return outcome;
            }
            Screened::Hold { message, reason } => {
                return self.hold(envelope, message, reason, origin).await
            }
        };
        // One scan per message, whatever the number of recipients. Small messages are scanned
        // here (bounded CPU); large ones on a reader thread, so the worker stays responsive.
        let scan_relay = envelope.recipients.iter().any(|r| r.scan);
        // The network tests' results, for the metas that read them.
        let facts: Vec<String> = spf
            .iter()
            .map(|s| s.rule())
            .chain(listings.iter().map(|(zone, _)| DnsChecks::rule_name(zone)))
            .collect();
        // The DNS checks ran when they answered anything: the network score sets.
        let network = self.dns_checks.enabled();
        // Once the Bayes database has learned enough, its many reads are done on a
        // reader thread, never on the worker (as for large messages).
        let bayes_ready = (self.bayes).ready(&self.store, crate::clock::unix_now());
        // Auto-learning (for mail to accounts here) cuts the message into tokens: on a
        // reader thread too.
        let auto_learn = self.auto_learn.filter(|_| !accounts.is_empty());
        let mut auto_learned = None;
        // Accounts with databases of their own: whether each is ready is read from the
        // store, and their scans use it, on the reader thread.
        let own_databases =
            (self.bayes_per_account && !accounts.is_empty()).then(|| accounts.clone());
        let mut own_verdicts = Vec::new();
        let (verdict, buffer) = if accounts.is_empty() && !scan_relay {
            (None, buffer)
        } else if buffer.len() <= INLINE_SCAN_LIMIT
            && !bayes_ready
            && auto_learn.is_none()
            && own_databases.is_none()
        {
            let input = ScanInput {
                facts: &facts,
                network,
                bayes: None,
            };
            let started = std::time::Instant::now();
            let verdict = self.rules.load().scan_message(&buffer, &input);
            crate::metrics::SPAM_SCAN.observe(started.elapsed());
            (Some(verdict), buffer)
        } else {
            let rules = self.rules.load_full();
            match self
                .readers
                .run(move |store| {
                    let learned = StoreLearned { store, scope: 0 };
                    let input = ScanInput {
                        facts: &facts,
                        network,
                        bayes: bayes_ready.then_some(&learned as &dyn Learned),
                    };
                    let started = std::time::Instant::now();
                    let verdict = rules.scan_message(&buffer, &input);
                    crate::metrics::SPAM_SCAN.observe(started.elapsed());
                    let learned = auto_learn
                        .and_then(|t| crate::filter::bayes::auto_learn::decide(&rules, &verdict, t))
                        .map(|spam| (spam, crate::filter::bayes::learnable(&buffer)));
                    // The same message scanned again for each account whose own database
                    // is ready, with it.
                    let own: Vec<(u32, crate::filter::Verdict)> = own_databases
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|&account| {
                            crate::store::bayes::totals(store, account).is_ok_and(|t| t.ready())
                        })
                        .map(|account| {
                            let learned = StoreLearned {
                                store,
                                scope: account,
                            };
                            let input = ScanInput {
                                bayes: Some(&learned as &dyn Learned),
                                ..input
                            };
                            (account, rules.scan_message(&buffer, &input))
                        })
                        .collect();
                    (verdict, buffer, learned, own)
                })
                .await
            {
                Some((v, b, learned, own)) => {
                    auto_learned = learned;
                    own_verdicts = own;
                    (Some(v), b)
                }
                None => return DeliveryOutcome::Failed,
            }
        };
        // The SPF result is a rule hit too, scored as the rules score it (0 if they do not).
        let network_hits = |mut v: crate::filter::Verdict| {
            let rules = self.rules.load();
            if let Some(s) = &spf {
                v.add_hit(&rules, &s.rule(), &format!("SPF: {}", s.result));
            }
            for (zone, score) in &listings {
                v.add_scored_hit(
                    &DnsChecks::rule_name(zone),
                    *score,
                    &format!("listed in {zone}"),
                );
            }
            v
        };
        let verdict = verdict.map(network_hits);
        let own_verdicts: Vec<(u32, crate::filter::Verdict)> = own_verdicts
            .into_iter()
            .map(|(account, v)| (account, network_hits(v)))
            .collect();
        let from = crate::mime::header_value(&buffer, "From").map(|f| {
            f.rsplit_once('<')
                .map_or(f.as_str(), |(_, a)| a.trim_end_matches('>'))
                .trim()
                .to_string()
        });
        let directory = self.directory.load();
        // A spam report: what it carries is cut into tokens on a reader thread.
        // Decided again here, on the envelope: only an authenticated sender's message to
        // the report account is a report (the session refused the others at RCPT; the
        // account may have become the report account since).
        let report = match directory.report_account() {
            Some(account) if accounts.contains(&account) && envelope.submitter.is_some() => {
                let raw = buffer.clone();
                match self.readers.run(move |_| report::learnables(&raw)).await {
                    Some(learned) => Some(learned),
                    None => return DeliveryOutcome::Failed,
                }
            }
            _ => None,
        };
        let placed = placements(
            &envelope,
            verdict.as_ref(),
            &own_verdicts,
            &directory,
            from.as_deref(),
        );
        let junk = placed
            .iter()
            .filter(|p| p.mailbox == JUNK)
            .map(|p| p.accounts.len())
            .sum::<usize>();
        // Scan-relay recipients get the verdict as headers (spam by the rules' own
        // required_score), and the Subject tag if the rules set one: nothing else.
        let scan_copy = verdict.as_ref().filter(|_| scan_relay).map(|v| {
            let required = Some(self.rules.load().globals.required_score);
            ScanCopy {
                headers: v.headers(required),
                subject_tag: v.subject_tag(required),
            }
        });
        let subject = report
            .as_ref()
            .and_then(|_| crate::mime::header_value(&buffer, "Subject"))
            .unwrap_or_default();
        let mut changes = delivery_changes(&envelope, buffer, &placed, scan_copy.as_ref());
        if let Some(arrival) = arrival {
            trace_delivery(&mut changes, &envelope, arrival, verdict.as_ref(), &placed);
        }
        if junk > 0 {
            changes.count("messages_junk", junk as i64);
        }
        // Learned unless someone taught the filter about this message already.
        if let Some((spam, (id, tokens))) = auto_learned {
            changes.auto_learn(0, id, tokens, spam);
            changes.count(
                if spam {
                    "auto_learned_spam"
                } else {
                    "auto_learned_ham"
                },
                1,
            );
        }
        let reported = report.as_ref().map_or(0, Vec::len);
        if let Some(learned) = report {
            // The acknowledgement goes to the account that authenticated.
            let reporter = envelope.submitter.map(|account| report::Reporter {
                account,
                address: &envelope.reverse_path,
                subject: &subject,
            });
            report::add_report(
                &mut changes,
                learned,
                reporter,
                &self.quarantine.hostname,
                envelope.received_at,
            );
        }
        let committing = std::time::Instant::now();
        let committed = self.store.commit(changes).await;
        crate::metrics::DELIVERY_COMMIT.observe(committing.elapsed());
        match committed {
            Ok(_) => {
                let remote = envelope
                    .recipients
                    .iter()
                    .filter(|r| r.account.is_none())
                    .count();
                if remote > 0 {
                    self.outbound.notify_one();
                }
                tracing::info!(
                    id = format_args!("{:016x}", envelope.id),
                    from = %envelope.reverse_path,
                    recipients = envelope.recipients.len(),
                    queued = remote,
                    junk,
                    score = verdict.as_ref().map_or(0.0, |v| v.score),
                    size,
                    reported,
                    "accepted"
                );
                DeliveryOutcome::Stored
            }
            Err(e) => {
                tracing::error!(id = format_args!("{:016x}", envelope.id), error = %e, "store failed");
                match e {
                    StoreError::NoSpace(_) => DeliveryOutcome::NoSpace,
                    _ => DeliveryOutcome::Failed,
                }
            }
        }
    }
}

impl Inbound {
    /// Counts a message refused after its data, and traces it when the trace is on. Not
    /// waited for: the refusal is answered at once, the record goes with the next group
    /// commit.
    fn record_refusal(&self, arrival: Option<Event>, why: &str) {
        let mut changes = crate::store::Changes::new();
        changes.count("messages_refused", 1);
        if let Some(mut event) = arrival {
            trace::record(&mut changes, &event);
            event.kind = EventKind::Refused {
                reason: trace::short(why),
            };
            trace::record(&mut changes, &event);
        }
        drop(self.store.submit(changes));
    }
}

impl Inbound {
    /// Traces a recipient refused at RCPT, or (no sender, no recipient) a client refused
    /// at connect, under a new id `message`; counted in `recipients_refused` or
    /// `connections_refused`. Not waited for, as [`Inbound::record_refusal`].
    pub fn record_turned_away(
        &self,
        message: u64,
        at: i64,
        client: std::net::IpAddr,
        sender: &str,
        recipient: Option<&str>,
        reason: &str,
    ) {
        let mut changes = crate::store::Changes::new();
        changes.count(
            if recipient.is_some() {
                "recipients_refused"
            } else {
                "connections_refused"
            },
            1,
        );
        if self.trace {
            let event = Event {
                at,
                message,
                kind: EventKind::TurnedAway {
                    client: Some(client.to_string()),
                    sender: trace::short(sender),
                    recipients: recipient.map(trace::short).into_iter().collect(),
                    reason: trace::short(reason),
                },
            };
            trace::record(&mut changes, &event);
        }
        drop(self.store.submit(changes));
    }
}

/// The trace's arrival event of a message about to be stored.
fn arrival_event(envelope: &crate::smtp::Envelope, message: &[u8], size: u64) -> Event {
    let header = |name: &str| {
        crate::mime::header_value(message, name)
            .map(|v| trace::short(&v))
            .unwrap_or_default()
    };
    Event {
        at: envelope.received_at,
        message: envelope.id,
        kind: EventKind::Received {
            client: envelope.client_ip.map(|ip| ip.to_string()),
            sender: envelope.reverse_path.clone(),
            recipients: envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
            message_id: header("Message-ID"),
            subject: header("Subject"),
            size,
        },
    }
}

/// The trace of a delivery, into its commit: the arrival, the spam verdict, the
/// mailbox each local recipient got it in, the recipients queued for elsewhere.
fn trace_delivery(
    changes: &mut crate::store::Changes,
    envelope: &crate::smtp::Envelope,
    arrival: Event,
    verdict: Option<&crate::filter::Verdict>,
    placed: &[crate::delivery::local::Placement],
) {
    let event = |kind| Event {
        at: arrival.at,
        message: arrival.message,
        kind,
    };
    trace::record(changes, &arrival);
    if let Some(v) = verdict {
        let rules = v
            .hits
            .iter()
            .map(|h| format!("{}={:.1}", h.name, h.score))
            .collect();
        trace::record(
            changes,
            &event(EventKind::Scored {
                score: v.score,
                rules,
            }),
        );
    }
    for p in placed {
        for r in (envelope.recipients.iter())
            .filter(|r| r.account.is_some_and(|a| p.accounts.contains(&a)))
        {
            let kind = EventKind::Filed {
                recipient: r.address.clone(),
                folder: p.mailbox.to_string(),
            };
            trace::record(changes, &event(kind));
        }
    }
    let remote: Vec<String> = (envelope.recipients.iter())
        .filter(|r| r.account.is_none())
        .map(|r| r.address.clone())
        .collect();
    if !remote.is_empty() {
        trace::record(changes, &event(EventKind::Queued { recipients: remote }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::routing::Directory;
    use crate::smtp::{Envelope, Recipient};
    use crate::store::{directory, mail, StoreOwner};

    /// Seven points with the built-in rules: spam at the high level (5), not at medium.
    const SPAMMY: &[u8] = b"From: Lucky <win@prizes.example>\r\nTo: you@example.test\r\nSubject: news\r\n\r\nYou have won the lottery!\r\nClaim your prize and buy viagra.\r\n";

    fn verdict(result: &'static str) -> SpfVerdict {
        SpfVerdict {
            result,
            header: String::new(),
        }
    }

    #[test]
    fn spf_fail_refuses_only_when_the_site_says_so() {
        assert!(spf_refuses(&verdict("fail"), true));
        assert!(!spf_refuses(&verdict("fail"), false));
        assert!(!spf_refuses(&verdict("softfail"), true));
        assert!(!spf_refuses(&verdict("temperror"), true));
    }

    #[test]
    fn one_full_mailbox_is_named() {
        let allows = |a: u32, n: u64| a != 2 || n < 10;
        assert_eq!(first_full(&[1, 2, 3], 100, allows), Some(2));
        assert_eq!(first_full(&[1, 2, 3], 5, allows), None);
    }

    /// A store in memory with example.test: alice (medium) and carol (high).
    fn inbound() -> (StoreOwner, Inbound, u32, u32) {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store().clone();
        directory::add_domain(&store, "example.test").unwrap();
        let alice = directory::add_account(&store, "alice@example.test", "x", 0)
            .unwrap()
            .id;
        let carol = directory::add_account(&store, "carol@example.test", "x", 0)
            .unwrap()
            .id;
        directory::set_spam_level(&store, "carol@example.test", "high").unwrap();
        let inbound = Inbound {
            directory: Arc::new(ArcSwap::from_pointee(Directory::load(&store).unwrap())),
            quotas: QuotaBook::load(&store).unwrap(),
            rules: Arc::new(ArcSwap::from_pointee(
                crate::filter::load(&[] as &[&str]).unwrap(),
            )),
            dns_checks: DnsChecks::off(),
            readers: Readers::start(store.clone(), 1).unwrap(),
            outbound: Wake::default(),
            screens: Screens::off(),
            bayes: Default::default(),
            auto_learn: None,
            bayes_per_account: false,
            trace: true,
            quarantine: QuarantineSettings {
                key: Arc::new(ReleaseKey::from_bytes(&[0; 32])),
                links: Links {
                    public_url: "https://mx.example.test:8443".into(),
                },
                retention_secs: 7 * 86_400,
                hostname: "mx.example.test".into(),
            },
            store,
        };
        (owner, inbound, alice, carol)
    }

    fn delivery(to: &[(&str, u32)], body: &[u8]) -> Delivery {
        let mut buffer = b"Return-Path: <win@prizes.example>\r\n".to_vec();
        buffer.extend_from_slice(body);
        Delivery {
            envelope: Envelope {
                id: 1,
                reverse_path: "win@prizes.example".into(),
                recipients: to
                    .iter()
                    .map(|(address, account)| Recipient {
                        address: address.to_string(),
                        account: Some(*account),
                        scan: false,
                    })
                    .collect(),
                body_8bit: false,
                smtputf8: false,
                received_at: 0,
                submitter: None,
                client_ip: None,
            },
            message_len: buffer.len(),
            buffer,
        }
    }

    fn count(store: &Store, account: u32, mailbox: &str) -> usize {
        let meta = mail::mailbox(store, account, mailbox).unwrap().unwrap();
        mail::list(store, account, meta.id).unwrap().len()
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn spam_goes_to_junk_by_each_accounts_level_and_whitelist() {
        let (_owner, inbound, alice, carol) = inbound();
        let to = [("alice@example.test", alice), ("carol@example.test", carol)];
        let outcome = run(inbound.accept(delivery(&to, SPAMMY), None, Origin::Outside));
        assert!(matches!(outcome, DeliveryOutcome::Stored), "{outcome:?}");
        let store = &inbound.store;
        assert_eq!(
            count(store, alice, "INBOX"),
            1,
            "medium: 7 points is not spam"
        );
        assert_eq!(count(store, carol, "Junk"), 1, "high: spam");
        // Whitelisted, the sender skips carol's filter.
        directory::add_to_whitelist(store, "carol@example.test", "*@prizes.example").unwrap();
        inbound
            .directory
            .store(Arc::new(Directory::load(store).unwrap()));
        let outcome = run(inbound.accept(delivery(&to[1..], SPAMMY), None, Origin::Outside));
        assert!(matches!(outcome, DeliveryOutcome::Stored), "{outcome:?}");
        assert_eq!(count(store, carol, "INBOX"), 1);
        assert_eq!(count(store, carol, "Junk"), 1);
    }

    #[test]
    fn a_report_is_kept_learned_and_acknowledged() {
        let (_owner, inbound, alice, carol) = inbound();
        let store = &inbound.store;
        let (directory, found) = Directory::load(store)
            .unwrap()
            .with_report_address("carol@example.test");
        assert_eq!(found, Some(carol));
        inbound.directory.store(Arc::new(directory));
        let report = b"From: alice@example.test\r\nSubject: junk\r\n\
                       Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                       Content-Type: message/rfc822\r\n\r\nSubject: pills\r\n\r\nbuy now\r\n--b--\r\n";
        // Not authenticated (a directory that changed after RCPT): kept, not learned.
        let mut d = delivery(&[("carol@example.test", carol)], report);
        d.envelope.reverse_path = "alice@example.test".into();
        let outcome = run(inbound.accept(d, None, Origin::Outside));
        assert!(matches!(outcome, DeliveryOutcome::Stored), "{outcome:?}");
        assert_eq!(crate::store::bayes::totals(store, 0).unwrap().spam, 0);
        assert_eq!(count(store, alice, "INBOX"), 0);
        let mut d = delivery(&[("carol@example.test", carol)], report);
        d.envelope.reverse_path = "alice@example.test".into();
        d.envelope.submitter = Some(alice);
        let outcome = run(inbound.accept(d, None, Origin::Outside));
        assert!(matches!(outcome, DeliveryOutcome::Stored), "{outcome:?}");
        // Kept in the report account's INBOX even at carol's high level, learned once.
        assert_eq!(count(store, carol, "INBOX"), 2);
        let totals = crate::store::bayes::totals(store, 0).unwrap();
        assert_eq!((totals.spam, totals.ham), (1, 0));
        // The reporter is told.
        assert_eq!(count(store, alice, "INBOX"), 1);
        let meta = mail::mailbox(store, alice, "INBOX").unwrap().unwrap();
        let (_, entry) = mail::list(store, alice, meta.id).unwrap().remove(0);
        let ack = mail::blob(store, &entry.blob).unwrap().unwrap();
        let ack = String::from_utf8(ack).unwrap();
        assert!(
            ack.contains("Subject: Spam report received: junk\r\n"),
            "{ack}"
        );
    }

    #[test]
    fn a_full_mailbox_refuses_the_message_for_everyone() {
        let (_owner, inbound, alice, carol) = inbound();
        let store = &inbound.store;
        directory::set_quota(store, "carol@example.test", 10).unwrap();
        inbound.quotas.reload(store).unwrap();
        let to = [("alice@example.test", alice), ("carol@example.test", carol)];
        let outcome = run(inbound.accept(
            delivery(&to, b"Subject: hi\r\n\r\nhello\r\n"),
            None,
            Origin::Outside,
        ));
        assert!(matches!(outcome, DeliveryOutcome::OverQuota), "{outcome:?}");
        assert_eq!(
            count(store, alice, "INBOX"),
            0,
            "nothing stored, for anyone"
        );
        assert_eq!(count(store, carol, "INBOX"), 0);
        // What is stored is counted in the quota book (by the store, once durable).
        let outcome = run(inbound.accept(
            delivery(&to[..1], b"Subject: hi\r\n\r\nhello\r\n"),
            None,
            Origin::Outside,
        ));
        assert!(matches!(outcome, DeliveryOutcome::Stored), "{outcome:?}");
        assert!(inbound.quotas.usage(alice).unwrap().used > 0);
    }
}
