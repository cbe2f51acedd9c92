//! SMTP command lines (RFC 5321 section 4.1) parsed without copying: every argument borrows
//! from the line in the read buffer.

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Ehlo(&'a str),
    Helo(&'a str),
    Mail {
        from: Path<'a>,
        params: MailParams,
    },
    Rcpt {
        to: Path<'a>,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    /// AUTH mechanism [initial-response] (RFC 4954).
    Auth {
        mechanism: &'a str,
        initial: Option<&'a str>,
    },
    /// Known verbs this server does not offer (TURN, ETRN, ...).
    NotImplemented,
}

/// A reverse-path or forward-path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path<'a> {
    /// `<>`: the null reverse-path of bounces.
    Null,
    /// `local@domain`, with any source route removed. RCPT may also carry a bare
    /// `postmaster` (RFC 5321 section 4.5.1).
    Address(&'a str),
}

/// ESMTP parameters of MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body_8bit: bool,
    pub smtputf8: bool,
}

/// Why a command line was not understood; each maps to one SMTP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Unknown verb, or an empty line: 500 5.5.2.
    Unrecognized,
    /// Arguments missing, extra or malformed: 501 5.5.4.
    Syntax,
    /// The recipient path is not an address: 501 5.1.3.
    BadAddress,
    /// The sender path is not an address: 501 5.1.7.
    BadSenderAddress,
    /// An ESMTP parameter this server does not support: 555 5.5.4.
    BadParam,
}

/// Longest address accepted (RFC 5321 section 4.5.3.1.3: 256 octets for a path).
const MAX_ADDRESS: usize = 254;

/// Parses one command line, given without its line ending.
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::Syntax)?;
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, rest.trim()),
        None => (line, ""),
    };
    let no_args = |cmd: Command<'static>| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax)
        }
    };
    // Upper-case the verb on the stack: no allocation per command.
    let mut upper = [0u8; 8];
    let verb = verb.as_bytes();
    if verb.len() > upper.len() {
        return Err(CommandError::Unrecognized);
    }
    for (dst, src) in upper.iter_mut().zip(verb) {
        *dst = src.to_ascii_uppercase();
    }
    match &upper[..verb.len()] {
        b"EHLO" => domain_arg(rest).map(Command::Ehlo),
        b"HELO" => domain_arg(rest).map(Command::Helo),
        b"MAIL" => parse_mail(rest),
        b"RCPT" => parse_rcpt(rest),
        b"DATA" => no_args(Command::Data),
        b"BDAT" => parse_bdat(rest),
        b"RSET" => no_args(Command::Rset),
        // NOOP and HELP may carry an argument, which is ignored.
        b"NOOP" => Ok(Command::Noop),
        b"HELP" => Ok(Command::Help),
        b"QUIT" => no_args(Command::Quit),
        b"VRFY" if !rest.is_empty() => Ok(Command::Vrfy),
        b"VRFY" => Err(CommandError::Syntax),
        b"EXPN" => Ok(Command::Expn),
        b"STARTTLS" => no_args(Command::StartTls),
        b"AUTH" => parse_auth(rest),
        b"TURN" | b"ETRN" | b"ATRN" | b"SEND" | b"SOML" | b"SAML" => Ok(Command::NotImplemented),
        _ => Err(CommandError::Unrecognized),
    }
}

fn domain_arg(rest: &str) -> Result<&str, CommandError> {
    // EHLO takes one domain or address literal; tolerate trailing words as many servers do.
    let name = rest
        .split_ascii_whitespace()
        .next()
        .ok_or(CommandError::Syntax)?;
    if name.bytes().any(|b| b.is_ascii_control()) {
        return Err(CommandError::Syntax);
    }
    Ok(name)
}

/// Splits `FROM:<path> params` after the given keyword ("FROM:" / "TO:").
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), CommandError> {
    // `get` rather than indexing: the keyword's length may fall inside a multi-byte
    // character of what the client sent ("FROMé:").
    let rest = match (rest.get(..keyword.len()), rest.get(keyword.len()..)) {
        (Some(head), Some(tail)) if head.eq_ignore_ascii_case(keyword) => tail.trim_start(),
        _ => return Err(CommandError::Syntax),
    };
    if let Some(inner) = rest.strip_prefix('<') {
        let (path, params) = inner.split_once('>').ok_or(CommandError::BadAddress)?;
        Ok((path, params.trim()))
    } else {
        // Tolerate a path without angle brackets, as Postfix does.
        match rest.split_once(' ') {
            Some((path, params)) => Ok((path, params.trim())),
            None => Ok((rest, "")),
        }
    }
}

/// Validates the mailbox inside a path and removes an obsolete source route.
fn parse_path(raw: &str) -> Result<Path<'_>, CommandError> {
    if raw.is_empty() {
        return Ok(Path::Null);
    }
    // "@a,@b:user@domain": the source route is ignored (RFC 5321 section 4.1.2).
    let mailbox = if raw.starts_with('@') {
        let (_route, mailbox) = raw.split_once(':').ok_or(CommandError::BadAddress)?;
        mailbox
    } else {
        raw
    };
    if mailbox.len() > MAX_ADDRESS || mailbox.bytes().any(|b| b.is_ascii_control()) {
        return Err(CommandError::BadAddress);
    }
    if mailbox.eq_ignore_ascii_case("postmaster") {
        return Ok(Path::Address(mailbox));
    }
    let (local, domain) = mailbox.rsplit_once('@').ok_or(CommandError::BadAddress)?;
    let local_ok = if let Some(quoted) = local.strip_prefix('"') {
        quoted.ends_with('"') && quoted.len() >= 2
    } else {
        !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && !local.contains(|c: char| c == ' ' || "<>()[]\\,;:@\"".contains(c))
    };
    let domain_ok = if domain.starts_with('[') {
        domain.ends_with(']')
    } else {
        !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
            })
    };
    if local_ok && domain_ok {
        Ok(Path::Address(mailbox))
    } else {
        Err(CommandError::BadAddress)
    }
}

fn parse_mail(rest: &str) -> Result<Command<'_>, CommandError> {
    let (raw, params_text) = split_path(rest, "FROM:").map_err(|e| match e {
        CommandError::BadAddress => CommandError::BadSenderAddress,
        e => e,
    })?;
    let from = parse_path(raw).map_err(|_| CommandError::BadSenderAddress)?;
    if matches!(from, Path::Address(a) if !a.contains('@')) {
        return Err(CommandError::BadSenderAddress);
    }
    let mut params = MailParams::default();
    for param in params_text.split_ascii_whitespace() {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (param, None),
        };
        match (key, value) {
            (k, Some(v)) if k.eq_ignore_ascii_case("SIZE") => {
                params.size = Some(v.parse().map_err(|_| CommandError::Syntax)?);
            }
            (k, Some(v)) if k.eq_ignore_ascii_case("BODY") && v.eq_ignore_ascii_case("7BIT") => {
                params.body_8bit = false
            }
            (k, Some(v))
                if k.eq_ignore_ascii_case("BODY") && v.eq_ignore_ascii_case("8BITMIME") =>
            {
                params.body_8bit = true
            }
            (k, None) if k.eq_ignore_ascii_case("SMTPUTF8") => params.smtputf8 = true,
            _ => return Err(CommandError::BadParam),
        }
    }
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &str) -> Result<Command<'_>, CommandError> {
    let (raw, params_text) = split_path(rest, "TO:")?;
    let to = match parse_path(raw)? {
        Path::Null => return Err(CommandError::BadAddress),
        path => path,
    };
    if !params_text.is_empty() {
        return Err(CommandError::BadParam);
    }
    Ok(Command::Rcpt { to })
}

fn parse_auth(rest: &str) -> Result<Command<'_>, CommandError> {
    let mut words = rest.split_ascii_whitespace();
    let mechanism = words.next().ok_or(CommandError::Syntax)?;
    let initial = words.next();
    if words.next().is_some() {
        return Err(CommandError::Syntax);
    }
    Ok(Command::Auth { mechanism, initial })
}

fn parse_bdat(rest: &str) -> Result<Command<'_>, CommandError> {
    let mut words = rest.split_ascii_whitespace();
    let size = words
        .next()
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(CommandError::Syntax)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax);
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command<'_>, CommandError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            p("ehlo client.example"),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(p("HeLo x"), Ok(Command::Helo("x")));
        assert_eq!(p("quit"), Ok(Command::Quit));
        assert_eq!(p("NOOP anything"), Ok(Command::Noop));
    }

    #[test]
    fn ehlo_needs_a_domain() {
        assert_eq!(p("EHLO"), Err(CommandError::Syntax));
        assert_eq!(p("EHLO "), Err(CommandError::Syntax));
    }

    #[test]
    fn mail_from_with_parameters() {
        assert_eq!(
            p("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8"),
            Ok(Command::Mail {
                from: Path::Address("a@b.example"),
                params: MailParams {
                    size: Some(1000),
                    body_8bit: true,
                    smtputf8: true
                }
            })
        );
        assert_eq!(
            p("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: Path::Null,
                params: MailParams::default()
            })
        );
        assert_eq!(
            p("mail from: <a@b.example>"),
            Ok(Command::Mail {
                from: Path::Address("a@b.example"),
                params: MailParams::default()
            })
        );
    }

    #[test]
    fn mail_from_errors() {
        assert_eq!(p("MAIL <a@b>"), Err(CommandError::Syntax));
        assert_eq!(p("MAIL FROM:<a@b> SIZE=x"), Err(CommandError::Syntax));
        assert_eq!(
            p("MAIL FROM:<a@b> BODY=BINARYMIME"),
            Err(CommandError::BadParam)
        );
        assert_eq!(p("MAIL FROM:<a@b> FOO=1"), Err(CommandError::BadParam));
        assert_eq!(
            p("MAIL FROM:<not an address>"),
            Err(CommandError::BadSenderAddress)
        );
        assert_eq!(p("MAIL FROM:<a@b"), Err(CommandError::BadSenderAddress));
        assert_eq!(
            p("MAIL FROM:<postmaster>"),
            Err(CommandError::BadSenderAddress)
        );
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(
            p("RCPT TO:<bob@example.test>"),
            Ok(Command::Rcpt {
                to: Path::Address("bob@example.test")
            })
        );
        assert_eq!(
            p("RCPT TO:<@relay.example:bob@example.test>"),
            Ok(Command::Rcpt {
                to: Path::Address("bob@example.test")
            })
        );
        assert_eq!(
            p("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt {
                to: Path::Address("Postmaster")
            })
        );
        assert_eq!(p("RCPT TO:<>"), Err(CommandError::BadAddress));
        assert_eq!(p("RCPT TO:<a@b> NOTIFY=NEVER"), Err(CommandError::BadParam));
        assert_eq!(
            p("RCPT TO:<a..b@example.test>"),
            Err(CommandError::BadAddress)
        );
        assert_eq!(p("RCPT TO:<a@-bad.example>"), Err(CommandError::BadAddress));
        assert_eq!(p("RCPT TO:<a@ex..ample>"), Err(CommandError::BadAddress));
        assert_eq!(p("RCPT FROM:<a@b>"), Err(CommandError::Syntax));
    }

    #[test]
    fn non_ascii_addresses_parse_for_smtputf8() {
        assert_eq!(
            p("RCPT TO:<jöran@bücher.example>"),
            Ok(Command::Rcpt {
                to: Path::Address("jöran@bücher.example")
            })
        );
    }

    #[test]
    fn bdat() {
        assert_eq!(
            p("BDAT 100"),
            Ok(Command::Bdat {
                size: 100,
                last: false
            })
        );
        assert_eq!(
            p("BDAT 0 LAST"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert_eq!(p("BDAT"), Err(CommandError::Syntax));
        assert_eq!(p("BDAT x"), Err(CommandError::Syntax));
        assert_eq!(p("BDAT 1 FIRST"), Err(CommandError::Syntax));
    }

    #[test]
    fn unknown_and_garbage() {
        assert_eq!(p(""), Err(CommandError::Unrecognized));
        assert_eq!(p("FOO bar"), Err(CommandError::Unrecognized));
        assert_eq!(parse_command(b"MAIL \xff\xfe"), Err(CommandError::Syntax));
        assert_eq!(p("DATA now"), Err(CommandError::Syntax));
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(p("STARTTLS now"), Err(CommandError::Syntax));
        assert_eq!(
            p("AUTH PLAIN AGFsaWNlAHB3"),
            Ok(Command::Auth {
                mechanism: "PLAIN",
                initial: Some("AGFsaWNlAHB3")
            })
        );
        assert_eq!(
            p("auth login"),
            Ok(Command::Auth {
                mechanism: "login",
                initial: None
            })
        );
        assert_eq!(p("AUTH"), Err(CommandError::Syntax));
        assert_eq!(p("TURN"), Ok(Command::NotImplemented));
        assert_eq!(p("VRFY"), Err(CommandError::Syntax));
        assert_eq!(p("VRFY alice"), Ok(Command::Vrfy));
    }

    /// A multi-byte character where a keyword or separator is expected is a syntax error,
    /// never a slice inside the character (that panicked the connection's task).
    #[test]
    fn non_ascii_where_a_keyword_is_expected() {
        assert_eq!(p("MAIL FROMé:<a@b.test>"), Err(CommandError::Syntax));
        assert_eq!(p("MAIL FRé"), Err(CommandError::Syntax));
        assert_eq!(p("RCPT TOé:<a@b.test>"), Err(CommandError::Syntax));
        assert_eq!(p("RCPT é"), Err(CommandError::Syntax));
        assert_eq!(p("MAIL ééééé"), Err(CommandError::Syntax));
        assert_eq!(
            p("MAIL FROM:<a@b.test> SIZEé=1"),
            Err(CommandError::BadParam)
        );
        // Every prefix of lines full of multi-byte characters parses without a panic.
        for line in [
            "MAIL FROM:<é@é.é> SIZE=é",
            "RCPT TO:<ü@ß.test> NOTIFY=é",
            "EHLO é",
        ] {
            for end in 0..=line.len() {
                let _ = parse_command(&line.as_bytes()[..end]);
            }
        }
    }

    /// Multi-byte characters right next to the delimiters the parser splits at ('<', '>',
    /// '@', ':', '=', ' '): parsed as the same characters in ASCII would be.
    #[test]
    fn non_ascii_next_to_delimiters() {
        assert_eq!(
            p("MAIL FROM:<é@é>"),
            Ok(Command::Mail {
                from: Path::Address("é@é"),
                params: MailParams::default()
            })
        );
        assert_eq!(
            p("MAIL FROM:é@é.test SIZE=1"),
            Ok(Command::Mail {
                from: Path::Address("é@é.test"),
                params: MailParams {
                    size: Some(1),
                    ..MailParams::default()
                }
            })
        );
        assert_eq!(
            p("RCPT TO:<@é.test:ü@é.test>"),
            Ok(Command::Rcpt {
                to: Path::Address("ü@é.test")
            })
        );
        assert_eq!(p("RCPT TO:<@é.test>"), Err(CommandError::BadAddress));
        assert_eq!(p("RCPT TO:<é@é>é"), Err(CommandError::BadParam));
        assert_eq!(p("RCPT TO:<éé"), Err(CommandError::BadAddress));
        assert_eq!(p("MAIL FROM:<a@b.test> SIZE=é"), Err(CommandError::Syntax));
        assert_eq!(p("MAIL FROM:<a@b.test> é=é"), Err(CommandError::BadParam));
        assert_eq!(p("é é"), Err(CommandError::Unrecognized));
        assert_eq!(p("EHLO\u{a0}é"), Err(CommandError::Unrecognized));
    }
}
