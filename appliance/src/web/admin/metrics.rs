//! `GET /metrics`: the Prometheus text format (version 0.0.4), for a scraper that sends
//! an API token (`authorization: {credentials: ...}` in its scrape configuration) or a
//! logged-in browser. Counters come from the store (they survive restarts), gauges are
//! read at scrape time, latency histograms (`gannet_core::metrics`) count since start.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gannet_core::store::{directory, quarantine, queue};

use super::{caller, json_error, secure, AdminState};

/// The store's traffic counters and what each is called in Prometheus.
const COUNTERS: [(&str, &str, &str); 8] = [
    (
        "recipients_refused",
        "gannet_recipients_refused_total",
        "Recipients refused at RCPT (unknown, relay denied, limits, full mailbox).",
    ),
    (
        "connections_refused",
        "gannet_connections_refused_total",
        "Connections refused at connect by a DNS blocklist.",
    ),
    (
        "messages_refused",
        "gannet_messages_refused_total",
        "Messages refused after their data (SPF, full mailbox, virus, scan failure).",
    ),
    (
        "messages_accepted",
        "gannet_messages_accepted_total",
        "Messages accepted over SMTP and stored.",
    ),
    (
        "messages_queued",
        "gannet_messages_queued_total",
        "Messages queued for delivery to other servers.",
    ),
    (
        "messages_delivered_remote",
        "gannet_messages_delivered_remote_total",
        "Queued messages delivered to every recipient.",
    ),
    (
        "messages_quarantined",
        "gannet_messages_quarantined_total",
        "Messages held in the quarantine.",
    ),
    (
        "spam_reports",
        "gannet_spam_reports_total",
        "Messages reported as spam to the report address.",
    ),
];

pub(super) async fn metrics(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if caller(&state, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "send Authorization: Bearer TOKEN");
    }
    let store = &state.store;
    let stats = match store.stats() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "metrics: store read failed");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "the store cannot be read");
        }
    };
    let mut out = String::with_capacity(2048);
    for (stat, name, help) in COUNTERS {
        let value = stats.iter().find(|(k, _)| k == stat).map_or(0, |(_, v)| *v);
        metric(&mut out, name, "counter", help, value as f64);
    }
    let gauges = [
        (
            "gannet_queue_messages",
            "Messages in the outbound queue now.",
            queue::list(store).map_or(0, |q| q.len()),
        ),
        (
            "gannet_quarantine_messages",
            "Messages held in the quarantine now.",
            quarantine::list(store).map_or(0, |q| q.len()),
        ),
        (
            "gannet_accounts",
            "Mail accounts.",
            directory::list_accounts(store).map_or(0, |a| a.len()),
        ),
        (
            "gannet_domains",
            "Domains (hosted, backup MX, scan relay).",
            directory::list_domains(store).map_or(0, |d| d.len()),
        ),
        (
            "gannet_connections_open",
            "Client connections open now (every protocol).",
            state.connections.total(),
        ),
    ];
    let (used, space) = state.disk_usage().await;
    let disk = [
        (
            "gannet_data_bytes",
            "Bytes of the files in the data directory (the store, its logs and blobs).",
            Some(used),
        ),
        (
            "gannet_disk_available_bytes",
            "Bytes still free on the data directory's file system.",
            space.map(|s| s.available),
        ),
        (
            "gannet_disk_size_bytes",
            "Size of the data directory's file system.",
            space.map(|s| s.total),
        ),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, name, "gauge", help, value as f64);
    }
    for (name, help, value) in disk {
        if let Some(value) = value {
            metric(&mut out, name, "gauge", help, value as f64);
        }
    }
    for histogram in gannet_core::metrics::all() {
        out.push_str(&histogram.exposition());
    }
    secure(
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            out,
        )
            .into_response(),
    )
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}
