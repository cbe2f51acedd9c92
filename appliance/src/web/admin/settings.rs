//! The settings page: a few configuration keys edited in the configuration file (its
//! comments and the other keys kept as they are, with `toml_edit`), and the TLS
//! certificate replaced live.
//!
//! A changed file is read back whole as the server reads it at start and applied to the
//! running server ([`crate::live_settings`]); if either fails the old file is put back.
//! A certificate is checked (chain, key, that rustls accepts
//! them) before it replaces the old one; then new handshakes on every port use it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::pages::{accept, back, layout, LoggedIn, Notice, Posted, WithCsrf};
use super::{AdminState, Caller};
use crate::web::{escape, escape_lines};

/// Where the settings and the data live, and what to swap when they change.
pub(crate) struct SettingsPlace {
    /// The configuration file `serve` was started with (None: embedded defaults).
    pub(crate) config: Option<PathBuf>,
    /// Where the certificate and key are read at start.
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// The certificate every listener hands out.
    pub(crate) tls: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
    /// What a saved change is applied to.
    pub(crate) tunables: crate::live_settings::Tunables,
    /// The data directory (its size and its disk's free space on the dashboard).
    pub(crate) data_dir: PathBuf,
}

/// The keys the page edits: (table, key, label).
const KEYS: [(&str, &str, &str); 5] = [
    (
        "spam",
        "default_level",
        "Default spam level of new accounts",
    ),
    ("limits", "max_recipients", "Recipients per message"),
    ("limits", "max_message_size", "Largest message (e.g. 50MB)"),
    (
        "limits",
        "max_connections_per_ip",
        "Connections per client address",
    ),
    (
        "limits",
        "messages_per_hour",
        "Messages per hour per sender (bulk path)",
    ),
];

pub(super) async fn page(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let place = &state.settings;
    let Some(path) = &place.config else {
        let body = format!(
            "<p>gannet runs on its embedded defaults (no <code>--config FILE</code>): start it with a \
             configuration file to change settings here.</p>{}",
            certificate_form(&caller, place)
        );
        return layout(&caller, "Settings", &notice, &body);
    };
    let config = match crate::admin::load_config_file(path) {
        Ok(c) => c,
        Err(e) => {
            let body = format!("<p class=\"error\">{}</p>", escape(&format!("{e:#}")));
            return layout(&caller, "Settings", &notice, &body);
        }
    };
    let current = |table: &str, key: &str| -> String {
        match (table, key) {
            ("spam", "default_level") => config.spam.default_level.clone(),
            ("limits", "max_recipients") => config.limits.max_recipients.to_string(),
            ("limits", "max_message_size") => config.limits.max_message_size.0.to_string(),
            ("limits", "max_connections_per_ip") => {
                config.limits.max_connections_per_ip.to_string()
            }
            ("limits", "messages_per_hour") => config.limits.messages_per_hour.to_string(),
            _ => String::new(),
        }
    };
    let mut fields = String::new();
    for (table, key, label) in KEYS {
        let _ = write!(
            fields,
            "<label>{label} <input name=\"{table}.{key}\" value=\"{}\"></label>",
            escape(&current(table, key))
        );
    }
    let body = format!(
        "<p>Saved in <code>{file}</code> and applied at once: new connections and messages \
         follow them, sessions already open finish with what they started with.</p>\
         <form method=\"post\" action=\"/settings\">{csrf}\
         <label>Trusted networks (relay without login), one a line \
         <textarea name=\"relay.trusted_networks\" rows=\"4\" cols=\"40\">{networks}</textarea></label>\
         {fields}\
         <label>DNS blocklists, one a line: <code>zone reject</code> or <code>zone score 2.5</code>, \
         then the answers that mean listed (none: any 127.0.0.0/8) \
         <textarea name=\"dnsbl\" rows=\"4\" cols=\"64\">{dnsbl}</textarea></label>\
         <button>Save</button></form>\
         {cert}",
        file = escape(&path.display().to_string()),
        csrf = super::pages::csrf_field(&caller),
        networks = escape_lines(&config.relay.trusted_networks.join("\n")),
        dnsbl = escape_lines(&dnsbl_lines(&config.dnsbl)),
        cert = certificate_form(&caller, place),
    );
    layout(&caller, "Settings", &notice, &body)
}

fn certificate_form(caller: &Caller, place: &SettingsPlace) -> String {
    format!(
        "<h2>TLS certificate</h2><p>Read from <code>{}</code>. Paste a PEM chain (the server's \
         certificate first) and its private key; they are checked before they replace the \
         current ones, and every port uses them for new connections at once.</p>\
         <form method=\"post\" action=\"/settings/certificate\">{}\
         <label>Certificate chain (PEM) <textarea name=\"cert\" rows=\"6\" cols=\"64\" required></textarea></label>\
         <label>Private key (PEM) <textarea name=\"key\" rows=\"4\" cols=\"64\" required></textarea></label>\
         <button>Replace the certificate</button></form>",
        escape(&place.cert.display().to_string()),
        super::pages::csrf_field(caller)
    )
}

/// The settings form: every key optional (an empty field leaves the key as it is).
#[derive(Deserialize)]
pub(super) struct SettingsForm {
    csrf: Option<String>,
    #[serde(rename = "relay.trusted_networks")]
    trusted_networks: Option<String>,
    #[serde(rename = "spam.default_level")]
    default_level: Option<String>,
    #[serde(rename = "limits.max_recipients")]
    max_recipients: Option<String>,
    #[serde(rename = "limits.max_message_size")]
    max_message_size: Option<String>,
    #[serde(rename = "limits.max_connections_per_ip")]
    max_connections_per_ip: Option<String>,
    #[serde(rename = "limits.messages_per_hour")]
    messages_per_hour: Option<String>,
    /// One list a line: `zone reject|score [score] [answer ...]`. The form shows the
    /// current lists, so a field sent empty removes them all; a field not sent leaves
    /// them.
    dnsbl: Option<String>,
}

impl WithCsrf for SettingsForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A change to the settings, from the form or the API: each key optional (None leaves
/// it as it is).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsChange {
    #[serde(default)]
    pub trusted_networks: Option<Vec<String>>,
    #[serde(default)]
    pub default_level: Option<String>,
    #[serde(default)]
    pub max_recipients: Option<u64>,
    /// A size as the file writes it: `50MB`, `1GiB`, or bytes.
    #[serde(default)]
    pub max_message_size: Option<String>,
    #[serde(default)]
    pub max_connections_per_ip: Option<u64>,
    #[serde(default)]
    pub messages_per_hour: Option<u64>,
    /// The whole list of blocklists (replaces the old one).
    #[serde(default)]
    pub dnsbl: Option<Vec<DnsblEntry>>,
}

/// One `[[dnsbl]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DnsblEntry {
    pub zone: String,
    /// `reject` or `score`.
    pub action: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub answers: Vec<String>,
}

impl SettingsForm {
    /// The change the form asks for; an error names the field that is wrong.
    fn change(&self) -> Result<SettingsChange, String> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let number = |key: &str, v: &Option<String>| -> Result<Option<u64>, String> {
            given(v)
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("{key}: {v:?} is not a positive number"))
                })
                .transpose()
        };
        Ok(SettingsChange {
            trusted_networks: given(&self.trusted_networks).map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            default_level: given(&self.default_level),
            max_recipients: number("max_recipients", &self.max_recipients)?,
            max_message_size: given(&self.max_message_size),
            max_connections_per_ip: number("max_connections_per_ip", &self.max_connections_per_ip)?,
            messages_per_hour: number("messages_per_hour", &self.messages_per_hour)?,
            dnsbl: self.dnsbl.as_deref().map(parse_dnsbl_lines).transpose()?,
        })
    }
}

/// The blocklist text of the form: one list a line, `zone reject|score [score]
/// [answer ...]`; blank lines and `#` comments skipped.
fn parse_dnsbl_lines(text: &str) -> Result<Vec<DnsblEntry>, String> {
    let mut lists = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(zone), Some(action)) = (words.next(), words.next()) else {
            return Err(format!(
                "blocklist {line:?}: write the zone, then reject or score"
            ));
        };
        let mut rest: Vec<&str> = words.collect();
        let score = match rest.first().map(|w| w.parse::<f64>()) {
            Some(Ok(n)) => {
                rest.remove(0);
                Some(n)
            }
            _ => None,
        };
        lists.push(DnsblEntry {
            zone: zone.to_string(),
            action: action.to_ascii_lowercase(),
            score,
            answers: rest
                .iter()
                .flat_map(|w| w.split(','))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(lists)
}

/// The configured blocklists as the form shows them.
fn dnsbl_lines(lists: &[gannet_core::config::Dnsbl]) -> String {
    let mut text = String::new();
    for l in lists {
        let _ = write!(text, "{} {}", l.zone, l.action);
        if l.action == "score" {
            let _ = write!(text, " {}", l.score);
        }
        for a in &l.answers {
            let _ = write!(text, " {a}");
        }
        text.push('\n');
    }
    text
}

pub(super) async fn save(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<SettingsForm>,
) -> Response {
    let form = match accept(&caller, form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let change = match form.change() {
        Ok(c) => c,
        Err(e) => return back("/settings", false, &format!("not saved: {e}")),
    };
    match change_settings(&state, caller.admin(), change).await {
        Ok(()) => back("/settings", true, "saved and applied"),
        Err(e) => back("/settings", false, &e),
    }
}

/// Writes `change` into the configuration file and applies the file to the running
/// server; on any failure the file and the server are as they were.
pub(super) async fn change_settings(
    state: &Arc<AdminState>,
    admin: &str,
    change: SettingsChange,
) -> Result<(), String> {
    let Some(path) = state.settings.config.clone() else {
        return Err("gannet runs on its embedded defaults: no configuration file to write".into());
    };
    let tunables = state.settings.tunables.clone();
    tokio::task::spawn_blocking(move || {
        let old = write_settings(&path, &change)?;
        // Read back as `serve` reads it at start, and applied: a file it would refuse,
        // or keys the server cannot take, put the old file back.
        let applied =
            crate::admin::load_config_file(&path).and_then(|config| tunables.apply(&config));
        if let Err(e) = applied {
            let _ = write_file(&path, old.as_bytes());
            return Err(format!("not saved: {e:#}"));
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::info!(admin, "admin console: settings changed and applied");
    Ok(())
}

/// Checks each value and edits the file; returns what the file held before.
fn write_settings(path: &Path, change: &SettingsChange) -> Result<String, String> {
    let old = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = old
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(list) = &change.trusted_networks {
        gannet_core::policy::Networks::parse(list).map_err(|e| format!("trusted networks: {e}"))?;
        let mut array = toml_edit::Array::new();
        for n in list {
            array.push(n.as_str());
        }
        set(
            &mut doc,
            "relay",
            "trusted_networks",
            toml_edit::value(array),
        );
    }
    if let Some(level) = &change.default_level {
        let level = level.trim().to_ascii_lowercase();
        if !["off", "low", "medium", "high"].contains(&level.as_str()) {
            return Err(format!(
                "default spam level {level:?}: off, low, medium or high"
            ));
        }
        set(&mut doc, "spam", "default_level", toml_edit::value(level));
    }
    for (key, value) in [
        ("max_recipients", change.max_recipients),
        ("max_connections_per_ip", change.max_connections_per_ip),
        ("messages_per_hour", change.messages_per_hour),
    ] {
        if let Some(n) = value {
            let n = i64::try_from(n)
                .ok()
                .filter(|n| (1..=i64::from(u32::MAX)).contains(n))
                .ok_or_else(|| format!("{key}: {n} is out of range"))?;
            set(&mut doc, "limits", key, toml_edit::value(n));
        }
    }
    if let Some(size) = &change.max_message_size {
        let size = size.trim();
        gannet_core::config::parse_size(size)
            .ok_or_else(|| format!("largest message: {size:?} is not a size (50MB, 1GiB)"))?;
        set(
            &mut doc,
            "limits",
            "max_message_size",
            toml_edit::value(size),
        );
    }
    if let Some(lists) = &change.dnsbl {
        doc["dnsbl"] = dnsbl_tables(lists)?;
    }
    write_file(path, doc.to_string().as_bytes())?;
    Ok(old)
}

/// `[[dnsbl]]` tables for `lists`, each checked.
fn dnsbl_tables(lists: &[DnsblEntry]) -> Result<toml_edit::Item, String> {
    let mut tables = toml_edit::ArrayOfTables::new();
    for l in lists {
        let zone = l.zone.trim().trim_end_matches('.');
        let valid_zone = zone.contains('.')
            && zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid_zone {
            return Err(format!("blocklist zone {zone:?} is not a DNS name"));
        }
        let mut t = toml_edit::Table::new();
        t["zone"] = toml_edit::value(zone);
        match l.action.as_str() {
            "reject" => t["action"] = toml_edit::value("reject"),
            "score" => {
                t["action"] = toml_edit::value("score");
                if let Some(score) = l.score {
                    if !score.is_finite() {
                        return Err(format!("blocklist {zone}: the score must be a number"));
                    }
                    t["score"] = toml_edit::value(score);
                }
            }
            other => {
                return Err(format!(
                    "blocklist {zone}: the action is reject or score, not {other:?}"
                ))
            }
        }
        if !l.answers.is_empty() {
            let mut answers = toml_edit::Array::new();
            for a in &l.answers {
                let ip: std::net::Ipv4Addr = a.parse().map_err(|_| {
                    format!("blocklist {zone}: answer {a:?} is not an IPv4 address")
                })?;
                answers.push(ip.to_string());
            }
            t["answers"] = toml_edit::value(answers);
        }
        tables.push(t);
    }
    Ok(toml_edit::Item::ArrayOfTables(tables))
}

fn set(doc: &mut toml_edit::DocumentMut, table: &str, key: &str, value: toml_edit::Item) {
    if !doc.contains_table(table) {
        doc[table] = toml_edit::table();
    }
    doc[table][key] = value;
}

/// Replaces `path` by `bytes` whole (a temporary file renamed over it), keeping its mode.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let temp = path.with_extension("new");
    let mode = std::fs::metadata(path).map(|m| m.permissions()).ok();
    std::fs::write(&temp, bytes).map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
    if let Some(mode) = mode {
        let _ = std::fs::set_permissions(&temp, mode);
    }
    std::fs::rename(&temp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

#[derive(Deserialize)]
pub(super) struct CertificateForm {
    csrf: Option<String>,
    cert: String,
    key: String,
}

impl WithCsrf for CertificateForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

pub(super) async fn certificate(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<CertificateForm>,
) -> Response {
    let form = match accept(&caller, form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let place = &state.settings;
    let loaded =
        match gannet_core::runtime::certs::from_pem(form.cert.as_bytes(), form.key.as_bytes()) {
            Ok(l) => l,
            Err(e) => return back("/settings", false, &format!("not replaced: {e}")),
        };
    let (cert, key) = (place.cert.clone(), place.key.clone());
    let (pem_cert, pem_key) = (form.cert.clone(), form.key.clone());
    let written = tokio::task::spawn_blocking(move || {
        gannet_core::runtime::certs::install(&cert, &key, pem_cert.as_bytes(), pem_key.as_bytes())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = written {
        return back("/settings", false, &format!("not replaced: {e}"));
    }
    place.tls.store(loaded.config);
    tracing::info!(admin = caller.admin(), sha256 = %loaded.fingerprint, "admin console: TLS certificate replaced");
    back(
        "/settings",
        true,
        &format!("certificate replaced (SHA-256 {})", loaded.fingerprint),
    )
}
