//! Reading commands from the input: framing (lines and literals, with their continuation
//! requests and size limits) and parsing into the command to run next.

use super::super::command::{self, mailbox_name, Needs};
use super::super::parse::{frame, tag_of, Bad, Frame, Limits, Reader};
use super::super::utf7;
use super::response_code::{ResponseCode, Status};
use super::{Session, State};

impl Session {
    /// Frames and parses the next command; false when more input is needed.
    pub(super) fn next_command(&mut self) -> bool {
        if self.skip_line {
            match memchr::memchr(b'\n', &self.io.input) {
                Some(lf) => {
                    self.io.input.drain(..=lf);
                    self.skip_line = false;
                }
                None => {
                    self.io.input.clear();
                    return false;
                }
            }
        }
        if let Some(tag) = self.sasl_tag.take() {
            return self.sasl_response(tag);
        }
        match frame(&self.io.input, &self.limits(), self.acked) {
            Frame::Incomplete { continuation } => {
                if continuation {
                    self.line("+ Ready for literal data");
                    self.acked = self.io.input.len();
                }
                false
            }
            Frame::LineTooLong => {
                self.io.input.clear();
                self.close_with("Command line too long");
                true
            }
            Frame::TooBig { sync, tag } => {
                self.io.input.clear();
                self.acked = 0;
                let authenticated = !matches!(self.state, State::NotAuthenticated);
                if sync && authenticated {
                    // The client sends nothing more for this command.
                    self.no(&tag, ResponseCode::TooBig, "Literal too large");
                } else if sync {
                    self.bad(&tag, "Command too large before authentication");
                } else {
                    // The literal's bytes are on their way (RFC 7888): nothing to do but
                    // refuse the command and close.
                    let code = Some(ResponseCode::TooBig);
                    self.respond(&tag, Status::Bad, code, "Literal too large");
                    self.close_with("Literal too large");
                }
                true
            }
            Frame::Complete { len } => {
                let bytes: Vec<u8> = self.io.input.drain(..len).collect();
                self.acked = 0;
                self.parse_command(&bytes);
                true
            }
        }
    }

    /// How large the next command may be: 8 KiB before login, after it a message (the
    /// largest literal) and a line.
    fn limits(&self) -> Limits {
        let config = &self.config;
        let max_command = if matches!(self.state, State::NotAuthenticated) {
            config.max_command_before_auth as u64
        } else {
            config.max_literal.saturating_add(config.max_line as u64)
        };
        Limits {
            max_line: config.max_line,
            max_literal: config.max_literal,
            max_command,
        }
    }

    /// Parses one framed command into `self.current`, or answers BAD. A command the
    /// current state does not allow is refused from its name, its arguments unparsed.
    fn parse_command(&mut self, bytes: &[u8]) {
        let tag = tag_of(bytes);
        let mut reader = Reader::new(bytes);
        let tagged = tag != "*" && reader.atom().is_ok_and(|t| t == tag) && reader.space().is_ok();
        if !tagged {
            self.line("* BAD Invalid tag or command");
            self.bad_commands += 1;
            return;
        }
        let parsed = command::command_name(&mut reader).and_then(|(name, uid)| {
            match (command::needs(&name, uid), &self.state) {
                (Needs::Authenticated | Needs::Selected, State::NotAuthenticated) => {
                    Err(Bad("Command not valid before authentication".into()))
                }
                (Needs::Selected, State::Authenticated) => Err(Bad("No mailbox selected".into())),
                _ => command::parse_args(&mut reader, &name, uid),
            }
        });
        // A rev1 client's names are in modified UTF-7; Gannet's are UTF-8.
        let parsed = parsed.and_then(|cmd| match self.names_in_utf7() {
            false => Ok(cmd),
            true => (cmd.map_names(|name| utf7::decode(name).map(mailbox_name)))
                .ok_or_else(|| Bad("Mailbox name is not valid modified UTF-7".into())),
        });
        match parsed {
            Ok(cmd) => self.current = Some((tag, cmd)),
            Err(e) => self.bad(&tag, &e.0),
        }
    }
}
