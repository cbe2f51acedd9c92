//! The JSON API under `/api/v1/`: everything the pages do, for scripts. A caller is a
//! console session (whose state-changing requests carry its CSRF token in
//! `X-CSRF-Token`) or a token (`Authorization: Bearer ...`, from `gannet admin token
//! create`). Request bodies are JSON, parsed with `simd-json`; every error is
//! `{"error": "..."}` with a 4xx or 5xx status.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use gannet_core::store::quarantine;
use gannet_core::store::queue;
use gannet_core::store::schema::Route;
use gannet_core::store::{account_admin, directory};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, hash_password, json, json_error, run, AdminState, Caller};
use crate::cli::{
    AccountCommand, AdminCommand, AliasCommand, DomainCommand, QuarantineCommand, QueueCommand,
    WhitelistCommand,
};

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;

pub(super) fn routes(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/domains", get(domains).post(domain_add))
        .route("/api/v1/domains/{name}", delete(domain_remove))
        .route("/api/v1/accounts", get(accounts).post(account_add))
        .route(
            "/api/v1/accounts/{address}",
            get(account).post(account_set).delete(account_delete),
        )
        .route("/api/v1/accounts/{address}/whitelist", post(whitelist_add))
        .route(
            "/api/v1/accounts/{address}/whitelist/{sender}",
            delete(whitelist_remove),
        )
        .route("/api/v1/aliases", get(aliases).post(alias_add))
        .route("/api/v1/aliases/{alias}", delete(alias_remove))
        .route("/api/v1/quarantine", get(quarantine_list))
        .route("/api/v1/quarantine/{id}/release", post(quarantine_release))
        .route(
            "/api/v1/quarantine/{id}",
            get(quarantine_show).delete(quarantine_delete),
        )
        .route("/api/v1/trace", get(trace_search))
        .route("/api/v1/queue", get(queue_list))
        .route("/api/v1/queue/{id}/retry", post(queue_retry))
        .route("/api/v1/queue/{id}/bounce", post(queue_bounce))
        .route("/api/v1/queue/{id}", delete(queue_delete))
        .route("/api/v1/settings", get(settings_get).put(settings_put))
        .with_state(state)
}

/// The caller of a read, or 401.
fn reader(state: &AdminState, headers: &HeaderMap) -> Result<Caller, Response> {
    caller(state, headers).ok_or_else(|| {
        json_error(
            StatusCode::UNAUTHORIZED,
            "log in, or send Authorization: Bearer TOKEN",
        )
    })
}

/// The caller of a change: 401 without one, 403 for a session without its CSRF token.
fn writer(state: &AdminState, headers: &HeaderMap) -> Result<Caller, Response> {
    let caller = reader(state, headers)?;
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if caller.csrf_ok(token) {
        Ok(caller)
    } else {
        Err(json_error(
            StatusCode::FORBIDDEN,
            "missing or wrong X-CSRF-Token for this session",
        ))
    }
}

/// A caller allowed to read: 401 before anything else is done otherwise.
struct Reader(Caller);

/// A caller allowed to change things: 401, or 403 for a session without its CSRF token.
struct Writer(Caller);

impl axum::extract::FromRequestParts<Arc<AdminState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Response> {
        reader(state, &parts.headers).map(Reader)
    }
}

impl axum::extract::FromRequestParts<Arc<AdminState>> for Writer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Response> {
        writer(state, &parts.headers).map(Writer)
    }
}

/// A JSON body, parsed with simd-json; 400 with the parser's words if it is not one.
fn body<T: DeserializeOwned>(bytes: Bytes) -> Result<T, Response> {
    if bytes.len() > MAX_BODY {
        return Err(json_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
    }
    let mut owned = bytes.to_vec();
    simd_json::serde::from_slice(&mut owned)
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, &format!("bad JSON body: {e}")))
}

/// The answer to a command: 200 with its message, or 400 with its error.
async fn command(state: &Arc<AdminState>, caller: &Caller, command: AdminCommand) -> Response {
    let outcome = run(state, caller, command).await;
    let text = String::from_utf8_lossy(&outcome.output);
    let text = text.trim().trim_start_matches("gannet: ");
    if outcome.ok {
        json(StatusCode::OK, &json!({ "ok": text }))
    } else if text.starts_with("no ") || text.contains("not a local address") {
        json_error(StatusCode::NOT_FOUND, text)
    } else {
        json_error(StatusCode::BAD_REQUEST, text)
    }
}

macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin API: store read failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store cannot be read right now",
    )
}

// ---- status ----

async fn status(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    let store = &state.store;
    let counters: serde_json::Map<String, Value> = match store.stats() {
        Ok(s) => s.into_iter().map(|(k, v)| (k, json!(v))).collect(),
        Err(e) => return store_failed(e),
    };
    let queue = queue::list(store).map(|q| q.len()).unwrap_or(0);
    let held = quarantine::list(store).map(|q| q.len()).unwrap_or(0);
    json(
        StatusCode::OK,
        &json!({
            "counters": counters,
            "queue": queue,
            "held": held,
            "warnings": state.warnings,
        }),
    )
}

// ---- domains ----

async fn domains(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    let routes = match directory::all_routes(&state.store) {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let list: Vec<Value> = routes
        .into_iter()
        .filter_map(|(name, route)| {
            let domain = name.strip_prefix('@')?.to_string();
            Some(match route {
                Route::Domain { catch_all } => {
                    json!({ "name": domain, "kind": "hosted", "catch_all": catch_all })
                }
                Route::BackupMx { primary } => {
                    json!({ "name": domain, "kind": "backup_mx", "primary": primary })
                }
                Route::ScanRelay { target } => {
                    json!({ "name": domain, "kind": "scan_relay", "target": target })
                }
                _ => json!({ "name": domain, "kind": "other" }),
            })
        })
        .collect();
    json(StatusCode::OK, &json!(list))
}

#[derive(Deserialize)]
struct NewDomain {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

async fn domain_add(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    bytes: Bytes,
) -> Response {
    let d: NewDomain = or_return!(body(bytes));
    let (backup_mx, primary, scan_relay) = match d.kind.as_deref() {
        None | Some("hosted") => (false, None, None),
        Some("backup_mx") => (true, d.target, None),
        Some("scan_relay") if d.target.is_some() => (false, None, d.target),
        Some(other) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("kind {other:?}: hosted, backup_mx, or scan_relay with a target"),
            )
        }
    };
    let add = DomainCommand::Add {
        name: d.name,
        backup_mx,
        primary,
        scan_relay,
    };
    command(&state, &caller, AdminCommand::Domain(add)).await
}

async fn domain_remove(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(name): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Domain(DomainCommand::Remove { name }),
    )
    .await
}

// ---- accounts ----

fn account_json(store: &gannet_core::store::Store, info: &directory::AccountInfo) -> Value {
    let a = &info.account;
    json!({
        "id": a.id,
        "address": a.address,
        "used": info.usage.max(0),
        "quota": a.quota,
        "spam_level": a.spam_level,
        "disabled": directory::is_disabled(store, a.id).unwrap_or(false),
        "login": directory::login_name(store, a.id).ok().flatten(),
        "whitelist": directory::whitelist(store, a.id).unwrap_or_default(),
        "last_login": directory::last_login(store, a.id)
            .ok()
            .flatten()
            .map(|(at, from)| json!({ "at": at, "from": from })),
        "created": a.created,
    })
}

async fn accounts(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    match directory::list_accounts(&state.store) {
        Ok(list) => {
            let out: Vec<Value> = list.iter().map(|i| account_json(&state.store, i)).collect();
            json(StatusCode::OK, &json!(out))
        }
        Err(e) => store_failed(e),
    }
}

async fn account(
    State(state): State<Arc<AdminState>>,
    Reader(_caller): Reader,
    Path(address): Path<String>,
) -> Response {
    let wanted = address.trim().to_lowercase();
    match directory::list_accounts(&state.store) {
        Ok(list) => match list.iter().find(|i| i.account.address == wanted) {
            Some(info) => {
                let mut value = account_json(&state.store, info);
                let aliases: Vec<String> = account_admin::list_aliases(&state.store)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| a.account == info.account.id)
                    .map(|a| a.alias)
                    .collect();
                value["aliases"] = json!(aliases);
                json(StatusCode::OK, &value)
            }
            None => json_error(StatusCode::NOT_FOUND, &format!("no account {wanted}")),
        },
        Err(e) => store_failed(e),
    }
}

#[derive(Deserialize)]
struct NewAccount {
    address: String,
    password: String,
    #[serde(default)]
    login: Option<String>,
}

async fn account_add(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    bytes: Bytes,
) -> Response {
    let a: NewAccount = or_return!(body(bytes));
    let hash = match hash_password(a.password).await {
        Ok(h) => h,
        Err(policy) => return json_error(StatusCode::BAD_REQUEST, &policy),
    };
    let add = AccountCommand::Add {
        address: a.address,
        password: hash,
        login: a.login,
        spam_level: Some(state.live.spam.load().default_level.clone()),
    };
    command(&state, &caller, AdminCommand::Account(add)).await
}

#[derive(Deserialize)]
struct AccountChange {
    #[serde(default)]
    quota: Option<String>,
    #[serde(default)]
    spam_level: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

async fn account_set(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(address): Path<String>,
    bytes: Bytes,
) -> Response {
    let change: AccountChange = or_return!(body(bytes));
    let password = match change.password {
        Some(p) => match hash_password(p).await {
            Ok(h) => Some(h),
            Err(policy) => return json_error(StatusCode::BAD_REQUEST, &policy),
        },
        None => None,
    };
    if let Some(disabled) = change.disabled {
        let toggle = if disabled {
            AccountCommand::Disable {
                address: address.clone(),
            }
        } else {
            AccountCommand::Enable {
                address: address.clone(),
            }
        };
        let outcome = run(&state, &caller, AdminCommand::Account(toggle)).await;
        if !outcome.ok {
            let text = String::from_utf8_lossy(&outcome.output);
            return json_error(StatusCode::BAD_REQUEST, text.trim());
        }
    }
    let set = AccountCommand::Set {
        address,
        quota: change.quota,
        spam_level: change.spam_level,
        password,
    };
    command(&state, &caller, AdminCommand::Account(set)).await
}

async fn account_delete(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(address): Path<String>,
) -> Response {
    let delete = AccountCommand::Delete { address, yes: true };
    command(&state, &caller, AdminCommand::Account(delete)).await
}

#[derive(Deserialize)]
struct Sender {
    sender: String,
}

async fn whitelist_add(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(address): Path<String>,
    bytes: Bytes,
) -> Response {
    let s: Sender = or_return!(body(bytes));
    let add = WhitelistCommand::Add {
        address,
        sender: s.sender,
    };
    command(&state, &caller, AdminCommand::Whitelist(add)).await
}

async fn whitelist_remove(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path((address, sender)): Path<(String, String)>,
) -> Response {
    let remove = WhitelistCommand::Remove { address, sender };
    command(&state, &caller, AdminCommand::Whitelist(remove)).await
}

// ---- aliases ----

async fn aliases(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    match account_admin::list_aliases(&state.store) {
        Ok(list) => {
            let out: Vec<Value> = list
                .into_iter()
                .map(|a| {
                    let target = directory::account_by_id(&state.store, a.account)
                        .ok()
                        .flatten()
                        .map(|t| t.address);
                    json!({ "alias": a.alias, "account": a.account, "target": target })
                })
                .collect();
            json(StatusCode::OK, &json!(out))
        }
        Err(e) => store_failed(e),
    }
}

#[derive(Deserialize)]
struct NewAlias {
    alias: String,
    target: String,
}

async fn alias_add(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    bytes: Bytes,
) -> Response {
    let a: NewAlias = or_return!(body(bytes));
    let add = AliasCommand::Add {
        alias: a.alias,
        target: a.target,
    };
    command(&state, &caller, AdminCommand::Alias(add)).await
}

async fn alias_remove(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(alias): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Alias(AliasCommand::Remove { alias }),
    )
    .await
}

// ---- quarantine ----

#[derive(Deserialize)]
struct HeldFilter {
    recipient: Option<String>,
}

async fn quarantine_list(
    State(state): State<Arc<AdminState>>,
    Reader(_caller): Reader,
    axum::extract::Query(filter): axum::extract::Query<HeldFilter>,
) -> Response {
    let held = match quarantine::list(&state.store) {
        Ok(h) => h,
        Err(e) => return store_failed(e),
    };
    let wanted = filter.recipient.as_deref().map(str::trim);
    let out: Vec<Value> = held
        .iter()
        .filter(|m| wanted.is_none_or(|w| m.is_for(w)))
        .map(|m| {
            let recipients: Vec<Value> = m
                .recipients
                .iter()
                .map(|r| {
                    let status = r.status.label();
                    json!({ "address": r.address, "status": status })
                })
                .collect();
            json!({
                "id": format!("{:016x}", m.id),
                "sender": m.reverse_path,
                "subject": m.subject,
                "reason": m.reason,
                "size": m.size,
                "arrived": m.arrived,
                "expires": m.expires,
                "recipients": recipients,
            })
        })
        .collect();
    json(StatusCode::OK, &json!(out))
}

async fn quarantine_release(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> Response {
    let release = QuarantineCommand::Release {
        id,
        recipient: None,
    };
    command(&state, &caller, AdminCommand::Quarantine(release)).await
}

async fn quarantine_show(
    State(state): State<Arc<AdminState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Quarantine(QuarantineCommand::Show { id }),
    )
    .await
}

async fn quarantine_delete(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Quarantine(QuarantineCommand::Delete { id }),
    )
    .await
}

// ---- queue ----

async fn queue_list(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    let queued = match queue::list(&state.store) {
        Ok(q) => q,
        Err(e) => return store_failed(e),
    };
    let out: Vec<Value> = queued
        .iter()
        .map(|m| {
            let recipients: Vec<Value> = m
                .recipients
                .iter()
                .map(|r| {
                    let status = r.status.label();
                    json!({ "address": r.address, "status": status })
                })
                .collect();
            json!({
                "id": format!("{:016x}", m.id),
                "sender": m.reverse_path,
                "recipients": recipients,
                "size": m.size,
                "created": m.created,
                "attempts": m.attempts,
                "next_attempt": m.next_attempt,
                "last_error": m.last_error,
            })
        })
        .collect();
    json(StatusCode::OK, &json!(out))
}

async fn queue_retry(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> Response {
    let retry = QueueCommand::Retry {
        id: Some(id),
        all: false,
    };
    command(&state, &caller, AdminCommand::Queue(retry)).await
}

async fn queue_bounce(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Queue(QueueCommand::Bounce { id }),
    )
    .await
}

async fn queue_delete(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> Response {
    command(
        &state,
        &caller,
        AdminCommand::Queue(QueueCommand::Delete { id }),
    )
    .await
}

// ---- message trace ----

#[derive(Deserialize, Default)]
struct TraceParams {
    sender: Option<String>,
    recipient: Option<String>,
    message_id: Option<String>,
    client: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
}

async fn trace_search(
    State(state): State<Arc<AdminState>>,
    Reader(_caller): Reader,
    axum::extract::Query(params): axum::extract::Query<TraceParams>,
) -> Response {
    let query = gannet_core::store::trace::Query {
        sender: params.sender,
        recipient: params.recipient,
        message_id: params.message_id,
        client: params.client,
        since: params.since,
        until: params.until,
        limit: params.limit.unwrap_or(100).min(1000),
    };
    let store = state.store.clone();
    let found =
        tokio::task::spawn_blocking(move || gannet_core::store::trace::search(&store, &query))
            .await;
    match found {
        Ok(Ok(traces)) => {
            let out: Vec<Value> = traces
                .iter()
                .map(|t| {
                    let events: Vec<Value> = t
                        .events
                        .iter()
                        .map(|e| json!({ "at": e.at, "what": e.describe(), "event": e.kind }))
                        .collect();
                    json!({ "id": format!("{:016x}", t.message), "events": events })
                })
                .collect();
            json(StatusCode::OK, &json!(out))
        }
        Ok(Err(e)) => store_failed(e),
        Err(e) => store_failed(e),
    }
}

// ---- description ----

// ---- settings ----

async fn settings_get(State(state): State<Arc<AdminState>>, Reader(_caller): Reader) -> Response {
    let path = state.settings.config.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        gannet_core::config::Config::load(path.as_deref()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let config = match loaded {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let dnsbl: Vec<Value> = config
        .dnsbl
        .iter()
        .map(|l| json!({ "zone": l.zone, "action": l.action, "score": l.score, "answers": l.answers }))
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "file": state.settings.config.as_ref().map(|p| p.display().to_string()),
            "trusted_networks": config.relay.trusted_networks,
            "default_level": config.spam.default_level,
            "max_recipients": config.limits.max_recipients,
            "max_message_size": config.limits.max_message_size.0,
            "max_connections_per_ip": config.limits.max_connections_per_ip,
            "messages_per_hour": config.limits.messages_per_hour,
            "dnsbl": dnsbl,
        }),
    )
}

async fn settings_put(
    State(state): State<Arc<AdminState>>,
    Writer(caller): Writer,
    bytes: Bytes,
) -> Response {
    let change: super::settings::SettingsChange = or_return!(body(bytes));
    match super::settings::change_settings(&state, caller.admin(), change).await {
        Ok(()) => json(StatusCode::OK, &json!({ "ok": "saved and applied" })),
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e),
    }
}

/// An OpenAPI 3 description of the routes above (served without login: it holds no data).
async fn openapi() -> Response {
    let op = |summary: &str| json!({ "summary": summary, "responses": { "200": { "description": "OK" }, "401": { "description": "not logged in" }, "403": { "description": "no CSRF token (sessions)" } } });
    json(
        StatusCode::OK,
        &json!({
            "openapi": "3.0.3",
            "info": { "title": "Gannet admin API", "version": "1" },
            "components": { "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": super::session::COOKIE }
            } },
            "security": [ { "token": [] }, { "session": [] } ],
            "paths": {
                "/api/v1/status": { "get": op("counters, queue size, quarantine size, warnings") },
                "/api/v1/domains": { "get": op("list domains"), "post": op("add a domain: {name, kind: hosted|backup_mx|scan_relay, target}") },
                "/api/v1/domains/{name}": { "delete": op("remove a domain (refused while it has accounts)") },
                "/api/v1/accounts": { "get": op("list accounts"), "post": op("create an account: {address, password, login}") },
                "/api/v1/accounts/{address}": { "get": op("one account"), "post": op("change: {quota, spam_level, password, disabled}"), "delete": op("delete with all its mail") },
                "/api/v1/accounts/{address}/whitelist": { "post": op("add a sender: {sender}") },
                "/api/v1/accounts/{address}/whitelist/{sender}": { "delete": op("remove a sender") },
                "/api/v1/aliases": { "get": op("list aliases"), "post": op("add: {alias, target}") },
                "/api/v1/aliases/{alias}": { "delete": op("remove an alias or catch-all") },
                "/api/v1/quarantine": { "get": op("held messages (?recipient=ADDRESS: of one recipient)") },
                "/api/v1/quarantine/{id}/release": { "post": op("release to every recipient still waiting") },
                "/api/v1/quarantine/{id}": { "get": op("one held message: {ok}, its record and headers as `gannet quarantine show` prints them"), "delete": op("delete a held message") },
                "/api/v1/trace": { "get": op("search the message trace: sender, recipient, message_id, client, since, until, limit") },
                "/api/v1/queue": { "get": op("queued messages") },
                "/api/v1/queue/{id}/retry": { "post": op("try again now") },
                "/api/v1/queue/{id}/bounce": { "post": op("return to sender now") },
                "/api/v1/queue/{id}": { "delete": op("drop without telling the sender") },
                "/api/v1/settings": { "get": op("the settings the console edits"), "put": op("change and apply at once: {trusted_networks, default_level, max_recipients, max_message_size, max_connections_per_ip, messages_per_hour, dnsbl: [{zone, action: reject|score, score, answers}]}; keys left out stay") }
            }
        }),
    )
}
