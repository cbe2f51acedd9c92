//! IMAP command syntax (RFC 9051 section 9, the parts Gannet serves): framing of a command
//! line with its literals, and parsing into owned [`Command`]s.
//!
//! Hand-written rather than `imap-codec` 1.0: that crate follows IMAP4rev1's grammar and
//! rejects what IMAP4rev2 clients send (UTF-8 quoted strings, UID EXPUNGE, ID, NAMESPACE,
//! LIST RETURN, SEARCH RETURN).

use memchr::memchr;

/// Where a command is in the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command: `len` bytes from the start of the buffer (CRLF included).
    Complete { len: usize },
    /// More bytes are needed; `continuation` asks the client for a synchronizing literal.
    Incomplete { continuation: bool },
    /// A literal over the limits: the command is refused (for `{N}`, nothing more will
    /// come; the bytes of an `{N+}` would follow).
    TooBig { sync: bool, tag: String },
    /// A line alone, or the command's lines together, longer than allowed.
    LineTooLong,
}

/// How large a command may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One line, literals excluded.
    pub max_line: usize,
    /// One literal.
    pub max_literal: u64,
    /// The whole command: its lines and literals together.
    pub max_command: u64,
}

/// Finds the end of the command starting at `buf[0]`, literals included.
/// `acked` is the number of bytes up to which a continuation was already sent.
pub fn frame(buf: &[u8], limits: &Limits, acked: usize) -> Frame {
    let max_line = limits
        .max_line
        .min(usize::try_from(limits.max_command).unwrap_or(usize::MAX));
    let mut pos = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(lf) = memchr(b'\n', rest) else {
            return if rest.len() > max_line || buf.len() as u64 > limits.max_command {
                Frame::LineTooLong
            } else {
                Frame::Incomplete {
                    continuation: false,
                }
            };
        };
        let line_end = pos + lf + 1;
        if lf > max_line || line_end as u64 > limits.max_command {
            return Frame::LineTooLong;
        }
        match literal_marker(&rest[..=lf]) {
            None => return Frame::Complete { len: line_end },
            Some((n, sync)) => {
                // The literal's own limit, and the command's: checked before any of its
                // bytes are read (or, for `{N}`, asked for).
                if n > limits.max_literal || line_end as u64 + n > limits.max_command {
                    return Frame::TooBig {
                        sync,
                        tag: tag_of(buf),
                    };
                }
                let after = line_end + n as usize;
                if buf.len() < after {
                    let continuation = sync && acked < line_end;
                    return Frame::Incomplete { continuation };
                }
                pos = after;
            }
        }
    }
}

/// `{N}` or `{N+}` at the end of a line (before CRLF): the literal's size and whether it is
/// synchronizing.
fn literal_marker(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, sync))
}

/// The tag of a command (its first word), for error replies.
pub fn tag_of(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let tag = String::from_utf8_lossy(&buf[..end.min(64)]).into_owned();
    if tag.is_empty() || !tag.bytes().all(is_tag_char) {
        "*".into()
    } else {
        tag
    }
}

/// True when `s` is an atom (RFC 9051 `atom`: no space, control, 8-bit or special).
pub fn is_atom(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_atom_char(b))
}

fn is_atom_char(b: u8) -> bool {
    b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

fn is_tag_char(b: u8) -> bool {
    is_atom_char(b) && b != b'+'
}

/// A parse error with the reason given to the client in a BAD reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub String);

fn bad<T>(why: &str) -> Result<T, Bad> {
    Err(Bad(why.to_string()))
}

/// How deeply parenthesized lists (and search keys) may nest: far more than any client
/// sends, and a bound on the parser's recursion, which network input must not have.
pub const MAX_DEPTH: usize = 64;

/// A value in a command, as read by [`Reader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Atom(String),
    /// A quoted string or a literal.
    String(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Value {
    /// The text of an atom or string (astring).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::String(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// A cursor over one framed command.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        let buf = buf.strip_suffix(b"\n").unwrap_or(buf);
        let buf = buf.strip_suffix(b"\r").unwrap_or(buf);
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes one space.
    pub fn space(&mut self) -> Result<(), Bad> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            bad("expected a space")
        }
    }

    /// Consumes a space if there is one; true if it did.
    pub fn maybe_space(&mut self) -> bool {
        self.space().is_ok()
    }

    pub fn expect_end(&self) -> Result<(), Bad> {
        if self.at_end() {
            Ok(())
        } else {
            bad("unexpected characters at the end of the command")
        }
    }

    /// An atom; `extra` are characters allowed beyond atom-chars (e.g. `[]<>.` in fetch items).
    pub fn atom_with(&mut self, extra: &[u8]) -> Result<String, Bad> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_atom_char(b) || extra.contains(&b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return bad("expected an atom");
        }
        Ok(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned())
    }

    pub fn atom(&mut self) -> Result<String, Bad> {
        self.atom_with(b"]")
    }

    /// A quoted string (UTF-8 allowed, as IMAP4rev2 permits).
    fn quoted(&mut self) -> Result<Vec<u8>, Bad> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return bad("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escaped = self.buf.get(self.pos + 1).copied();
                    match escaped {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return bad("bad escape in quoted string"),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal `{N}` / `{N+}` CRLF and its N bytes (framing checked the sizes).
    fn literal(&mut self) -> Result<Vec<u8>, Bad> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let close = rest
            .iter()
            .position(|&b| b == b'}')
            .ok_or(Bad("bad literal".into()))?;
        let spec = rest.get(1..close).unwrap_or_default();
        let digits = spec.strip_suffix(b"+").unwrap_or(spec);
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(Bad("bad literal size".into()))?;
        let mut start = self.pos + close + 1;
        if self.buf.get(start) == Some(&b'\r') {
            start += 1;
        }
        if self.buf.get(start) != Some(&b'\n') {
            return bad("literal must be followed by CRLF");
        }
        start += 1;
        let data = start
            .checked_add(n)
            .and_then(|end| self.buf.get(start..end))
            .ok_or(Bad("literal shorter than announced".into()))?;
        self.pos = start + n;
        Ok(data.to_vec())
    }

    /// An astring: atom, quoted string or literal.
    pub fn astring(&mut self) -> Result<Vec<u8>, Bad> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(_) => Ok(self.atom()?.into_bytes()),
            None => bad("expected a string"),
        }
    }

    pub fn astring_text(&mut self) -> Result<String, Bad> {
        Ok(String::from_utf8_lossy(&self.astring()?).into_owned())
    }

    /// A list-mailbox pattern: like an astring, with `%` and `*` allowed.
    pub fn pattern(&mut self) -> Result<String, Bad> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.astring_text(),
            _ => self.atom_with(b"%*]"),
        }
    }

    /// Any value: atom, string, NIL, or a parenthesized list nested at most
    /// [`MAX_DEPTH`] deep.
    pub fn value(&mut self) -> Result<Value, Bad> {
        self.value_at(0)
    }

    /// A value inside `depth` open lists.
    fn value_at(&mut self, depth: usize) -> Result<Value, Bad> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return bad("lists nested too deeply");
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b' ') => self.pos += 1,
                        None => return bad("unterminated list"),
                        _ => items.push(self.value_at(depth + 1)?),
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.quoted()?)),
            Some(b'{') => Ok(Value::String(self.literal()?)),
            Some(b'\\') => {
                self.pos += 1;
                Ok(Value::Atom(format!("\\{}", self.atom()?)))
            }
            Some(_) => {
                let a = self.atom_with(b"[]<>.")?;
                if a.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(a))
                }
            }
            None => bad("expected a value"),
        }
    }

    /// A flag: `\Name` or a keyword. Keywords are atoms (RFC 9051 `flag-keyword`), never
    /// quoted strings or literals: they are echoed in FLAGS responses, where a CR LF
    /// smuggled in would end the response line.
    pub fn flag(&mut self) -> Result<String, Bad> {
        let system = self.peek_is(b'\\');
        if system {
            self.pos += 1;
        }
        let name = self
            .atom_with(b"")
            .map_err(|_| Bad("flags must be atoms".into()))?;
        Ok(if system { format!("\\{name}") } else { name })
    }

    /// A parenthesized list of flags, possibly empty.
    pub fn flag_list(&mut self) -> Result<Vec<String>, Bad> {
        self.open_paren()?;
        let mut flags = Vec::new();
        if self.close_paren() {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.close_paren() {
                return Ok(flags);
            }
            self.space()?;
        }
    }

    /// A fetch item such as `BODY.PEEK[1.2.HEADER.FIELDS (To From)]<0.100>`.
    pub fn fetch_item(&mut self) -> Result<String, Bad> {
        let start = self.pos;
        let mut depth = 0;
        while let Some(b) = self.peek() {
            match b {
                b'[' | b'(' => depth += 1,
                b']' | b')' if depth > 0 => depth -= 1,
                b' ' | b')' if depth == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return bad("expected a fetch item");
        }
        Ok(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned())
    }

    /// The rest of the command, unparsed.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    /// A literal8 (`~{n}`, RFC 3516): the binary content of an APPEND.
    pub fn literal8(&mut self) -> Result<Vec<u8>, Bad> {
        if !self.peek_is(b'~') {
            return bad("expected ~");
        }
        self.pos += 1;
        if !self.peek_is(b'{') {
            return bad("expected a literal after ~");
        }
        self.literal()
    }

    pub fn peek_is(&self, b: u8) -> bool {
        self.peek() == Some(b)
    }

    /// True when the unread input starts with `prefix`, ASCII case-insensitively.
    pub fn rest_starts_with_ci(&self, prefix: &[u8]) -> bool {
        self.buf[self.pos..]
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    }

    pub fn open_paren(&mut self) -> Result<(), Bad> {
        if self.peek_is(b'(') {
            self.pos += 1;
            Ok(())
        } else {
            bad("expected (")
        }
    }

    /// Consumes a `)` if there is one.
    pub fn close_paren(&mut self) -> bool {
        if self.peek_is(b')') {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

/// A sequence set (`1:4,7,9:*`) as inclusive ranges; `*` is `u32::MAX`.
pub fn sequence_set(text: &str) -> Result<Vec<(u32, u32)>, Bad> {
    let num = |s: &str| -> Result<u32, Bad> {
        if s == "*" {
            return Ok(u32::MAX);
        }
        match s.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bad("bad sequence set"),
        }
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        out.push((a.min(b), a.max(b)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_line: 1000,
        max_literal: 10,
        max_command: 2000,
    };

    #[test]
    fn framing_with_literals() {
        assert_eq!(frame(b"a1 NOOP\r\nx", &L, 0), Frame::Complete { len: 9 });
        assert_eq!(
            frame(b"a1 NOO", &L, 0),
            Frame::Incomplete {
                continuation: false
            }
        );
        assert_eq!(
            frame(b"a LOGIN {5}\r\n", &L, 0),
            Frame::Incomplete { continuation: true }
        );
        assert_eq!(
            frame(b"a LOGIN {5}\r\n", &L, 13),
            Frame::Incomplete {
                continuation: false
            }
        );
        assert_eq!(
            frame(b"a LOGIN {5+}\r\nal", &L, 0),
            Frame::Incomplete {
                continuation: false
            }
        );
        assert_eq!(
            frame(b"a LOGIN {5}\r\nalice {3}\r\npwd\r\nnext", &L, 0),
            Frame::Complete { len: 29 }
        );
        assert_eq!(
            frame(b"a APPEND x {11}\r\n", &L, 0),
            Frame::TooBig {
                sync: true,
                tag: "a".into()
            }
        );
        assert_eq!(frame(&[b'x'; 2000], &L, 0), Frame::LineTooLong);
        // The command's total: lines and literals together.
        let small = Limits {
            max_line: 1000,
            max_literal: 10,
            max_command: 30,
        };
        assert_eq!(
            frame(b"a X {8+}\r\n12345678 {8}\r\n", &small, 0),
            Frame::TooBig {
                sync: true,
                tag: "a".into()
            }
        );
        assert_eq!(
            frame(b"a X {8+}\r\n12345678 {4}\r\n", &small, 0),
            Frame::Incomplete { continuation: true }
        );
        assert_eq!(frame(&[b'x'; 31], &small, 0), Frame::LineTooLong);
        assert_eq!(
            frame(b"a X {8+}\r\n12345678 xxxxxxxxxx\r\n", &small, 0),
            Frame::LineTooLong
        );
    }

    #[test]
    fn values() {
        let mut r = Reader::new(b"\"a \\\"q\\\" b\" {3}\r\nxyz (\\Seen $Junk) NIL atom");
        assert_eq!(r.astring().unwrap(), b"a \"q\" b");
        r.space().unwrap();
        assert_eq!(r.astring().unwrap(), b"xyz");
        r.space().unwrap();
        assert_eq!(
            r.value().unwrap(),
            Value::List(vec![
                Value::Atom("\\Seen".into()),
                Value::Atom("$Junk".into())
            ])
        );
        r.space().unwrap();
        assert_eq!(r.value().unwrap(), Value::Nil);
        r.space().unwrap();
        assert_eq!(r.atom().unwrap(), "atom");
        assert!(r.at_end());
        let mut r = Reader::new("\"Entwürfe\"".as_bytes());
        assert_eq!(r.astring_text().unwrap(), "Entwürfe");
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |n: usize| format!("{}{}", "(".repeat(n), ")".repeat(n));
        assert!(Reader::new(nested(64).as_bytes()).value().is_ok());
        assert!(Reader::new(nested(65).as_bytes()).value().is_err());
        // Far deeper than a thread's stack could hold one frame per level.
        assert!(Reader::new("(".repeat(60_000).as_bytes()).value().is_err());
        assert!(Reader::new(nested(60_000).as_bytes()).value().is_err());
    }

    #[test]
    fn fetch_items_and_sets() {
        let mut r = Reader::new(b"BODY.PEEK[HEADER.FIELDS (To From)]<0.100> FLAGS");
        assert_eq!(
            r.fetch_item().unwrap(),
            "BODY.PEEK[HEADER.FIELDS (To From)]<0.100>"
        );
        assert_eq!(
            sequence_set("1:3,7,9:*").unwrap(),
            vec![(1, 3), (7, 7), (9, u32::MAX)]
        );
        assert_eq!(sequence_set("5:2").unwrap(), vec![(2, 5)]);
        assert!(sequence_set("0").is_err());
        assert!(sequence_set("a").is_err());
    }
}
