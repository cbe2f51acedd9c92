#!/usr/bin/env python3
"""IMAP compliance checks against RFC 9051 sections 6 and 7 (issue #18).

Also RFC 5256 (SORT/THREAD), RFC 7162 (CONDSTORE/QRESYNC), RFC 6154 (CREATE USE),
RFC 5258/5819 (LIST-EXTENDED, LIST-STATUS), RFC 4731 (ESEARCH), RFC 3516 (BINARY),
RFC 4315 (UIDPLUS), RFC 6851 (MOVE) and IMAP4rev1 \\Recent (RFC 3501).

Python 3 standard library only. Raw protocol over one socket per session, so every
untagged response is seen. Each check is a small scenario with its own mailboxes
(named cmp-<check>...), removed before and after it runs, so checks are independent and
the script can run twice on one account. Checks needing a capability the server does not
advertise are SKIPped. Where the RFC allows several answers, all are accepted (comments
say which).

usage: imap-compliance.py --host H --port P --user U --password PW
           [--user2 U2 --password2 PW2] [--tls] [--only REGEX] [--skip REGEX]
Exit status: the number of failed checks (at most 100).
"""

import argparse
import base64
import re
import socket
import ssl
import sys
import time

TIMEOUT = 15


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Resp:
    """A tagged command's result: the untagged lines and the tagged line."""

    def __init__(self, untagged, tagged):
        self.untagged = untagged
        self.tagged = tagged
        m = re.match(r"\S+ (OK|NO|BAD)\b ?(.*)", tagged, re.S)
        self.status = m.group(1).upper() if m else "?"
        rest = m.group(2) if m else ""
        c = re.match(r"\[([^\]]*)\]", rest)
        self.code = c.group(1) if c else ""

    def ok(self):
        return self.status == "OK"

    def find(self, regex):
        """Untagged lines matching regex (case-insensitive, from the line's start)."""
        return [u for u in self.untagged if re.match(regex, u, re.I | re.S)]


class Conn:
    def __init__(self, ctx, login=True, user=None, password=None):
        self.ctx = ctx
        o = ctx.opts
        raw = socket.create_connection((o.host, o.port), timeout=TIMEOUT)
        if o.tls:
            tc = ssl.create_default_context()
            tc.check_hostname = False
            tc.verify_mode = ssl.CERT_NONE
            raw = tc.wrap_socket(raw, server_hostname=o.host)
        self.sock = raw
        self.buf = b""
        self.n = 0
        self.greeting = self.readline()
        ctx.log("S: " + self.greeting)
        self.delim = None
        if login:
            r = self.cmd("LOGIN %s %s" % (quote(user or o.user), quote(password or o.password)))
            if not r.ok():
                raise Fail("LOGIN failed: " + r.tagged)

    def _fill(self):
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise Fail("timeout waiting for the server")
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _rawline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def readline(self):
        """One response line, literals inlined as {n}\\r\\n<data> (latin-1 text)."""
        out = b""
        while True:
            line = self._rawline()
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}$", line)
            if not m:
                return out.decode("latin-1")
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def tag(self):
        self.n += 1
        return "c%d" % self.n

    def cmd(self, text, literal=None, tail="", plus=False, tag=None):
        """Sends `tag text` (and, with literal, ` {n}` CRLF, the literal, tail); waits for
        the tagged response. Continuation requests are only honoured for the literal."""
        tag = tag or self.tag()
        lines = []
        if literal is None:
            self.ctx.log("C: %s %s" % (tag, text))
            self.send("%s %s\r\n" % (tag, text))
        else:
            if isinstance(literal, str):
                literal = literal.encode("latin-1")
            head = "%s %s {%d%s}" % (tag, text, len(literal), "+" if plus else "")
            self.ctx.log("C: %s <%d octets>%s" % (head, len(literal), tail))
            self.send(head + "\r\n")
            if not plus:
                while True:
                    line = self.readline()
                    self.ctx.log("S: " + line)
                    if line.startswith("+"):
                        break
                    if line.startswith(tag + " "):
                        return Resp(lines, line)
                    lines.append(line)
            self.send(literal + tail.encode("latin-1") + b"\r\n")
        return self.wait(tag, lines)

    def wait(self, tag, lines=None):
        lines = lines if lines is not None else []
        while True:
            line = self.readline()
            self.ctx.log("S: " + line)
            if line.startswith(tag + " "):
                return Resp(lines, line)
            lines.append(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # helpers
    def delimiter(self):
        if self.delim is None:
            r = self.cmd('LIST "" ""')
            m = r.find(r'\* LIST \([^)]*\) (NIL|"(\\?.)")')
            if not m:
                raise Fail("no LIST response to LIST \"\" \"\"")
            g = re.match(r'\* LIST \([^)]*\) (NIL|"(\\?.)")', m[0], re.I)
            self.delim = (g.group(2) or "/").replace("\\", "") if g.group(1) != "NIL" else "/"
        return self.delim

    def caps(self):
        r = self.cmd("CAPABILITY")
        c = r.find(r"\* CAPABILITY ")
        return set(c[0].upper().split()[2:]) if c else set()


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def msg(subject="hello world", frm="Alice <alice@example.test>", to="Bob <bob@example.test>",
        date="Mon, 7 Feb 1994 21:52:25 -0800", mid="<1@example.test>", body="Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n",
        extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n%sMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s" % (frm, to, subject, date, mid, extra, body))


BIN = bytes([0, 1, 2, 3, 255, 254, 13, 10, 0, 65])
MULTI = ("From: Carol <carol@example.test>\r\nTo: bob@example.test\r\nSubject: parts\r\n"
         "Date: Tue, 8 Feb 1994 10:00:00 +0000\r\nMessage-ID: <2@example.test>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
         "preamble\r\n--XYZ\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nfirst part\r\nline two\r\n"
         "--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + base64.b64encode(BIN).decode() + "\r\n--XYZ--\r\n")


def literal_of(line, item):
    """The value of FETCH item `item` (e.g. 'BODY[]<0>') in a response line: literal
    contents, quoted string, or None for NIL."""
    i = line.upper().find(item.upper() + " ")
    if i < 0:
        return None
    rest = line[i + len(item) + 1:]
    m = re.match(r"~?\{(\d+)\}\r\n", rest)
    if m:
        return rest[m.end():m.end() + int(m.group(1))]
    m = re.match(r'"((?:[^"\\]|\\.)*)"', rest)
    if m:
        return re.sub(r"\\(.)", r"\1", m.group(1))
    return None


def fetches(r):
    """{seq: line} of the untagged FETCH responses."""
    out = {}
    for u in r.find(r"\* \d+ FETCH "):
        out[int(u.split()[1])] = out.get(int(u.split()[1]), "") + u
    return out


def flags_of(line):
    m = re.search(r"FLAGS \(([^)]*)\)", line, re.I)
    return set(m.group(1).lower().split()) if m else None


def num_after(line, word):
    m = re.search(r"\b" + re.escape(word) + r" \(?(\d+)", line, re.I)
    return int(m.group(1)) if m else None


def search_nums(r):
    """Numbers of `* SEARCH` (rev1) or `* ESEARCH ... ALL set` (rev2), as a sorted list."""
    s = r.find(r"\* SEARCH\b")
    if s:
        return sorted(int(x) for x in re.sub(r"\(MODSEQ \d+\)", "", s[0]).split()[2:])
    e = r.find(r"\* ESEARCH\b")
    if e:
        m = re.search(r"\bALL ([\d:,]+)", e[0], re.I)
        return expand(m.group(1)) if m else []
    raise Fail("no SEARCH or ESEARCH response")


def expand(seqset):
    out = []
    for part in seqset.split(","):
        if ":" in part:
            a, b = sorted(int(x) for x in part.split(":"))
            out += list(range(a, b + 1))
        else:
            out.append(int(part))
    return sorted(out)


# ---------------------------------------------------------------- framework

CHECKS = []


def check(section, name, needs=()):
    """Registers a check; needs: capabilities that must all be advertised (an entry
    "A|B" is met by either)."""
    def deco(f):
        CHECKS.append((section, name, needs, f))
        return f
    return deco


class Ctx:
    def __init__(self, opts, name, caps):
        self.opts = opts
        self.name = name
        self.caps = caps
        self.transcript = []
        self.conns = []
        self.prefix = "cmp-" + name

    def log(self, line):
        # printable ASCII only: CR LF as \r\n, other octets as \xNN
        line = line.encode("latin-1", "replace").decode("latin-1").encode("unicode_escape").decode("ascii")
        if len(self.transcript) < 400:
            self.transcript.append(line if len(line) < 400 else line[:400] + "...")

    def conn(self, login=True, **kw):
        c = Conn(self, login=login, **kw)
        self.conns.append(c)
        return c

    def mb(self, c, *parts):
        return c.delimiter().join((self.prefix,) + parts)

    def need(self, cap):
        if cap.upper() not in self.caps:
            raise Skip("needs " + cap)

    def fill(self, c, mbox, messages, create=True):
        """Creates mbox and appends messages (text, or (text, flags[, date])); the APPEND results."""
        if create:
            expect_ok(c.cmd("CREATE " + quote(mbox)))
        out = []
        for m in messages:
            t = (m,) if isinstance(m, str) else tuple(m)
            text, flags, date = t + ("",) * (3 - len(t))
            r = c.cmd("APPEND %s%s%s" % (quote(mbox), " (%s)" % flags if flags else "",
                                        " " + quote(date) if date else ""), literal=text)
            expect_ok(r)
            out.append(r)
        return out

    def cleanup(self):
        c = Conn(self)
        try:
            r = c.cmd('LIST "" %s' % quote(self.prefix + "*"))
            names = []
            for u in r.find(r"\* LIST "):
                names.append(mailbox_name(u))
            for n in sorted(names, key=len, reverse=True):
                c.cmd("DELETE " + quote(n))
            r = c.cmd('LSUB "" %s' % quote(self.prefix + "*"))
            for u in r.find(r"\* LSUB "):
                c.cmd("UNSUBSCRIBE " + quote(mailbox_name(u)))
            c.cmd("LOGOUT")
        finally:
            c.close()


def mailbox_name(listline):
    m = re.match(r'\* (?:LIST|LSUB) \([^)]*\) (?:NIL|"(?:\\.|[^"])*") (.*)$', listline, re.I | re.S)
    if not m:
        raise Fail("unparsable LIST line: " + listline)
    n = m.group(1)
    n = re.sub(r" \(.*\)$", "", n)  # extended data (CHILDINFO, OLDNAME)
    if n.startswith('"'):
        return re.sub(r"\\(.)", r"\1", n[1:-1])
    lm = re.match(r"\{\d+\}\r\n(.*)", n, re.S)
    return lm.group(1) if lm else n


def list_names(r):
    return {mailbox_name(u): u for u in r.find(r"\* (?:LIST|LSUB) ")}


def expect(cond, what):
    if not cond:
        raise Fail(what)


def expect_ok(r, what="tagged OK"):
    expect(r.ok(), "expected %s, got: %s" % (what, r.tagged))
    return r


def expect_no(r, what="tagged NO"):
    expect(r.status == "NO", "expected %s, got: %s" % (what, r.tagged))
    return r


def expect_bad(r, what="tagged BAD"):
    expect(r.status == "BAD", "expected %s, got: %s" % (what, r.tagged))
    return r


def select(c, mbox, cmd="SELECT"):
    return expect_ok(c.cmd("%s %s" % (cmd, quote(mbox))), "OK to " + cmd)


def exists_of(r):
    e = r.find(r"\* \d+ EXISTS")
    return int(e[-1].split()[1]) if e else None


# ---------------------------------------------------------------- 6.1 any state

@check("6.1", "greeting")
def _(ctx):
    c = ctx.conn(login=False)
    # RFC 9051 7.1: the greeting is an untagged OK, PREAUTH or BYE; OK or PREAUTH here.
    expect(re.match(r"\* (OK|PREAUTH)\b", c.greeting, re.I), "greeting is not * OK / * PREAUTH")


@check("6.1", "capability")
def _(ctx):
    c = ctx.conn(login=False)
    r = expect_ok(c.cmd("CAPABILITY"))
    caps = r.find(r"\* CAPABILITY ")
    # 6.1.1: exactly one untagged CAPABILITY, listing IMAP4rev2 (or IMAP4rev1 for a 3501 server).
    expect(len(caps) == 1, "expected one untagged CAPABILITY")
    cs = caps[0].upper().split()
    expect("IMAP4REV2" in cs or "IMAP4REV1" in cs, "no IMAP4rev2/IMAP4rev1 in CAPABILITY")
    # 6.2.3: a server without LOGINDISABLED accepts LOGIN; AUTH=PLAIN is required in rev2.
    if "IMAP4REV2" in cs and "LOGINDISABLED" not in cs and "STARTTLS" not in cs:
        expect("AUTH=PLAIN" in cs, "IMAP4rev2 requires AUTH=PLAIN")


@check("6.1", "noop")
def _(ctx):
    c = ctx.conn(login=False)
    expect_ok(c.cmd("NOOP"))
    c2 = ctx.conn()
    expect_ok(c2.cmd("NOOP"))
    expect_ok(c2.cmd("SELECT INBOX"))
    expect_ok(c2.cmd("NOOP"))


@check("6.1", "logout")
def _(ctx):
    c = ctx.conn()
    r = expect_ok(c.cmd("LOGOUT"))
    # 6.1.3: an untagged BYE before the tagged OK, then the server closes the connection.
    expect(r.find(r"\* BYE"), "no untagged BYE before the tagged OK")
    try:
        c.readline()
        raise Fail("connection still open after LOGOUT")
    except EOFError:
        pass


# ---------------------------------------------------------------- 6.2 not authenticated

@check("6.2", "login-wrong-password")
def _(ctx):
    c = ctx.conn(login=False)
    # One failed login per run (servers lock out an address after a few: Gannet after 5 in
    # 10 minutes by default); a name that does not exist, so no real account is locked.
    r = expect_no(c.cmd("LOGIN %s %s" % (quote("cmp-no-such-user"), quote("wrong-" + ctx.opts.password))))
    # 7.1: AUTHENTICATIONFAILED is the code meant for this, but a code is optional.
    expect(r.code.upper() in ("", "AUTHENTICATIONFAILED", "UNAVAILABLE"), "unexpected code " + r.code)
    # still in not-authenticated state
    r = c.cmd("SELECT INBOX")
    expect(not r.ok(), "SELECT allowed after a failed LOGIN")


@check("6.2", "login-syntax")
def _(ctx):
    c = ctx.conn(login=False)
    expect_bad(c.cmd("LOGIN onlyoneargument"))


@check("6.2", "command-before-login")
def _(ctx):
    c = ctx.conn(login=False)
    # Not valid in this state: BAD ("command unknown or arguments invalid") or NO are seen.
    r = c.cmd("SELECT INBOX")
    expect(r.status in ("NO", "BAD"), "SELECT before login: " + r.tagged)


@check("6.2", "authenticate-plain", needs=("AUTH=PLAIN",))
def _(ctx):
    c = ctx.conn(login=False)
    tag = c.tag()
    c.send("%s AUTHENTICATE PLAIN\r\n" % tag)
    ctx.log("C: %s AUTHENTICATE PLAIN" % tag)
    line = c.readline()
    ctx.log("S: " + line)
    expect(line.startswith("+"), "no continuation request")
    tok = base64.b64encode(("\0%s\0%s" % (ctx.opts.user, ctx.opts.password)).encode()).decode()
    c.send(tok + "\r\n")
    expect_ok(c.wait(tag))
    expect_ok(c.cmd("SELECT INBOX"))


@check("6.2", "authenticate-cancel", needs=("AUTH=PLAIN",))
def _(ctx):
    c = ctx.conn(login=False)
    tag = c.tag()
    c.send("%s AUTHENTICATE PLAIN\r\n" % tag)
    ctx.log("C: %s AUTHENTICATE PLAIN" % tag)
    line = c.readline()
    ctx.log("S: " + line)
    expect(line.startswith("+"), "no continuation request")
    c.send("*\r\n")
    ctx.log("C: *")
    # 6.2.2: "If the client wishes to cancel ... the server MUST reject the AUTHENTICATE
    # command by sending a tagged BAD response."
    expect_bad(c.wait(tag))


@check("6.2", "authenticate-unknown-mechanism")
def _(ctx):
    c = ctx.conn(login=False)
    # 6.2.2: "NO - unsupported authentication mechanism".
    # (Dovecot also answers NO; BAD is for syntax.)
    expect_no(c.cmd("AUTHENTICATE X-NO-SUCH-MECHANISM"))


@check("6.2", "starttls", needs=("STARTTLS",))
def _(ctx):
    if ctx.opts.tls:
        raise Skip("already on TLS")
    c = ctx.conn(login=False)
    expect_ok(c.cmd("STARTTLS"))
    tc = ssl.create_default_context()
    tc.check_hostname = False
    tc.verify_mode = ssl.CERT_NONE
    c.sock = tc.wrap_socket(c.sock, server_hostname=ctx.opts.host)
    caps = c.caps()
    # 6.2.1: after TLS, STARTTLS is no longer offered (and a second STARTTLS fails).
    expect("STARTTLS" not in caps, "STARTTLS still advertised inside TLS")
    r = c.cmd("STARTTLS")
    expect(r.status in ("NO", "BAD"), "second STARTTLS: " + r.tagged)
    expect_ok(c.cmd("LOGIN %s %s" % (quote(ctx.opts.user), quote(ctx.opts.password))))


# ---------------------------------------------------------------- 6.3 authenticated

@check("6.3.1", "enable-condstore", needs=("CONDSTORE",))
def _(ctx):
    c = ctx.conn()
    r = expect_ok(c.cmd("ENABLE CONDSTORE"))
    expect(r.find(r"\* ENABLED .*\bCONDSTORE\b"), "no * ENABLED CONDSTORE")


@check("6.3.1", "enable-unknown", needs=("ENABLE",))
def _(ctx):
    c = ctx.conn()
    # RFC 5161: unknown extensions are ignored: OK, and not listed in ENABLED.
    r = expect_ok(c.cmd("ENABLE X-NO-SUCH-THING"))
    expect(not r.find(r"\* ENABLED .*X-NO-SUCH-THING"), "unknown extension reported as enabled")


@check("6.3.1", "enable-imap4rev2", needs=("IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    r = expect_ok(c.cmd("ENABLE IMAP4rev2"))
    expect(r.find(r"\* ENABLED .*\bIMAP4REV2\b"), "no * ENABLED IMAP4rev2")


@check("6.3.2", "select-responses")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    apps = ctx.fill(c, mb, [msg(), msg(subject="two")])
    r = select(c, mb)
    # 6.3.2 (and 3501 6.3.1): FLAGS, EXISTS, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS are required.
    expect(r.find(r"\* FLAGS \("), "no untagged FLAGS")
    expect(exists_of(r) == 2, "EXISTS is not 2")
    expect(r.find(r"\* OK \[UIDVALIDITY \d+\]"), "no OK [UIDVALIDITY]")
    nxt = r.find(r"\* OK \[UIDNEXT \d+\]")
    expect(nxt, "no OK [UIDNEXT]")
    f = c.cmd("FETCH 1:* UID")
    uids = [num_after(l, "UID") for l in fetches(f).values()]
    expect(int(re.search(r"UIDNEXT (\d+)", nxt[0]).group(1)) > max(uids), "UIDNEXT not above the UIDs")
    expect(r.find(r"\* OK \[PERMANENTFLAGS \("), "no OK [PERMANENTFLAGS]")
    expect(r.code.upper() == "READ-WRITE", "tagged OK lacks [READ-WRITE]")


@check("6.3.2", "select-rev2-list", needs=("IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    expect_ok(c.cmd("ENABLE IMAP4rev2"))
    r = select(c, mb)
    # 6.3.2: "The server MUST return a LIST response with the mailbox name"; RECENT is gone.
    expect(mb in list_names(r), "no untagged LIST for the selected mailbox")
    expect(not r.find(r"\* \d+ RECENT"), "* RECENT sent to an IMAP4rev2 client")


@check("6.3.3", "examine-read-only")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    r = select(c, mb, "EXAMINE")
    expect(r.code.upper() == "READ-ONLY", "EXAMINE's tagged OK lacks [READ-ONLY]")
    expect(exists_of(r) == 1, "EXISTS is not 1")
    # BODY[] on a read-only mailbox does not set \Seen (6.4.5).
    c.cmd("FETCH 1 BODY[]")
    f = fetches(c.cmd("FETCH 1 FLAGS"))
    expect("\\seen" not in flags_of(f[1]), "BODY[] set \\Seen in an EXAMINEd mailbox")
    # 6.3.3: no change to the mailbox is permitted. STORE gets NO (or BAD); Dovecot
    # answers OK "Store ignored", which RFC 9051 does not forbid: OK only if nothing changed.
    c.cmd("STORE 1 +FLAGS (\\Flagged)")
    f = fetches(c.cmd("FETCH 1 FLAGS"))
    expect("\\flagged" not in flags_of(f[1]), "STORE changed flags in a read-only mailbox")


@check("6.3.2", "select-nonexistent")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    select(c, mb)
    r = expect_no(c.cmd("SELECT " + quote(ctx.mb(c, "missing"))))
    expect(r.code.upper() in ("", "NONEXISTENT"), "unexpected code " + r.code)
    # 6.3.2: a failed SELECT leaves no mailbox selected (authenticated state).
    r = c.cmd("FETCH 1 FLAGS")
    expect(r.status in ("NO", "BAD"), "FETCH still works after a failed SELECT: " + r.tagged)


@check("6.3.2", "select-closed", needs=("QRESYNC|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, b = ctx.mb(c) + "-a", ctx.mb(c) + "-b"
    ctx.fill(c, a, [msg()])
    ctx.fill(c, b, [msg()])
    expect_ok(c.cmd("ENABLE QRESYNC" if "QRESYNC" in ctx.caps else "ENABLE IMAP4rev2"))
    select(c, a)
    r = select(c, b)
    # RFC 7162 3.2.11 / RFC 9051 6.3.2: OK [CLOSED] when a mailbox was selected before.
    expect(r.find(r"\* OK \[CLOSED\]"), "no * OK [CLOSED] when switching mailboxes")
    idx_closed = [i for i, u in enumerate(r.untagged) if re.match(r"\* OK \[CLOSED\]", u, re.I)][0]
    idx_exists = [i for i, u in enumerate(r.untagged) if re.match(r"\* \d+ EXISTS", u, re.I)][0]
    expect(idx_closed < idx_exists, "[CLOSED] after the new mailbox's responses")


@check("6.3.4", "create-simple")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect(mb in list_names(c.cmd('LIST "" ' + quote(mb))), "created mailbox not listed")
    expect(exists_of(select(c, mb)) == 0, "new mailbox is not empty")


@check("6.3.4", "create-existing")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    r = expect_no(c.cmd("CREATE " + quote(mb)))
    # 7.1: ALREADYEXISTS is the code for this; a NO without code is also allowed.
    expect(r.code.upper() in ("", "ALREADYEXISTS"), "unexpected code " + r.code)


@check("6.3.4", "create-inbox")
def _(ctx):
    c = ctx.conn()
    # 6.3.4: "It is an error to attempt to create INBOX" (any case).
    expect_no(c.cmd("CREATE INBOX"))
    expect_no(c.cmd("CREATE inbox"))


@check("6.3.4", "create-hierarchy")
def _(ctx):
    c = ctx.conn()
    d = c.delimiter()
    leaf = ctx.mb(c, "b", "c")
    expect_ok(c.cmd("CREATE " + quote(leaf)))
    names = list_names(c.cmd('LIST "" ' + quote(ctx.prefix + "*")))
    expect(leaf in names, "%s not listed after CREATE" % leaf)
    # 6.3.4: the server SHOULD create the superior names. Either they are mailboxes
    # (listed by "*"), or, not created, they are still hierarchy levels that a pattern
    # ending in "%" returns with \Noselect (or \NonExistent, which implies it; 6.3.9).
    for n in (ctx.prefix, ctx.prefix + d + "b"):
        if n in names:
            continue
        lv = list_names(c.cmd('LIST "" ' + quote(n[:-1] + "%")))
        expect(n in lv and re.search(r"\\(Noselect|NonExistent)", lv[n], re.I),
               "superior %s neither created nor listed as a \\Noselect level" % n)


@check("6.3.4", "create-trailing-delimiter")
def _(ctx):
    c = ctx.conn()
    d = c.delimiter()
    r = expect_ok(c.cmd("CREATE " + quote(ctx.mb(c) + d)))
    # 6.3.4: the name created is without the trailing hierarchy delimiter.
    names = list_names(c.cmd('LIST "" ' + quote(ctx.prefix + "*")))
    expect(ctx.prefix in names, "mailbox not listed without the trailing delimiter")
    expect((ctx.prefix + d) not in names, "mailbox listed with the trailing delimiter")


@check("6.3.4", "create-special-use", needs=("CREATE-SPECIAL-USE",))
def _(ctx):
    c = ctx.conn()
    # A name of its own per run: a server may refuse to DELETE a special-use mailbox
    # (RFC 9051 6.3.5 allows NO; Gannet does), so the cleanup may leave it behind.
    mb = ctx.mb(c) + "-%d" % (time.time() * 1000)
    expect_ok(c.cmd("CREATE %s (USE (\\Archive))" % quote(mb)))
    r = c.cmd('LIST "" %s RETURN (SPECIAL-USE)' % quote(mb))
    expect("\\archive" in list_names(r).get(mb, "").lower(), "\\Archive not listed")


@check("6.3.4", "create-special-use-unknown", needs=("CREATE-SPECIAL-USE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    # RFC 6154 3: an attribute the server cannot assign: NO (SHOULD have [USEATTR]), and the
    # mailbox MUST NOT be created.
    r = expect_no(c.cmd("CREATE %s (USE (\\XNoSuchUse))" % quote(mb)))
    expect(r.code.upper() in ("", "USEATTR"), "unexpected code " + r.code)
    expect(mb not in list_names(c.cmd('LIST "" ' + quote(mb))), "mailbox created anyway")


@check("6.3.5", "delete-simple")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    expect_ok(c.cmd("DELETE " + quote(mb)))
    expect(mb not in list_names(c.cmd('LIST "" ' + quote(mb))), "deleted mailbox still listed")
    expect_no(c.cmd("SELECT " + quote(mb)))


@check("6.3.5", "delete-nonexistent")
def _(ctx):
    c = ctx.conn()
    r = expect_no(c.cmd("DELETE " + quote(ctx.mb(c))))
    expect(r.code.upper() in ("", "NONEXISTENT"), "unexpected code " + r.code)


@check("6.3.5", "delete-inbox")
def _(ctx):
    c = ctx.conn()
    # 6.3.5: "It is an error to attempt to delete INBOX".
    expect_no(c.cmd("DELETE INBOX"))
    expect_ok(c.cmd("SELECT INBOX"))


@check("6.3.5", "delete-with-children")
def _(ctx):
    c = ctx.conn()
    parent, child = ctx.mb(c), ctx.mb(c, "child")
    ctx.fill(c, parent, [msg()])
    expect_ok(c.cmd("CREATE " + quote(child)))
    r = c.cmd("DELETE " + quote(parent))
    names = list_names(c.cmd('LIST "" ' + quote(ctx.prefix + "*")))
    # RFC 9051 6.3.5 example (A84-A86): after DELETE foo, "LIST * " need not show foo but
    # "LIST %" does, as (\Noselect) (or \NonExistent in LIST-EXTENDED terms).
    names.update(list_names(c.cmd('LIST "" ' + quote(ctx.prefix[:-1] + "%"))))
    # 6.3.5: either NO, or OK: the messages go, the name stays with \Noselect, children stay.
    # Dovecot 2.3 (maildir) fails this: it answers OK and then lists the parent as
    # (\HasChildren) without \Noselect although SELECT says it does not exist: a Dovecot
    # deviation, the check stays.
    expect(child in names, "child removed by DELETE of its parent")
    if r.ok():
        expect(parent in names and re.search(r"\\(Noselect|NonExistent)", names[parent], re.I),
               "parent deleted with OK but not listed as \\Noselect by LIST %")
        expect(not c.cmd("SELECT " + quote(parent)).ok(), "deleted parent still selectable")
        # deleting the \Noselect parent again is an error while it has children
        expect_no(c.cmd("DELETE " + quote(parent)))
    else:
        expect_no(r)
        expect(exists_of(select(c, parent, "EXAMINE")) == 1, "refused DELETE lost messages")


@check("6.3.6", "rename-simple")
def _(ctx):
    c = ctx.conn()
    a, b = ctx.mb(c, "a"), ctx.mb(c, "b")
    ctx.fill(c, a, [msg(), msg()])
    expect_ok(c.cmd("RENAME %s %s" % (quote(a), quote(b))))
    names = list_names(c.cmd('LIST "" ' + quote(ctx.prefix + "*")))
    expect(a not in names and b in names, "old name still listed or new name missing")
    expect(exists_of(select(c, b)) == 2, "renamed mailbox lost messages")


@check("6.3.6", "rename-hierarchy")
def _(ctx):
    c = ctx.conn()
    a, ac, z = ctx.mb(c, "a"), ctx.mb(c, "a", "c"), ctx.mb(c, "z")
    expect_ok(c.cmd("CREATE " + quote(a)))
    ctx.fill(c, ac, [msg()])
    expect_ok(c.cmd("RENAME %s %s" % (quote(a), quote(z))))
    names = list_names(c.cmd('LIST "" ' + quote(ctx.prefix + "*")))
    # 6.3.6: inferior hierarchical names are renamed too.
    zc = ctx.mb(c, "z", "c")
    expect(zc in names, "%s not listed after RENAME" % zc)
    expect(ac not in names, "%s still listed after RENAME" % ac)
    expect(exists_of(select(c, zc)) == 1, "moved child lost its message")


@check("6.3.6", "rename-to-existing")
def _(ctx):
    c = ctx.conn()
    a, b = ctx.mb(c, "a"), ctx.mb(c, "b")
    ctx.fill(c, a, [msg()])
    expect_ok(c.cmd("CREATE " + quote(b)))
    r = expect_no(c.cmd("RENAME %s %s" % (quote(a), quote(b))))
    expect(r.code.upper() in ("", "ALREADYEXISTS"), "unexpected code " + r.code)


@check("6.3.6", "rename-nonexistent")
def _(ctx):
    c = ctx.conn()
    r = expect_no(c.cmd("RENAME %s %s" % (quote(ctx.mb(c, "a")), quote(ctx.mb(c, "b")))))
    expect(r.code.upper() in ("", "NONEXISTENT"), "unexpected code " + r.code)


@check("6.3.6", "rename-inbox")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    r = select(c, "INBOX")
    before = exists_of(r)
    c.cmd("CLOSE")
    ctx.fill(c, "INBOX", [msg(subject="rename inbox")], create=False)
    # Dovecot 2.3 answers NO [CANNOT] "Renaming INBOX isn't supported": it deviates from
    # 6.3.6 ("Renaming INBOX is permitted"), the check stays.
    expect_ok(c.cmd("RENAME INBOX " + quote(mb)))
    # 6.3.6: all messages in INBOX move to the new name; INBOX stays, empty.
    expect(exists_of(select(c, mb, "EXAMINE")) == before + 1, "new mailbox lacks INBOX's messages")
    expect(exists_of(select(c, "INBOX", "EXAMINE")) == 0, "INBOX not empty after RENAME")
    # put the account back as it was
    c.cmd("SELECT " + quote(mb))
    if before + 1 > 0:
        c.cmd("COPY 1:%d INBOX" % (before + 1))
        c.cmd("UID SEARCH SUBJECT \"rename inbox\"")
        c.cmd("CLOSE")
        c.cmd("SELECT INBOX")
        s = c.cmd('SEARCH SUBJECT "rename inbox"')
        ns = search_nums(s)
        if ns:
            c.cmd("STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, ns)))
            c.cmd("EXPUNGE")


@check("6.3.7", "subscribe")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(mb)))
    expect(mb in list_names(c.cmd('LSUB "" ' + quote(mb))), "not in LSUB after SUBSCRIBE")
    if "LIST-EXTENDED" in ctx.caps or "IMAP4REV2" in ctx.caps:
        r = c.cmd('LIST (SUBSCRIBED) "" ' + quote(mb))
        expect("\\subscribed" in list_names(r).get(mb, "").lower(), "LIST (SUBSCRIBED) lacks \\Subscribed")


@check("6.3.8", "unsubscribe")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(mb)))
    expect_ok(c.cmd("UNSUBSCRIBE " + quote(mb)))
    expect(mb not in list_names(c.cmd('LSUB "" ' + quote(mb))), "still in LSUB after UNSUBSCRIBE")


@check("6.3.7", "subscribe-survives-delete", needs=("LIST-EXTENDED|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(mb)))
    expect_ok(c.cmd("DELETE " + quote(mb)))
    # 6.3.7: the server MUST NOT remove a subscription because the mailbox went away;
    # RFC 5258 3 / 9051 6.3.9: LIST (SUBSCRIBED) shows it with \NonExistent.
    r = c.cmd('LIST (SUBSCRIBED) "" ' + quote(mb))
    line = list_names(r).get(mb, "").lower()
    expect(line, "subscription lost when the mailbox was deleted")
    expect("\\nonexistent" in line and "\\subscribed" in line, "expected \\Subscribed \\NonExistent")


@check("6.3.9", "list-empty-pattern")
def _(ctx):
    c = ctx.conn()
    r = expect_ok(c.cmd('LIST "" ""'))
    ls = r.find(r"\* LIST ")
    # 6.3.9: one response with \Noselect, the delimiter and the root name "".
    expect(len(ls) == 1, "expected one LIST response")
    expect(re.match(r'\* LIST \([^)]*\\Noselect[^)]*\) (NIL|"\\?.") ""$', ls[0], re.I),
           "not (\\Noselect) \"delim\" \"\"")


@check("6.3.9", "list-wildcards")
def _(ctx):
    c = ctx.conn()
    a, ab, abc = ctx.mb(c, "a"), ctx.mb(c, "a", "b"), ctx.mb(c, "a", "b", "c")
    for m in (a, ab, abc):
        expect_ok(c.cmd("CREATE " + quote(m)))
    d = c.delimiter()
    pct = set(list_names(c.cmd('LIST "" ' + quote(a + d + "%"))))
    star = set(list_names(c.cmd('LIST "" ' + quote(a + d + "*"))))
    # %: one level; *: all levels.
    expect(pct == {ab}, "%% matched %s" % sorted(pct))
    expect(star == {ab, abc}, "* matched %s" % sorted(star))
    mid = set(list_names(c.cmd('LIST "" ' + quote(ctx.prefix + d + "%" + d + "b"))))
    expect(mid == {ab}, "%% in the middle matched %s" % sorted(mid))


@check("6.3.9", "list-reference")
def _(ctx):
    c = ctx.conn()
    a, ab = ctx.mb(c, "a"), ctx.mb(c, "a", "b")
    for m in (a, ab):
        expect_ok(c.cmd("CREATE " + quote(m)))
    d = c.delimiter()
    # 6.3.9: reference and pattern are joined; the names returned are full names.
    got = set(list_names(c.cmd("LIST %s %%" % quote(a + d))))
    expect(got == {ab}, "LIST \"%s\" %% gave %s" % (a + d, sorted(got)))


@check("6.3.9", "list-inbox-case")
def _(ctx):
    c = ctx.conn()
    # 5.1: INBOX is case-insensitive; LIST "" inbox returns it (as "INBOX").
    names = list_names(c.cmd('LIST "" inbox'))
    expect([n for n in names if n.upper() == "INBOX"], "LIST \"\" inbox did not list INBOX")


@check("6.3.9", "list-children", needs=("CHILDREN|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, ab = ctx.mb(c, "a"), ctx.mb(c, "a", "b")
    for m in (a, ab):
        expect_ok(c.cmd("CREATE " + quote(m)))
    ret = " RETURN (CHILDREN)" if ("LIST-EXTENDED" in ctx.caps or "IMAP4REV2" in ctx.caps) else ""
    names = list_names(c.cmd('LIST "" %s%s' % (quote(ctx.prefix + "*"), ret)))
    expect("\\haschildren" in names.get(a, "").lower(), "parent lacks \\HasChildren")
    expect("\\hasnochildren" in names.get(ab, "").lower(), "leaf lacks \\HasNoChildren")


@check("6.3.9", "list-return-subscribed", needs=("LIST-EXTENDED|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, b = ctx.mb(c, "a"), ctx.mb(c, "b")
    for m in (a, b):
        expect_ok(c.cmd("CREATE " + quote(m)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(a)))
    names = list_names(c.cmd('LIST "" %s RETURN (SUBSCRIBED)' % quote(ctx.prefix + "*")))
    expect("\\subscribed" in names.get(a, "").lower(), "subscribed mailbox lacks \\Subscribed")
    expect(b in names and "\\subscribed" not in names[b].lower(), "unsubscribed one listed wrongly")


@check("6.3.9", "list-select-subscribed", needs=("LIST-EXTENDED|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, b = ctx.mb(c, "a"), ctx.mb(c, "b")
    for m in (a, b):
        expect_ok(c.cmd("CREATE " + quote(m)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(a)))
    names = list_names(c.cmd('LIST (SUBSCRIBED) "" %s' % quote(ctx.prefix + "*")))
    expect(set(names) == {a}, "LIST (SUBSCRIBED) gave %s" % sorted(names))
    expect("\\subscribed" in names[a].lower(), "no \\Subscribed with selection SUBSCRIBED")


@check("6.3.9", "list-recursivematch", needs=("LIST-EXTENDED|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, abc = ctx.mb(c, "a"), ctx.mb(c, "a", "b", "c")
    expect_ok(c.cmd("CREATE " + quote(abc)))
    expect_ok(c.cmd("SUBSCRIBE " + quote(abc)))
    d = c.delimiter()
    r = c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" %s' % quote(ctx.prefix + d + "%"))
    # RFC 5258 / 9051 6.3.9: a non-subscribed parent of a subscribed mailbox is returned
    # with CHILDINFO ("SUBSCRIBED") and without \Subscribed.
    ls = [u for u in r.find(r"\* LIST ") if mailbox_name(u) == a]
    expect(ls, "parent not returned with RECURSIVEMATCH")
    # (the tag and option are astrings: quoted or not)
    expect(re.search(r'\("?CHILDINFO"? \("?SUBSCRIBED"?\)\)', ls[0], re.I), "no CHILDINFO (\"SUBSCRIBED\")")
    expect("\\subscribed" not in ls[0].lower(), "unsubscribed parent marked \\Subscribed")


@check("6.3.9", "list-multiple-patterns", needs=("LIST-EXTENDED|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    a, b, x = ctx.mb(c, "a"), ctx.mb(c, "b"), ctx.mb(c, "x")
    for m in (a, b, x):
        expect_ok(c.cmd("CREATE " + quote(m)))
    got = set(list_names(c.cmd('LIST "" (%s %s)' % (quote(a), quote(b)))))
    expect(got == {a, b}, "LIST with two patterns gave %s" % sorted(got))


@check("6.3.9", "list-return-status", needs=("LIST-STATUS|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [(msg(), "\\Seen"), msg()])
    r = expect_ok(c.cmd('LIST "" %s RETURN (STATUS (MESSAGES UNSEEN))' % quote(mb)))
    st = r.find(r"\* STATUS ")
    expect(st, "no * STATUS with RETURN (STATUS ...)")
    expect(num_after(st[0], "MESSAGES") == 2 and num_after(st[0], "UNSEEN") == 1,
           "STATUS values wrong: " + st[0])
    li = [i for i, u in enumerate(r.untagged) if u.upper().startswith("* LIST ")]
    si = [i for i, u in enumerate(r.untagged) if u.upper().startswith("* STATUS ")]
    # RFC 5819: the STATUS response follows the mailbox's LIST response.
    expect(li and li[0] < si[0], "STATUS before its LIST response")


@check("6.3.9", "list-special-use", needs=("SPECIAL-USE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    r = expect_ok(c.cmd('LIST (SPECIAL-USE) "" *'))
    # RFC 6154 2: with selection SPECIAL-USE only mailboxes with a special use are listed.
    for u in r.find(r"\* LIST "):
        expect(re.search(r"\\(All|Archive|Drafts|Flagged|Junk|Sent|Trash|Important)\b", u, re.I),
               "LIST (SPECIAL-USE) returned a mailbox without special use: " + u)
    expect(mb not in list_names(r), "plain mailbox listed with SPECIAL-USE selection")


@check("6.3.10", "namespace", needs=("NAMESPACE|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    r = expect_ok(c.cmd("NAMESPACE"))
    ns = r.find(r"\* NAMESPACE ")
    expect(len(ns) == 1, "expected one * NAMESPACE")
    expect(re.match(r'\* NAMESPACE (\(\(".*?" (NIL|"\\?.")[^)]*\)+|NIL) (\(.*\)|NIL) (\(.*\)|NIL)$', ns[0], re.I),
           "malformed NAMESPACE")
    expect(not ns[0].upper().startswith("* NAMESPACE NIL"), "no personal namespace")


@check("6.3.11", "status-basic")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [(msg(), "\\Seen"), msg(), msg()])
    r = expect_ok(c.cmd("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)" % quote(mb)))
    st = r.find(r"\* STATUS ")
    expect(len(st) == 1, "expected one * STATUS")
    expect(num_after(st[0], "MESSAGES") == 3, "MESSAGES not 3")
    expect(num_after(st[0], "UNSEEN") == 2, "UNSEEN not 2")
    s = select(c, mb, "EXAMINE")
    uv = int(re.search(r"UIDVALIDITY (\d+)", " ".join(s.untagged)).group(1))
    un = int(re.search(r"UIDNEXT (\d+)", " ".join(s.untagged)).group(1))
    expect(num_after(st[0], "UIDVALIDITY") == uv and num_after(st[0], "UIDNEXT") == un,
           "STATUS UIDVALIDITY/UIDNEXT differ from SELECT's")


@check("6.3.11", "status-recent-rev1", needs=("IMAP4REV1",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg()])
    r = expect_ok(c.cmd("STATUS %s (RECENT)" % quote(mb)))
    # RFC 3501 6.3.10: RECENT, the messages with \Recent: the two just appended.
    expect(num_after(r.find(r"\* STATUS ")[0], "RECENT") == 2, "RECENT not 2")


@check("6.3.11", "status-size", needs=("STATUS=SIZE|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), MULTI])
    r = expect_ok(c.cmd("STATUS %s (SIZE)" % quote(mb)))
    size = num_after(r.find(r"\* STATUS ")[0], "SIZE")
    expect(size == len(msg()) + len(MULTI), "SIZE %s, expected %d" % (size, len(msg()) + len(MULTI)))


@check("6.3.11", "status-deleted", needs=("IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [(msg(), "\\Deleted"), msg(), (msg(), "\\Deleted \\Seen")])
    r = expect_ok(c.cmd("STATUS %s (DELETED)" % quote(mb)))
    expect(num_after(r.find(r"\* STATUS ")[0], "DELETED") == 2, "DELETED not 2")


@check("6.3.11", "status-highestmodseq", needs=("CONDSTORE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg()])
    r = expect_ok(c.cmd("STATUS %s (HIGHESTMODSEQ)" % quote(mb)))
    h1 = num_after(r.find(r"\* STATUS ")[0], "HIGHESTMODSEQ")
    select(c, mb)
    f = fetches(c.cmd("FETCH 1:* (MODSEQ)"))
    mods = [int(re.search(r"MODSEQ \((\d+)\)", l).group(1)) for l in f.values()]
    expect(h1 is not None and h1 >= max(mods), "HIGHESTMODSEQ %s below a message's MODSEQ %s" % (h1, mods))
    c.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    c.cmd("CLOSE")
    h2 = num_after(c.cmd("STATUS %s (HIGHESTMODSEQ)" % quote(mb)).find(r"\* STATUS ")[0], "HIGHESTMODSEQ")
    # RFC 7162 3.1.1: every change raises the mailbox's mod-sequence.
    expect(h2 > h1, "HIGHESTMODSEQ did not grow after STORE")


@check("6.3.11", "status-nonexistent")
def _(ctx):
    c = ctx.conn()
    expect_no(c.cmd("STATUS %s (MESSAGES)" % quote(ctx.mb(c))))


@check("6.3.12", "append-flags-date")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect_ok(c.cmd('APPEND %s (\\Seen \\Flagged) "05-Mar-2020 10:11:12 +0100"' % quote(mb), literal=msg()))
    select(c, mb)
    f = fetches(c.cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)"))[1]
    fl = flags_of(f)
    expect({"\\seen", "\\flagged"} <= fl, "flags %s" % fl)
    expect(re.search(r'INTERNALDATE "0?5-Mar-2020 10:11:12 \+0100"', f, re.I) or
           re.search(r'INTERNALDATE "0?5-Mar-2020 09:11:12 \+0000"', f, re.I),
           "INTERNALDATE is not the APPENDed date (same instant)")
    expect(num_after(f, "RFC822.SIZE") == len(msg()), "RFC822.SIZE differs from the octets appended")


@check("6.3.12", "append-appenduid", needs=("UIDPLUS|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    rs = ctx.fill(c, mb, [msg(), msg()])
    st = c.cmd("STATUS %s (UIDVALIDITY UIDNEXT)" % quote(mb)).find(r"\* STATUS ")[0]
    codes = [re.match(r"APPENDUID (\d+) (\d+)$", r.code, re.I) for r in rs]
    expect(all(codes), "tagged OK lacks [APPENDUID v uid]")
    expect(all(int(m.group(1)) == num_after(st, "UIDVALIDITY") for m in codes), "APPENDUID validity differs")
    u1, u2 = int(codes[0].group(2)), int(codes[1].group(2))
    expect(u1 < u2 < num_after(st, "UIDNEXT"), "APPENDUID uids not ascending below UIDNEXT")
    select(c, mb)
    f = fetches(c.cmd("FETCH 1:2 UID"))
    expect([num_after(f[1], "UID"), num_after(f[2], "UID")] == [u1, u2], "APPENDUID uids are not the messages' UIDs")


@check("6.3.12", "append-trycreate")
def _(ctx):
    c = ctx.conn()
    r = expect_no(c.cmd("APPEND %s" % quote(ctx.mb(c)), literal=msg()))
    # 6.3.12: NO [TRYCREATE] when the target does not exist (and could be created).
    expect(r.code.upper() == "TRYCREATE", "no [TRYCREATE]: " + r.tagged)


@check("6.3.12", "append-literal-plus", needs=("LITERAL+|LITERAL-",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    expect_ok(c.cmd("APPEND %s" % quote(mb), literal=msg(), plus=True))
    expect(exists_of(select(c, mb)) == 1, "message not appended")


@check("6.3.12", "append-keyword")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [(msg(), "$Forwarded cmpkeyword")])
    r = select(c, mb)
    fl = flags_of(fetches(c.cmd("FETCH 1 FLAGS"))[1])
    expect({"$forwarded", "cmpkeyword"} <= fl, "keywords missing: %s" % fl)
    # 7.3.5: FLAGS lists the flags defined in the mailbox: including keywords in use.
    expect({"$forwarded", "cmpkeyword"} <= flags_of(r.find(r"\* FLAGS")[0]), "FLAGS lacks the keywords")


@check("6.3.12", "append-to-selected")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    select(c, mb)
    r1 = expect_ok(c.cmd("APPEND %s" % quote(mb), literal=msg()))
    r2 = c.cmd("NOOP")
    # 6.3.12: the server SHOULD send EXISTS at once; by the next NOOP at the latest.
    expect(exists_of(r1) == 2 or exists_of(r2) == 2, "no * 2 EXISTS after APPEND to the selected mailbox")


# ---------------------------------------------------------------- 6.4 selected

def three(ctx, c, extra=()):
    """mailbox with three messages (2nd \\Seen \\Flagged), selected; its UIDs."""
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(subject="alpha one", mid="<a@x>"),
                     (msg(subject="beta two", frm="Carol <carol@example.test>", date="Tue, 8 Feb 1994 10:00:00 +0000",
                          body="the quick brown fox\r\n", mid="<b@x>"), "\\Seen \\Flagged"),
                     (MULTI, "cmpkey")] + list(extra))
    select(c, mb)
    f = fetches(c.cmd("FETCH 1:* UID"))
    return mb, [num_after(f[i], "UID") for i in sorted(f)]


@check("6.4.1", "close-expunges-silently")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    expect_ok(c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    r = expect_ok(c.cmd("CLOSE"))
    # 6.4.1: messages are removed and no untagged EXPUNGE is sent.
    expect(not r.find(r"\* \d+ EXPUNGE") and not r.find(r"\* VANISHED"), "untagged EXPUNGE sent by CLOSE")
    st = c.cmd("STATUS %s (MESSAGES)" % quote(mb)).find(r"\* STATUS ")[0]
    expect(num_after(st, "MESSAGES") == 2, "\\Deleted message not removed by CLOSE")
    expect(not c.cmd("FETCH 1 FLAGS").ok(), "still selected after CLOSE")


@check("6.4.1", "close-after-examine")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    expect_ok(c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    c.cmd("CLOSE")
    select(c, mb, "EXAMINE")
    expect_ok(c.cmd("CLOSE"))
    # 6.4.1: "No messages are removed ... if the mailbox is selected by EXAMINE".
    st = c.cmd("STATUS %s (MESSAGES)" % quote(mb)).find(r"\* STATUS ")[0]
    expect(num_after(st, "MESSAGES") == 2, "CLOSE of an EXAMINEd mailbox expunged")
    select(c, mb)
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.cmd("CLOSE")
    select(c, mb, "EXAMINE")
    c.cmd("CLOSE")
    st = c.cmd("STATUS %s (MESSAGES)" % quote(mb)).find(r"\* STATUS ")[0]
    expect(num_after(st, "MESSAGES") == 1, "CLOSE of an EXAMINEd mailbox expunged")


@check("6.4.2", "unselect", needs=("UNSELECT|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    expect_ok(c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    expect_ok(c.cmd("UNSELECT"))
    st = c.cmd("STATUS %s (MESSAGES)" % quote(mb)).find(r"\* STATUS ")[0]
    expect(num_after(st, "MESSAGES") == 3, "UNSELECT expunged")
    expect(not c.cmd("FETCH 1 FLAGS").ok(), "still selected after UNSELECT")


@check("6.4.3", "expunge")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    expect_ok(c.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)"))
    r = expect_ok(c.cmd("EXPUNGE"))
    # 6.4.3 / 7.5.1: one EXPUNGE per message, each number valid right after the previous
    # one (so "3, 1" and "1, 2" are both right).
    seq = list(uids)
    for u in r.find(r"\* \d+ EXPUNGE"):
        n = int(u.split()[1])
        expect(1 <= n <= len(seq), "EXPUNGE %d beyond the mailbox" % n)
        del seq[n - 1]
    expect(seq == [uids[1]], "remaining UIDs after the EXPUNGE responses: %s" % seq)
    f = fetches(c.cmd("FETCH 1:* UID"))
    expect([num_after(l, "UID") for l in f.values()] == [uids[1]], "server kept other messages")


@check("6.4.3", "uid-expunge", needs=("UIDPLUS|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    expect_ok(c.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)"))
    r = expect_ok(c.cmd("UID EXPUNGE %d" % uids[1]))
    # 6.4.9 / RFC 4315: only the \Deleted messages in the UID set are removed.
    ex = r.find(r"\* \d+ EXPUNGE")
    expect([u.split()[1] for u in ex] == ["2"], "expected only * 2 EXPUNGE, got %s" % ex)
    expect(exists_of(c.cmd("NOOP")) in (None, 2), "unexpected EXISTS")
    f = fetches(c.cmd("FETCH 1:* UID"))
    expect([num_after(l, "UID") for l in f.values()] == [uids[0], uids[2]], "wrong messages left")


def sch(c, criteria, uid=False):
    r = expect_ok(c.cmd(("UID " if uid else "") + "SEARCH " + criteria), "OK to SEARCH " + criteria)
    return search_nums(r)


@check("6.4.4", "search-flags")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    for crit, want in (("ALL", [1, 2, 3]), ("SEEN", [2]), ("UNSEEN", [1, 3]), ("FLAGGED", [2]),
                       ("UNFLAGGED", [1, 3]), ("KEYWORD cmpkey", [3]), ("UNKEYWORD cmpkey", [1, 2]),
                       ("ANSWERED", []), ("DELETED", []), ("UNDELETED", [1, 2, 3]), ("DRAFT", [])):
        got = sch(c, crit)
        expect(got == want, "SEARCH %s: %s, expected %s" % (crit, got, want))


@check("6.4.4", "search-headers")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    for crit, want in (("FROM carol", [2, 3]), ("TO bob", [1, 2, 3]), ("SUBJECT BETA", [2]),
                       ('SUBJECT "alpha one"', [1]), ("HEADER Message-ID <b@x>", [2]),
                       ('HEADER Content-Type ""', [1, 2, 3]), ("HEADER X-Nope \"\"", []), ("CC bob", []),
                       ("BCC bob", [])):
        got = sch(c, crit)
        expect(got == want, "SEARCH %s: %s, expected %s" % (crit, got, want))


@check("6.4.4", "search-body-text")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    for crit, want in (("BODY quick", [2]), ("BODY QUICK", [2]), ("TEXT fox", [2]), ("TEXT carol", [2, 3]),
                       ("BODY carol", []), ('BODY "first part"', [3]), ("TEXT nonexistentword", [])):
        got = sch(c, crit)
        expect(got == want, "SEARCH %s: %s, expected %s" % (crit, got, want))


@check("6.4.4", "search-size-dates")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    n1 = len(msg(subject="alpha one", mid="<a@x>"))
    for crit, want in (("LARGER %d" % (n1 - 1), [1, 3]), ("LARGER %d" % n1, [3]), ("SMALLER %d" % n1, [2]),
                       ("SENTBEFORE 8-Feb-1994", [1]), ("SENTON 8-Feb-1994", [2, 3]), ("SENTSINCE 8-Feb-1994", [2, 3]),
                       ("SINCE 1-Jan-2000", [1, 2, 3]), ("BEFORE 1-Jan-2000", []), ("ON 1-Jan-2000", [])):
        got = sch(c, crit)
        expect(got == want, "SEARCH %s: %s, expected %s" % (crit, got, want))


@check("6.4.4", "search-logic-sets")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    for crit, want in (("NOT SEEN", [1, 3]), ("OR SEEN KEYWORD cmpkey", [2, 3]), ("1,3", [1, 3]), ("2:*", [2, 3]),
                       ("*", [3]), ("UID %d:%d" % (uids[1], uids[2]), [2, 3]), ("(SEEN FLAGGED)", [2]),
                       ("NOT (OR SEEN KEYWORD cmpkey)", [1]), ("SEEN UNSEEN", [])):
        got = sch(c, crit)
        expect(got == want, "SEARCH %s: %s, expected %s" % (crit, got, want))
    got = sch(c, "SEEN", uid=True)
    expect(got == [uids[1]], "UID SEARCH SEEN: %s" % got)


@check("6.4.4", "search-charset-utf8")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(subject="=?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=", extra=""), msg(subject="plain")])
    select(c, mb)
    word = "café".encode("utf-8").decode("latin-1")
    r = expect_ok(c.cmd("SEARCH CHARSET UTF-8 SUBJECT", literal=word))
    # 6.4.4: UTF-8 MUST be supported; MIME encoded-words in headers are decoded first.
    expect(search_nums(r) == [1], "SEARCH CHARSET UTF-8 SUBJECT café: %s" % search_nums(r))
    r = c.cmd("SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT x")
    # 6.4.4: NO [BADCHARSET] for an unsupported charset (the code may list the supported ones).
    expect(r.status == "NO" and r.code.upper().startswith("BADCHARSET"), "expected NO [BADCHARSET]: " + r.tagged)


@check("6.4.4", "search-empty-result")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    r = expect_ok(c.cmd("SEARCH SUBJECT nosuchsubjectanywhere"))
    # RFC 3501 7.2.5: a * SEARCH response is sent even when nothing matches.
    expect(r.find(r"\* SEARCH\s*$") or r.find(r"\* ESEARCH"), "no empty * SEARCH")


@check("6.4.4", "esearch-return", needs=("ESEARCH|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    r = expect_ok(c.cmd("SEARCH RETURN (MIN MAX COUNT ALL) NOT SEEN", tag="es1"))
    e = r.find(r'\* ESEARCH \(TAG "es1"\)')
    expect(e, "no * ESEARCH (TAG \"es1\")")
    expect(not r.find(r"\* SEARCH"), "* SEARCH as well as ESEARCH")
    l = e[0].upper()
    for part in ("MIN 1", "MAX 3", "COUNT 2"):
        expect(part in l, "%s missing" % part)
    expect(expand(re.search(r"ALL ([\d:,]+)", l).group(1)) == [1, 3], "ALL wrong")
    expect(" UID" not in l, "UID indicator for a non-UID search")
    r = expect_ok(c.cmd("UID SEARCH RETURN () SEEN", tag="es2"))
    e = r.find(r'\* ESEARCH \(TAG "es2"\) UID ALL (\d+)')
    # RETURN () means RETURN (ALL); UID searches say UID.
    expect(e and int(e[0].split()[-1]) == uids[1], "UID SEARCH RETURN () wrong")
    r = expect_ok(c.cmd("SEARCH RETURN (COUNT) SUBJECT nosuchsubject", tag="es3"))
    e = r.find(r'\* ESEARCH \(TAG "es3"\)')
    expect(e and ("COUNT 0" in e[0].upper()), "COUNT 0 missing for an empty result")
    r = expect_ok(c.cmd("SEARCH RETURN (MIN) SUBJECT nosuchsubject", tag="es4"))
    e = r.find(r'\* ESEARCH \(TAG "es4"\)')
    # RFC 4731 3.1: MIN/MAX/ALL are left out when nothing matches.
    expect(e and "MIN" not in e[0].upper(), "MIN given for an empty result")


@check("6.4.4", "search-rev2-esearch", needs=("IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    expect_ok(c.cmd("ENABLE IMAP4rev2"))
    three(ctx, c)
    r = expect_ok(c.cmd("SEARCH UNSEEN", tag="r2"))
    # 6.4.4: IMAP4rev2 answers SEARCH with ESEARCH (RETURN () meaning ALL), never * SEARCH.
    expect(not r.find(r"\* SEARCH"), "* SEARCH sent to an IMAP4rev2 client")
    e = r.find(r'\* ESEARCH \(TAG "r2"\) ALL ')
    expect(e and expand(e[0].split()[-1]) == [1, 3], "no * ESEARCH (TAG \"r2\") ALL 1,3")


@check("6.4.5", "fetch-basic-items")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    f = fetches(expect_ok(c.cmd("FETCH 2 (FLAGS UID INTERNALDATE RFC822.SIZE)")))
    l = f.get(2, "")
    expect({"\\seen", "\\flagged"} <= (flags_of(l) or set()), "FLAGS wrong")
    expect(num_after(l, "UID") == uids[1], "UID wrong")
    expect(re.search(r'INTERNALDATE "[ 0-9]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"', l), "INTERNALDATE malformed")
    expect(num_after(l, "RFC822.SIZE") == len(msg(subject="beta two", frm="Carol <carol@example.test>",
                                                   date="Tue, 8 Feb 1994 10:00:00 +0000", body="the quick brown fox\r\n",
                                                   mid="<b@x>")), "RFC822.SIZE wrong")


@check("6.4.5", "fetch-body-peek")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    f = fetches(c.cmd("FETCH 1 BODY.PEEK[]"))
    expect(literal_of(f[1], "BODY[]") == msg(subject="alpha one", mid="<a@x>"), "BODY[] is not the message")
    # 6.4.5: BODY.PEEK does not set \Seen.
    expect("\\seen" not in flags_of(fetches(c.cmd("FETCH 1 FLAGS"))[1]), "BODY.PEEK set \\Seen")


@check("6.4.5", "fetch-body-sets-seen")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    r = c.cmd("FETCH 1 BODY[TEXT]")
    # 6.4.5: BODY[...] sets \Seen; the change comes as FLAGS in an untagged FETCH (in this
    # FETCH's response or by the next command's).
    seen = any("\\seen" in (flags_of(l) or set()) for l in fetches(r).values())
    r2 = c.cmd("FETCH 1 FLAGS")
    expect("\\seen" in flags_of(fetches(r2)[1]), "BODY[TEXT] did not set \\Seen")
    expect(seen or "\\seen" in flags_of(fetches(r2)[1]), "the \\Seen change was not reported")


@check("6.4.5", "fetch-partial")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    full = msg(subject="alpha one", mid="<a@x>")
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[]<6.10>"))[1]
    # 6.4.5: the response names the origin: BODY[]<6>, and has 10 octets from offset 6.
    expect(literal_of(l, "BODY[]<6>") == full[6:16], "BODY[]<6.10> wrong: " + l)
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[]<%d.100>" % (len(full) - 5)))[1]
    expect(literal_of(l, "BODY[]<%d>" % (len(full) - 5)) == full[-5:], "partial past the end not truncated")
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[]<100000.10>"))[1]
    # "If the starting octet is beyond the end of the text, an empty string is returned."
    expect(literal_of(l, "BODY[]<100000>") == "", "beyond the end is not an empty string: " + l)


@check("6.4.5", "fetch-header-fields")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"))[1]
    v = None
    m = re.search(r"BODY\[HEADER\.FIELDS \([^)]*\)\] ", l, re.I)
    if m:
        v = literal_of(l[m.start():], m.group(0)[:-1])
    expect(v is not None, "no BODY[HEADER.FIELDS (...)] item")
    # the matching lines in message order, then the blank line
    expect(v == "From: Alice <alice@example.test>\r\nSubject: alpha one\r\n\r\n", "got %r" % v)
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM DATE MESSAGE-ID MIME-VERSION CONTENT-TYPE)]"))[1]
    m = re.search(r"BODY\[HEADER\.FIELDS\.NOT \([^)]*\)\] ", l, re.I)
    v = literal_of(l[m.start():], m.group(0)[:-1]) if m else None
    expect(v == "To: Bob <bob@example.test>\r\n\r\n", "HEADER.FIELDS.NOT got %r" % v)
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[HEADER]"))[1]
    full = msg(subject="alpha one", mid="<a@x>")
    expect(literal_of(l, "BODY[HEADER]") == full[:full.index("\r\n\r\n") + 4], "BODY[HEADER] wrong")


@check("6.4.5", "fetch-mime-parts")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 3 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[TEXT] BODY.PEEK[1.MIME])"))[3]
    expect(literal_of(l, "BODY[1]") == "first part\r\nline two", "BODY[1] got %r" % literal_of(l, "BODY[1]"))
    expect(literal_of(l, "BODY[2.MIME]") == "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
           "BODY[2.MIME] got %r" % literal_of(l, "BODY[2.MIME]"))
    expect(literal_of(l, "BODY[TEXT]") == MULTI[MULTI.index("\r\n\r\n") + 4:], "BODY[TEXT] wrong")
    l = fetches(c.cmd("FETCH 1 BODY.PEEK[1]"))[1]
    # 6.4.5: a non-multipart message has part 1: its body.
    expect(literal_of(l, "BODY[1]") == "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n", "BODY[1] of a single part")


@check("6.4.5", "fetch-bodystructure")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 3 BODYSTRUCTURE"))[3]
    u = re.sub(r"\s+", " ", l.upper())
    # the CRLF before a boundary belongs to the boundary: part 1 is 20 octets; its line
    # count is 1 or 2 (the last line has no CRLF; servers differ, RFC 9051 does not say).
    b64len = len(base64.b64encode(BIN))
    expect(re.search(r'\("TEXT" "PLAIN" \("CHARSET" "US-ASCII"\) NIL NIL "7BIT" 20 [12][ )]', u), "text/plain part wrong: " + l)
    expect('("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" %d' % b64len in u, "octet-stream part wrong: " + l)
    expect(re.search(r'\) "MIXED" \("BOUNDARY" "XYZ"\)', u), "multipart subtype/params wrong: " + l)
    l = fetches(c.cmd("FETCH 1 BODY"))[1]
    body = "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    expect('BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" %d 1)' % len(body) in l.upper(), "BODY wrong: " + l)


@check("6.4.5", "fetch-envelope")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 1 ENVELOPE"))[1]
    # 7.5.2: sender and reply-to default to from; absent fields are NIL.
    want = ('ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "alpha one" (("Alice" NIL "alice" "example.test")) '
            '(("Alice" NIL "alice" "example.test")) (("Alice" NIL "alice" "example.test")) '
            '(("Bob" NIL "bob" "example.test")) NIL NIL NIL "<a@x>")')
    expect(want.upper() in l.upper(), "got " + l)


@check("6.4.5", "fetch-macros")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    # 6.4.5: FAST = (FLAGS INTERNALDATE RFC822.SIZE), ALL = FAST ENVELOPE, FULL = ALL BODY.
    for macro, items in (("FAST", ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]),
                         ("ALL", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]),
                         ("FULL", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"])):
        l = fetches(expect_ok(c.cmd("FETCH 1 " + macro)))[1]
        for it in items:
            expect(re.search(r"[( ]%s \(?[\"(\d{]" % re.escape(it), l, re.I), "%s lacks %s" % (macro, it))
        expect(not re.search(r"BODYSTRUCTURE", l, re.I), macro + " returned BODYSTRUCTURE")


@check("6.4.5", "fetch-rfc822-items", needs=("IMAP4REV1",))
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    full = msg(subject="alpha one", mid="<a@x>")
    i = full.index("\r\n\r\n") + 4
    l = fetches(c.cmd("FETCH 1 (RFC822.HEADER RFC822.TEXT)"))[1]
    expect(literal_of(l, "RFC822.HEADER") == full[:i], "RFC822.HEADER wrong")
    expect(literal_of(l, "RFC822.TEXT") == full[i:], "RFC822.TEXT wrong")
    l = fetches(c.cmd("FETCH 1 RFC822"))[1]
    expect(literal_of(l, "RFC822") == full, "RFC822 wrong")
    # RFC 3501: RFC822 and RFC822.TEXT are like BODY[] and BODY[TEXT]: they set \Seen.
    expect("\\seen" in flags_of(fetches(c.cmd("FETCH 1 FLAGS"))[1]), "RFC822 did not set \\Seen")


@check("6.4.5", "fetch-binary", needs=("BINARY|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 3 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])"))[3]
    # RFC 3516 / 9051 6.4.5: decoded content; NUL octets MUST come as literal8 ~{n}.
    expect(re.search(r"BINARY\[2\] ~\{%d\}\r\n" % len(BIN), l, re.I), "BINARY[2] not a literal8 of %d octets: %r" % (len(BIN), l[:200]))
    expect(literal_of(l, "BINARY[2]") == BIN.decode("latin-1"), "BINARY[2] not the decoded octets")
    expect(num_after(l, "BINARY.SIZE[2]") == len(BIN), "BINARY.SIZE[2] wrong")
    expect(literal_of(l, "BINARY[1]") == "first part\r\nline two", "BINARY[1] wrong")


@check("6.4.5", "fetch-binary-partial", needs=("BINARY|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    l = fetches(c.cmd("FETCH 3 BINARY.PEEK[2]<4.3>"))[3]
    expect(literal_of(l, "BINARY[2]<4>") == BIN[4:7].decode("latin-1"), "BINARY[2]<4.3> wrong: %r" % l)


@check("6.4.5", "fetch-bad-sequence")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    r = c.cmd("FETCH 9 FLAGS")
    # 9 (seq-number): "The server should respond with a tagged BAD response to a command
    # that uses a message sequence number greater than the number of messages in the
    # selected mailbox." BAD; NO is accepted too (also not a success); OK is wrong.
    expect(r.status in ("BAD", "NO"), "FETCH 9 in a 3-message mailbox: " + r.tagged)
    r = expect_ok(c.cmd("UID FETCH 999999 FLAGS"))
    # 6.4.9: a UID set that matches nothing is not an error; no FETCH responses.
    expect(not r.find(r"\* \d+ FETCH"), "FETCH response for a nonexistent UID")


@check("6.4.9", "uid-fetch-star")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    r = expect_ok(c.cmd("UID FETCH %d:* FLAGS" % (uids[2] + 100)))
    f = fetches(r)
    # 6.4.9: "*" is the largest UID in use, so N:* with N above it is N:last: the last message.
    expect(list(f) == [3], "UID FETCH %d:* should return message 3 only: %s" % (uids[2] + 100, list(f)))
    expect(num_after(f[3], "UID") == uids[2], "UID item missing from a UID FETCH response")


@check("6.4.6", "store-forms")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    def fl(r, n):
        # \Recent (the messages are new to this session) is not the client's to change.
        return (flags_of(fetches(r).get(n, "")) or set()) - {"\\recent"}
    r = expect_ok(c.cmd("STORE 1 FLAGS (\\Answered cmpk1)"))
    expect(fl(r, 1) == {"\\answered", "cmpk1"}, "FLAGS replace: %s" % fl(r, 1))
    r = expect_ok(c.cmd("STORE 1 +FLAGS (\\Draft)"))
    expect(fl(r, 1) == {"\\answered", "cmpk1", "\\draft"}, "+FLAGS: %s" % fl(r, 1))
    r = expect_ok(c.cmd("STORE 1 -FLAGS (cmpk1 \\Answered)"))
    expect(fl(r, 1) == {"\\draft"}, "-FLAGS: %s" % fl(r, 1))
    r = expect_ok(c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)"))
    # 6.4.6: .SILENT: no untagged FETCH for this client's own change.
    expect(not fetches(r), ".SILENT STORE sent FETCH responses")
    r = expect_ok(c.cmd("STORE 1 -FLAGS.SILENT (\\Deleted)"))
    r = expect_ok(c.cmd("STORE 2 FLAGS.SILENT ()"))
    got = fetches(c.cmd("FETCH 1:2 FLAGS"))
    expect(fl(c.cmd("FETCH 1 FLAGS"), 1) == {"\\draft"} and fl(c.cmd("FETCH 2 FLAGS"), 2) == set(), "state after .SILENT: %s" % got)
    r = expect_ok(c.cmd("STORE 2 +FLAGS \\Seen"))
    expect(fl(r, 2) == {"\\seen"}, "flag list without parentheses: %s" % fl(r, 2))


@check("6.4.6", "store-recent-not-settable")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    # RFC 3501 2.3.2: \Recent "can not be altered by the client". The grammar lets
    # "\Recent" parse as a flag-extension, so BAD, NO or an OK that changes nothing are all
    # allowed; what is checked is that the flag stays.
    c.cmd("STORE 1 -FLAGS (\\Recent)")
    c.cmd("STORE 2 FLAGS (\\Seen)")
    f = fetches(c.cmd("FETCH 1:2 FLAGS"))
    expect(all("\\recent" in flags_of(f[n]) for n in (1, 2)), "\\Recent removed by STORE: %s" % f)


@check("6.4.9", "uid-store")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    r = expect_ok(c.cmd("UID STORE %d +FLAGS (\\Answered)" % uids[2]))
    f = fetches(r)
    # 6.4.9: responses to UID commands carry the UID.
    expect(list(f) == [3] and num_after(f[3], "UID") == uids[2], "UID STORE response lacks UID: %s" % f)


@check("6.4.7", "copy-copyuid", needs=("UIDPLUS|IMAP4REV2",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    dst = ctx.mb(c) + "-dst"
    expect_ok(c.cmd("CREATE " + quote(dst)))
    r = expect_ok(c.cmd("COPY 2:3 " + quote(dst)))
    m = re.match(r"COPYUID (\d+) ([\d:,]+) ([\d:,]+)$", r.code, re.I)
    expect(m, "tagged OK lacks [COPYUID v src dst]: " + r.tagged)
    expect(expand(m.group(2)) == uids[1:], "COPYUID source set wrong")
    s = select(c, dst)
    f = fetches(c.cmd("FETCH 1:* (UID FLAGS)"))
    expect(sorted(num_after(l, "UID") for l in f.values()) == expand(m.group(3)), "COPYUID dest set differs from UIDs")
    # 6.4.7: flags SHOULD be preserved (all real servers do).
    expect({"\\seen", "\\flagged"} <= flags_of(f[1]), "flags not preserved by COPY")


@check("6.4.7", "copy-trycreate")
def _(ctx):
    c = ctx.conn()
    three(ctx, c)
    r = expect_no(c.cmd("COPY 1 " + quote(ctx.mb(c) + "-nowhere")))
    expect(r.code.upper() == "TRYCREATE", "no [TRYCREATE]: " + r.tagged)


@check("6.4.8", "move", needs=("MOVE",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    dst = ctx.mb(c) + "-dst"
    expect_ok(c.cmd("CREATE " + quote(dst)))
    r = expect_ok(c.cmd("MOVE 1:2 " + quote(dst)))
    # RFC 6851 / 9051 6.4.8: * OK [COPYUID ...] before the EXPUNGEs (UIDPLUS servers).
    cu = [i for i, u in enumerate(r.untagged) if re.match(r"\* OK \[COPYUID ", u, re.I)]
    ex = [i for i, u in enumerate(r.untagged) if re.match(r"\* \d+ EXPUNGE", u, re.I)]
    if "UIDPLUS" in ctx.caps or "IMAP4REV2" in ctx.caps:
        expect(cu, "no untagged OK [COPYUID]")
        expect(cu[0] < ex[0] if ex else False, "COPYUID not before the EXPUNGEs")
    expect(len(ex) == 2, "expected 2 EXPUNGE responses")
    expect(exists_of(select(c, dst, "EXAMINE")) == 2, "moved messages not in the target")
    st = c.cmd("STATUS %s (MESSAGES)" % quote(mb)).find(r"\* STATUS ")[0]
    expect(num_after(st, "MESSAGES") == 1, "moved messages still in the source")


@check("6.4.8", "uid-move-trycreate", needs=("MOVE",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    r = expect_no(c.cmd("UID MOVE %d %s" % (uids[0], quote(ctx.mb(c) + "-nowhere"))))
    expect(r.code.upper() == "TRYCREATE", "no [TRYCREATE]: " + r.tagged)
    r = expect_ok(c.cmd("UID MOVE %d INBOX" % uids[0]))
    c.cmd("SELECT INBOX")
    ns = sch(c, 'HEADER Message-ID "<a@x>"')
    if ns:
        c.cmd("STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, ns)))
        c.cmd("EXPUNGE")
    expect(ns, "UID MOVE to INBOX: message not in INBOX")


# ---------------------------------------------------------------- 7 responses

@check("7", "bad-unknown-command")
def _(ctx):
    c = ctx.conn()
    r = c.cmd("XYZZY-NOSUCHCOMMAND")
    # 7.1.3: BAD for an unknown command, tagged with the command's tag.
    expect_bad(r)


@check("7", "bad-syntax")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    for cmd in ("FETCH", "FETCH 1", "FETCH 1 (FLAGS", "FETCH x FLAGS", "STORE 1 FLAGX (\\Seen)", "SELECT", "SEARCH NOSUCHKEY",
                "FETCH 1 NOSUCHITEM", "UID NOSUCH 1", "COPY 1"):
        expect_bad(c.cmd(cmd), "BAD for %r" % cmd)
    expect_ok(c.cmd("NOOP"))


@check("7", "tag-characters")
def _(ctx):
    c = ctx.conn()
    # 9: a tag is any astring char except "+": the tagged reply echoes it exactly.
    r = c.cmd("NOOP", tag="A.b-1_x!")
    expect(r.tagged.startswith("A.b-1_x! OK"), "tag not echoed: " + r.tagged)


@check("7", "pipelining")
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    c.send("p1 NOOP\r\np2 FETCH 1 UID\r\np3 STATUS INBOX (MESSAGES)\r\n")
    ctx.log("C: p1 NOOP / p2 FETCH 1 UID / p3 STATUS INBOX (MESSAGES) in one write")
    # 5.5: each command completes with its own tagged response, in any order (Dovecot
    # answers p3, p2, p1).
    done = {}
    while len(done) < 3:
        line = c.readline()
        ctx.log("S: " + line)
        m = re.match(r"(p[123]) (OK|NO|BAD)", line)
        if m:
            done[m.group(1)] = m.group(2)
    expect(set(done.values()) == {"OK"}, "pipelined commands failed: %s" % done)


@check("7", "literal-synchronizing")
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    # 4.3 / 7.5: a command continues after a literal; the server sends "+" first.
    expect_ok(c.cmd("CREATE", literal=mb))
    expect(mb in list_names(c.cmd('LIST "" ' + quote(mb))), "mailbox named by a literal not created")


@check("7", "literal8-append", needs=("BINARY",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    expect_ok(c.cmd("CREATE " + quote(mb)))
    body = ("Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n\r\n").encode() + BIN
    tag = c.tag()
    head = "%s APPEND %s ~{%d}" % (tag, quote(mb), len(body))
    ctx.log("C: " + head + " <binary>")
    c.send(head + "\r\n")
    line = c.readline()
    ctx.log("S: " + line)
    if not line.startswith("+"):
        raise Fail("no continuation for a literal8 APPEND: " + line)
    c.send(body + b"\r\n")
    r = expect_ok(c.wait(tag))
    # RFC 3516 4.4: the message can then be fetched with its binary content intact.
    select(c, mb)
    l = fetches(c.cmd("FETCH 1 BINARY.PEEK[1]"))[1]
    expect(literal_of(l, "BINARY[1]") == BIN.decode("latin-1"), "binary content changed")


@check("7", "unsolicited-exists-recent", needs=("IMAP4REV1",))
def _(ctx):
    c = ctx.conn()
    c2 = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    select(c, mb)
    expect_ok(c2.cmd("APPEND %s" % quote(mb), literal=msg()))
    r = c.cmd("NOOP")
    # 7.4.1 / RFC 3501 7.3.2: the new message is announced; a rev1 client also gets RECENT.
    expect(exists_of(r) == 2, "no * 2 EXISTS after another session's APPEND")
    # RECENT is the number of \Recent messages: the first was \Recent at SELECT, so 2.
    expect(r.find(r"\* 2 RECENT"), "no * 2 RECENT for the new message")


@check("7", "unsolicited-expunge")
def _(ctx):
    c = ctx.conn()
    c2 = ctx.conn()
    mb, uids = three(ctx, c)
    select(c2, mb)
    expect_ok(c2.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)"))
    expect_ok(c2.cmd("EXPUNGE"))
    r = c.cmd("NOOP")
    expect([u.split()[1] for u in r.find(r"\* \d+ EXPUNGE")] == ["2"], "no * 2 EXPUNGE after another session's EXPUNGE")


@check("7", "unsolicited-flags")
def _(ctx):
    c = ctx.conn()
    c2 = ctx.conn()
    mb, uids = three(ctx, c)
    select(c2, mb)
    expect_ok(c2.cmd("STORE 1 +FLAGS.SILENT (\\Answered)"))
    r = c.cmd("NOOP")
    f = fetches(r)
    # 7.5.2: flag changes by others come as untagged FETCH with FLAGS (RFC 9051 7 MUST
    # for the selected mailbox, on NOOP at the latest).
    expect(1 in f and "\\answered" in (flags_of(f[1]) or set()), "no * 1 FETCH (FLAGS (\\Answered ...))")


@check("7", "second-user-isolation")
def _(ctx):
    if not ctx.opts.user2:
        raise Skip("needs --user2")
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg()])
    c2 = ctx.conn(user=ctx.opts.user2, password=ctx.opts.password2)
    r = c2.cmd("SELECT " + quote(mb))
    expect(r.status == "NO", "user2 can select user1's mailbox: " + r.tagged)
    expect(mb not in list_names(c2.cmd('LIST "" ' + quote(ctx.prefix + "*"))), "user2 sees user1's mailbox")


# ---------------------------------------------------------------- RFC 3501 \Recent

@check("3501", "recent-select", needs=("IMAP4REV1",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg()])
    r = select(c, mb)
    # RFC 3501 6.3.1/2.3.2: * n RECENT in SELECT; the first session to see them gets \Recent.
    rec = r.find(r"\* \d+ RECENT")
    expect(rec and rec[0].split()[1] == "2", "expected * 2 RECENT")
    f = fetches(c.cmd("FETCH 1:2 FLAGS"))
    expect(all("\\recent" in flags_of(l) for l in f.values()), "\\Recent missing in FLAGS")
    expect(sch(c, "RECENT") == [1, 2] and sch(c, "NEW") == [1, 2] and sch(c, "OLD") == [], "SEARCH RECENT/NEW/OLD")
    c2 = ctx.conn()
    r = select(c2, mb)
    rec = r.find(r"\* \d+ RECENT")
    expect(rec and rec[0].split()[1] == "0", "second session: expected * 0 RECENT")
    f = fetches(c2.cmd("FETCH 1:2 FLAGS"))
    expect(all("\\recent" not in flags_of(l) for l in f.values()), "\\Recent given to two sessions")


# ---------------------------------------------------------------- RFC 5256

def sorted_three(ctx, c):
    mb = ctx.mb(c)
    # internal dates (ARRIVAL) 1 < 2 < 3, so no ties
    ctx.fill(c, mb, [(msg(subject="Re: banana", date="Wed, 9 Feb 1994 10:00:00 +0000", mid="<s1@x>", frm="zed@example.test"),
                      "", "01-Jan-2020 10:00:00 +0000"),
                     (msg(subject="apple", date="Mon, 7 Feb 1994 10:00:00 +0000", mid="<s2@x>", frm="amy@example.test", body="x\r\n"), "", "02-Jan-2020 10:00:00 +0000"),
                     (msg(subject="[fwd: Banana]", date="Tue, 8 Feb 1994 10:00:00 +0000", mid="<s3@x>", extra="References: <s1@x>\r\n",
                         frm="bob@example.test", body="a much longer body than the others, to sort by size\r\n" * 3), "", "03-Jan-2020 10:00:00 +0000")])
    select(c, mb)
    return mb


def sort_nums(r):
    s = r.find(r"\* SORT")
    expect(s, "no * SORT response")
    return [int(x) for x in s[0].split()[2:]]


@check("5256", "sort", needs=("SORT",))
def _(ctx):
    c = ctx.conn()
    sorted_three(ctx, c)
    for keys, want in (("(SUBJECT)", [2, 1, 3]), ("(DATE)", [2, 3, 1]), ("(REVERSE DATE)", [1, 3, 2]),
                       ("(ARRIVAL)", [1, 2, 3]), ("(REVERSE ARRIVAL)", [3, 2, 1]), ("(FROM)", [2, 3, 1]),
                       ("(SIZE)", [2, 1, 3])):
        got = sort_nums(expect_ok(c.cmd("SORT %s UTF-8 ALL" % keys)))
        # (SUBJECT): base subjects "banana", "apple", "banana" (RFC 5256 2.1); ties by
        # sequence number. [fwd: ...] is removed by the base-subject rules.
        expect(got == want, "SORT %s: %s, expected %s" % (keys, got, want))


@check("5256", "thread-orderedsubject", needs=("THREAD=ORDEREDSUBJECT",))
def _(ctx):
    c = ctx.conn()
    sorted_three(ctx, c)
    r = expect_ok(c.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL"))
    t = r.find(r"\* THREAD")
    # RFC 5256 3: threads by base subject ("banana" for 1 and 3), each sorted by sent date
    # (3 is 8-Feb, 1 is 9-Feb), the first as parent; threads ordered by their first date.
    expect(t and t[0].strip().upper() == "* THREAD (2)(3 1)", "got %s, expected * THREAD (2)(3 1)" % t)


@check("5256", "thread-references", needs=("THREAD=REFERENCES",))
def _(ctx):
    c = ctx.conn()
    sorted_three(ctx, c)
    r = expect_ok(c.cmd("THREAD REFERENCES UTF-8 ALL"))
    t = r.find(r"\* THREAD")
    # 3 references 1; RFC 5256 3 (REFERENCES): the sibling sets are sorted by date, so the
    # (1 3) thread (dated by 1, 9-Feb) comes after (2) (7-Feb).
    expect(t and t[0].strip().upper() == "* THREAD (2)(1 3)", "got %s, expected * THREAD (2)(1 3)" % t)


# ---------------------------------------------------------------- RFC 7162

def modseq_of(line):
    m = re.search(r"MODSEQ \((\d+)\)", line, re.I)
    return int(m.group(1)) if m else None


@check("7162", "condstore-select", needs=("CONDSTORE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg()])
    r = expect_ok(c.cmd("SELECT %s (CONDSTORE)" % quote(mb)))
    # 3.1.2.1: OK [HIGHESTMODSEQ n] (or [NOMODSEQ]) on a CONDSTORE SELECT.
    expect(r.find(r"\* OK \[HIGHESTMODSEQ \d+\]"), "no * OK [HIGHESTMODSEQ]")
    r = expect_ok(c.cmd("STORE 1 +FLAGS (\\Flagged)"))
    # 3.2: once CONDSTORE is enabled, FETCH responses with FLAGS carry MODSEQ.
    f = fetches(r)
    expect(1 in f and modseq_of(f[1]), "STORE's FETCH response lacks MODSEQ: %s" % f)


@check("7162", "condstore-changedsince", needs=("CONDSTORE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg(), msg()])
    expect_ok(c.cmd("ENABLE CONDSTORE"))
    select(c, mb)
    f = fetches(c.cmd("FETCH 1:* (MODSEQ)"))
    m = max(modseq_of(l) for l in f.values())
    expect_ok(c.cmd("STORE 2 +FLAGS.SILENT (\\Answered)"))
    r = expect_ok(c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m))
    f = fetches(r)
    # 3.1.4.1: only messages with a mod-sequence above the given one; MODSEQ included.
    expect(list(f) == [2], "CHANGEDSINCE returned %s, expected [2]" % list(f))
    expect(modseq_of(f[2]) and modseq_of(f[2]) > m, "MODSEQ missing or not above %d" % m)
    s = expect_ok(c.cmd("SEARCH MODSEQ %d" % (m + 1)))
    sl = s.find(r"\* SEARCH")
    # 3.1.5: SEARCH MODSEQ: the result ends with (MODSEQ highest-of-matches).
    expect(sl and re.match(r"\* SEARCH 2 \(MODSEQ \d+\)$", sl[0].strip(), re.I), "SEARCH MODSEQ: %s" % sl)


@check("7162", "condstore-unchangedsince", needs=("CONDSTORE",))
def _(ctx):
    c = ctx.conn()
    mb = ctx.mb(c)
    ctx.fill(c, mb, [msg(), msg()])
    expect_ok(c.cmd("ENABLE CONDSTORE"))
    select(c, mb)
    f = fetches(c.cmd("FETCH 1:* (MODSEQ)"))
    m = max(modseq_of(l) for l in f.values())
    expect_ok(c.cmd("STORE 2 +FLAGS.SILENT (\\Answered)"))
    r = c.cmd("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % m)
    # 3.1.3: message 2 changed since m: not stored, listed in OK [MODIFIED 2]; 1 is stored.
    expect(r.ok() and re.match(r"MODIFIED 2$", r.code, re.I), "expected OK [MODIFIED 2]: " + r.tagged)
    f = fetches(c.cmd("FETCH 1:2 FLAGS"))
    expect("\\flagged" in flags_of(f[1]) and "\\flagged" not in flags_of(f[2]), "UNCHANGEDSINCE applied wrongly")


@check("7162", "qresync-select-vanished", needs=("QRESYNC",))
def _(ctx):
    c = ctx.conn()
    mb, uids = three(ctx, c)
    s = c.cmd("STATUS %s (UIDVALIDITY HIGHESTMODSEQ)" % quote(mb))
    c.cmd("CLOSE")
    st = s.find(r"\* STATUS ")[0]
    uv, hm = num_after(st, "UIDVALIDITY"), num_after(st, "HIGHESTMODSEQ")
    c2 = ctx.conn()
    select(c2, mb)
    c2.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c2.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
    c2.cmd("EXPUNGE")
    expect_ok(c.cmd("ENABLE QRESYNC"))
    r = expect_ok(c.cmd("SELECT %s (QRESYNC (%d %d))" % (quote(mb), uv, hm)))
    # 3.2.5.1: VANISHED (EARLIER) for the expunged UID, FETCH for the changed message.
    v = r.find(r"\* VANISHED \(EARLIER\) ")
    expect(v and expand(v[0].split()[-1]) == [uids[1]], "no * VANISHED (EARLIER) %d: %s" % (uids[1], v))
    f = fetches(r)
    expect(any(num_after(l, "UID") == uids[2] and "\\seen" in flags_of(l) for l in f.values()),
           "no FETCH (UID %d FLAGS (\\Seen ...)) for the changed message" % uids[2])
    expect(r.find(r"\* OK \[HIGHESTMODSEQ \d+\]"), "no HIGHESTMODSEQ")


@check("7162", "qresync-expunge-vanished", needs=("QRESYNC",))
def _(ctx):
    c = ctx.conn()
    expect_ok(c.cmd("ENABLE QRESYNC"))
    mb, uids = three(ctx, c)
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = expect_ok(c.cmd("EXPUNGE"))
    # 3.2.10: with QRESYNC enabled, VANISHED replaces EXPUNGE.
    expect(not r.find(r"\* \d+ EXPUNGE"), "* n EXPUNGE sent with QRESYNC enabled")
    v = r.find(r"\* VANISHED ")
    expect(v and expand(v[0].split()[-1]) == [uids[0]], "no * VANISHED %d" % uids[0])
    r = expect_ok(c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"))
    v = r.find(r"\* VANISHED \(EARLIER\) ")
    # 3.2.6: UID FETCH ... VANISHED reports expunged UIDs in the range.
    expect(v and uids[0] in expand(v[0].split()[-1]), "no VANISHED (EARLIER) with UID FETCH ... VANISHED")


# ---------------------------------------------------------------- runner

def main():
    ap = argparse.ArgumentParser(description="IMAP compliance checks (RFC 9051 sections 6-7 and extensions)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=143)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--user2")
    ap.add_argument("--password2")
    ap.add_argument("--tls", action="store_true", help="implicit TLS (certificate not verified)")
    ap.add_argument("--only", help="run only checks whose name matches this regex")
    ap.add_argument("--skip", help="skip checks whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the checks and exit")
    opts = ap.parse_args()
    if opts.list:
        for section, name, needs, _f in CHECKS:
            print("%-6s %s%s" % (section, name, "  (needs %s)" % " ".join(needs) if needs else ""))
        return 0

    probe = Ctx(opts, "probe", set())
    c = Conn(probe, login=False)
    caps = c.caps()  # before and after login: AUTH=, STARTTLS are only offered before
    expect_ok(c.cmd("LOGIN %s %s" % (quote(opts.user), quote(opts.password))))
    caps |= c.caps()
    c.close()
    print("server capabilities: " + " ".join(sorted(caps)))
    results = {}
    failed = []
    for section, name, needs, f in CHECKS:
        if opts.only and not re.search(opts.only, name):
            continue
        if opts.skip and re.search(opts.skip, name):
            results.setdefault(section, [0, 0, 0])[2] += 1
            print("SKIP %-6s %s (--skip)" % (section, name))
            continue
        missing = [n for n in needs if not any(alt in caps for alt in n.upper().split("|"))]
        if missing:
            results.setdefault(section, [0, 0, 0])[2] += 1
            print("SKIP %-6s %s (server lacks %s)" % (section, name, ", ".join(missing)))
            continue
        ctx = Ctx(opts, name, caps)
        status, why = "PASS", ""
        try:
            ctx.cleanup()
            ctx.transcript = []
            f(ctx)
        except Skip as e:
            status, why = "SKIP", str(e)
        except Fail as e:
            status, why = "FAIL", str(e)
        except EOFError as e:
            status, why = "FAIL", "connection closed by the server"
        except Exception as e:  # a malformed answer the parsing helpers choked on
            status, why = "FAIL", "%s: %s" % (type(e).__name__, e)
        finally:
            for cc in ctx.conns:
                cc.close()
        try:
            transcript = ctx.transcript
            ctx.cleanup()
        except Exception as e:
            if status == "PASS":
                status, why = "FAIL", "cleanup failed: %s" % e
        row = results.setdefault(section, [0, 0, 0])
        row[{"PASS": 0, "FAIL": 1, "SKIP": 2}[status]] += 1
        why = why.encode("unicode_escape").decode("ascii")
        print("%s %-6s %s%s" % (status, section, name, (": " + why) if why else ""))
        if status == "FAIL":
            failed.append(name)
            for line in transcript[-60:]:
                print("    " + line)
        sys.stdout.flush()
    print()
    print("section  pass  fail  skip")
    tot = [0, 0, 0]
    for section in sorted(results, key=lambda s: [int(x) if x.isdigit() else 0 for x in s.split(".")]):
        p, fl, s = results[section]
        tot = [tot[0] + p, tot[1] + fl, tot[2] + s]
        print("%-7s %5d %5d %5d" % (section, p, fl, s))
    print("%-7s %5d %5d %5d" % ("total", tot[0], tot[1], tot[2]))
    if failed:
        print("FAILED: " + " ".join(failed))
    else:
        print("OK: all %d checks passed" % tot[0])
    return min(len(failed), 100)


if __name__ == "__main__":
    sys.exit(main())
