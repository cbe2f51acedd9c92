//! `gannet serve`: opens the store, starts the commit thread, the control socket and one
//! worker per core, then waits for SIGTERM or SIGINT to shut down gracefully.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use gannet_core::antivirus::Antivirus;
use gannet_core::auth::service::AuthService;
use gannet_core::config::Config;
use gannet_core::delivery::inbound::{Inbound, QuarantineSettings};
use gannet_core::delivery::quarantine::{Links, ReleaseKey};
use gannet_core::delivery::screening::Screens;
use gannet_core::imap::ImapConfig;
use gannet_core::policy::attachments::AttachmentPolicy;
use gannet_core::policy::{ConnectionLimiter, FailureTracker, QuotaBook, RateLimiter};
use gannet_core::pop3::Pop3Config;
use gannet_core::runtime::{self, certs, Listeners, MaildropLocks, ServerContext};
use gannet_core::store::reader::Readers;
use gannet_core::store::Store;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::admin::{load_config, store_dir, LiveState};
use crate::cli::Global;
use crate::control;
use crate::{live_settings, purge, web};
use gannet_core::delivery::outbound::OutboundConfig;

/// The outbound runner's settings from `[delivery]`, `[dns]` and the hostname.
fn outbound_config(config: &Config) -> anyhow::Result<OutboundConfig> {
    let d = &config.delivery;
    let host_port = |text: &str, default_port: u16| -> anyhow::Result<(String, u16)> {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => Ok((
                h.trim_matches(['[', ']']).to_string(),
                p.parse().with_context(|| format!("bad port in {text:?}"))?,
            )),
            _ => Ok((text.to_string(), default_port)),
        }
    };
    let relay_host = if d.relay_host.is_empty() {
        None
    } else {
        Some(host_port(&d.relay_host, 25).context("delivery.relay_host")?)
    };
    let nameservers = config
        .dns
        .nameservers
        .iter()
        .map(|n| {
            let (h, p) = host_port(n, 53)?;
            Ok(std::net::SocketAddr::new(
                h.parse()
                    .with_context(|| format!("dns.nameservers: {n:?} is not an address"))?,
                p,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(OutboundConfig {
        hostname: config.server.hostname.clone(),
        relay_host,
        relay_auth: (!d.relay_user.is_empty())
            .then(|| (d.relay_user.clone(), d.relay_password.clone())),
        relay_ca: d.relay_ca.clone(),
        remote_port: d.remote_port,
        retry_schedule: d.retry_schedule.iter().map(|x| x.0).collect(),
        max_queue_age: d.max_queue_age.0,
        reply_timeout: d.reply_timeout.0,
        destination_concurrency: d.destination_concurrency.max(1),
        connect_timeout: d.reply_timeout.0.min(std::time::Duration::from_secs(30)),
        nameservers,
        trace: config.trace.enabled,
        ..OutboundConfig::default()
    })
}

pub(crate) fn run(global: &Global, workers: Option<usize>) -> anyhow::Result<ExitCode> {
    let mut config = load_config(global)?;
    if let Some(n) = workers {
        config.server.workers = n;
    }
    gannet_core::process::raise_fd_limit();
    let data_dir = config.server.data_dir.clone();
    // Handlers first: a signal that arrives while starting is not lost.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    gannet_core::store::private_dir(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let owner = Store::open(&store_dir(&data_dir))
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let store = owner.store().clone();
    let routing = Arc::new(ArcSwap::from_pointee(crate::admin::load_directory(
        &store,
        &config.spam,
    )?));
    let quotas = QuotaBook::load(&store)?;
    let loading = std::time::Instant::now();
    let (rules, origin) = crate::admin::load_rules(&config.spam, &data_dir)?;
    let rules = Arc::new(rules);
    tracing::info!(
        loaded = rules.report.loaded,
        from = %origin,
        compile_cache = rules.report.from_cache,
        ms = loading.elapsed().as_millis() as u64,
        "spam rules loaded"
    );
    crate::admin::warm_rules(&rules);
    let rules = Arc::new(ArcSwap::new(rules));
    let live = LiveState {
        routing: routing.clone(),
        quotas: quotas.clone(),
        rules: rules.clone(),
        spam: Arc::new(ArcSwap::from_pointee(config.spam.clone())),
        data_dir: data_dir.clone(),
        scanners: Default::default(),
    };
    control::spawn(&data_dir, store.clone(), live.clone())?;
    let outbound_wake = gannet_core::delivery::outbound::Wake::default();
    let dnsbl_lists = live_settings::dnsbl_lists(&config)?;
    let outbound = outbound_config(&config)?;
    let dns_checks = gannet_core::policy::DnsChecks::start(
        dnsbl_lists,
        outbound.nameservers.clone(),
        config.spf.reject_fail,
    )
    .context("cannot start the DNS checks")?;
    gannet_core::delivery::outbound::spawn(
        store.clone(),
        routing.clone(),
        outbound,
        outbound_wake.clone(),
    )
    .context("cannot start outbound delivery")?;

    let cert = load_certificate(&config)?;
    let tls = Arc::new(ArcSwap::new(cert.config));
    let smtp = Arc::new(ArcSwap::from_pointee(live_settings::session_config(
        &config,
    )));
    let address = |name: &str, value: &str| {
        value
            .parse()
            .with_context(|| format!("listen.{name}: bad address {value:?}"))
    };
    let listeners = Listeners {
        smtp: address("smtp", &config.listen.smtp)?,
        submission: address("submission", &config.listen.submission)?,
        submissions: address("submissions", &config.listen.submissions)?,
        pop3: address("pop3", &config.listen.pop3)?,
        pop3s: address("pop3s", &config.listen.pop3s)?,
        imap: address("imap", &config.listen.imap)?,
        imaps: address("imaps", &config.listen.imaps)?,
    };
    let failures = FailureTracker::with_account_limit(
        config.auth.max_failures,
        config.auth.max_account_failures,
        config.auth.failure_window.0,
        config.auth.lockout.0,
    );
    let readers = Readers::start(store.clone(), 2)?;
    let release_key = Arc::new(
        ReleaseKey::load_or_create(&data_dir).context("cannot read or make the quarantine key")?,
    );
    let web_addr: std::net::SocketAddr = address("web", &config.listen.web)?;
    let public_url = if config.web.public_url.is_empty() {
        format!("https://{}:{}", config.server.hostname, web_addr.port())
    } else {
        config.web.public_url.clone()
    };
    let antivirus =
        Antivirus::start(&config.antivirus).context("cannot start the antivirus thread")?;
    let inbound = Arc::new(Inbound {
        store: store.clone(),
        directory: routing.clone(),
        quotas: quotas.clone(),
        rules: rules.clone(),
        dns_checks: dns_checks.clone(),
        readers: readers.clone(),
        outbound: outbound_wake.clone(),
        screens: Screens {
            antivirus,
            attachments: AttachmentPolicy::new(&config.attachments),
            attachments_outbound: config.attachments.outbound,
        },
        bayes: Default::default(),
        auto_learn: config.spam.auto_learn(),
        bayes_per_account: config.spam.bayes_per_account,
        trace: config.trace.enabled,
        quarantine: QuarantineSettings {
            key: release_key.clone(),
            links: Links { public_url },
            retention_secs: config.quarantine.retention.0.as_secs() as i64,
            hostname: config.server.hostname.clone(),
        },
    });
    web::spawn(
        web_addr,
        tls.clone(),
        web::WebState {
            store: store.clone(),
            key: release_key,
            routing: routing.clone(),
            mail: web::MailSettings {
                hostname: config.server.hostname.clone(),
                imaps: Some(listeners.imaps.port()),
                imap: Some(listeners.imap.port()),
                pop3s: Some(listeners.pop3s.port()),
                pop3: Some(listeners.pop3.port()),
                submissions: Some(listeners.submissions.port()),
                submission: Some(listeners.submission.port()),
            },
        },
    )?;
    let limits = &config.limits;
    let connections = ConnectionLimiter::with_totals(
        limits.max_connections_per_ip,
        limits.max_connections,
        limits.max_connections_per_listener,
    );
    let trusted = Arc::new(ArcSwap::from_pointee(live_settings::trusted_networks(
        &config,
    )?));
    let rates = RateLimiter::new(limits.messages_per_hour);
    let imap = Arc::new(ArcSwap::from_pointee(ImapConfig {
        hostname: config.server.hostname.clone(),
        max_literal: limits.max_message_size.0,
        ..ImapConfig::default()
    }));
    let tunables = live_settings::Tunables {
        smtp: smtp.clone(),
        imap: imap.clone(),
        trusted: trusted.clone(),
        connections: connections.clone(),
        rates: rates.clone(),
        dns_checks: dns_checks.clone(),
        spam: live.spam.clone(),
    };
    let admin_addr: std::net::SocketAddr = address("admin", &config.listen.admin)?;
    // Where the certificate is read at start: a replacement goes there.
    let cert_paths = if config.tls.cert.is_empty() || config.tls.key.is_empty() {
        let dir = config.server.data_dir.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    } else {
        (
            std::path::PathBuf::from(&config.tls.cert),
            std::path::PathBuf::from(&config.tls.key),
        )
    };
    web::admin::ensure_first_admin(&store, &data_dir)
        .context("cannot create the first administrator")?;
    web::admin::spawn(
        admin_addr,
        tls.clone(),
        web::admin::AdminState::new(
            store.clone(),
            live.clone(),
            plaintext_warning(&config).into_iter().collect(),
            FailureTracker::with_account_limit(
                config.auth.max_failures,
                config.auth.max_account_failures,
                config.auth.failure_window.0,
                config.auth.lockout.0,
            ),
            ADMIN_IDLE,
            connections.clone(),
            web::admin::SettingsPlace {
                config: global.config.clone(),
                cert: cert_paths.0,
                key: cert_paths.1,
                tls: tls.clone(),
                tunables: tunables.clone(),
                data_dir: data_dir.clone(),
            },
        ),
    )?;
    purge::spawn(
        store.clone(),
        &config.quarantine,
        config.trace.retention.0,
        config.spam.bayes_max_tokens,
        outbound_wake.clone(),
    )?;
    let ctx = ServerContext {
        smtp,
        store: store.clone(),
        directory: routing,
        idle_timeout: limits.idle_timeout.0,
        shutdown_grace: config.server.shutdown_grace.0,
        tls: tls.clone(),
        auth: AuthService::start(store.clone(), failures, 2)?,
        trusted,
        auth_settings: config.auth.clone(),
        connections,
        unauthenticated_lifetime: limits.unauthenticated_lifetime.0,
        rates,
        quotas,
        readers,
        pop3: Arc::new(Pop3Config {
            hostname: config.server.hostname.clone(),
            ..Pop3Config::default()
        }),
        pop3_locks: Arc::new(MaildropLocks::default()),
        inbound,
        dns_checks,
        imap,
    };
    warn_plaintext(&config);
    let count = config.worker_count();
    let workers = runtime::start(ctx, &listeners, count)?;
    tracing::info!(
        smtp = %listeners.smtp,
        submission = %listeners.submission,
        submissions = %listeners.submissions,
        pop3 = %listeners.pop3,
        pop3s = %listeners.pop3s,
        imap = %listeners.imap,
        imaps = %listeners.imaps,
        workers = count,
        data = %data_dir.display(),
        "gannet serving"
    );

    for signal in signals.forever() {
        if signal == SIGHUP {
            // New handshakes use the new certificate; sessions keep theirs.
            match load_certificate(&config) {
                Ok(cert) => tls.store(cert.config),
                Err(e) => {
                    tracing::error!(error = %e, "certificate reload failed; keeping the old one")
                }
            }
            if let Err(e) = live.reload_rules() {
                tracing::error!(error = %e, "rules reload failed; keeping the old ones");
            }
            // The keys the server takes live, from the file as it is now.
            if global.config.is_some() {
                if let Err(e) = load_config(global).and_then(|c| tunables.apply(&c)) {
                    tracing::error!(error = %format!("{e:#}"), "settings reload failed; keeping the old ones");
                }
            }
            continue;
        }
        tracing::info!(
            signal,
            "shutting down: no new connections, finishing sessions"
        );
        break;
    }
    workers.shutdown();
    owner.close();
    let _ = std::fs::remove_file(control::socket_path(&data_dir));
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long an admin console session lasts without a request.
const ADMIN_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Warns at start while passwords are accepted without TLS from any address (the admin
/// console's front page shows the same warning).
fn warn_plaintext(config: &Config) {
    if let Some(warning) = plaintext_warning(config) {
        tracing::warn!("{warning}");
    }
}

/// The warning, while `auth.allow_plaintext` is on for any listener.
fn plaintext_warning(config: &Config) -> Option<String> {
    let listeners: Vec<&str> = config
        .auth
        .allow_plaintext
        .listeners()
        .into_iter()
        .map(|l| l.name())
        .collect();
    (!listeners.is_empty()).then(|| {
        format!(
            "auth.allow_plaintext is on for {}: passwords are accepted without TLS from any \
             address on these listeners, readable by anyone on the path; turn it off once \
             the devices that need it are gone",
            listeners.join(", ")
        )
    })
}

/// The configured certificate, or the self-signed one of the data directory.
fn load_certificate(config: &Config) -> anyhow::Result<certs::LoadedCert> {
    let cert = certs::load(
        &config.tls.cert,
        &config.tls.key,
        &config.server.data_dir,
        &config.server.hostname,
    )?;
    tracing::info!(
        cert = %cert.cert_path.display(),
        sha256 = %cert.fingerprint,
        "TLS certificate loaded"
    );
    Ok(cert)
}
