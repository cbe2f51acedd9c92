//! The web pages over HTTPS (`listen.web`): the quarantine's release pages, and the
//! documents mail clients configure themselves from (`autoconfig`). axum on
//! a thread and a small tokio runtime of their own, never on the io_uring workers; TLS
//! with the appliance's certificate (the same configuration the mail ports use, so a
//! certificate reload reaches it too).

pub(crate) mod admin;
mod autoconfig;
mod quarantine;

pub(crate) use autoconfig::MailSettings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use gannet_core::delivery::quarantine::ReleaseKey;
use gannet_core::delivery::routing::SharedDirectory;
use gannet_core::store::Store;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// What the pages read and change.
pub(crate) struct WebState {
    pub(crate) store: Store,
    pub(crate) key: Arc<ReleaseKey>,
    /// Which domains are hosted (the running server's routing snapshot).
    pub(crate) routing: SharedDirectory,
    /// The host name and ports the client-setup documents name.
    pub(crate) mail: MailSettings,
}

/// The address of the client a request came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) std::net::IpAddr);

/// Longest a client may take for its TLS handshake, and for a whole request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;

/// Binds `addr` now (so a taken port fails the start) and serves the pages on a thread.
pub(crate) fn spawn(
    addr: SocketAddr,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    state: WebState,
) -> anyhow::Result<()> {
    let state = Arc::new(state);
    let router = autoconfig::routes(state.clone()).merge(quarantine::routes(state));
    serve_router("web", addr, Some(tls), router)
}

/// Binds `addr` now and serves `router` on a thread named `name`: over TLS with the
/// appliance's certificate, or in the clear when `tls` is None.
pub(crate) fn serve_router(
    name: &'static str,
    addr: SocketAddr,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    router: axum::Router,
) -> anyhow::Result<()> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    gannet_core::process::spawn_service(name, move || async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "web: cannot listen");
                return;
            }
        };
        // A bounded number of connections at once: past it, new ones wait in the backlog.
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %e, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = tls
                .as_ref()
                .map(|tls| tokio_rustls::TlsAcceptor::from(tls.load_full()));
            // Handlers that throttle by client (the console's login) read its address.
            let router = router.clone().layer(axum::Extension(Peer(peer.ip())));
            tokio::spawn(async move {
                let _slot = slot;
                let service = TowerToHyperService::new(router);
                let http = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .clone();
                let Some(acceptor) = acceptor else {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                    return;
                };
                let Ok(Ok(tls)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                else {
                    return;
                };
                let connection = http.serve_connection(TokioIo::new(tls), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            });
        }
    })?;
    Ok(())
}

/// Escapes text for HTML.
/// [`escape`] for text of several lines (a `<pre>`, a `<textarea>`): each line escaped,
/// the newlines kept and tabs made spaces (`escape` drops both with the other control
/// characters; a folded header line starts with a tab).
pub(crate) fn escape_lines(text: &str) -> String {
    text.lines()
        .map(|line| escape(&line.replace('\t', "    ")))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A whole page with the headers every page carries: no script, no framing, no cache,
/// no Referer (the URL holds the release token).
pub(crate) fn page(status: axum::http::StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body>\n<h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>\u{7}"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(escape_lines("a<\r\nb\u{7}\n\tc"), "a&lt;\nb\n    c");
    }
}
