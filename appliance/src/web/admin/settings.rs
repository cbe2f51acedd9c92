//! The settings page: a few configuration keys edited in the configuration file (its
//! comments and the other keys kept as they are, with `toml_edit`), and the TLS
//! certificate replaced live.
//!
//! A changed file is read back whole as the server reads it at start; if that fails the
//! old file is put back. Keys the running server reads only at start apply at the next
//! start, and the page says so. A certificate is checked (chain, key, that rustls accepts
//! them) before it replaces the old one; then new handshakes on every port use it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::pages::{accept, back, layout, LoggedIn, Notice, Posted, WithCsrf};
use super::{AdminState, Caller};
use crate::web::escape;

/// Where the settings live and what to swap when the certificate changes.
pub(crate) struct SettingsPlace {
    /// The configuration file `serve` was started with (None: embedded defaults).
    pub(crate) config: Option<PathBuf>,
    /// Where the certificate and key are read at start.
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// The certificate every listener hands out.
    pub(crate) tls: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
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
        "<p>In <code>{file}</code>. These apply at the next start of gannet (the running server \
         keeps what it started with); the certificate applies at once.</p>\
         <form method=\"post\" action=\"/settings\">{csrf}\
         <label>Trusted networks (relay without login), one a line \
         <textarea name=\"relay.trusted_networks\" rows=\"4\" cols=\"40\">{networks}</textarea></label>\
         {fields}<button>Save</button></form>\
         <p class=\"hint\">DNS blocklists (<code>[[dnsbl]]</code>) are edited in the file itself.</p>\
         {cert}",
        file = escape(&path.display().to_string()),
        csrf = super::pages::csrf_field(&caller),
        networks = escape(&config.relay.trusted_networks.join("\n")),
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
}

impl WithCsrf for SettingsForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
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
    let Some(path) = state.settings.config.clone() else {
        return back("/settings", false, "no configuration file to write");
    };
    tracing::info!(admin = caller.admin(), "admin console: settings changed");
    let outcome = tokio::task::spawn_blocking(move || write_settings(&path, &form))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match outcome {
        Ok(()) => back("/settings", true, "saved; they apply at the next start"),
        Err(e) => back("/settings", false, &e),
    }
}

/// Checks each value, edits the file, and reads it back as the server would; on any
/// failure the file is as it was.
fn write_settings(path: &Path, form: &SettingsForm) -> Result<(), String> {
    let old = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = old
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(text) = given(&form.trusted_networks) {
        let list: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        gannet_core::policy::Networks::parse(&list)
            .map_err(|e| format!("trusted networks: {e}"))?;
        let mut array = toml_edit::Array::new();
        for n in &list {
            array.push(n.as_str());
        }
        set(
            &mut doc,
            "relay",
            "trusted_networks",
            toml_edit::value(array),
        );
    }
    if let Some(level) = given(&form.default_level) {
        let level = level.to_ascii_lowercase();
        if !["off", "low", "medium", "high"].contains(&level.as_str()) {
            return Err(format!(
                "default spam level {level:?}: off, low, medium or high"
            ));
        }
        set(&mut doc, "spam", "default_level", toml_edit::value(level));
    }
    for (key, value) in [
        ("max_recipients", &form.max_recipients),
        ("max_connections_per_ip", &form.max_connections_per_ip),
        ("messages_per_hour", &form.messages_per_hour),
    ] {
        if let Some(v) = given(value) {
            let n: i64 = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{key}: {v:?} is not a positive number"))?;
            set(&mut doc, "limits", key, toml_edit::value(n));
        }
    }
    if let Some(size) = given(&form.max_message_size) {
        gannet_core::config::parse_size(&size)
            .ok_or_else(|| format!("largest message: {size:?} is not a size (50MB, 1GiB)"))?;
        set(
            &mut doc,
            "limits",
            "max_message_size",
            toml_edit::value(size),
        );
    }
    let new = doc.to_string();
    write_file(path, new.as_bytes())?;
    // Read back as `serve` reads it at start: a file it would refuse goes back as it was.
    if let Err(e) = crate::admin::load_config_file(path) {
        let _ = write_file(path, old.as_bytes());
        return Err(format!("not saved: {e:#}"));
    }
    Ok(())
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
