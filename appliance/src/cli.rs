//! The command line: `gannet serve` and the admin commands, with their global options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(
    name = "gannet",
    version,
    about = "Gannet: a mail appliance in one binary"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct Global {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `server.data_dir`).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the mail server.
    Serve {
        /// Worker threads (default: `server.workers`, 0 = one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
    #[command(flatten)]
    Admin(AdminCommand),
    /// Scan messages with the spam rules (no server needed).
    #[command(subcommand)]
    Spam(SpamCommand),
}

#[derive(Subcommand)]
pub(crate) enum SpamCommand {
    /// Score each FILE (or each file of a directory): total and rules hit.
    Scan {
        files: Vec<std::path::PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Threads scanning at once (default: one per core). The output keeps the
        /// files' order; a summary goes to standard error.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Scan here even when a server runs on the data directory (by default the
        /// files go to it, and its rules and Bayes database score them): the rules in
        /// the configuration as they are now, without the Bayes database the server
        /// holds.
        #[arg(long)]
        local: bool,
    },
    /// Teach the Bayes classifier: each PATH a message file, a directory of them, a
    /// Maildir, or an mbox file. A message learned again counts once; learned the other
    /// way, it moves.
    Learn {
        /// Messages that are spam.
        #[arg(long, num_args = 1.., value_name = "PATH")]
        spam: Vec<std::path::PathBuf>,
        /// Messages that are not.
        #[arg(long, num_args = 1.., value_name = "PATH")]
        ham: Vec<std::path::PathBuf>,
        /// Into this account's own database instead of the site-wide one.
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
    },
    /// Make the Bayes classifier forget messages it learned.
    Forget {
        paths: Vec<std::path::PathBuf>,
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
    },
    /// What the Bayes database has learned, and whether it is used yet.
    Status {
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
    },
    /// Drop the least recently learned rare tokens of a Bayes database holding more than
    /// MAX (the daily purge does this with `spam.bayes_max_tokens`), down to 3/4 of MAX.
    Expire {
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
        /// Default: `spam.bayes_max_tokens`.
        #[arg(long, value_name = "MAX")]
        max_tokens: Option<usize>,
    },
    /// Spam reports users sent to `spam.report_address`.
    #[command(subcommand)]
    Reports(ReportsCommand),
}

#[derive(Subcommand, Clone, Debug)]
pub(crate) enum ReportsCommand {
    /// One line per report: UID, arrival, reporter, messages it carried, Subject.
    List,
    /// A report as it was sent.
    Show { uid: u32 },
}

/// Messages for the Bayes database, as `gannet spam learn` sends them: tokens, not
/// messages (the command line reads and cuts them, the server only counts).
#[derive(Clone, Serialize, Deserialize, Debug, Default)]
pub(crate) struct LearnBatch {
    /// The account whose database (None: the site-wide one).
    pub(crate) account: Option<String>,
    /// Spam (true), ham (false), or forget (None).
    pub(crate) spam: Option<bool>,
    /// Each message's id and tokens.
    pub(crate) messages: Vec<([u8; 32], Vec<u64>)>,
}

/// Commands that read or change the appliance's records.
#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum AdminCommand {
    /// Hosted domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Mail accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Aliases: another address (or `@domain`, a catch-all) delivering to an account.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Reading mailboxes.
    #[command(subcommand)]
    Mail(MailCommand),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The spam rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Senders whose mail skips an account's spam filter.
    #[command(subcommand)]
    Whitelist(WhitelistCommand),
    /// Messages held for a virus or a forbidden attachment.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Administrators of the web console, and API tokens for scripts.
    #[command(subcommand)]
    Admin(AdminUserCommand),
    /// What happened to messages: search the message trace (newest first).
    Trace(TraceArgs),
    /// Check the store's integrity: every message's body exists, reference counts, usage
    /// and next UIDs agree with the records. Exit 0 when consistent, else a report and 1.
    Check {
        /// Rebuild counters and next UIDs from the records; drop what nothing refers to.
        #[arg(long)]
        repair: bool,
    },
    /// Compact the store now, so that the space of deleted mail returns to the disk.
    Compact,
    /// The store engine's background work as JSON: bytes compaction must still rewrite,
    /// compactions and flushes running, whether writes are slowed or stopped, file sizes.
    StoreStats,
    /// Count a batch of messages into the Bayes database (sent by `gannet spam learn`).
    #[command(hide = true)]
    Learn {
        #[arg(skip)]
        batch: LearnBatch,
    },
    /// Messages for the running server to score (`gannet spam scan`).
    #[command(hide = true)]
    ScanBatch {
        #[arg(skip)]
        batch: crate::scan_service::ScanBatch,
    },
    /// The Bayes database's totals (`gannet spam status`).
    #[command(hide = true)]
    BayesStatus { account: Option<String> },
    /// Expire a Bayes database's tokens past `max_tokens` (`gannet spam expire`).
    #[command(hide = true)]
    BayesExpire {
        account: Option<String>,
        max_tokens: usize,
    },
    /// The reports in the report account's INBOX (`gannet spam reports list`).
    #[command(hide = true)]
    SpamReports { address: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum RulesCommand {
    /// Load the rules and report: loaded, skipped by reason, rules without a prefilter atom.
    Check {
        /// Also list every rule: name, kind, and whether Gannet can run its test.
        #[arg(long)]
        list: bool,
    },
    /// Make the running server load the rules again.
    Reload,
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum QuarantineCommand {
    /// One line per held message (of one recipient address, if given): id, arrival,
    /// expiry, sender, recipients and their fate, reason.
    List {
        address: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// A held message's record and its headers.
    Show { id: String },
    /// Deliver a held message to its recipients still waiting (or to one of them).
    Release {
        id: String,
        #[arg(long)]
        recipient: Option<String>,
    },
    /// Delete a held message now.
    Delete { id: String },
    /// Delete every held message past its expiry now (the server does it daily).
    Purge,
}

#[derive(Args, Clone, Serialize, Deserialize, Debug, Default)]
pub(crate) struct TraceArgs {
    /// The envelope sender.
    #[arg(long)]
    pub sender: Option<String>,
    /// A recipient.
    #[arg(long)]
    pub recipient: Option<String>,
    /// The Message-ID header, with its angle brackets.
    #[arg(long)]
    pub message_id: Option<String>,
    /// The client's IP address.
    #[arg(long)]
    pub client: Option<String>,
    /// Only messages that arrived in the last N hours.
    #[arg(long)]
    pub hours: Option<u32>,
    /// Most messages shown.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum AdminUserCommand {
    /// Add an administrator (password: 8+ characters, an upper-case letter, a digit).
    Add {
        name: String,
        #[arg(long)]
        password: String,
    },
    /// List administrators.
    List,
    /// Set an administrator's password.
    Password {
        name: String,
        #[arg(long)]
        password: String,
    },
    /// API tokens for scripts (`Authorization: Bearer TOKEN` on /api/v1/...).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token for an administrator; it is shown once.
    Create { name: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum WhitelistCommand {
    /// Add a sender (a@b or *@domain) to an account's whitelist.
    Add { address: String, sender: String },
    /// Show an account's whitelist.
    List { address: String },
    /// Remove a sender from an account's whitelist.
    Remove { address: String, sender: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum QueueCommand {
    /// One line per queued message: id, sender, recipients, age, attempts, last error.
    List,
    /// Try a message (or every message) again now instead of at its next attempt.
    Retry {
        /// The id `queue list` shows.
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Drop a message from the queue without telling its sender.
    Delete { id: String },
    /// Return a message to its sender now: a DSN for every recipient still queued.
    Bounce { id: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum DomainCommand {
    /// Host a domain (accept mail for its addresses), or with --backup-mx or
    /// --scan-relay pass a customer's mail on to the customer's own server.
    Add {
        name: String,
        /// Be the domain's backup MX: hold its mail (up to delivery.max_queue_age) and
        /// deliver it to --primary, or to the domain's other MX hosts.
        #[arg(long, conflicts_with = "scan_relay")]
        backup_mx: bool,
        /// The primary server of a backup-MX domain, HOST[:PORT].
        #[arg(long, requires = "backup_mx")]
        primary: Option<String>,
        /// Scan the domain's mail for spam, add the X-Spam headers (and the Subject tag
        /// the rules set), and deliver it to HOST[:PORT].
        #[arg(long, value_name = "HOST[:PORT]")]
        scan_relay: Option<String>,
    },
    /// List hosted domains.
    List,
    /// Stop hosting a domain, with its aliases (refused while it has accounts).
    Remove { name: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum AccountCommand {
    /// Create an account (password: 8+ characters, an upper-case letter, a digit).
    Add {
        address: String,
        #[arg(long)]
        password: String,
        /// A name to log in with besides the address (letters, digits, . _ - +; no @),
        /// unique across the appliance: an old system's user name such as `bbc_john`.
        #[arg(long)]
        #[serde(default)]
        login: Option<String>,
        /// Filled from `spam.default_level` of the configuration, not from the command line.
        #[arg(skip)]
        #[serde(default)]
        spam_level: Option<String>,
    },
    /// List accounts with their storage use.
    List,
    /// Show, set or clear an account's login name (the name it may log in with besides
    /// its address).
    Login {
        address: String,
        /// The new login name (letters, digits, . _ - +; no @); none: show the current one.
        name: Option<String>,
        /// Take the login name away.
        #[arg(long, conflicts_with = "name")]
        clear: bool,
    },
    /// Change an account's settings.
    Set {
        address: String,
        /// Storage quota ("500MB", "1GiB", or bytes).
        #[arg(long)]
        quota: Option<String>,
        /// Spam level: off, low (15), medium (10), high (5).
        #[arg(long)]
        spam_level: Option<String>,
        /// A new password (the same policy as `account add`).
        #[arg(long)]
        #[serde(default)]
        password: Option<String>,
    },
    /// Delete an account with all its mail, its aliases and settings.
    Delete {
        address: String,
        /// Required: the mail cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
    /// Disable an account: it can no longer log in (its mail is still delivered).
    Disable { address: String },
    /// Enable a disabled account again.
    Enable { address: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum AliasCommand {
    /// Deliver mail for ALIAS to TARGET's account; ALIAS `@domain` is a catch-all.
    Add { alias: String, target: String },
    /// List aliases and catch-alls with the account each delivers to.
    List,
    /// Remove an alias (`a@domain`) or a catch-all (`@domain`).
    Remove { alias: String },
}

#[derive(Subcommand, Clone, Serialize, Deserialize, Debug)]
pub(crate) enum MailCommand {
    /// One line per message: UID, size, Subject.
    List {
        address: String,
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
    },
    /// A message's raw bytes on standard output.
    Get {
        address: String,
        uid: u32,
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
    },
}
