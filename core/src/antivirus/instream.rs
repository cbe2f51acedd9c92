//! clamd's `INSTREAM` command without I/O: the bytes that ask for a scan, and the verdict
//! in clamd's reply.
//!
//! The request is `zINSTREAM\0`, then the message in chunks, each preceded by its length
//! as 4 bytes big-endian, then a zero length. clamd answers one line ended by `\0` (the
//! `z` form) and closes the connection:
//!
//! * `stream: OK`: nothing found;
//! * `stream: Eicar-Test-Signature.UNOFFICIAL FOUND`: the name of what was found;
//! * `stream: ... ERROR`, `INSTREAM size limit exceeded. ERROR` (past clamd's
//!   `StreamMaxLength`), `UNKNOWN COMMAND`: no verdict.

/// The command, in its `\0`-terminated form.
pub const COMMAND: &[u8] = b"zINSTREAM\0";

/// The largest chunk sent: clamd reads each into a buffer of that size.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// The zero length that ends the stream.
pub const END: [u8; 4] = [0; 4];

/// Replies longer than this are not clamd's (a verdict line is a virus name long).
pub const MAX_REPLY: usize = 4096;

/// What clamd says of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// The signature's name, as clamd reports it (`Eicar-Test-Signature.UNOFFICIAL`),
    /// kept to printable ASCII.
    Infected(String),
    /// No verdict: clamd's error, or why there was no usable reply.
    Error(String),
}

impl Verdict {
    pub fn is_infected(&self) -> bool {
        matches!(self, Verdict::Infected(_))
    }
}

/// The length prefix of a chunk of `len` bytes (at most [`CHUNK_SIZE`]).
pub fn chunk_header(len: usize) -> [u8; 4] {
    debug_assert!(len <= CHUNK_SIZE);
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// The message in chunks of at most [`CHUNK_SIZE`], each with its length prefix; the
/// caller sends [`COMMAND`] before and [`END`] after.
pub fn chunks(message: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    message
        .chunks(CHUNK_SIZE)
        .map(|chunk| (chunk_header(chunk.len()), chunk))
}

/// The whole request in one buffer (for small messages and tests; the client streams).
pub fn request(message: &[u8]) -> Vec<u8> {
    let chunk_count = message.len().div_ceil(CHUNK_SIZE);
    let mut out = Vec::with_capacity(COMMAND.len() + message.len() + 4 * chunk_count + 4);
    out.extend_from_slice(COMMAND);
    for (header, chunk) in chunks(message) {
        out.extend_from_slice(&header);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&END);
    out
}

/// The length of the reply in `received` if it is complete (ended by `\0`).
pub fn reply_end(received: &[u8]) -> Option<usize> {
    memchr::memchr(0, received)
}

/// The verdict in clamd's reply (with or without its `\0` or a line end).
pub fn parse_reply(reply: &[u8]) -> Verdict {
    let reply = reply.strip_suffix(b"\0").unwrap_or(reply);
    let text = printable(reply);
    let text = text.trim();
    if text.is_empty() {
        return Verdict::Error("clamd sent an empty reply".into());
    }
    if text.ends_with("ERROR") {
        return Verdict::Error(format!("clamd: {text}"));
    }
    // `stream:` is what clamd calls a scanned stream; an IDSESSION would put a number in
    // front (`1: stream: OK`), which this client never asks for.
    let Some(result) = text.strip_prefix("stream:").map(str::trim) else {
        return Verdict::Error(format!("unexpected reply from clamd: {text:?}"));
    };
    if result == "OK" {
        return Verdict::Clean;
    }
    match result.strip_suffix("FOUND").map(str::trim) {
        Some(name) if !name.is_empty() => Verdict::Infected(name.to_string()),
        _ => Verdict::Error(format!("unexpected reply from clamd: {text:?}")),
    }
}

/// `bytes` with anything but printable ASCII and space as `?`: the reply may end up in a
/// log line, a header or an SMTP reply.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else if b == b'\r' || b == b'\n' {
                ' '
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a request back into its chunks, checking the framing on the way.
    fn unframe(request: &[u8]) -> Vec<Vec<u8>> {
        let mut rest = request.strip_prefix(COMMAND).expect("command first");
        let mut out = Vec::new();
        loop {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            if len == 0 {
                assert!(tail.is_empty(), "nothing after the zero length");
                return out;
            }
            assert!(len <= CHUNK_SIZE);
            let (chunk, tail) = tail.split_at(len);
            out.push(chunk.to_vec());
            rest = tail;
        }
    }

    #[test]
    fn a_small_message_is_one_chunk_then_the_end() {
        let request = request(b"hello");
        assert_eq!(request, b"zINSTREAM\0\0\0\0\x05hello\0\0\0\0");
        assert_eq!(unframe(&request), vec![b"hello".to_vec()]);
    }

    #[test]
    fn an_empty_message_is_only_the_end() {
        assert_eq!(request(b""), b"zINSTREAM\0\0\0\0\0");
        assert!(unframe(&request(b"")).is_empty());
    }

    #[test]
    fn a_large_message_is_cut_into_bounded_chunks() {
        let message: Vec<u8> = (0..CHUNK_SIZE * 2 + 100).map(|i| (i % 251) as u8).collect();
        let chunks = unframe(&request(&message));
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [CHUNK_SIZE, CHUNK_SIZE, 100]
        );
        assert_eq!(chunks.concat(), message);
        assert_eq!(chunk_header(CHUNK_SIZE), [0, 1, 0, 0]);
        // Exactly a multiple of the chunk size: no empty chunk before the end.
        assert_eq!(unframe(&request(&vec![7; CHUNK_SIZE])).len(), 1);
    }

    #[test]
    fn clean() {
        assert_eq!(parse_reply(b"stream: OK\0"), Verdict::Clean);
        assert_eq!(parse_reply(b"stream: OK\n"), Verdict::Clean);
    }

    #[test]
    fn infected() {
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0"),
            Verdict::Infected("Eicar-Test-Signature.UNOFFICIAL".into())
        );
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\n"),
            Verdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        // Whatever clamd says ends up printable.
        assert_eq!(
            parse_reply(b"stream: Bad\x01\xffName FOUND\0"),
            Verdict::Infected("Bad??Name".into())
        );
        assert!(parse_reply(b"stream: X FOUND").is_infected());
    }

    #[test]
    fn errors() {
        for reply in [
            &b"INSTREAM size limit exceeded. ERROR\0"[..],
            b"stream: Can't allocate memory ERROR\0",
            b"stream: ERROR\0",
        ] {
            match parse_reply(reply) {
                Verdict::Error(why) => assert!(why.contains("ERROR"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Verdict::Error("clamd: INSTREAM size limit exceeded. ERROR".into())
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        for reply in [
            &b""[..],
            b"\0",
            b"UNKNOWN COMMAND\0",
            b"PONG\0",
            b"stream: FOUND\0",
            b"stream: something else\0",
            b"OK\0",
            b"\xff\xfe\0",
        ] {
            assert!(
                matches!(parse_reply(reply), Verdict::Error(_)),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn the_reply_ends_at_its_nul() {
        assert_eq!(reply_end(b"stream: OK"), None);
        assert_eq!(reply_end(b"stream: OK\0"), Some(10));
    }
}
