//! The settings a running server takes without a restart: the SMTP and IMAP limits,
//! the trusted networks, the connection and hourly limits, the DNS blocklists and the
//! default spam level. `serve` builds each from the configuration at start with the
//! functions here, and [`Tunables::apply`] swaps in new ones when the admin console
//! changes the file or a SIGHUP asks for a reload: sessions and checks that start
//! afterwards use them, those already running finish with what they began with.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use gannet_core::config::Config;
use gannet_core::imap::ImapConfig;
use gannet_core::policy::dns_checks::List;
use gannet_core::policy::{ConnectionLimiter, DnsChecks, Networks, RateLimiter};
use gannet_core::smtp::SessionConfig;

/// Handles on everything [`Tunables::apply`] may change.
#[derive(Clone)]
pub(crate) struct Tunables {
    pub smtp: Arc<ArcSwap<SessionConfig>>,
    pub imap: Arc<ArcSwap<ImapConfig>>,
    pub trusted: Arc<ArcSwap<Networks>>,
    pub connections: Arc<ConnectionLimiter>,
    pub rates: Arc<RateLimiter>,
    pub dns_checks: DnsChecks,
    /// `[spam]`: the default level of new accounts (and where rules reload from).
    pub spam: Arc<ArcSwap<gannet_core::config::Spam>>,
}

impl Tunables {
    /// Checks every live key of `config` first, then swaps them all in; on an error
    /// nothing has changed.
    pub(crate) fn apply(&self, config: &Config) -> anyhow::Result<()> {
        let trusted = trusted_networks(config)?;
        let lists = dnsbl_lists(config)?;
        let smtp = session_config(config);
        let mut imap = ImapConfig::clone(&self.imap.load());
        imap.max_literal = config.limits.max_message_size.0;
        self.smtp.store(Arc::new(smtp));
        self.imap.store(Arc::new(imap));
        self.trusted.store(Arc::new(trusted));
        self.connections
            .set_max_per_client(config.limits.max_connections_per_ip);
        self.rates.set_per_hour(config.limits.messages_per_hour);
        self.dns_checks.set_lists(lists);
        self.spam.store(Arc::new(config.spam.clone()));
        tracing::info!(
            trusted = config.relay.trusted_networks.len(),
            dnsbl = config.dnsbl.len(),
            max_recipients = config.limits.max_recipients,
            max_message_size = config.limits.max_message_size.0,
            max_connections_per_ip = config.limits.max_connections_per_ip,
            messages_per_hour = config.limits.messages_per_hour,
            default_level = config.spam.default_level,
            "settings applied"
        );
        Ok(())
    }
}

/// The SMTP session's limits and names from `config`.
pub(crate) fn session_config(config: &Config) -> SessionConfig {
    let limits = &config.limits;
    SessionConfig {
        hostname: config.server.hostname.clone(),
        max_command_line: limits.max_command_line,
        max_recipients: limits.max_recipients,
        max_message_size: usize::try_from(limits.max_message_size.0).unwrap_or(usize::MAX),
        max_bad_commands: limits.max_bad_commands,
        restrict_sender: config.auth.restrict_sender,
        over_quota_permanent: limits.over_quota_permanent,
    }
}

/// `relay.trusted_networks`, parsed.
pub(crate) fn trusted_networks(config: &Config) -> anyhow::Result<Networks> {
    Networks::parse(&config.relay.trusted_networks).context("relay.trusted_networks")
}

/// The `[[dnsbl]]` lists, checked.
pub(crate) fn dnsbl_lists(config: &Config) -> anyhow::Result<Vec<List>> {
    config
        .dnsbl
        .iter()
        .map(|l| match l.action.as_str() {
            "reject" | "score" => Ok(List {
                zone: l.zone.clone(),
                reject: l.action == "reject",
                score: l.score,
                answers: l.answers.clone(),
            }),
            other => anyhow::bail!(
                "dnsbl {}: action must be reject or score, not {other:?}",
                l.zone
            ),
        })
        .collect()
}
