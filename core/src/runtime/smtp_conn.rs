//! Drives one SMTP session over a tokio-uring TCP stream: reads into the session's own
//! buffer (through TLS when active), writes its replies, runs STARTTLS handshakes, sends
//! logins to the auth service and commits finished messages through the store.

use std::net::{Shutdown, SocketAddr};

use tokio_uring::net::TcpStream;

use super::conn;
use super::worker::{unix_now, WorkerContext};
use super::PortKind;
use crate::delivery::local::{delivery_changes, placements, ScanCopy, JUNK};
use crate::mime::relays::Relays;
use crate::policy::dns_checks::{DnsChecks, SpfQuery};
use crate::policy::RateKey;
use crate::smtp::{
    ConnectionPolicy, Delivery, DeliveryOutcome, Environment, RcptRoute, Session, Step,
};

/// Messages up to this size are scanned on the worker itself.
const INLINE_SCAN_LIMIT: usize = 256 * 1024;

const TOO_MANY_CONNECTIONS: &[u8] = b"421 4.7.0 Too many connections from your address\r\n";

/// The session's view of the world, backed by the worker.
struct WorkerEnv<'a>(&'a WorkerContext);

impl Environment for WorkerEnv<'_> {
    fn now(&self) -> i64 {
        unix_now()
    }
    fn next_message_id(&mut self) -> u64 {
        self.0.next_message_id()
    }
    fn route(&self, address: &str) -> RcptRoute {
        self.0.server.directory.load().route(address)
    }
    fn admit_message(&mut self, key: RateKey) -> bool {
        self.0.server.rates.admit(key)
    }
    fn quota_allows(&self, account: u32, bytes: u64) -> bool {
        self.0.server.quotas.allows(account, bytes)
    }
}

pub async fn serve(ctx: &WorkerContext, stream: TcpStream, peer: SocketAddr, kind: PortKind) {
    let implicit = kind == PortKind::Submissions;
    let Some(opened) = conn::open(ctx, &stream, peer, implicit, TOO_MANY_CONNECTIONS).await else {
        return;
    };
    let (ip, trusted) = (opened.ip, opened.trusted);
    let mut transport = opened.transport;
    let server = &ctx.server;
    // Blocklists apply to the MX port, never to trusted networks or submission ports
    // (where a roaming user on a listed address still authenticates).
    if kind == PortKind::Mx && !opened.trusted {
        if let Some(zone) = server.dns_checks.rejecting_list(ip).await {
            tracing::info!(%ip, zone, "refused: listed by a DNS blocklist");
            let line =
                format!("554 5.7.1 Service unavailable; client [{ip}] blocked using {zone}\r\n");
            conn::refuse(&stream, line.as_bytes()).await;
            return;
        }
    }
    let policy = ConnectionPolicy {
        client_ip: ip,
        tls: transport.is_tls(),
        starttls: true,
        auth_without_tls: server.plaintext_on_loopback && ip.is_loopback(),
        submission: kind != PortKind::Mx,
        trusted: opened.trusted,
    };
    let mut session = Session::new(server.smtp.clone(), policy, ctx.buffers.take());
    let mut stop = ctx.stop.clone();
    let mut lifetime = conn::Lifetime::start();
    loop {
        match session.step(&mut WorkerEnv(ctx)) {
            Step::Deliver => {
                // SPF is for mail from the outside: not from trusted networks, not from
                // authenticated users, not on the submission ports.
                let spf =
                    (kind == PortKind::Mx && !trusted && !session.is_authenticated()).then(|| {
                        SpfQuery {
                            ip,
                            helo: session.helo_name().unwrap_or_default().to_string(),
                            mail_from: String::new(),
                            receiver: server.smtp.hostname.clone(),
                        }
                    });
                if let Some(delivery) = session.take_delivery(ctx.buffers.take()) {
                    let spf = spf.map(|q| SpfQuery {
                        mail_from: delivery.envelope.reverse_path.clone(),
                        ..q
                    });
                    let outcome = store(ctx, delivery, spf).await;
                    session.delivered(outcome);
                }
            }
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
    // A read may still be in flight: shutting the socket down ends it and tells the client.
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_input_buffer());
}

/// Makes the message durable; only then may the session say 250.
async fn store(ctx: &WorkerContext, delivery: Delivery, spf: Option<SpfQuery>) -> DeliveryOutcome {
    let Delivery {
        envelope,
        mut buffer,
        message_len,
    } = delivery;
    buffer.truncate(message_len);
    // Mail from the outside (the SPF query says so) is also looked up in the scoring
    // blocklists: the client and the public addresses its Received headers name.
    // Both lookups at once: they wait on the DNS-checks thread, not on this worker.
    let checks = &ctx.server.dns_checks;
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
            let (listings, verdict) = tokio::join!(checks.scored_listings(ips), checks.spf(query));
            (listings, Some(verdict))
        }
        None => (Vec::new(), None),
    };
    if let Some(v) = &spf {
        if v.result == "fail" && ctx.server.dns_checks.reject_spf_fail {
            tracing::info!(id = format_args!("{:016x}", envelope.id), from = %envelope.reverse_path, "refused: SPF fail");
            return DeliveryOutcome::SpfFail;
        }
        // After the Return-Path line, in the buffer itself (no second copy of the message).
        let at = memchr::memmem::find(&buffer, b"\r\n").map_or(0, |i| i + 2);
        buffer.splice(at..at, v.header.bytes());
    }
    let size = buffer.len();
    let accounts = envelope.local_accounts();
    let quotas = &ctx.server.quotas;
    if let Some(full) = accounts.iter().find(|&&a| !quotas.allows(a, size as u64)) {
        // Refused whole, never half-stored: the client retries for every recipient.
        tracing::info!(
            id = format_args!("{:016x}", envelope.id),
            account = full,
            "mailbox full"
        );
        return DeliveryOutcome::OverQuota;
    }
    // One scan per message, whatever the number of recipients. Small messages are scanned
    // here (bounded CPU); large ones on a reader thread, so the worker stays responsive.
    let scan_relay = envelope.recipients.iter().any(|r| r.scan);
    // The network tests' results, for the metas that read them.
    let facts: Vec<String> = spf
        .iter()
        .map(|s| s.rule())
        .chain(listings.iter().map(|(zone, _)| DnsChecks::rule_name(zone)))
        .collect();
    let (verdict, buffer) = if accounts.is_empty() && !scan_relay {
        (None, buffer)
    } else if buffer.len() <= INLINE_SCAN_LIMIT {
        let verdict = ctx.server.rules.load().scan_with_facts(&buffer, &facts);
        (Some(verdict), buffer)
    } else {
        let rules = ctx.server.rules.load_full();
        match ctx
            .server
            .readers
            .run(move |_| (rules.scan_with_facts(&buffer, &facts), buffer))
            .await
        {
            Some((v, b)) => (Some(v), b),
            None => return DeliveryOutcome::Failed,
        }
    };
    // The SPF result is a rule hit too, scored as the rules score it (0 if they do not).
    let verdict = verdict.map(|mut v| {
        let rules = ctx.server.rules.load();
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
    });
    let from = crate::mime::header_value(&buffer, "From").map(|f| {
        f.rsplit_once('<')
            .map_or(f.as_str(), |(_, a)| a.trim_end_matches('>'))
            .trim()
            .to_string()
    });
    let directory = ctx.server.directory.load();
    let placed = placements(&envelope, verdict.as_ref(), &directory, from.as_deref());
    let junk = placed
        .iter()
        .filter(|p| p.mailbox == JUNK)
        .map(|p| p.accounts.len())
        .sum::<usize>();
    // Scan-relay recipients get the verdict as headers (spam by the rules' own
    // required_score), and the Subject tag if the rules set one: nothing else.
    let scan_copy = verdict.as_ref().filter(|_| scan_relay).map(|v| {
        let required = Some(ctx.server.rules.load().globals.required_score);
        ScanCopy {
            headers: v.headers(required),
            subject_tag: v.subject_tag(required),
        }
    });
    let changes = delivery_changes(&envelope, buffer, &placed, scan_copy.as_ref());
    match ctx.server.store.commit(changes).await {
        Ok(_) => {
            let remote = envelope
                .recipients
                .iter()
                .filter(|r| r.account.is_none())
                .count();
            if remote > 0 {
                ctx.server.outbound.notify_one();
            }
            tracing::info!(
                id = format_args!("{:016x}", envelope.id),
                from = %envelope.reverse_path,
                recipients = envelope.recipients.len(),
                queued = remote,
                junk,
                score = verdict.as_ref().map_or(0.0, |v| v.score),
                size,
                "accepted"
            );
            DeliveryOutcome::Stored
        }
        Err(e) => {
            tracing::error!(id = format_args!("{:016x}", envelope.id), error = %e, "store failed");
            match e {
                crate::store::StoreError::NoSpace(_) => DeliveryOutcome::NoSpace,
                _ => DeliveryOutcome::Failed,
            }
        }
    }
}
