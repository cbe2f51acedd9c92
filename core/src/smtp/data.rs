//! The DATA stream: finding the end of data and dot-unstuffing in place (RFC 5321 4.5.2).
//!
//! The message is unstuffed inside the read buffer itself: bytes are moved left over the
//! removed dots (only when a line was dot-stuffed), so no line is ever copied elsewhere.
//!
//! Only `<CRLF>.<CRLF>` ends a message. A bare LF or a bare CR is *not* a line ending, so
//! `<LF>.<LF>`, `<CR>.<CR>` and `<LF>.<CRLF>` never end data (the "SMTP smuggling" attack);
//! the reader notes that the message contained one, and the session refuses such a message
//! with 554 5.6.0 once its real end has arrived.

use memchr::memchr2;

/// Progress of a [`DotReader`] over the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotScan {
    /// Every complete byte was consumed; more input is needed.
    NeedMore,
    /// The end-of-data line was found; the bytes after it start at this offset.
    End { next: usize },
}

/// Scans a DATA stream in `buf[read..]`, writing the unstuffed message to `buf[..write]`.
#[derive(Debug, Clone)]
pub struct DotReader {
    /// End of the unstuffed message written so far.
    pub write: usize,
    /// First byte not yet scanned.
    pub read: usize,
    /// Bytes of message content seen, including any discarded for size.
    pub total: u64,
    at_line_start: bool,
    bare_line_ending: bool,
    limit: Option<usize>,
    overflowed: bool,
}

impl DotReader {
    /// Starts a reader whose message begins at `write` and whose unread input begins at
    /// `read` (`write <= read`). Content beyond `limit` bytes of output is discarded.
    pub fn new(write: usize, read: usize, limit: Option<usize>) -> Self {
        debug_assert!(write <= read);
        DotReader {
            write,
            read,
            total: 0,
            at_line_start: true,
            bare_line_ending: false,
            limit,
            overflowed: false,
        }
    }

    /// A bare CR or LF was seen in the message.
    pub fn saw_bare_line_ending(&self) -> bool {
        self.bare_line_ending
    }

    /// The message outgrew the limit; its content was discarded.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes after `write` and before `read` are garbage (removed dots, discarded content);
    /// the caller may drop them before reading more.
    pub fn compact(&mut self, buf: &mut Vec<u8>) {
        if self.write < self.read {
            buf.drain(self.write..self.read);
            self.read = self.write;
        }
    }

    /// Consumes as much of `buf[self.read..]` as can be decided now.
    pub fn advance(&mut self, buf: &mut [u8]) -> DotScan {
        let len = buf.len();
        loop {
            if self.read >= len {
                return DotScan::NeedMore;
            }
            if self.at_line_start {
                if buf[self.read] == b'.' {
                    // Need up to two more bytes to tell "." CRLF from a stuffed dot.
                    match (buf.get(self.read + 1), buf.get(self.read + 2)) {
                        (None, _) | (Some(b'\r'), None) => return DotScan::NeedMore,
                        (Some(b'\r'), Some(b'\n')) => {
                            return DotScan::End {
                                next: self.read + 3,
                            }
                        }
                        // A stuffed line: drop its leading dot.
                        _ => self.read += 1,
                    }
                }
                self.at_line_start = false;
                continue;
            }
            let rest = &buf[self.read..];
            match memchr2(b'\r', b'\n', rest) {
                None => {
                    self.emit(buf, self.read + rest.len());
                    return DotScan::NeedMore;
                }
                Some(i) => {
                    let at = self.read + i;
                    if buf[at] == b'\n' {
                        // A bare LF is content, not a line ending.
                        self.bare_line_ending = true;
                        self.emit(buf, at + 1);
                    } else {
                        match buf.get(at + 1) {
                            None => {
                                // Keep the CR unscanned until the next byte arrives.
                                self.emit(buf, at);
                                return DotScan::NeedMore;
                            }
                            Some(b'\n') => {
                                self.emit(buf, at + 2);
                                self.at_line_start = true;
                            }
                            Some(_) => {
                                self.bare_line_ending = true;
                                self.emit(buf, at + 1);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Moves `buf[self.read..end]` to the write position and advances both cursors.
    fn emit(&mut self, buf: &mut [u8], end: usize) {
        let n = end - self.read;
        self.total += n as u64;
        if self.limit.is_some_and(|limit| self.total > limit as u64) {
            // Over the limit: keep scanning for the end, but keep none of the content.
            self.overflowed = true;
            self.read = end;
            return;
        }
        if self.write != self.read {
            buf.copy_within(self.read..end, self.write);
        }
        self.write += n;
        self.read = end;
    }
}

/// True when `data` has a CR not followed by LF or an LF not preceded by CR.
pub fn has_bare_cr_or_lf(data: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = memchr2(b'\r', b'\n', &data[from..]) {
        let at = from + i;
        if data[at] == b'\n' {
            return true;
        }
        if data.get(at + 1) != Some(&b'\n') {
            return true;
        }
        from = at + 2;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `step` bytes, as a socket would, and returns the message,
    /// whether a bare line ending was seen, and the bytes left after the end.
    fn run(input: &[u8], step: usize) -> Option<(Vec<u8>, bool, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut reader = DotReader::new(0, 0, None);
        let mut fed = 0;
        while fed < input.len() {
            let end = (fed + step.max(1)).min(input.len());
            reader.compact(&mut buf);
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            if let DotScan::End { next } = reader.advance(&mut buf) {
                let mut rest = buf[next..].to_vec();
                rest.extend_from_slice(&input[fed..]);
                let message = buf[..reader.write].to_vec();
                return Some((message, reader.saw_bare_line_ending(), rest));
            }
        }
        None
    }

    #[test]
    fn plain_message_ends_at_crlf_dot_crlf() {
        for step in [1, 2, 3, 7, 100] {
            let (msg, bare, rest) = run(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", step).unwrap();
            assert_eq!(msg, b"Subject: x\r\n\r\nhello\r\n", "step {step}");
            assert!(!bare);
            assert_eq!(rest, b"QUIT\r\n");
        }
    }

    #[test]
    fn empty_message() {
        let (msg, _, rest) = run(b".\r\n", 1).unwrap();
        assert!(msg.is_empty());
        assert!(rest.is_empty());
    }

    #[test]
    fn dot_stuffed_lines_are_unstuffed() {
        for step in [1, 2, 5, 64] {
            let (msg, _, _) = run(b"..leading dot\r\n...two\r\n.\r\n.\r\n", step).unwrap();
            assert_eq!(msg, b".leading dot\r\n..two\r\n", "step {step}");
        }
        // A stuffed line consisting of one dot.
        let (msg, _, _) = run(b"a\r\n..\r\nb\r\n.\r\n", 1).unwrap();
        assert_eq!(msg, b"a\r\n.\r\nb\r\n");
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for bad in [
            &b"hi\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"hi\r.\rMAIL FROM:<x@y>\r\n",
            b"hi\n.\r\nMAIL FROM:<x@y>\r\n",
            b"hi\r\n.\nMAIL FROM:<x@y>\r\n",
            b"hi\r\n.\rMAIL FROM:<x@y>\r\n",
        ] {
            for step in [1, 3, 100] {
                assert!(
                    run(bad, step).is_none(),
                    "{:?} ended data",
                    String::from_utf8_lossy(bad)
                );
            }
            // With the real end appended, the whole thing is one message with a bare ending.
            let mut full = bad.to_vec();
            full.extend_from_slice(b".\r\n");
            let (msg, bare, _) = run(&full, 2).unwrap();
            assert!(bare);
            assert!(msg.ends_with(b"MAIL FROM:<x@y>\r\n"));
        }
    }

    #[test]
    fn limit_discards_content_but_finds_the_end() {
        let mut buf = b"0123456789\r\n0123456789\r\n.\r\nNEXT".to_vec();
        let mut reader = DotReader::new(0, 0, Some(10));
        let end = reader.advance(&mut buf);
        assert_eq!(end, DotScan::End { next: 27 });
        assert!(reader.overflowed());
        assert_eq!(&buf[27..], b"NEXT");
    }

    #[test]
    fn compaction_drops_garbage_between_write_and_read() {
        let mut buf = b"..ab".to_vec();
        let mut reader = DotReader::new(0, 0, None);
        assert_eq!(reader.advance(&mut buf), DotScan::NeedMore);
        reader.compact(&mut buf);
        assert_eq!(buf, b".ab");
        buf.extend_from_slice(b"\r\n.\r\n");
        assert!(matches!(reader.advance(&mut buf), DotScan::End { .. }));
        assert_eq!(&buf[..reader.write], b".ab\r\n");
    }

    #[test]
    fn bare_endings_detected() {
        assert!(!has_bare_cr_or_lf(b"a\r\nb\r\n"));
        assert!(has_bare_cr_or_lf(b"a\nb\r\n"));
        assert!(has_bare_cr_or_lf(b"a\rb\r\n"));
        assert!(has_bare_cr_or_lf(b"a\r"));
        assert!(!has_bare_cr_or_lf(b""));
    }
}
