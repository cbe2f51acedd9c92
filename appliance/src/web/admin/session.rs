//! Console sessions: a random id in an `HttpOnly; Secure; SameSite=Strict` cookie, a CSRF
//! token per session that every state-changing request must carry, and expiry after a
//! time without requests. Kept in memory: a restart logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "gannet_admin";

/// Most sessions at once; past it the least recently used is dropped.
const MAX_SESSIONS: usize = 1024;

/// Who a session is, and the CSRF token its forms carry.
#[derive(Clone, Debug)]
pub(crate) struct SessionInfo {
    pub(crate) admin: String,
    pub(crate) csrf: String,
}

struct Entry {
    info: SessionInfo,
    last_seen: Instant,
}

pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Entry>>,
    idle: Duration,
}

impl Sessions {
    pub(crate) fn new(idle: Duration) -> Sessions {
        Sessions {
            by_id: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// Opens a session for `admin`: its id (the cookie's value) and what it carries.
    pub(crate) fn open(&self, admin: &str) -> anyhow::Result<(String, SessionInfo)> {
        let id = random_token()?;
        let info = SessionInfo {
            admin: admin.to_string(),
            csrf: random_token()?,
        };
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, e| now.duration_since(e.last_seen) < self.idle);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Entry {
                info: info.clone(),
                last_seen: now,
            },
        );
        Ok((id, info))
    }

    /// The live session `id` names (its idle clock restarted), if any.
    pub(crate) fn get(&self, id: &str) -> Option<SessionInfo> {
        let mut map = self.lock();
        let now = Instant::now();
        let entry = map.get_mut(id)?;
        if now.duration_since(entry.last_seen) >= self.idle {
            map.remove(id);
            return None;
        }
        entry.last_seen = now;
        Some(entry.info.clone())
    }

    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 32 random bytes in hex.
pub(crate) fn random_token() -> anyhow::Result<String> {
    gannet_core::secret::random_hex().map_err(|e| anyhow::anyhow!("no randomness: {e}"))
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that opens a session (`Max-Age` absent: it ends with the
/// browser; the server expires it when idle).
pub(crate) fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that removes it.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_expire_and_close() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let (id, info) = sessions.open("root").unwrap();
        assert_eq!(info.admin, "root");
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.get(&id).map(|s| s.csrf), Some(info.csrf.clone()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&id).is_none(), "expired when idle");
        let (id, _) = sessions.open("root").unwrap();
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; gannet_admin=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(set_cookie("x").contains("HttpOnly; Secure; SameSite=Strict"));
        assert!(same_secret("a", "a") && !same_secret("a", "b"));
    }
}
