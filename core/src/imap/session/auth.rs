//! The commands of the connection and of logging in: CAPABILITY, LOGOUT, STARTTLS, LOGIN,
//! AUTHENTICATE PLAIN (with its response line), ENABLE and ID; and the runtime's side of a
//! login (the credentials it checks, the outcome it reports).

use super::super::command::Cmd;
use super::response_code::{ResponseCode, Status};
use super::{Session, State};
use crate::auth::sasl::{self, Credentials};
use crate::auth::service::AuthOutcome;

impl Session {
    // ---- the runtime's side ----

    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        self.awaiting = false;
        let Some((tag, _)) = self.current.take() else {
            return;
        };
        match outcome {
            AuthOutcome::Success { account } => {
                self.account = Some(account);
                self.state = State::Authenticated;
                let caps = ResponseCode::Capability(self.capabilities());
                self.respond(&tag, Status::Ok, Some(caps), "Logged in");
            }
            AuthOutcome::Failure => {
                let code = ResponseCode::AuthenticationFailed;
                self.no(&tag, code, "Authentication failed");
                self.bad_commands += 1;
            }
            AuthOutcome::LockedOut => self.close_with("Too many failed logins, try again later"),
            AuthOutcome::Unavailable => self.no(
                &tag,
                ResponseCode::Unavailable,
                "Authentication unavailable",
            ),
        }
    }

    // ---- what the session offers ----

    fn may_authenticate(&self) -> bool {
        self.policy.tls || self.policy.auth_without_tls
    }

    pub(super) fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev2",
            "IMAP4rev1",
            "LITERAL+",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "ID",
            "CHILDREN",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "STATUS=SIZE",
            "CREATE-SPECIAL-USE",
            "UTF8=ACCEPT",
            "SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
        ];
        if !self.policy.tls && self.policy.starttls && matches!(self.state, State::NotAuthenticated)
        {
            caps.push("STARTTLS");
        }
        if matches!(self.state, State::NotAuthenticated) {
            if self.may_authenticate() {
                caps.push("AUTH=PLAIN");
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.join(" ")
    }

    // ---- the commands ----

    pub(super) fn capability(&mut self, tag: &str) {
        let caps = self.capabilities();
        self.line(&format!("* CAPABILITY {caps}"));
        self.ok(tag, "CAPABILITY completed");
    }

    pub(super) fn logout(&mut self, tag: &str) {
        self.line("* BYE Gannet IMAP signing off");
        self.ok(tag, "LOGOUT completed");
        self.state = State::Logout;
    }

    pub(super) fn starttls(&mut self, tag: &str) {
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        if self.policy.tls || !self.policy.starttls || authenticated {
            self.bad(tag, "STARTTLS not available");
        } else {
            self.ok(tag, "Begin TLS negotiation now");
            self.io.input.clear();
            self.tls_pending = true;
        }
    }

    pub(super) fn login(&mut self, tag: &str, user: &str, pass: &str) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.bad(tag, "Already authenticated");
        } else if !self.may_authenticate() {
            let text = "LOGIN requires TLS (use STARTTLS)";
            self.no(tag, ResponseCode::PrivacyRequired, text);
        } else {
            let credentials = Credentials {
                username: user.to_owned(),
                password: pass.to_owned(),
            };
            self.begin_login(tag.to_string(), credentials);
        }
    }

    pub(super) fn authenticate(&mut self, tag: &str, mechanism: &str, initial: Option<&[u8]>) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.bad(tag, "Already authenticated");
        } else if !self.may_authenticate() {
            let text = "Authentication requires TLS (use STARTTLS)";
            self.no(tag, ResponseCode::PrivacyRequired, text);
        } else if mechanism != "PLAIN" {
            self.no(tag, None, "Unsupported mechanism");
        } else if let Some(initial) = initial {
            match sasl::decode_response(initial).and_then(|d| sasl::parse_plain(&d)) {
                Ok(c) => self.begin_login(tag.to_string(), c),
                Err(_) => self.bad(tag, "Cannot decode the response"),
            }
        } else {
            self.line("+ ");
            self.sasl_tag = Some(tag.to_string());
        }
    }

    /// The client's line after `AUTHENTICATE PLAIN`: at most 8 KiB (a PLAIN response is
    /// far shorter), else BAD, the exchange ends and the rest of the line is skipped.
    pub(super) fn sasl_response(&mut self, tag: String) -> bool {
        let limit = self.config.max_command_before_auth;
        let Some(lf) = memchr::memchr(b'\n', &self.io.input) else {
            if self.io.input.len() > limit {
                self.io.input.clear();
                self.skip_line = true;
                self.bad(&tag, "Authentication response too long");
                return true;
            }
            self.sasl_tag = Some(tag);
            return false;
        };
        let line: Vec<u8> = self.io.input.drain(..=lf).collect();
        if line.len() > limit {
            self.bad(&tag, "Authentication response too long");
            return true;
        }
        match sasl::decode_response(&line).and_then(|d| sasl::parse_plain(&d)) {
            Ok(c) => self.begin_login(tag, c),
            Err(sasl::SaslError::Cancelled) => self.bad(&tag, "Authentication cancelled"),
            Err(_) => self.bad(&tag, "Cannot decode the response"),
        }
        true
    }

    /// Hands the credentials to the runtime, which checks them and calls
    /// [`Session::auth_result`].
    fn begin_login(&mut self, tag: String, credentials: Credentials) {
        self.credentials = Some(credentials);
        self.awaiting = true;
        self.current = Some((tag, Cmd::Noop));
    }

    pub(super) fn enable(&mut self, tag: &str, caps: &[String]) {
        if matches!(self.state, State::NotAuthenticated) {
            self.bad(tag, "Not authenticated");
            return;
        }
        let mut on: Vec<&str> = Vec::new();
        for cap in caps {
            // UTF8=ACCEPT changes nothing here: names and strings are UTF-8 already.
            let known = ["IMAP4rev2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT"];
            let Some(name) = known.into_iter().find(|k| cap.eq_ignore_ascii_case(k)) else {
                continue;
            };
            match name {
                "IMAP4rev2" => self.rev2 = true,
                // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
                "QRESYNC" => (self.qresync, self.condstore) = (true, true),
                "UTF8=ACCEPT" => self.utf8_accept = true,
                _ => self.condstore = true,
            }
            if !on.contains(&name) {
                on.push(name);
            }
        }
        self.line(format!("* ENABLED {}", on.join(" ")).trim_end());
        self.ok(tag, "ENABLE completed");
    }

    pub(super) fn id(&mut self, tag: &str) {
        self.line("* ID (\"name\" \"Gannet\")");
        self.ok(tag, "ID completed");
    }
}
