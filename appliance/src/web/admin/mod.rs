//! The local web admin console (`listen.admin`, default `127.0.0.1:8080`): server-rendered
//! pages whose forms work without JavaScript, and the JSON API under `/api/v1/` that
//! scripts use with a token (`gannet admin token create`). In the clear on loopback, over
//! TLS with the appliance's certificate on any other address.
//!
//! Every action is an [`AdminCommand`] carried out by [`crate::admin::execute`], the
//! same code the command line runs, so the console and `gannet ...` cannot disagree.
//!
//! * `session`: sessions, cookies and CSRF tokens.
//! * `pages`: the HTML pages and their forms.
//! * `api`: the JSON API; `metrics`: `/metrics` for Prometheus.

// Handlers' helpers answer `Err(Response)`: the early answer of a handler that returns
// once per request; boxing it would only add an allocation to every refusal.
#![allow(clippy::result_large_err)]

mod api;
mod charts;
mod metrics;
mod pages;
mod session;
mod settings;

pub(crate) use settings::SettingsPlace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gannet_core::auth::password;
use gannet_core::clock::unix_now;
use gannet_core::policy::FailureTracker;
use gannet_core::store::{admins, Store};

use crate::admin::{execute, LiveState, Outcome};
use crate::cli::AdminCommand;
use session::{SessionInfo, Sessions};

/// What the console reads and changes.
pub(crate) struct AdminState {
    pub(crate) store: Store,
    pub(crate) live: LiveState,
    /// Warnings the front page shows (passwords accepted without TLS, ...).
    pub(crate) warnings: Vec<String>,
    pub(crate) failures: Arc<FailureTracker>,
    /// The mail ports' connection counts (for `/metrics`).
    pub(crate) connections: Arc<gannet_core::policy::ConnectionLimiter>,
    /// The configuration file and the certificate the settings page changes.
    pub(crate) settings: SettingsPlace,
    sessions: Sessions,
}

impl AdminState {
    pub(crate) fn new(
        store: Store,
        live: LiveState,
        warnings: Vec<String>,
        failures: Arc<FailureTracker>,
        idle: Duration,
        connections: Arc<gannet_core::policy::ConnectionLimiter>,
        settings: SettingsPlace,
    ) -> AdminState {
        AdminState {
            store,
            live,
            warnings,
            failures,
            connections,
            settings,
            sessions: Sessions::new(idle),
        }
    }

    /// The data directory's size and its file system's space (a directory walk: run off
    /// the async threads), for the dashboard and `/metrics`.
    pub(crate) async fn disk_usage(&self) -> (u64, Option<gannet_core::store::disk::DiskSpace>) {
        let data_dir = self.settings.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            (
                gannet_core::store::disk::size_of(&data_dir),
                gannet_core::store::disk::space(&data_dir),
            )
        })
        .await
        .unwrap_or((0, None))
    }
}

/// Serves the console on `addr`: TLS (`tls`) unless `addr` is a loopback address.
pub(crate) fn spawn(
    addr: SocketAddr,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    state: AdminState,
) -> anyhow::Result<()> {
    let tls = (!addr.ip().is_loopback()).then_some(tls);
    let state = Arc::new(state);
    let metrics = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/charts/{file}", axum::routing::get(charts::chart))
        .route(
            "/settings",
            axum::routing::get(settings::page).post(settings::save),
        )
        .route(
            "/settings/certificate",
            axum::routing::post(settings::certificate),
        )
        .with_state(state.clone());
    let router = pages::routes(state.clone())
        .merge(api::routes(state))
        .merge(metrics);
    super::serve_router("admin", addr, tls, router)
}

/// Who is asking: a console session (with its CSRF token) or a script with a token.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    Session { id: String, info: SessionInfo },
    Token { admin: String },
}

impl Caller {
    pub(crate) fn admin(&self) -> &str {
        match self {
            Caller::Session { info, .. } => &info.admin,
            Caller::Token { admin } => admin,
        }
    }

    /// Whether a state-changing request carries what proves it came from the console's
    /// own page: the session's CSRF token (a token caller sends no cookie, so no other
    /// site can make its browser send one).
    pub(crate) fn csrf_ok(&self, presented: Option<&str>) -> bool {
        match self {
            Caller::Session { info, .. } => {
                presented.is_some_and(|p| session::same_secret(p, &info.csrf))
            }
            Caller::Token { .. } => true,
        }
    }

    pub(crate) fn csrf(&self) -> &str {
        match self {
            Caller::Session { info, .. } => &info.csrf,
            Caller::Token { .. } => "",
        }
    }
}

/// The caller of a request: its session cookie, or `Authorization: Bearer TOKEN`.
pub(crate) fn caller(state: &AdminState, headers: &HeaderMap) -> Option<Caller> {
    if let Some(id) = session::cookie(headers, session::COOKIE) {
        if let Some(info) = state.sessions.get(id) {
            return Some(Caller::Session {
                id: id.to_string(),
                info,
            });
        }
    }
    let bearer = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    match admins::admin_for_token(&state.store, bearer) {
        Ok(Some(admin)) => Some(Caller::Token { admin: admin.name }),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "admin console: token lookup failed");
            None
        }
    }
}

/// Carries out `command` off the async threads (store commits wait for their sync).
pub(crate) async fn run(
    state: &Arc<AdminState>,
    caller: &Caller,
    command: AdminCommand,
) -> Outcome {
    tracing::info!(admin = caller.admin(), ?command, "admin console command");
    let state = state.clone();
    tokio::task::spawn_blocking(move || execute(&state.store, Some(&state.live), &command))
        .await
        .unwrap_or_else(|e| Outcome {
            ok: false,
            output: format!("gannet: the command failed: {e}\n").into_bytes(),
        })
}

/// Checks a new password against the policy and hashes it (argon2id, off the async
/// threads); the error is the policy's words.
pub(crate) async fn hash_password(new: String) -> Result<String, String> {
    password::check_policy(&new).map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || password::hash(&new).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// Logs an administrator in: throttled per client and per name as the mail logins
/// are; the session opened, or why not.
pub(crate) async fn log_in(
    state: &Arc<AdminState>,
    ip: std::net::IpAddr,
    name: &str,
    given: String,
) -> Result<(String, SessionInfo), LoginRefused> {
    let name = admins::normalize_name(name).unwrap_or_else(|_| name.trim().to_ascii_lowercase());
    if state.failures.locked(ip) || state.failures.account_locked(&name) {
        return Err(LoginRefused::LockedOut);
    }
    let admin = admins::find(&state.store, &name).map_err(|_| LoginRefused::Unavailable)?;
    // Without such an administrator, a hash is still verified: both cost the same.
    let hash = admin.as_ref().map(|a| a.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&given, &h),
        None => {
            let _ = password::verify(&given, decoy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        state.failures.record_failure(ip, &name);
        tracing::info!(%ip, admin = %name, "admin console: login failed");
        return Err(LoginRefused::Wrong);
    }
    tracing::info!(%ip, admin = %name, "admin console: logged in");
    state
        .sessions
        .open(&name)
        .map_err(|_| LoginRefused::Unavailable)
}

/// A real argon2id hash of a password nobody is told, for refusals that cost what a
/// wrong password costs.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy-Password-1").unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefused {
    Wrong,
    LockedOut,
    Unavailable,
}

/// Ends a session.
pub(crate) fn log_out(state: &AdminState, caller: &Caller) {
    if let Caller::Session { id, .. } = caller {
        state.sessions.close(id);
    }
}

/// On the first start with no administrator: creates `admin` with a random password,
/// written to `admin-password` in the data directory (the process's umask keeps it the
/// server user's alone) and logged once, so that the embedded defaults give a working
/// console.
pub(crate) fn ensure_first_admin(store: &Store, data_dir: &std::path::Path) -> anyhow::Result<()> {
    if !admins::list(store)?.is_empty() {
        return Ok(());
    }
    // Letters and digits, with an upper-case letter and a digit for the policy.
    let secret = session::random_token()?;
    let new = format!("Gn7{}", secret.get(..21).unwrap_or(&secret));
    let hash = password::hash(&new)?;
    admins::add_admin(store, "admin", &hash, unix_now())?;
    let file = data_dir.join("admin-password");
    std::fs::write(&file, format!("{new}\n"))?;
    tracing::warn!(
        user = "admin",
        password = %new,
        file = %file.display(),
        "admin console: first start, administrator created; change its password \
         (gannet admin password admin --password ...)"
    );
    Ok(())
}

/// Headers every console response carries: no inline script or style (only the
/// console's own files), no framing, no caching, no Referer.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A JSON answer: `{"error": ...}` for errors, as the design wants of every HTTP error.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    secure((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}
