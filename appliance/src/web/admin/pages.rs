//! The console's HTML pages. Server-rendered: every form works without JavaScript (the
//! one script only refreshes the dashboard). A GET never changes anything; every POST
//! carries the session's CSRF token and answers with a redirect to the page it came
//! from, with what happened in the query (`?ok=` or `?error=`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use gannet_core::clock::unix_now;
use gannet_core::store::quarantine;
use gannet_core::store::queue;
use gannet_core::store::{account_admin, directory};
use serde::Deserialize;

use super::{
    caller, hash_password, log_in, log_out, run, secure, AdminState, Caller, LoginRefused,
};
use crate::cli::{
    AccountCommand, AdminCommand, AliasCommand, DomainCommand, QuarantineCommand, QueueCommand,
    RulesCommand, WhitelistCommand,
};
use crate::web::{escape, escape_lines, Peer};

const STYLE: &str = include_str!("admin.css");
const SCRIPT: &str = include_str!("admin.js");

pub(super) fn routes(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/domains", get(domains).post(domain_add))
        .route("/domains/{name}/remove", post(domain_remove))
        .route("/accounts", get(accounts).post(account_add))
        .route("/accounts/{address}", get(account))
        .route("/accounts/{address}/{action}", post(account_action))
        .route("/quarantine", get(quarantine_page))
        .route("/quarantine/{id}", get(quarantine_show))
        .route("/quarantine/{id}/{action}", post(quarantine_action))
        .route("/trace", get(trace_page))
        .route("/spam", get(spam_page))
        .route("/spam/reload", post(spam_reload))
        .route("/queue", get(queue_page))
        .route("/queue/{id}/{action}", post(queue_action))
        .route(
            "/static/admin.css",
            get(|| async { asset("text/css", STYLE) }),
        )
        .route(
            "/static/admin.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .fallback(|| async { secure((StatusCode::NOT_FOUND, "not found").into_response()) })
        .with_state(state)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    secure(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// The outcome of the last action, shown at the top of the page it returns to.
#[derive(Deserialize, Default)]
pub(super) struct Notice {
    ok: Option<String>,
    error: Option<String>,
}

/// The session of a page request, or the redirect to the login page.
fn session(state: &AdminState, headers: &HeaderMap) -> Result<Caller, Response> {
    match caller(state, headers) {
        Some(c @ Caller::Session { .. }) => Ok(c),
        _ => Err(redirect("/login")),
    }
}

fn redirect(to: &str) -> Response {
    secure((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response())
}

/// Back to `page` with what a command answered.
fn answered(page: &str, outcome: &crate::admin::Outcome) -> Response {
    back(page, outcome.ok, &String::from_utf8_lossy(&outcome.output))
}

/// Back to `page` with the outcome in its query.
pub(super) fn back(page: &str, ok: bool, message: &str) -> Response {
    let key = if ok { "ok" } else { "error" };
    let message = message.trim().trim_start_matches("gannet: ");
    redirect(&format!("{page}?{key}={}", url_encode(message)))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A whole page: the menu, the notice, `body`.
pub(super) fn layout(caller: &Caller, title: &str, notice: &Notice, body: &str) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · Gannet</title><link rel=\"stylesheet\" href=\"/static/admin.css\">\
         <script src=\"/static/admin.js\" defer></script></head><body>\
         <nav><strong>Gannet</strong> <a href=\"/\">Dashboard</a> <a href=\"/domains\">Domains</a> \
         <a href=\"/accounts\">Accounts</a> <a href=\"/trace\">Trace</a> <a href=\"/spam\">Spam</a> <a href=\"/settings\">Settings</a> \
         <a href=\"/quarantine\">Quarantine</a> \
         <a href=\"/queue\">Queue</a>\
         <form method=\"post\" action=\"/logout\" class=\"logout\">{csrf}\
         <span>{admin}</span> <button>Log out</button></form></nav><main><h1>{title}</h1>",
        title = escape(title),
        csrf = csrf_field(caller),
        admin = escape(caller.admin()),
    );
    if let Some(ok) = &notice.ok {
        let _ = write!(html, "<p class=\"ok\" role=\"status\">{}</p>", escape(ok));
    }
    if let Some(error) = &notice.error {
        let _ = write!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    html.push_str(body);
    html.push_str("</main></body></html>\n");
    secure(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

pub(super) fn csrf_field(caller: &Caller) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(caller.csrf())
    )
}

/// A form that posts to `action` with one button (and the CSRF token).
fn button(caller: &Caller, action: &str, label: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button class=\"{class}\">{}</button></form>",
        escape(action),
        csrf_field(caller),
        escape(label)
    )
}

// ---- login ----

/// The cookie that carries the login form's CSRF token (double submit: the form's
/// hidden field must equal it, which another site cannot arrange).
const LOGIN_COOKIE: &str = "gannet_login";

async fn login_page(Query(notice): Query<Notice>) -> Response {
    let Ok(token) = super::session::random_token() else {
        return secure((StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response());
    };
    let error = notice
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(&e)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Log in · Gannet</title>\
         <link rel=\"stylesheet\" href=\"/static/admin.css\"></head><body><main class=\"login\">\
         <h1>Gannet admin console</h1>{error}\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <label>Name <input name=\"name\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button>Log in</button></form></main></body></html>\n"
    );
    let cookie = format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; Secure; SameSite=Strict");
    secure(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                (header::SET_COOKIE, cookie),
            ],
            html,
        )
            .into_response(),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    csrf: Option<String>,
}

async fn login(
    State(state): State<Arc<AdminState>>,
    Extension(Peer(ip)): Extension<Peer>,
    headers: HeaderMap,
    form: Posted<LoginForm>,
) -> Response {
    let Ok(Form(form)) = form else {
        return redirect("/login?error=Give+a+name+and+a+password.");
    };
    // The login form's own CSRF token: a login posted from another site is refused.
    let expected = super::session::cookie(&headers, LOGIN_COOKIE);
    let given = form.csrf.as_deref();
    if !expected
        .zip(given)
        .is_some_and(|(e, g)| super::session::same_secret(e, g))
    {
        return forbidden();
    }
    match log_in(&state, ip, &form.name, form.password).await {
        Ok((id, _)) => {
            let mut response = redirect("/");
            if let Ok(cookie) = super::session::set_cookie(&id).parse() {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(LoginRefused::Wrong) => redirect("/login?error=Wrong+name+or+password."),
        Err(LoginRefused::LockedOut) => {
            redirect("/login?error=Too+many+failed+logins%3A+try+again+later.")
        }
        Err(LoginRefused::Unavailable) => {
            redirect("/login?error=The+console+cannot+check+logins+right+now.")
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<CsrfForm>,
) -> Response {
    if let Err(r) = accept(&caller, form) {
        return r;
    }
    log_out(&state, &caller);
    let mut response = redirect("/login");
    if let Ok(cookie) = super::session::clear_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn forbidden() -> Response {
    secure(
        (
            StatusCode::FORBIDDEN,
            "403 Forbidden: the form's security token is missing or stale. Reload the page and try again.",
        )
            .into_response(),
    )
}

/// A posted form, or why it could not be read (answered only after the session check:
/// a request without a session is sent to the login page whatever its body).
pub(super) type Posted<T> = Result<Form<T>, FormRejection>;

/// A form that carries the session's CSRF token.
pub(super) trait WithCsrf {
    fn csrf(&self) -> Option<&str>;
}

macro_rules! with_csrf {
    ($($form:ty),*) => {
        $(impl WithCsrf for $form {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        })*
    };
}

with_csrf!(CsrfForm, DomainForm, AccountForm, ActionForm);

/// A posted form whose CSRF token is the session's; else 400 (unreadable) or 403.
pub(super) fn accept<T: WithCsrf>(caller: &Caller, form: Posted<T>) -> Result<T, Response> {
    let Ok(Form(form)) = form else {
        return Err(secure(
            (
                StatusCode::BAD_REQUEST,
                "400 Bad Request: the form could not be read.",
            )
                .into_response(),
        ));
    };
    if caller.csrf_ok(form.csrf()) {
        Ok(form)
    } else {
        Err(forbidden())
    }
}

/// A request from a logged-in console session; else the redirect to the login page
/// (before the body is even read).
pub(super) struct LoggedIn(pub(super) Caller);

impl axum::extract::FromRequestParts<Arc<AdminState>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Response> {
        session(state, &parts.headers).map(LoggedIn)
    }
}

// ---- dashboard ----

async fn dashboard(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let store = &state.store;
    let stats: BTreeMap<String, i64> = store.stats().unwrap_or_default().into_iter().collect();
    let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
    let queued = queue::list(store).unwrap_or_default();
    let oldest = queued.iter().map(|m| m.created).min();
    let held = quarantine::list(store).unwrap_or_default();
    let domains = directory::list_domains(store).map(|d| d.len()).unwrap_or(0);
    let accounts = directory::list_accounts(store)
        .map(|a| a.len())
        .unwrap_or(0);
    let mut body = String::new();
    for warning in &state.warnings {
        let _ = write!(
            body,
            "<p class=\"warning\" role=\"alert\">{}</p>",
            escape(warning)
        );
    }
    let now = unix_now();
    // Ratios since the store was made: spam copies per accepted message, holds per
    // arrival (accepted or held).
    let percent = |part: i64, whole: i64| match whole {
        w if w > 0 => format!("{:.1} %", part as f64 * 100.0 / w as f64),
        _ => "–".to_string(),
    };
    let spam_ratio = percent(stat("messages_junk"), stat("messages_accepted"));
    let quarantine_ratio = percent(
        stat("messages_quarantined"),
        stat("messages_accepted") + stat("messages_quarantined"),
    );
    let (used, space) = state.disk_usage().await;
    let store_size = size(used);
    let (disk_free, disk_total) = match space {
        Some(s) => (size(s.available), format!(" of {}", size(s.total))),
        None => ("–".to_string(), String::new()),
    };
    let charts: String = (super::charts::CHARTS.iter())
        .map(|(stat, title)| {
            format!(
                "<img src=\"/charts/{stat}.svg\" alt=\"{title} per minute\" width=\"540\" height=\"120\">"
            )
        })
        .collect();
    let _ = write!(
        body,
        "<section class=\"tiles\" id=\"status\">\
         <div><b data-stat=\"messages_accepted\">{}</b> messages accepted</div>\
         <div><b data-stat=\"messages_refused\">{}</b> refused after DATA</div>\
         <div><b data-stat=\"recipients_refused\">{}</b> recipients refused</div>\
         <div><b data-stat=\"connections_refused\">{}</b> clients blocklisted</div>\
         <div><b data-stat=\"messages_delivered_remote\">{}</b> delivered out</div>\
         <div><b data-stat=\"messages_queued\">{}</b> queued for delivery</div>\
         <div><b data-stat=\"messages_quarantined\">{}</b> quarantined</div>\
         <div><b data-stat=\"spam_reports\">{}</b> spam reports</div>\
         <div><b data-stat=\"queue\">{}</b> in the queue now{}</div>\
         <div><b data-stat=\"held\">{}</b> held in quarantine</div>\
         <div><b>{spam_ratio}</b> of accepted copies filed as spam</div>\
         <div><b>{quarantine_ratio}</b> of arrivals quarantined</div>\
         <div><b>{domains}</b> domains</div><div><b>{accounts}</b> accounts</div>\
         <div><b>{store_size}</b> data on disk</div><div><b>{disk_free}</b> disk free{disk_total}</div></section>\
         <p class=\"hint\">Counted since the store was created; the page refreshes every 10 s.</p>\
         <section class=\"charts\">{charts}</section>",
        stat("messages_accepted"),
        stat("messages_refused"),
        stat("recipients_refused"),
        stat("connections_refused"),
        stat("messages_delivered_remote"),
        stat("messages_queued"),
        stat("messages_quarantined"),
        stat("spam_reports"),
        queued.len(),
        oldest
            .map(|t| format!(" (oldest {})", age(now - t)))
            .unwrap_or_default(),
        held.len(),
    );
    layout(&caller, "Dashboard", &notice, &body)
}

/// "3 min", "2 h", "5 d".
fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

// ---- domains ----

async fn domains(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let routes = directory::all_routes(&state.store).unwrap_or_default();
    let mut rows = String::new();
    for (name, route) in routes.iter().filter(|(n, _)| n.starts_with('@')) {
        let domain = name.trim_start_matches('@');
        let kind = match route {
            gannet_core::store::schema::Route::Domain { catch_all: None } => "hosted".to_string(),
            gannet_core::store::schema::Route::Domain {
                catch_all: Some(id),
            } => format!(
                "hosted, catch-all to {}",
                directory::account_by_id(&state.store, *id)
                    .ok()
                    .flatten()
                    .map_or_else(|| format!("account {id}"), |a| a.address)
            ),
            gannet_core::store::schema::Route::BackupMx { primary } => format!(
                "backup MX for {}",
                primary.as_deref().unwrap_or("its other MX hosts")
            ),
            gannet_core::store::schema::Route::ScanRelay { target } => {
                format!("scan relay to {target}")
            }
            _ => "other".to_string(),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(domain),
            escape(&kind),
            button(
                &caller,
                &format!("/domains/{}/remove", url_encode(domain)),
                "Remove",
                "danger"
            )
        );
    }
    let body = format!(
        "<table><thead><tr><th>Domain</th><th>Kind</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Add a domain</h2><form method=\"post\" action=\"/domains\">{csrf}\
         <label>Name <input name=\"name\" required placeholder=\"example.com\"></label>\
         <label>Kind <select name=\"kind\"><option value=\"hosted\">hosted (mail for its accounts)</option>\
         <option value=\"backup_mx\">backup MX (hold and pass on)</option>\
         <option value=\"scan_relay\">scan relay (scan and forward)</option></select></label>\
         <label>Primary or target server (HOST[:PORT]) <input name=\"target\"></label>\
         <button>Add</button></form>\
         <p class=\"hint\">A catch-all (an alias <code>@domain</code> on an account's page) takes mail \
         for every unknown address of the domain: it attracts spam.</p>",
        csrf = csrf_field(&caller)
    );
    layout(&caller, "Domains", &notice, &body)
}

#[derive(Deserialize)]
struct DomainForm {
    csrf: Option<String>,
    name: String,
    kind: Option<String>,
    target: Option<String>,
}

async fn domain_add(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<DomainForm>,
) -> Response {
    let form = match accept(&caller, form) {
        Ok(form) => form,
        Err(r) => return r,
    };
    let target = form.target.filter(|t| !t.trim().is_empty());
    let command = match form.kind.as_deref() {
        Some("backup_mx") => DomainCommand::Add {
            name: form.name,
            backup_mx: true,
            primary: target,
            scan_relay: None,
        },
        Some("scan_relay") => match target {
            Some(t) => DomainCommand::Add {
                name: form.name,
                backup_mx: false,
                primary: None,
                scan_relay: Some(t),
            },
            None => return back("/domains", false, "A scan relay needs its target server."),
        },
        _ => DomainCommand::Add {
            name: form.name,
            backup_mx: false,
            primary: None,
            scan_relay: None,
        },
    };
    let outcome = run(&state, &caller, AdminCommand::Domain(command)).await;
    answered("/domains", &outcome)
}

async fn domain_remove(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path(name): Path<String>,
    form: Posted<CsrfForm>,
) -> Response {
    if let Err(r) = accept(&caller, form) {
        return r;
    }
    let outcome = run(
        &state,
        &caller,
        AdminCommand::Domain(DomainCommand::Remove { name }),
    )
    .await;
    answered("/domains", &outcome)
}

// ---- accounts ----

async fn accounts(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let mut rows = String::new();
    for info in directory::list_accounts(&state.store).unwrap_or_default() {
        let a = &info.account;
        let disabled = directory::is_disabled(&state.store, a.id).unwrap_or(false);
        let _ = write!(
            rows,
            "<tr><td><a href=\"/accounts/{}\">{}</a>{}</td><td>{}</td><td>{}</td></tr>",
            url_encode(&a.address),
            escape(&a.address),
            if disabled { " <em>(disabled)</em>" } else { "" },
            usage_bar(info.usage, a.quota),
            escape(&a.spam_level),
        );
    }
    let body = format!(
        "<table><thead><tr><th>Account</th><th>Storage</th><th>Spam level</th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <h2>Create an account</h2><form method=\"post\" action=\"/accounts\">{csrf}\
         <label>Address <input name=\"address\" required placeholder=\"user@example.com\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"new-password\" required></label>\
         <p class=\"hint\">At least 8 characters, with an upper-case letter and a digit.</p>\
         <button>Create</button></form>",
        csrf = csrf_field(&caller)
    );
    layout(&caller, "Accounts", &notice, &body)
}

fn usage_bar(used: i64, quota: u64) -> String {
    let used = used.max(0) as u64;
    let percent = (used.saturating_mul(100))
        .checked_div(quota)
        .unwrap_or(0)
        .min(100);
    format!(
        "<meter min=\"0\" max=\"100\" value=\"{percent}\" title=\"{percent} %\"></meter> {} of {}",
        size(used),
        size(quota)
    )
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A quota as the quota field takes it back (`parse_size`'s units), exactly.
fn quota_text(bytes: u64) -> String {
    let units: [(u64, &str); 4] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
    ];
    units
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || bytes.to_string(),
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

#[derive(Deserialize)]
struct AccountForm {
    csrf: Option<String>,
    address: String,
    password: String,
}

async fn account_add(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<AccountForm>,
) -> Response {
    let form = match accept(&caller, form) {
        Ok(form) => form,
        Err(r) => return r,
    };
    let hash = match hash_password(form.password).await {
        Ok(h) => h,
        Err(policy) => return back("/accounts", false, &policy),
    };
    let command = AdminCommand::Account(AccountCommand::Add {
        address: form.address,
        password: hash,
        login: None,
        spam_level: Some(state.live.spam.load().default_level.clone()),
    });
    let outcome = run(&state, &caller, command).await;
    answered("/accounts", &outcome)
}

async fn account(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path(address): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let store = &state.store;
    let Ok(a) = directory::account_for_address(store, &address) else {
        return back("/accounts", false, &format!("No account {address}."));
    };
    let usage = directory::list_accounts(store)
        .unwrap_or_default()
        .into_iter()
        .find(|i| i.account.id == a.id)
        .map_or(0, |i| i.usage);
    let disabled = directory::is_disabled(store, a.id).unwrap_or(false);
    let last_login = match directory::last_login(store, a.id).ok().flatten() {
        Some((at, from)) => format!(
            "{} from {}",
            gannet_core::smtp::format_rfc5322_date(at),
            from
        ),
        None => "never".to_string(),
    };
    let base = format!("/accounts/{}", url_encode(&a.address));
    let csrf = csrf_field(&caller);
    let mut whitelist = String::new();
    for w in directory::whitelist(store, a.id).unwrap_or_default() {
        let _ = write!(
            whitelist,
            "<li>{} <form method=\"post\" action=\"{base}/whitelist-remove\" class=\"inline\">{csrf}\
             <input type=\"hidden\" name=\"value\" value=\"{}\"><button class=\"danger\">Remove</button></form></li>",
            escape(&w),
            escape(&w)
        );
    }
    let mut aliases = String::new();
    for alias in account_admin::list_aliases(store)
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.account == a.id)
    {
        let _ = write!(
            aliases,
            "<li>{} <form method=\"post\" action=\"{base}/alias-remove\" class=\"inline\">{csrf}\
             <input type=\"hidden\" name=\"value\" value=\"{}\"><button class=\"danger\">Remove</button></form></li>",
            escape(&alias.alias),
            escape(&alias.alias)
        );
    }
    let level_options: String = ["off", "low", "medium", "high"]
        .iter()
        .map(|l| {
            let selected = if *l == a.spam_level { " selected" } else { "" };
            format!("<option value=\"{l}\"{selected}>{l}</option>")
        })
        .collect();
    let body = format!(
        "<p>Storage: {usage}</p><p>Status: {status}</p><p>Last login: {last_login}</p>\
         <h2>Settings</h2><form method=\"post\" action=\"{base}/settings\">{csrf}\
         <label>Spam level <select name=\"spam_level\">{level_options}</select></label>\
         <label>Quota <input name=\"quota\" value=\"{quota}\"></label><button>Save</button></form>\
         <h2>Password</h2><form method=\"post\" action=\"{base}/password\">{csrf}\
         <label>New password <input name=\"value\" type=\"password\" autocomplete=\"new-password\" required></label>\
         <button>Set password</button></form>\
         <h2>Sender whitelist</h2><ul>{whitelist}</ul>\
         <form method=\"post\" action=\"{base}/whitelist-add\">{csrf}\
         <label>Sender (a@b or *@domain) <input name=\"value\" required></label><button>Add</button></form>\
         <h2>Aliases</h2><ul>{aliases}</ul>\
         <form method=\"post\" action=\"{base}/alias-add\">{csrf}\
         <label>Alias (a@domain, or @domain for a catch-all) <input name=\"value\" required></label>\
         <button>Add</button></form>\
         <h2>Danger zone</h2>{toggle} \
         <form method=\"post\" action=\"{base}/delete\" class=\"inline\">{csrf}\
         <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> delete all its mail</label>\
         <button class=\"danger\">Delete account</button></form>",
        usage = usage_bar(usage, a.quota),
        last_login = escape(&last_login),
        status = if disabled { "disabled (cannot log in)" } else { "enabled" },
        quota = quota_text(a.quota),
        toggle = if disabled {
            button(&caller, &format!("{base}/enable"), "Enable", "")
        } else {
            button(&caller, &format!("{base}/disable"), "Disable", "")
        },
    );
    layout(&caller, &a.address, &notice, &body)
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: Option<String>,
    value: Option<String>,
    spam_level: Option<String>,
    quota: Option<String>,
    confirm: Option<String>,
}

async fn account_action(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path((address, action)): Path<(String, String)>,
    form: Posted<ActionForm>,
) -> Response {
    let form = match accept(&caller, form) {
        Ok(form) => form,
        Err(r) => return r,
    };
    let page = format!("/accounts/{}", url_encode(&address));
    let value = form.value.unwrap_or_default();
    let command = match action.as_str() {
        "settings" => AccountCommand::Set {
            address: address.clone(),
            quota: form.quota.filter(|q| !q.trim().is_empty()),
            spam_level: form.spam_level,
            password: None,
        },
        "password" => match hash_password(value).await {
            Ok(hash) => AccountCommand::Set {
                address: address.clone(),
                quota: None,
                spam_level: None,
                password: Some(hash),
            },
            Err(policy) => return back(&page, false, &policy),
        },
        "disable" => AccountCommand::Disable {
            address: address.clone(),
        },
        "enable" => AccountCommand::Enable {
            address: address.clone(),
        },
        "delete" => AccountCommand::Delete {
            address: address.clone(),
            yes: form.confirm.as_deref() == Some("yes"),
        },
        "whitelist-add" | "whitelist-remove" | "alias-add" | "alias-remove" => {
            let command = match action.as_str() {
                "whitelist-add" => AdminCommand::Whitelist(WhitelistCommand::Add {
                    address: address.clone(),
                    sender: value,
                }),
                "whitelist-remove" => AdminCommand::Whitelist(WhitelistCommand::Remove {
                    address: address.clone(),
                    sender: value,
                }),
                "alias-add" => AdminCommand::Alias(AliasCommand::Add {
                    alias: value,
                    target: address.clone(),
                }),
                _ => AdminCommand::Alias(AliasCommand::Remove { alias: value }),
            };
            let outcome = run(&state, &caller, command).await;
            return answered(&page, &outcome);
        }
        _ => return secure((StatusCode::NOT_FOUND, "not found").into_response()),
    };
    let deleting = matches!(command, AccountCommand::Delete { yes: true, .. });
    let outcome = run(&state, &caller, AdminCommand::Account(command)).await;
    let page = if deleting && outcome.ok {
        "/accounts".to_string()
    } else {
        page
    };
    answered(&page, &outcome)
}

// ---- message trace ----

/// The trace search form's fields (a GET: searching changes nothing).
#[derive(Deserialize, Default)]
struct TraceForm {
    sender: Option<String>,
    recipient: Option<String>,
    message_id: Option<String>,
    client: Option<String>,
    hours: Option<String>,
    ok: Option<String>,
    error: Option<String>,
}

async fn trace_page(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(form): Query<TraceForm>,
) -> Response {
    let hours = form
        .hours
        .as_deref()
        .and_then(|h| h.trim().parse::<u32>().ok())
        .unwrap_or(24);
    let args = crate::cli::TraceArgs {
        sender: form.sender.clone(),
        recipient: form.recipient.clone(),
        message_id: form.message_id.clone(),
        client: form.client.clone(),
        hours: Some(hours),
        limit: 100,
    };
    let query = crate::admin::trace_query(&args, unix_now());
    let store = state.store.clone();
    let found =
        tokio::task::spawn_blocking(move || gannet_core::store::trace::search(&store, &query))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    let field = |name: &str, label: &str, value: &Option<String>| {
        format!(
            "<label>{label} <input name=\"{name}\" value=\"{}\"></label>",
            escape(value.as_deref().unwrap_or(""))
        )
    };
    let mut body = format!(
        "<form method=\"get\" action=\"/trace\" class=\"search\">{}{}{}{}\
         <label>Last hours <input name=\"hours\" value=\"{hours}\" size=\"4\"></label>\
         <button>Search</button></form>",
        field("sender", "Sender", &form.sender),
        field("recipient", "Recipient", &form.recipient),
        field("message_id", "Message-ID", &form.message_id),
        field("client", "Client IP", &form.client),
    );
    match found {
        Ok(traces) if traces.is_empty() => body.push_str("<p>No message found.</p>"),
        Ok(traces) => {
            for t in traces {
                let _ = write!(
                    body,
                    "<section class=\"trace\"><h2>Message <code>{:016x}</code></h2><table><tbody>",
                    t.message
                );
                for e in &t.events {
                    let _ = write!(
                        body,
                        "<tr><td class=\"when\">{}</td><td>{}</td></tr>",
                        escape(&gannet_core::smtp::format_rfc5322_date(e.at)),
                        escape(&e.describe())
                    );
                }
                body.push_str("</tbody></table></section>");
            }
        }
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\">The trace cannot be read: {}</p>",
                escape(&e)
            );
        }
    }
    let notice = Notice {
        ok: form.ok,
        error: form.error,
    };
    layout(&caller, "Message trace", &notice, &body)
}

// ---- spam ----

async fn spam_page(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let rules = state.live.rules.load();
    let report = &rules.report;
    let spam = state.live.spam.load();
    let mut body =
        format!(
        "<h2>Rules</h2><p>{loaded} rules loaded ({inactive} not run: scored 0 and needed by no \
         meta), {backtracking} with a backtracking regex, {skipped} directives skipped. Rule \
         directories: {dirs}. Required score: {required}.</p>{reload}",
        loaded = report.loaded,
        inactive = report.inactive,
        backtracking = report.backtracking,
        skipped = report.skipped.values().sum::<usize>(),
        dirs = escape(&match &spam.rules_dirs {
            None => "the stock rules where installed (default)".to_string(),
            Some(d) if d.is_empty() => "none (built-in rules only)".to_string(),
            Some(d) => d.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        }),
        required = rules.globals.required_score,
        reload = button(&caller, "/spam/reload", "Reload the rules", ""),
    );
    let bayes = run(&state, &caller, AdminCommand::BayesStatus { account: None }).await;
    let _ = write!(
        body,
        "<h2>Bayes classifier</h2><p>{}</p>",
        escape(String::from_utf8_lossy(&bayes.output).trim())
    );
    body.push_str("<h2>Spam reports</h2>");
    if spam.report_address.is_empty() {
        body.push_str("<p>No report address (<code>spam.report_address</code>).</p>");
    } else {
        let address = spam.report_address.clone();
        let reports = run(
            &state,
            &caller,
            AdminCommand::SpamReports {
                address: address.clone(),
            },
        )
        .await;
        let mut rows = String::new();
        for line in String::from_utf8_lossy(&reports.output).lines() {
            let f: Vec<&str> = line.splitn(5, '\t').collect();
            if let [uid, date, from, carried, subject] = f[..] {
                let _ = write!(
                    rows,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(uid),
                    escape(date),
                    escape(from),
                    escape(carried),
                    escape(subject)
                );
            }
        }
        let _ = write!(
            body,
            "<p>Reports sent to {}, learned as spam:</p><table><thead><tr><th>UID</th><th>Date</th>\
             <th>From</th><th>Messages</th><th>Subject</th></tr></thead><tbody>{rows}</tbody></table>",
            escape(&address)
        );
    }
    layout(&caller, "Spam filter", &notice, &body)
}

async fn spam_reload(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    form: Posted<CsrfForm>,
) -> Response {
    if let Err(r) = accept(&caller, form) {
        return r;
    }
    let outcome = run(&state, &caller, AdminCommand::Rules(RulesCommand::Reload)).await;
    answered("/spam", &outcome)
}

// ---- quarantine ----

/// The quarantine list's filter: one recipient address (as `gannet quarantine list`).
#[derive(Deserialize)]
struct HeldFilter {
    recipient: Option<String>,
}

async fn quarantine_page(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
    Query(filter): Query<HeldFilter>,
) -> Response {
    let wanted = filter
        .recipient
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let mut rows = String::new();
    for m in quarantine::list(&state.store).unwrap_or_default() {
        if wanted.is_some_and(|w| !m.is_for(w)) {
            continue;
        }
        let id = format!("{:016x}", m.id);
        let recipients: Vec<String> = m
            .recipients
            .iter()
            .map(|r| {
                let status = r.status.label();
                format!("{} ({status})", r.address)
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td><a href=\"/quarantine/{id}\"><code>{id}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(&m.reverse_path),
            escape(&recipients.join(", ")),
            escape(&m.subject),
            escape(&m.reason),
            button(&caller, &format!("/quarantine/{id}/release"), "Release", ""),
            button(&caller, &format!("/quarantine/{id}/delete"), "Delete", "danger"),
        );
    }
    let body = format!(
        "<form method=\"get\" action=\"/quarantine\" class=\"inline\"><label>Recipient \
         <input name=\"recipient\" type=\"email\" value=\"{}\"></label><button>Filter</button></form>\
         <table><thead><tr><th>Id</th><th>Sender</th><th>Recipients</th><th>Subject</th><th>Why held</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        escape(wanted.unwrap_or_default())
    );
    layout(&caller, "Quarantine", &notice, &body)
}

/// One held message: its record, each recipient's fate and its headers, as `gannet
/// quarantine show` prints them.
async fn quarantine_show(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let outcome = run(
        &state,
        &caller,
        AdminCommand::Quarantine(QuarantineCommand::Show { id: id.clone() }),
    )
    .await;
    let text = String::from_utf8_lossy(&outcome.output);
    if !outcome.ok {
        return back("/quarantine", false, text.trim());
    }
    let id = escape(&id);
    let body = format!(
        "<pre class=\"message\">{}</pre><p>{}{}</p>",
        escape_lines(&text),
        button(&caller, &format!("/quarantine/{id}/release"), "Release", ""),
        button(
            &caller,
            &format!("/quarantine/{id}/delete"),
            "Delete",
            "danger"
        ),
    );
    layout(&caller, &format!("Held message {id}"), &notice, &body)
}

async fn quarantine_action(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path((id, action)): Path<(String, String)>,
    form: Posted<CsrfForm>,
) -> Response {
    if let Err(r) = accept(&caller, form) {
        return r;
    }
    let command = match action.as_str() {
        "release" => QuarantineCommand::Release {
            id,
            recipient: None,
        },
        "delete" => QuarantineCommand::Delete { id },
        _ => return secure((StatusCode::NOT_FOUND, "not found").into_response()),
    };
    let outcome = run(&state, &caller, AdminCommand::Quarantine(command)).await;
    answered("/quarantine", &outcome)
}

// ---- queue ----

async fn queue_page(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Query(notice): Query<Notice>,
) -> Response {
    let now = unix_now();
    let mut rows = String::new();
    for m in queue::list(&state.store).unwrap_or_default() {
        let id = format!("{:016x}", m.id);
        let recipients: Vec<String> = m
            .recipients
            .iter()
            .map(|r| {
                let status = r.status.label();
                format!("{} ({status})", r.address)
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td><code>{id}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}{}</td></tr>",
            escape(&format!("<{}>", m.reverse_path)),
            escape(&recipients.join(", ")),
            age(now - m.created),
            m.attempts,
            escape(m.last_error.as_deref().unwrap_or("")),
            button(&caller, &format!("/queue/{id}/retry"), "Retry now", ""),
            button(&caller, &format!("/queue/{id}/bounce"), "Bounce", ""),
            button(&caller, &format!("/queue/{id}/delete"), "Delete", "danger"),
        );
    }
    let body = format!(
        "<table><thead><tr><th>Id</th><th>Sender</th><th>Recipients</th><th>Age</th><th>Attempts</th>\
         <th>Last answer</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    );
    layout(&caller, "Queue", &notice, &body)
}

async fn queue_action(
    State(state): State<Arc<AdminState>>,
    LoggedIn(caller): LoggedIn,
    Path((id, action)): Path<(String, String)>,
    form: Posted<CsrfForm>,
) -> Response {
    if let Err(r) = accept(&caller, form) {
        return r;
    }
    let command = match action.as_str() {
        "retry" => QueueCommand::Retry {
            id: Some(id),
            all: false,
        },
        "bounce" => QueueCommand::Bounce { id },
        "delete" => QueueCommand::Delete { id },
        _ => return secure((StatusCode::NOT_FOUND, "not found").into_response()),
    };
    let outcome = run(&state, &caller, AdminCommand::Queue(command)).await;
    answered("/queue", &outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_url_encoded() {
        assert_eq!(url_encode("a b&c=<d>"), "a%20b%26c%3D%3Cd%3E");
        assert_eq!(age(30), "30 s");
        assert_eq!(age(7_200), "2 h");
        assert_eq!(size(1 << 30), "1.0 GiB");
        assert!(usage_bar(512, 1024).contains("value=\"50\""));
        assert_eq!(quota_text(1_000_000_000), "1GB");
        assert_eq!(quota_text(3 << 30), "3GiB");
        assert_eq!(quota_text(1234), "1234");
        for bytes in [1_000_000_000, 3 << 30, 1234, 5 << 20] {
            assert_eq!(
                gannet_core::config::parse_size(&quota_text(bytes)),
                Some(bytes)
            );
        }
    }
}
