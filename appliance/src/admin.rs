//! Admin commands: what each one does ([`execute`]), the same whether the running server
//! carries it out (its control socket) or the command line does, directly on the store
//! (`command_line`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use gannet_core::config::parse_size;
use gannet_core::config::Config;
use gannet_core::delivery::routing::{Directory, SharedDirectory};
use gannet_core::mime::header_value;
use gannet_core::policy::QuotaBook;
use gannet_core::store::schema::Route;
use gannet_core::store::{account_admin, admins, directory, mail, queue, trace, Store};

use crate::cli::{
    AccountCommand, AdminCommand, AdminUserCommand, AliasCommand, DomainCommand, Global,
    MailCommand, QuarantineCommand, QueueCommand, RulesCommand, TokenCommand, TraceArgs,
    WhitelistCommand,
};

/// The outcome of an admin command: what to print, and whether it succeeded.
pub(crate) struct Outcome {
    pub ok: bool,
    pub output: Vec<u8>,
}

impl Outcome {
    fn ok(output: impl Into<Vec<u8>>) -> Self {
        Outcome {
            ok: true,
            output: output.into(),
        }
    }

    /// A failure, printed as `gannet: WHY`.
    fn failed(why: impl std::fmt::Display) -> Self {
        Outcome {
            ok: false,
            output: format!("gannet: {why}\n").into_bytes(),
        }
    }
}

/// Why a command that needs the running server's state failed without one.
const NO_SERVER: &str = "no server is running on this data directory";

/// Loads the configuration with the command line's overrides applied.
pub(crate) fn load_config(global: &Global) -> anyhow::Result<Config> {
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(data) = &global.data {
        config.server.data_dir = data.clone();
    }
    Ok(config)
}

/// The configuration in `path`, read as `serve` reads it at start.
pub(crate) fn load_config_file(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(Some(path))?)
}

pub(crate) fn store_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("store")
}

/// What a running server keeps in memory from the store, refreshed after admin changes.
#[derive(Clone)]
pub(crate) struct LiveState {
    pub routing: SharedDirectory,
    pub quotas: std::sync::Arc<QuotaBook>,
    pub rules: std::sync::Arc<arc_swap::ArcSwap<gannet_core::filter::Ruleset>>,
    /// The `[spam]` configuration: a reload looks for the stock rules again; the
    /// console may change the default level.
    pub spam: std::sync::Arc<arc_swap::ArcSwap<gannet_core::config::Spam>>,
    /// Where the rules' compile cache lives.
    pub data_dir: std::path::PathBuf,
    /// The scan threads of `gannet spam scan`, started when it first asks.
    pub scanners: std::sync::Arc<crate::scan_service::Scanners>,
}

impl LiveState {
    /// Compiles the rules again and swaps them in; scans in flight finish on the old set.
    pub(crate) fn reload_rules(&self) -> anyhow::Result<gannet_core::filter::Report> {
        let (rules, _) = load_rules(&self.spam.load(), &self.data_dir)?;
        let report = rules.report.clone();
        let rules = std::sync::Arc::new(rules);
        warm_rules(&rules);
        self.rules.store(rules);
        tracing::info!(loaded = report.loaded, "spam rules reloaded");
        Ok(report)
    }
}

/// Carries out a command; `live` is the running server's in-memory state, refreshed
/// after a change. Account passwords arrive already hashed.
pub(crate) fn execute(store: &Store, live: Option<&LiveState>, command: &AdminCommand) -> Outcome {
    if let AdminCommand::Rules(RulesCommand::Reload) = command {
        return match live.map(LiveState::reload_rules) {
            Some(Ok(report)) => Outcome::ok(format!("rules reloaded: {} loaded\n", report.loaded)),
            Some(Err(e)) => Outcome::failed(format!("{e:#}")),
            None => Outcome::failed(NO_SERVER),
        };
    }
    if let AdminCommand::ScanBatch { batch } = command {
        return match live.map(|l| l.scanners.scan(l.rules.load_full(), store, batch)) {
            Some(Ok(output)) => Outcome::ok(output),
            Some(Err(e)) => Outcome::failed(format!("{e:#}")),
            None => Outcome::failed(NO_SERVER),
        };
    }
    if let AdminCommand::Check { repair } = command {
        let outcome = check(store, *repair);
        if let (Some(live), true) = (live, *repair) {
            if let Err(e) = live.quotas.reload(store) {
                tracing::error!(error = %e, "reloading quotas failed");
            }
        }
        return outcome;
    }
    match execute_inner(store, command) {
        Ok(output) => {
            if let (Some(live), true) = (live, changes_accounts(command)) {
                match load_directory(store, &live.spam.load()) {
                    Ok(d) => live.routing.store(std::sync::Arc::new(d)),
                    Err(e) => tracing::error!(error = %e, "reloading routes failed"),
                }
                if let Err(e) = live.quotas.reload(store) {
                    tracing::error!(error = %e, "reloading quotas failed");
                }
            }
            Outcome::ok(output)
        }
        Err(e) => Outcome::failed(format!("{e:#}")),
    }
}

/// `gannet check`: the report, and whether the store is (now) consistent.
fn check(store: &Store, repair: bool) -> Outcome {
    let report = match gannet_core::store::check::check(store, repair) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                ok: false,
                output: format!("gannet: the check failed: {e}\n").into_bytes(),
            }
        }
    };
    let mut out = String::new();
    for line in &report.repairable {
        let done = if report.repaired {
            "repaired"
        } else {
            "repairable"
        };
        out.push_str(&format!("{done}: {line}\n"));
    }
    for line in &report.unrepairable {
        out.push_str(&format!("not repairable: {line}\n"));
    }
    let consistent = report.unrepairable.is_empty() && (report.repaired || report.is_consistent());
    out.push_str(&format!(
        "{} mailboxes, {} messages, {} queued, {} held, {} blobs: {}\n",
        report.mailboxes,
        report.messages,
        report.queued,
        report.held,
        report.blobs,
        match (report.is_consistent(), report.repaired) {
            (true, _) => "consistent".to_string(),
            (false, true) if consistent =>
                format!("{} problem(s) repaired", report.repairable.len()),
            _ => format!(
                "{} problem(s)",
                report.repairable.len() + report.unrepairable.len()
            ),
        }
    ));
    Outcome {
        ok: consistent,
        output: out.into_bytes(),
    }
}

fn changes_accounts(command: &AdminCommand) -> bool {
    matches!(
        command,
        AdminCommand::Domain(DomainCommand::Add { .. } | DomainCommand::Remove { .. })
            | AdminCommand::Account(
                AccountCommand::Add { .. }
                    | AccountCommand::Set { .. }
                    | AccountCommand::Delete { .. }
            )
            | AdminCommand::Alias(AliasCommand::Add { .. } | AliasCommand::Remove { .. })
            | AdminCommand::Whitelist(
                WhitelistCommand::Add { .. } | WhitelistCommand::Remove { .. }
            )
    )
}

fn execute_inner(store: &Store, command: &AdminCommand) -> anyhow::Result<Vec<u8>> {
    let now = gannet_core::clock::unix_now();
    let out: Vec<u8> = match command {
        AdminCommand::Domain(DomainCommand::Add {
            name,
            backup_mx,
            primary,
            scan_relay,
        }) => {
            let (route, what) = match (backup_mx, scan_relay) {
                (true, _) => (
                    Route::BackupMx {
                        primary: primary.clone(),
                    },
                    format!(
                        " as backup MX for {}",
                        primary.as_deref().unwrap_or("its other MX hosts")
                    ),
                ),
                (false, Some(target)) => (
                    Route::ScanRelay {
                        target: target.clone(),
                    },
                    format!(" as scan relay to {target}"),
                ),
                (false, None) => (Route::Domain { catch_all: None }, String::new()),
            };
            let name = directory::add_domain_route(store, name, route)?;
            format!("domain {name} added{what}\n").into_bytes()
        }
        AdminCommand::Domain(DomainCommand::List) => directory::list_domains(store)?
            .iter()
            .map(|d| format!("{d}\n"))
            .collect::<String>()
            .into_bytes(),
        AdminCommand::Account(AccountCommand::Add {
            address,
            password,
            login,
            spam_level,
        }) => {
            if !password.starts_with("$argon2id$") {
                bail!("internal: the password was not hashed");
            }
            let mut account =
                directory::add_account_with_login(store, address, password, login.as_deref(), now)?;
            if let Some(level) = spam_level.as_deref().filter(|l| *l != "medium") {
                account = directory::set_spam_level(store, &account.address, level)?;
            }
            let login = login
                .as_deref()
                .and_then(|l| directory::normalize_login(l).ok())
                .map(|l| format!(", login name {l}"))
                .unwrap_or_default();
            format!(
                "account {} added (id {}{login})\n",
                account.address, account.id
            )
            .into_bytes()
        }
        AdminCommand::Account(AccountCommand::Login {
            address,
            name,
            clear,
        }) => if name.is_none() && !clear {
            let account = directory::account_for_address(store, address)?;
            match directory::login_name(store, account.id)? {
                Some(login) => format!("{}: login name {login}\n", account.address),
                None => format!("{}: no login name\n", account.address),
            }
        } else {
            match directory::set_login(store, address, name.as_deref())? {
                (account, Some(login)) => {
                    format!("{}: login name {login}\n", account.address)
                }
                (account, None) => format!("{}: login name cleared\n", account.address),
            }
        }
        .into_bytes(),
        AdminCommand::Account(AccountCommand::Set {
            address,
            quota,
            spam_level,
            password,
        }) => {
            let mut out = String::new();
            if let Some(hash) = password {
                let account = account_admin::set_password(store, address, hash)?;
                out.push_str(&format!("{}: password changed\n", account.address));
            }
            if let Some(level) = spam_level {
                let account = directory::set_spam_level(store, address, level)?;
                out.push_str(&format!(
                    "{}: spam level {}\n",
                    account.address, account.spam_level
                ));
            }
            if let Some(quota) = quota {
                let bytes = parse_size(quota)
                    .with_context(|| format!("not a size: {quota:?} (try 500MB or 1GiB)"))?;
                let account = directory::set_quota(store, address, bytes)?;
                out.push_str(&format!("{}: quota {bytes} bytes\n", account.address));
            }
            out.into_bytes()
        }
        AdminCommand::Account(AccountCommand::List) => {
            let mut out = String::from("ID\tADDRESS\tUSED\tQUOTA\tSPAM\n");
            for info in directory::list_accounts(store)? {
                let a = &info.account;
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    a.id, a.address, info.usage, a.quota, a.spam_level
                ));
            }
            out.into_bytes()
        }
        AdminCommand::Alias(AliasCommand::Add { alias, target }) => {
            let alias = directory::add_alias(store, alias, target)?;
            format!("alias {alias} -> {target} added\n").into_bytes()
        }
        AdminCommand::Alias(AliasCommand::List) => {
            let mut out = String::new();
            for a in account_admin::list_aliases(store)? {
                let target = directory::account_by_id(store, a.account)?
                    .map_or_else(|| format!("account {}", a.account), |t| t.address);
                out.push_str(&format!("{}\t{target}\n", a.alias));
            }
            out.into_bytes()
        }
        AdminCommand::Alias(AliasCommand::Remove { alias }) => {
            let alias = account_admin::remove_alias(store, alias)?;
            format!("alias {alias} removed\n").into_bytes()
        }
        AdminCommand::Domain(DomainCommand::Remove { name }) => {
            let name = account_admin::remove_domain(store, name)?;
            format!("domain {name} removed\n").into_bytes()
        }
        AdminCommand::Account(AccountCommand::Delete { address, yes }) => {
            if !yes {
                bail!("deleting {address} deletes all its mail: add --yes to confirm");
            }
            let account = account_admin::delete_account(store, address)?;
            format!("account {} deleted with its mail\n", account.address).into_bytes()
        }
        AdminCommand::Account(AccountCommand::Disable { address }) => {
            let account = account_admin::set_disabled(store, address, true)?;
            format!("{}: disabled (cannot log in)\n", account.address).into_bytes()
        }
        AdminCommand::Account(AccountCommand::Enable { address }) => {
            let account = account_admin::set_disabled(store, address, false)?;
            format!("{}: enabled\n", account.address).into_bytes()
        }
        AdminCommand::Whitelist(WhitelistCommand::Remove { address, sender }) => {
            let list = account_admin::remove_from_whitelist(store, address, sender)?;
            format!("{address}: whitelist {}\n", list.join(" ")).into_bytes()
        }
        AdminCommand::Admin(command) => admin_user_command(store, command, now)?,
        AdminCommand::Trace(args) => {
            let mut out = String::new();
            for t in trace::search(store, &trace_query(args, now))? {
                out.push_str(&format!("message {:016x}\n", t.message));
                for e in &t.events {
                    let when = gannet_core::smtp::format_rfc5322_date(e.at);
                    out.push_str(&format!("  {when}  {}\n", e.describe()));
                }
            }
            out.into_bytes()
        }
        AdminCommand::Mail(MailCommand::List { address, mailbox }) => {
            let (account, mailbox_id) = find_mailbox(store, address, mailbox)?;
            let mut out = String::new();
            for (uid, entry) in mail::list(store, account, mailbox_id)? {
                let subject = mail::blob(store, &entry.blob)?
                    .and_then(|m| header_value(&m, "Subject"))
                    .unwrap_or_default();
                out.push_str(&format!("{uid}\t{}\t{subject}\n", entry.size));
            }
            out.into_bytes()
        }
        AdminCommand::Mail(MailCommand::Get {
            address,
            uid,
            mailbox,
        }) => {
            let (account, mailbox_id) = find_mailbox(store, address, mailbox)?;
            let entry = mail::entry(store, account, mailbox_id, *uid)?
                .with_context(|| format!("no message with UID {uid} in {mailbox}"))?;
            mail::blob(store, &entry.blob)?
                .with_context(|| format!("message UID {uid}: its content is missing"))?
        }
        AdminCommand::Whitelist(WhitelistCommand::Add { address, sender }) => {
            let list = directory::add_to_whitelist(store, address, sender)?;
            format!("{address}: whitelist {}\n", list.join(" ")).into_bytes()
        }
        AdminCommand::Whitelist(WhitelistCommand::List { address }) => {
            let account = directory::account_for_address(store, address)?;
            directory::whitelist(store, account.id)?
                .iter()
                .map(|w| format!("{w}\n"))
                .collect::<String>()
                .into_bytes()
        }
        AdminCommand::Rules(_) | AdminCommand::ScanBatch { .. } => {
            bail!("internal: rules and scan commands are not run here")
        }
        AdminCommand::Learn { batch } => learn_batch(store, batch)?,
        AdminCommand::BayesExpire {
            account,
            max_tokens,
        } => {
            let scope = match account {
                Some(address) => directory::account_for_address(store, address)?.id,
                None => 0,
            };
            let expired = gannet_core::store::bayes::expire(store, scope, *max_tokens)?;
            let left = gannet_core::store::bayes::token_count(store, scope)?;
            format!("expired {expired} tokens, {left} left\n").into_bytes()
        }
        AdminCommand::BayesStatus { account } => {
            let scope = match account {
                Some(address) => directory::account_for_address(store, address)?.id,
                None => 0,
            };
            let tokens = gannet_core::store::bayes::token_count(store, scope)?;
            let t = gannet_core::store::bayes::totals(store, scope)?;
            let min = gannet_core::filter::bayes::classify::MIN_LEARNED;
            let state = if t.ready() {
                "in use".to_string()
            } else {
                format!("not used until {min} spam and {min} ham are learned")
            };
            format!(
                "learned: {} spam, {} ham, {tokens} tokens ({state})\n",
                t.spam, t.ham
            )
            .into_bytes()
        }
        AdminCommand::SpamReports { address } => spam_reports(store, address)?,
        AdminCommand::Check { .. } => bail!("internal: check is not run here"),
        AdminCommand::Quarantine(q) => quarantine_command(store, q, now)?,
        AdminCommand::Compact => {
            store.compact()?;
            b"compacted\n".to_vec()
        }
        AdminCommand::StoreStats => {
            let mut stats = serde_json::to_value(store.engine_stats())?;
            if let Some(fields) = stats.as_object_mut() {
                fields.insert("listed_messages".into(), store.listed_messages().into());
                fields.extend(crate::memory::figures());
            }
            let mut out = serde_json::to_vec(&stats)?;
            out.push(b'\n');
            out
        }
        AdminCommand::Queue(QueueCommand::List) => {
            let mut out = String::from("ID\tSENDER\tRECIPIENTS\tAGE\tATTEMPTS\tLAST ERROR\n");
            for m in queue::list(store)? {
                let recipients: Vec<&str> =
                    m.recipients.iter().map(|r| r.address.as_str()).collect();
                out.push_str(&format!(
                    "{:016x}\t<{}>\t{}\t{}s\t{}\t{}\n",
                    m.id,
                    m.reverse_path,
                    recipients.join(","),
                    (now - m.created).max(0),
                    m.attempts,
                    m.last_error.as_deref().unwrap_or("-")
                ));
            }
            out.into_bytes()
        }
        AdminCommand::Queue(QueueCommand::Retry { id, all }) => {
            let targets: Vec<queue::QueuedMessage> = match (id, all) {
                (Some(id), _) => vec![queued_message(store, id)?],
                (None, true) => queue::list(store)?,
                (None, false) => bail!("name a message id, or --all"),
            };
            let mut moved = 0;
            // (A message due already is being delivered, or will be in a moment.)
            for m in targets.iter().filter(|m| m.next_attempt > now) {
                let due = queue::QueuedMessage {
                    next_attempt: now,
                    ..m.clone()
                };
                store.commit_blocking(queue::rewrite(m, &due))?;
                moved += 1;
            }
            format!("{moved} message(s) due now\n").into_bytes()
        }
        AdminCommand::Queue(QueueCommand::Delete { id }) => {
            let m = queued_message(store, id)?;
            store.commit_blocking(queue::remove(&m))?;
            format!("{:016x} deleted\n", m.id).into_bytes()
        }
        AdminCommand::Queue(QueueCommand::Bounce { id }) => {
            let m = queued_message(store, id)?;
            // Due now, marked as returned: the runner bounces it instead of delivering.
            let returned = queue::QueuedMessage {
                next_attempt: now,
                created: queue::RETURNED_BY_ADMIN,
                ..m.clone()
            };
            store.commit_blocking(queue::rewrite(&m, &returned))?;
            format!("{:016x} returned to <{}>\n", m.id, m.reverse_path).into_bytes()
        }
    };
    Ok(out)
}

/// The store's query for `gannet trace` (and the console's search form).
pub(crate) fn trace_query(args: &TraceArgs, now: i64) -> trace::Query {
    trace::Query {
        sender: args.sender.clone(),
        recipient: args.recipient.clone(),
        message_id: args.message_id.clone(),
        client: args.client.clone(),
        since: args.hours.map(|h| now - i64::from(h) * 3600),
        until: None,
        limit: args.limit,
    }
}

/// `gannet admin ...`: administrators of the console and their tokens.
fn admin_user_command(
    store: &Store,
    command: &AdminUserCommand,
    now: i64,
) -> anyhow::Result<Vec<u8>> {
    Ok(match command {
        AdminUserCommand::Add { name, password } => {
            let admin = admins::add_admin(store, name, password, now)?;
            format!("administrator {} added\n", admin.name).into_bytes()
        }
        AdminUserCommand::List => admins::list(store)?
            .iter()
            .map(|a| format!("{}\n", a.name))
            .collect::<String>()
            .into_bytes(),
        AdminUserCommand::Password { name, password } => {
            let admin = admins::set_admin_password(store, name, password)?;
            format!("administrator {}: password changed\n", admin.name).into_bytes()
        }
        AdminUserCommand::Token(TokenCommand::Create { name }) => {
            format!("{}\n", admins::create_token(store, name, now)?).into_bytes()
        }
    })
}

/// `gannet quarantine ...`.
fn quarantine_command(
    store: &Store,
    command: &QuarantineCommand,
    now: i64,
) -> anyhow::Result<Vec<u8>> {
    use gannet_core::delivery::quarantine as hold;
    use gannet_core::store::quarantine::{self, HeldMessage, HeldStatus};
    let fate = |s: &HeldStatus| match s {
        HeldStatus::Held => "held".to_string(),
        HeldStatus::Released { at, by } => {
            format!("released {}s ago by {by}", (now - at).max(0))
        }
        HeldStatus::Deleted { at, by } => format!("deleted {}s ago by {by}", (now - at).max(0)),
    };
    let find = |id: &str| -> anyhow::Result<HeldMessage> {
        let n = u64::from_str_radix(id.trim(), 16).with_context(|| format!("bad id {id:?}"))?;
        quarantine::find(store, n)?.with_context(|| format!("no held message {id}"))
    };
    Ok(match command {
        QuarantineCommand::List { address, json } => {
            let wanted = address.as_deref();
            let mut out = String::new();
            if !json {
                out.push_str("ID\tARRIVED\tEXPIRES IN\tSENDER\tRECIPIENTS\tREASON\n");
            }
            for m in quarantine::list(store)? {
                if wanted.is_some_and(|w| !m.is_for(w)) {
                    continue;
                }
                if *json {
                    let recipients: Vec<serde_json::Value> = m
                        .recipients
                        .iter()
                        .map(|r| serde_json::json!({"address": r.address, "status": fate(&r.status)}))
                        .collect();
                    let line = serde_json::json!({
                        "id": format!("{:016x}", m.id),
                        "arrived": m.arrived,
                        "expires": m.expires,
                        "sender": m.reverse_path,
                        "subject": m.subject,
                        "size": m.size,
                        "reason": m.reason,
                        "recipients": recipients,
                    });
                    out.push_str(&line.to_string());
                    out.push('\n');
                } else {
                    let recipients: Vec<String> = m
                        .recipients
                        .iter()
                        .map(|r| format!("{} ({})", r.address, fate(&r.status)))
                        .collect();
                    out.push_str(&format!(
                        "{:016x}\t{}s ago\t{}s\t<{}>\t{}\t{}\n",
                        m.id,
                        (now - m.arrived).max(0),
                        (m.expires - now).max(0),
                        m.reverse_path,
                        recipients.join(", "),
                        m.reason
                    ));
                }
            }
            out.into_bytes()
        }
        QuarantineCommand::Show { id } => {
            let m = find(id)?;
            let mut out = format!(
                "id: {:016x}\nsender: <{}>\nsubject: {}\nsize: {}\nreason: {}\narrived: {}\nexpires: {}\n",
                m.id, m.reverse_path, m.subject, m.size, m.reason, m.arrived, m.expires
            );
            for r in &m.recipients {
                out.push_str(&format!("recipient: {} ({})\n", r.address, fate(&r.status)));
            }
            if let Some(body) = mail::blob(store, &m.blob)? {
                let end = body
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(body.len(), |i| i + 2);
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(
                    body.get(..end).unwrap_or_default(),
                ));
            }
            out.into_bytes()
        }
        QuarantineCommand::Release { id, recipient } => {
            let m = find(id)?;
            let mut released = Vec::new();
            for (i, r) in m.recipients.iter().enumerate() {
                let wanted = recipient
                    .as_deref()
                    .is_none_or(|w| r.address.eq_ignore_ascii_case(w));
                if wanted && r.status == HeldStatus::Held {
                    store.commit_blocking(hold::release(store, m.id, i, "admin", now)?)?;
                    released.push(r.address.clone());
                }
            }
            if released.is_empty() {
                bail!("nothing to release: no recipient of {id} is still waiting for it");
            }
            format!("{:016x} released to {}\n", m.id, released.join(", ")).into_bytes()
        }
        QuarantineCommand::Delete { id } => {
            let m = find(id)?;
            let mut changes = gannet_core::store::Changes::new();
            changes.drop_held(m.id);
            store.commit_blocking(changes)?;
            format!("{:016x} deleted\n", m.id).into_bytes()
        }
        QuarantineCommand::Purge => {
            let (changes, n) = hold::purge(store, now)?;
            store.commit_blocking(changes)?;
            format!("{n} expired message(s) deleted\n").into_bytes()
        }
    })
}

/// The queued message with the id `queue list` shows (hex).
fn queued_message(store: &Store, id: &str) -> anyhow::Result<queue::QueuedMessage> {
    let n =
        u64::from_str_radix(id.trim(), 16).with_context(|| format!("{id:?} is not a queue id"))?;
    queue::find(store, n)?.with_context(|| format!("no queued message {id}"))
}

fn find_mailbox(store: &Store, address: &str, mailbox: &str) -> anyhow::Result<(u32, u32)> {
    let account = directory::account_for_address(store, address)?;
    let meta = mail::mailbox(store, account.id, mailbox)?
        .with_context(|| format!("{} has no mailbox {mailbox}", account.address))?;
    Ok((account.id, meta.id))
}

/// The routing table, with the spam-report account when `spam.report_address` names
/// one (a warning when it names no account here).
pub(crate) fn load_directory(
    store: &Store,
    spam: &gannet_core::config::Spam,
) -> anyhow::Result<Directory> {
    let (directory, found) = Directory::load(store)?.with_report_address(&spam.report_address);
    if found.is_none() && !spam.report_address.trim().is_empty() {
        tracing::warn!(
            address = spam.report_address,
            "spam.report_address is no account's address: spam reports are off"
        );
    }
    Ok(directory)
}

/// Loads the built-in rules and the configured (or stock) rule directories, with the
/// compile cache in the data directory when it exists.
pub(crate) fn load_rules(
    spam: &gannet_core::config::Spam,
    data_dir: &Path,
) -> anyhow::Result<(
    gannet_core::filter::Ruleset,
    gannet_core::filter::stock::RulesOrigin,
)> {
    let (dirs, origin) = spam.rules();
    let cache = data_dir
        .is_dir()
        .then(|| gannet_core::filter::cache::dir_in(data_dir));
    let rules = gannet_core::filter::load_cached(&dirs, cache.as_deref())
        .with_context(|| format!("loading the spam rules ({origin})"))?;
    Ok((rules, origin))
}

/// Compiles the rules' remaining regexes on a thread of its own (after a load from the
/// compile cache they compile when first used), so that scans soon find them ready.
pub(crate) fn warm_rules(rules: &std::sync::Arc<gannet_core::filter::Ruleset>) {
    let rules = rules.clone();
    let spawned = std::thread::Builder::new()
        .name("rules-warm".into())
        .spawn(move || rules.warm());
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the rules' warm-up thread: regexes compile when first used");
    }
}

/// `gannet rules check`: loads the configured rules and reports what was understood.
pub(crate) fn rules_check(config: &Config, list: bool) -> anyhow::Result<ExitCode> {
    let (rules, origin) = load_rules(&config.spam, &config.server.data_dir)?;
    if list {
        for (rule, runnable) in rules.rules.iter().zip(rules.runnable()) {
            println!(
                "{}\t{:?}\t{}\t{}",
                rule.name,
                rule.kind,
                rule.scores[0],
                if runnable { "runs" } else { "cannot-run" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = &rules.report;
    println!(
        "loaded {} rules ({} with a backtracking regex; {} scored 0 and needed by no meta, not run) \
         from {origin}{}",
        r.loaded,
        r.backtracking,
        r.inactive,
        if r.from_cache {
            " (regex analysis from the compile cache)"
        } else {
            ""
        }
    );
    let without: usize = r.without_atom.values().sum();
    let ascii: usize = r.ascii_atoms.values().sum();
    let alnum: usize = r.alnum_atoms.values().sum();
    let chained: usize = r.chained.values().sum();
    println!(
        "without a prefilter atom: {without} ({ascii} of them have atoms on ASCII text and run \
         on every other text; {alnum} have atoms in the text's letters and digits; {chained} \
         spell a word letter by letter and run where the look-alike gate finds it; the rest \
         run on every message)"
    );
    for (kind, n) in &r.without_atom {
        let ascii = r.ascii_atoms.get(kind).copied().unwrap_or(0);
        let alnum = r.alnum_atoms.get(kind).copied().unwrap_or(0);
        let chained = r.chained.get(kind).copied().unwrap_or(0);
        println!(
            "  {kind}: {n} ({ascii} with ASCII atoms, {alnum} with letter atoms, {chained} \
             gated as look-alike words)"
        );
    }
    let skipped: usize = r.skipped.values().sum();
    println!("skipped: {skipped}");
    for (why, n) in &r.skipped {
        println!("  {why}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports kept in the report account's INBOX: UID, arrival, reporter (From), the
/// messages it carried, Subject; tab-separated.
fn spam_reports(store: &Store, address: &str) -> anyhow::Result<Vec<u8>> {
    let (account, mailbox) = find_mailbox(store, address, "INBOX")?;
    let mut out = String::new();
    for (uid, entry) in mail::list(store, account, mailbox)? {
        let raw = mail::blob(store, &entry.blob)?.unwrap_or_default();
        let carried = gannet_core::filter::bayes::report::reported_messages(&raw).len();
        let field = |name: &str| header_value(&raw, name).unwrap_or_default();
        out.push_str(&format!(
            "{uid}\t{}\t{}\t{carried}\t{}\n",
            gannet_core::smtp::format_rfc5322_date(entry.internal_date),
            field("From"),
            field("Subject")
        ));
    }
    Ok(out.into_bytes())
}

/// Counts a batch of messages into the Bayes database, in one commit; one line of counts
/// (learned, already known, moved, forgotten, not known) for the command line to add up.
fn learn_batch(store: &Store, batch: &crate::cli::LearnBatch) -> anyhow::Result<Vec<u8>> {
    use gannet_core::store::bayes::Learned;
    let scope = match &batch.account {
        Some(address) => directory::account_for_address(store, address)?.id,
        None => 0,
    };
    let mut changes = gannet_core::store::Changes::new();
    for (id, tokens) in &batch.messages {
        changes.learn(scope, *id, tokens.clone(), batch.spam);
    }
    let applied = store.commit_blocking(changes)?;
    let count = |kind: Learned| applied.learned.iter().filter(|l| **l == kind).count();
    Ok(format!(
        "{} {} {} {} {}\n",
        count(Learned::Learned),
        count(Learned::AlreadyKnown),
        count(Learned::Relearned),
        count(Learned::Forgotten),
        count(Learned::NotKnown)
    )
    .into_bytes())
}
