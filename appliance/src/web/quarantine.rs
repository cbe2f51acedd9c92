//! The release pages of the quarantine: `GET /quarantine/TOKEN` shows what is held and
//! why, with buttons; `POST` releases or deletes. A GET never changes anything (mail
//! scanners and link previews follow links); the token in the URL is the credential: it
//! names one message and one recipient, is signed, and expires with the message.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use gannet_core::clock::unix_now;
use gannet_core::delivery::quarantine::{self as hold, ReleaseError, TokenError};
use gannet_core::smtp::format_rfc5322_date;
use gannet_core::store::quarantine::{self, HeldMessage, HeldStatus};
use gannet_core::store::{Changes, StoreError};
use serde::Deserialize;

use super::{escape, page, WebState};

pub(super) fn routes(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/quarantine/{token}", get(show).post(act))
        .fallback(|| async { page(StatusCode::NOT_FOUND, "Not found", "<p>No such page.</p>") })
        .with_state(state)
}

/// The held message and recipient a token names, or the page that says why not.
fn held_for(state: &WebState, token: &str) -> Result<(HeldMessage, usize), Box<Response>> {
    let (id, recipient) = match hold::verify(&state.key, token, unix_now()) {
        Ok(found) => found,
        Err(TokenError::Expired) => {
            return Err(Box::new(page(
                StatusCode::GONE,
                "Link expired",
                "<p>This link has expired, and the message it was for has been deleted.</p>",
            )))
        }
        Err(TokenError::Invalid) => {
            return Err(Box::new(page(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "<p>This link is not valid. Check that it was copied whole.</p>",
            )))
        }
    };
    match quarantine::find(&state.store, id) {
        Ok(Some(held)) if recipient < held.recipients.len() => Ok((held, recipient)),
        Ok(_) => Err(Box::new(gone())),
        Err(e) => {
            tracing::error!(error = %e, "quarantine page: store read failed");
            Err(Box::new(unavailable()))
        }
    }
}

fn gone() -> Response {
    page(
        StatusCode::GONE,
        "No longer held",
        "<p>This message is no longer in the quarantine (it was deleted).</p>",
    )
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "<p>The quarantine cannot be read right now. Please try again in a moment.</p>",
    )
}

/// The page for a recipient whose message is no longer waiting.
fn settled(status: &HeldStatus) -> Option<Response> {
    match status {
        HeldStatus::Held => None,
        HeldStatus::Released { at, .. } => Some(page(
            StatusCode::OK,
            "Already released",
            &format!(
                "<p>This message was already released to your inbox on {}.</p>",
                escape(&format_rfc5322_date(*at))
            ),
        )),
        HeldStatus::Deleted { at, .. } => Some(page(
            StatusCode::OK,
            "Deleted",
            &format!(
                "<p>You deleted this message on {}.</p>",
                escape(&format_rfc5322_date(*at))
            ),
        )),
    }
}

async fn show(State(state): State<Arc<WebState>>, Path(token): Path<String>) -> Response {
    let (held, recipient) = match held_for(&state, &token) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let Some(who) = held.recipients.get(recipient) else {
        return gone();
    };
    if let Some(page) = settled(&who.status) {
        return page;
    }
    let sender = if held.reverse_path.is_empty() {
        "(none)".to_string()
    } else {
        held.reverse_path.clone()
    };
    let body = format!(
        "<p>A message to <b>{to}</b> is held in the quarantine because it may be dangerous.</p>\n\
         <table>\n\
         <tr><th>From</th><td>{from}</td></tr>\n\
         <tr><th>Subject</th><td>{subject}</td></tr>\n\
         <tr><th>Received</th><td>{arrived}</td></tr>\n\
         <tr><th>Held for</th><td>{reason}</td></tr>\n\
         <tr><th>Kept until</th><td>{expires}</td></tr>\n\
         </table>\n\
         <p>Release it only if you know the sender and expect this message: it will be\n\
         delivered to your inbox as it arrived. Delete it if you do not want it; it is\n\
         deleted anyway when it expires.</p>\n\
         <form method=\"post\"><button name=\"action\" value=\"release\">Release to my inbox</button>\n\
         <button name=\"action\" value=\"delete\">Delete</button></form>",
        to = escape(&who.address),
        from = escape(&sender),
        subject = escape(&held.subject),
        arrived = escape(&format_rfc5322_date(held.arrived)),
        reason = escape(&held.reason),
        expires = escape(&format_rfc5322_date(held.expires)),
    );
    page(StatusCode::OK, "Message in quarantine", &body)
}

#[derive(Deserialize)]
struct ActionForm {
    action: String,
}

async fn act(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let (held, recipient) = match held_for(&state, &token) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let Some(who) = held.recipients.get(recipient) else {
        return gone();
    };
    if let Some(page) = settled(&who.status) {
        return page;
    }
    let now = unix_now();
    let changes = match form.action.as_str() {
        "release" => match hold::release(&state.store, held.id, recipient, "link", now) {
            Ok(changes) => changes,
            Err(ReleaseError::AlreadyReleased) => return reload(&state, &token),
            Err(ReleaseError::Gone) => return gone(),
            Err(e) => {
                tracing::error!(error = %e, id = format_args!("{:016x}", held.id), "release failed");
                return unavailable();
            }
        },
        "delete" => {
            let mut changes = Changes::new();
            changes.mark_deleted(held.id, recipient, now, "link");
            changes
        }
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "<p>Use the buttons of the page.</p>",
            )
        }
    };
    match state.store.commit(changes).await {
        Ok(_) => {
            tracing::info!(
                id = format_args!("{:016x}", held.id),
                recipient = %who.address,
                action = %form.action,
                "quarantine: settled by its link"
            );
            if form.action == "release" {
                page(
                    StatusCode::OK,
                    "Released",
                    "<p>The message was delivered to your inbox.</p>",
                )
            } else {
                page(StatusCode::OK, "Deleted", "<p>The message was deleted.</p>")
            }
        }
        // Someone (another click, the admin) settled it first: say what happened.
        Err(StoreError::Changed(_)) => reload(&state, &token),
        Err(e) => {
            tracing::error!(error = %e, "quarantine: commit failed");
            unavailable()
        }
    }
}

/// The page as things now stand (after a race with another click or the purge).
fn reload(state: &WebState, token: &str) -> Response {
    match held_for(state, token) {
        Ok((held, recipient)) => held
            .recipients
            .get(recipient)
            .and_then(|r| settled(&r.status))
            .unwrap_or_else(gone),
        Err(page) => *page,
    }
}
