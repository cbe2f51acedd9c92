#!/usr/bin/env python3
"""Multi-session IMAP stress test with a consistency checker (issue #18).

N sessions log in to one account, SELECT the same mailbox and send random commands
(FETCH, UID FETCH, STORE, UID STORE, EXPUNGE, UID EXPUNGE, APPEND, COPY, MOVE, NOOP,
CHECK, SEARCH, UID SEARCH) for a while. The protocol is spoken raw (no imaplib), so every
untagged response is seen; each session keeps a model of its view of the mailbox built
from those responses only, and the checker reports what RFC 9051 / RFC 3501 forbid:

  keyword-announced  a keyword in an untagged FETCH FLAGS that no FLAGS response (SELECT's
                     or a later one) announced to that session (RFC 9051 7.3.5, 3501 7.2.6)
  seq-count          EXISTS smaller than the count the session was told (minus the
                     EXPUNGEs announced), EXPUNGE of a sequence number outside 1..count
                     (RFC 9051 7.4.1, 7.5.1; 3501 7.3.1, 7.4.1)
  seq-range          FETCH or SEARCH naming a sequence number outside 1..count
  expunge-forbidden  EXPUNGE sent while answering FETCH, STORE or SEARCH (not UID), or
                     during the continuation of an APPEND literal (RFC 9051 7.5.1)
  uid-order          UIDs not strictly ascending with the sequence numbers; an APPENDUID /
                     COPYUID into the selected mailbox not above every UID already known
                     (RFC 9051 2.3.1.1); APPENDUID/COPYUID UIDVALIDITY not the SELECT's
  uid-consistency    a FETCH giving another UID for a sequence number than the model has;
                     a UID FETCH response without UID; a UID SEARCH result the session does
                     not know (RFC 9051 6.4.9, 2.3.1.1)
  convergence        after a quiescent phase (NOOP/CHECK twice, then FETCH 1:* (UID
                     FLAGS)) the sessions, and a fresh session, disagree on the UIDs or on
                     the flags of a UID; FETCH 1:* leaving messages without UID or FLAGS
  protocol           BAD for a well-formed command, NO [SERVERBUG], untagged BAD, a
                     response that does not parse, a dropped connection or a timeout

Warnings (reported, but fail the run only when said): recent (\\Recent / RECENT for IMAP4rev1
sessions: at most one session has a message \\Recent; none for IMAP4rev2 sessions; fatal
with --strict), stale-flags (flags changed by others not announced by the two
NOOPs, a SHOULD in RFC 3501 5.2), store-result (a STORE without .SILENT whose FETCH
responses do not show the change, or are missing: RFC 9051 6.4.6 says the new value is
returned "as if a FETCH of those flags was done", but a concurrent STORE may race),
fetch-missing (a FETCH n:* that left messages without their UID).

Usage: imap-stress.py --host 127.0.0.1 --port N --user U --password P --sessions 5
       --seconds 20 --seed S [--tls] [--rev2-fraction 0.5] [--strict]

--self-test feeds made-up responses to the model and checks that each rule fires.

Exit status: 0 clean, 1 violations, 2 setup failed. Python 3 standard library only.
"""

import argparse
import collections
import random
import re
import socket
import ssl
import sys
import threading
import time
import traceback

SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
KEYWORDS = ["$Label1", "$hello", "Junk", "NonJunk", "$Junk", "$NotJunk", "$Forwarded", "Work_2"]
RULES = [
    "keyword-announced",
    "seq-count",
    "seq-range",
    "expunge-forbidden",
    "uid-order",
    "uid-consistency",
    "convergence",
    "protocol",
]
WARNINGS = ["recent", "stale-flags", "store-result", "fetch-missing"]
# The warnings --strict makes fatal: what Gannet implements.
STRICT = ["recent", "stale-flags"]
RESPONSE_TIMEOUT = 30.0
TRANSCRIPT_LINES = 40
EXAMPLE_LINES = 14
MAX_LINE_SHOWN = 240


class Drop(Exception):
    """The connection closed, timed out or said BYE."""


class Registry:
    """Violations and warnings of all sessions, by rule, with the first examples."""

    def __init__(self, strict_recent):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.examples = collections.defaultdict(list)
        self.strict_recent = strict_recent

    def add(self, rule, session, message, transcript):
        with self.lock:
            self.counts[rule] += 1
            if len(self.examples[rule]) < 3:
                self.examples[rule].append((session, message, list(transcript)[-EXAMPLE_LINES:]))

    def fatal_rules(self):
        fatal = [r for r in self.counts
                 if r not in WARNINGS or (r in STRICT and self.strict_recent)]
        return [r for r in RULES + WARNINGS + sorted(self.counts) if r in fatal and r in self.counts]


# ---------------------------------------------------------------------------------------
# Parsing

def parse_data(text, literals):
    """Parses IMAP data (atoms, numbers, quoted strings, literals, lists) into a list of
    str and nested lists. Literals are marked \\x00L<index>\\x00 in `text`."""
    stack = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == " ":
            i += 1
        elif c == "(":
            stack.append([])
            i += 1
        elif c == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced )")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == '"':
            j, out = i + 1, []
            while True:
                if j >= n:
                    raise ValueError("unterminated string")
                if text[j] == "\\":
                    out.append(text[j + 1 : j + 2])
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    out.append(text[j])
                    j += 1
            stack[-1].append("".join(out))
            i = j + 1
        elif c == "\x00":
            j = text.index("\x00", i + 1)
            stack[-1].append(literals[int(text[i + 2 : j])].decode("utf-8", "replace"))
            i = j + 1
        else:
            j = i
            depth = 0
            while j < n:
                ch = text[j]
                if ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                elif depth == 0 and ch in ' ()"':
                    break
                j += 1
            stack[-1].append(text[i:j])
            i = j
    if len(stack) != 1:
        raise ValueError("unbalanced (")
    return stack[0]


def parse_set(text):
    """A sequence set without '*' (as servers send in ESEARCH) as a list of numbers."""
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            if a > b:
                a, b = b, a
            if b - a > 100000:
                raise ValueError("huge range")
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    return out


def compress(nums):
    """Numbers as a compact sequence set."""
    nums = sorted(set(nums))
    parts, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}:{nums[j]}")
        i = j + 1
    return ",".join(parts)


RESP_CODE = re.compile(r"^\[([^\]]*)\]\s?(.*)$")


def split_code(rest):
    m = RESP_CODE.match(rest)
    if m:
        return m.group(1), m.group(2)
    return None, rest


def is_keyword(flag):
    return not flag.startswith("\\")


def norm(flag):
    return flag.lower()


# ---------------------------------------------------------------------------------------
# The session

class Entry:
    """One message in a session's view: its UID and flags as far as the session was told."""

    __slots__ = ("uid", "flags", "recent")

    def __init__(self):
        self.uid = None
        self.flags = None
        self.recent = False


class Ctx:
    """What the command being answered is, for the rules that depend on it."""

    def __init__(self, kind, line):
        self.kind = kind
        self.line = line
        self.negotiating = False
        self.store = None  # (op, flags set, silent, [entries])
        self.fetched = {}  # id(entry) -> flags seen in this command
        self.uid_cmd = kind.startswith("UID ")
        self.fetch_uids_missing = []
        self.max_uid_before = 0
        self.dest_selected = False


class Session:
    def __init__(self, name, args, registry, rev2, rng):
        self.name = name
        self.args = args
        self.reg = registry
        self.rev2 = rev2
        self.rng = rng
        self.transcript = collections.deque(maxlen=TRANSCRIPT_LINES)
        self.tag = 0
        self.sock = None
        self.file = None
        self.msgs = []
        self.announced = set()
        self.ever_announced = set()
        self.uidvalidity = None
        self.capabilities = set()
        self.ctx = None
        self.stats = collections.Counter()
        self.replies = collections.Counter()
        self.no_examples = []
        self.dead = False
        self.saw_recent = False
        self.mailbox = args.mailbox
        self.full_log = open(f"{args.log_dir}/{name}.log", "w") if args.log_dir else None
        self.pending_store = []  # (entry, message, transcript): STOREs without a FETCH

    # ---- wire ----------------------------------------------------------------------

    def log(self, prefix, text):
        if self.full_log is not None:
            self.full_log.write(f"{time.time():.6f} {prefix} {text}\n")
        if len(text) > MAX_LINE_SHOWN:
            text = text[:MAX_LINE_SHOWN] + f"... ({len(text)} chars)"
        self.transcript.append(f"{prefix} {text}")

    def violation(self, rule, message):
        self.reg.add(rule, self.name, message, self.transcript)

    def connect(self):
        sock = socket.create_connection((self.args.host, self.args.port), timeout=RESPONSE_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.args.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=self.args.host)
        self.sock = sock
        self.file = sock.makefile("rb")
        text, _ = self.read_response()
        if not text.startswith("* OK"):
            raise Drop(f"greeting: {text}")
        code, _ = split_code(text[5:])
        if code and code.upper().startswith("CAPABILITY "):
            self.capabilities = set(code.upper().split()[1:])

    def send(self, data, shown):
        self.log("C:", shown)
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Drop(f"send failed: {e}")

    def read_response(self):
        """One whole response (literals inlined as markers): (text, literals)."""
        parts, literals = [], []
        while True:
            try:
                line = self.file.readline(1 << 20)
            except (socket.timeout, TimeoutError):
                raise Drop(f"no response within {RESPONSE_TIMEOUT:.0f} s")
            except OSError as e:
                raise Drop(f"read failed: {e}")
            if not line:
                raise Drop("connection closed")
            if not line.endswith(b"\r\n"):
                if not line.endswith(b"\n"):
                    raise Drop("line too long or cut")
            m = re.search(rb"\{(\d+)\+?\}\r?\n$", line)
            if m:
                size = int(m.group(1))
                data = self.file.read(size)
                if len(data) < size:
                    raise Drop("connection closed in a literal")
                parts.append(line[: m.start()].decode("utf-8", "replace"))
                parts.append(f"\x00L{len(literals)}\x00")
                literals.append(data)
                continue
            parts.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
            text = "".join(parts)
            self.log("S:", text.replace("\x00", "~"))
            return text, literals

    def command(self, line, kind, literal=None, nonsync=False, ctx=None):
        """Sends `TAG line` (with a literal after it, if given) and reads to the tagged
        reply, applying every untagged response to the model: (status, code, text)."""
        self.tag += 1
        tag = f"{self.name}.{self.tag}"
        ctx = ctx or Ctx(kind, line)
        ctx.max_uid_before = max([e.uid for e in self.msgs if e.uid] or [0])
        self.ctx = ctx
        self.stats[kind] += 1
        if literal is None:
            self.send(f"{tag} {line}\r\n".encode(), f"{tag} {line}")
        elif nonsync:
            self.send(f"{tag} {line}\r\n".encode() + literal + b"\r\n", f"{tag} {line} <{len(literal)} bytes>")
        else:
            self.send(f"{tag} {line}\r\n".encode(), f"{tag} {line}")
            ctx.negotiating = True
            while True:
                text, lits = self.read_response()
                if text.startswith("+"):
                    break
                if text.startswith(tag + " "):
                    ctx.negotiating = False
                    return self.tagged(tag, text, ctx)
                self.untagged(text, lits)
            ctx.negotiating = False
            self.send(literal + b"\r\n", f"<{len(literal)} bytes>")
        while True:
            text, lits = self.read_response()
            if text.startswith(tag + " "):
                return self.tagged(tag, text, ctx)
            if text.startswith("+"):
                self.violation("protocol", f"unexpected continuation request in {kind}: {text}")
                continue
            self.untagged(text, lits)

    def tagged(self, tag, text, ctx):
        rest = text[len(tag) + 1 :]
        status, _, rest = rest.partition(" ")
        status = status.upper()
        code, msg = split_code(rest)
        self.replies[status] += 1
        if status == "BAD":
            self.violation("protocol", f"BAD for a well-formed {ctx.kind}: {text}")
        elif status == "NO":
            if code and code.upper().startswith("SERVERBUG"):
                self.violation("protocol", f"NO [SERVERBUG] for {ctx.kind}: {text}")
            self.stats["NO " + ctx.kind] += 1
            if len(self.no_examples) < 3:
                self.no_examples.append(text)
        elif status != "OK":
            self.violation("protocol", f"tagged reply neither OK, NO nor BAD: {text}")
        if code:
            self.response_code(code, ctx)
        self.ctx = None
        self.after_command(ctx, status)
        return status, code, msg

    # ---- untagged responses -----------------------------------------------------------

    def untagged(self, text, literals):
        if not text.startswith("* "):
            self.violation("protocol", f"neither tagged nor untagged: {text!r}")
            return
        body = text[2:]
        m = re.match(r"^(\d+) ([A-Za-z]+)(?: (.*))?$", body)
        try:
            if m:
                n, what, rest = int(m.group(1)), m.group(2).upper(), m.group(3) or ""
                if what == "EXISTS":
                    self.exists(n)
                elif what == "EXPUNGE":
                    self.expunge(n)
                elif what == "RECENT":
                    self.recent_count(n)
                elif what == "FETCH":
                    self.fetch(n, parse_data(rest, literals))
                else:
                    self.violation("protocol", f"unknown numbered response: {text}")
                return
            word, _, rest = body.partition(" ")
            word = word.upper()
            if word == "FLAGS":
                items = parse_data(rest, literals)
                if len(items) != 1 or not isinstance(items[0], list):
                    raise ValueError("FLAGS without a list")
                self.announced = {norm(f) for f in items[0]}
                self.ever_announced |= self.announced
            elif word in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
                code, msg = split_code(rest)
                if word == "BAD":
                    self.violation("protocol", f"untagged BAD: {text}")
                if word == "BYE" and not (self.ctx and self.ctx.kind == "LOGOUT"):
                    self.violation("protocol", f"BYE during {self.ctx.kind if self.ctx else '-'}: {text}")
                    self.dead = True
                if code:
                    self.response_code(code, self.ctx)
            elif word == "SEARCH":
                self.search([int(x) for x in rest.split()] if rest.strip() else [], self.ctx.uid_cmd if self.ctx else False)
            elif word == "ESEARCH":
                self.esearch(parse_data(rest, literals))
            elif word == "CAPABILITY":
                self.capabilities = set(rest.upper().split())
            elif word in ("ENABLED", "LIST", "LSUB", "STATUS", "NAMESPACE", "ID", "QUOTA", "QUOTAROOT"):
                pass
            elif word == "VANISHED":
                self.violation("protocol", f"VANISHED without QRESYNC enabled: {text}")
            else:
                self.violation("protocol", f"unknown untagged response: {text}")
        except (ValueError, IndexError, KeyError) as e:
            self.violation("protocol", f"unparsable response ({e}): {text}")

    def response_code(self, code, ctx):
        parts = code.split()
        name = parts[0].upper()
        if name == "UIDVALIDITY" and len(parts) == 2 and ctx and ctx.kind == "SELECT":
            self.uidvalidity = int(parts[1])
        elif name == "APPENDUID" and len(parts) == 3 and ctx and ctx.dest_selected:
            validity, uids = int(parts[1]), parse_set(parts[2])
            self.check_new_uids("APPENDUID", validity, uids, ctx)
        elif name == "COPYUID" and len(parts) == 4 and ctx and ctx.dest_selected:
            validity, uids = int(parts[1]), parse_set(parts[3])
            self.check_new_uids("COPYUID", validity, uids, ctx)
        elif name == "SERVERBUG":
            self.violation("protocol", f"[SERVERBUG] in an untagged response during {ctx.kind if ctx else '-'}")

    def check_new_uids(self, what, validity, uids, ctx):
        if self.uidvalidity is not None and validity != self.uidvalidity:
            self.violation("uid-order", f"{what} UIDVALIDITY {validity}, SELECT said {self.uidvalidity}")
        low = [u for u in uids if u <= ctx.max_uid_before]
        if low:
            self.violation(
                "uid-order",
                f"{what} into the selected mailbox gave UIDs {compress(low)}, not above UID {ctx.max_uid_before} already known",
            )

    def exists(self, n):
        count = len(self.msgs)
        if n < count:
            self.violation("seq-count", f"* {n} EXISTS but the session was told of {count} messages (EXISTS may not decrease)")
            del self.msgs[n:]
        while len(self.msgs) < n:
            self.msgs.append(Entry())

    def expunge(self, n):
        ctx = self.ctx
        if ctx and (ctx.negotiating or ctx.kind in ("FETCH", "STORE", "SEARCH")):
            where = "the continuation of " + ctx.kind if ctx.negotiating else "a " + ctx.kind
            self.violation("expunge-forbidden", f"* {n} EXPUNGE while answering {where}")
        if n < 1 or n > len(self.msgs):
            self.violation("seq-count", f"* {n} EXPUNGE but the session knows {len(self.msgs)} messages")
            return
        del self.msgs[n - 1]

    def recent_count(self, n):
        if self.rev2:
            self.violation("recent", f"* {n} RECENT sent to an IMAP4rev2 session")
        elif n > len(self.msgs):
            self.violation("recent", f"* {n} RECENT but only {len(self.msgs)} messages")
        if n > 0:
            self.saw_recent = True

    def fetch(self, n, data):
        if len(data) != 1 or not isinstance(data[0], list) or len(data[0]) % 2:
            raise ValueError("FETCH data is not a list of pairs")
        items = data[0]
        uid = flags = None
        for k in range(0, len(items), 2):
            key = items[k].upper() if isinstance(items[k], str) else ""
            if key == "UID":
                uid = int(items[k + 1])
            elif key == "FLAGS":
                if not isinstance(items[k + 1], list):
                    raise ValueError("FLAGS is not a list")
                flags = items[k + 1]
        ctx = self.ctx
        if n < 1 or n > len(self.msgs):
            self.violation("seq-range", f"* {n} FETCH but the session knows {len(self.msgs)} messages")
            return
        entry = self.msgs[n - 1]
        if ctx and ctx.kind in ("UID FETCH",) and uid is None:
            self.violation("uid-consistency", f"* {n} FETCH answering UID FETCH without UID")
        if uid is not None:
            if entry.uid is None:
                self.learn_uid(n, uid)
            elif entry.uid != uid:
                self.violation("uid-consistency", f"* {n} FETCH says UID {uid}, the session has UID {entry.uid} at {n}")
                entry.uid = uid
        if flags is not None:
            unannounced = [f for f in flags if is_keyword(f) and norm(f) not in self.announced]
            unannounced += [f for f in flags if not is_keyword(f) and norm(f) not in self.announced
                            and f.lower() not in ("\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft", "\\recent")]
            for f in unannounced:
                if norm(f) in self.ever_announced:
                    self.violation("keyword-announced", f"{f} in * {n} FETCH (UID {entry.uid}), dropped by the last FLAGS response")
                else:
                    self.violation("keyword-announced", f"{f} in * {n} FETCH (UID {entry.uid}) never announced by a FLAGS response")
            recent = any(f.lower() == "\\recent" for f in flags)
            if recent:
                self.saw_recent = True
                if self.rev2:
                    self.violation("recent", f"\\Recent in * {n} FETCH to an IMAP4rev2 session")
            entry.flags = {f for f in flags if f.lower() != "\\recent"}
            entry.recent = recent
            if ctx is not None:
                ctx.fetched[id(entry)] = entry.flags

    def learn_uid(self, n, uid):
        below = next((self.msgs[i].uid for i in range(n - 2, -1, -1) if self.msgs[i].uid is not None), None)
        above = next((self.msgs[i].uid for i in range(n, len(self.msgs)) if self.msgs[i].uid is not None), None)
        if (below is not None and uid <= below) or (above is not None and uid >= above):
            self.violation(
                "uid-order",
                f"* {n} FETCH gives UID {uid} between UIDs {below} and {above} of its neighbours: not ascending",
            )
        self.msgs[n - 1].uid = uid

    def search(self, nums, uid):
        if uid:
            self.check_uids(nums, "SEARCH")
        else:
            bad = [x for x in nums if x < 1 or x > len(self.msgs)]
            if bad:
                self.violation("seq-range", f"SEARCH names {compress(bad)}, the session knows {len(self.msgs)} messages")

    def esearch(self, data):
        i, uid = 0, False
        if data and isinstance(data[0], list):
            i = 1
        if i < len(data) and isinstance(data[i], str) and data[i].upper() == "UID":
            uid, i = True, i + 1
        while i + 1 < len(data):
            key, value = data[i].upper(), data[i + 1]
            i += 2
            if key in ("ALL", "MIN", "MAX"):
                nums = parse_set(value)
                self.search(nums, uid)
            elif key == "COUNT" and not uid and int(value) > len(self.msgs):
                self.violation("seq-range", f"ESEARCH COUNT {value}, the session knows {len(self.msgs)} messages")

    def check_uids(self, uids, what):
        known = {e.uid for e in self.msgs if e.uid is not None}
        if any(e.uid is None for e in self.msgs):
            return
        unknown = [u for u in uids if u not in known]
        if unknown:
            self.violation("uid-consistency", f"UID {what} names UID {compress(unknown)}, not in the session's view")

    def after_command(self, ctx, status):
        if ctx.store and status == "OK":
            op, flags, silent, entries, before = ctx.store
            if silent:
                # .SILENT: the client works the new flags out itself (RFC 9051 6.4.6).
                alive = {id(e) for e in self.msgs}
                want = {norm(f) for f in flags}
                for e in entries:
                    if id(e) not in alive or id(e) in ctx.fetched or e.flags is None:
                        continue
                    if op == "+":
                        e.flags = e.flags | {f for f in flags if norm(f) not in {norm(g) for g in e.flags}}
                    elif op == "-":
                        e.flags = {f for f in e.flags if norm(f) not in want}
                    else:
                        e.flags = set(flags)
            else:
                alive = {id(e) for e in self.msgs}
                missing, wrong = [], []
                for e in entries:
                    if id(e) not in alive:
                        continue
                    got = ctx.fetched.get(id(e))
                    want = {norm(f) for f in flags}
                    if got is None:
                        # Only when the flags the session knew would change: a server
                        # may leave out messages the STORE did not change.
                        old = before.get(id(e))
                        if old is not None:
                            new = old | want if op == "+" else (old - want if op == "-" else want)
                            if new != old:
                                missing.append(e)
                        continue
                    have = {norm(f) for f in got}
                    if (op == "+" and not want <= have) or (op == "-" and want & have) or (op == "" and want != have):
                        wrong.append((e.uid, sorted(got)))
                for e in missing:
                    # Judged at the end: a message expunged meanwhile by another session
                    # may get no FETCH; one still there at the end existed all along.
                    self.pending_store.append((e, f"{ctx.line}: no FETCH FLAGS for UID {e.uid}, whose flags as this "
                                               "session knew them change, and it was not expunged later", list(self.transcript)))
                if wrong:
                    self.violation("store-result", f"{ctx.line}: FETCH FLAGS do not show the change: {wrong[:3]}")

    # ---- commands ----------------------------------------------------------------------

    def login(self):
        self.connect()
        user, password = self.args.user.replace("\\", "\\\\").replace('"', '\\"'), self.args.password.replace("\\", "\\\\").replace('"', '\\"')
        self.tag += 1
        tag = f"{self.name}.{self.tag}"
        self.send(f'{tag} LOGIN "{user}" "{password}"\r\n'.encode(), f'{tag} LOGIN "{user}" "***"')
        while True:
            text, lits = self.read_response()
            if text.startswith(tag + " "):
                break
            self.untagged(text, lits)
        if not text[len(tag) + 1 :].upper().startswith("OK"):
            raise Drop(f"LOGIN refused: {text}")
        code, _ = split_code(text[len(tag) + 4 :])
        if code and code.upper().startswith("CAPABILITY "):
            self.capabilities = set(code.upper().split()[1:])
        if self.rev2:
            status, _, _ = self.command("ENABLE IMAP4rev2", "ENABLE")
            if status != "OK":
                raise Drop("ENABLE IMAP4rev2 failed")

    def select(self):
        self.msgs = []
        self.announced = set()
        status, _, _ = self.command(f"SELECT {self.mailbox}", "SELECT")
        if status != "OK":
            raise Drop("SELECT failed")
        self.sync()

    def sync(self):
        """FETCH n:* (UID FLAGS) from the first message without a UID, as clients do."""
        first = next((i + 1 for i, e in enumerate(self.msgs) if e.uid is None), None)
        if first is None:
            return
        self.command(f"FETCH {first}:* (UID FLAGS)", "FETCH")
        left = [i + 1 for i, e in enumerate(self.msgs) if e.uid is None]
        if left:
            self.violation("fetch-missing", f"FETCH {first}:* (UID FLAGS) left {compress(left)} without a UID")

    def seq_set(self):
        """A random sequence set within 1..count, and the entries it names."""
        count = len(self.msgs)
        r = self.rng.random()
        if r < 0.35:
            n = self.rng.randint(1, count)
            return str(n), [n]
        if r < 0.6:
            a = self.rng.randint(1, count)
            b = self.rng.randint(a, min(count, a + 6))
            return f"{a}:{b}", list(range(a, b + 1))
        if r < 0.75:
            nums = sorted(set(self.rng.randint(1, count) for _ in range(self.rng.randint(2, 4))))
            return ",".join(map(str, nums)), nums
        if r < 0.9:
            a = self.rng.randint(max(1, count - 4), count)
            return f"{a}:*", list(range(a, count + 1))
        return "1:*", list(range(1, count + 1))

    def uid_set(self):
        """A random UID set from the known UIDs (sometimes beyond them), and the known
        UIDs it names (None when it ends in '*' and is not checked)."""
        uids = [e.uid for e in self.msgs if e.uid is not None]
        r = self.rng.random()
        last = [self.msgs[-1].uid] if self.msgs and self.msgs[-1].uid is not None else []
        if not uids or r < 0.05:
            # Beyond the last UID: "N:*" is then the last message (RFC 9051 6.4.9).
            top = max(uids or [1])
            return f"{top + self.rng.randint(1, 5)}:*", last
        if r < 0.4:
            u = self.rng.choice(uids)
            return str(u), [u]
        if r < 0.65:
            i = self.rng.randrange(len(uids))
            j = min(len(uids) - 1, i + self.rng.randint(0, 5))
            return f"{uids[i]}:{uids[j]}", uids[i : j + 1]
        if r < 0.85:
            pick = sorted(set(self.rng.choice(uids) for _ in range(self.rng.randint(2, 4))))
            return ",".join(map(str, pick)), pick
        u = self.rng.choice(uids)
        return f"{u}:*", [x for x in uids if x >= u]

    def random_flags(self, at_least_one=True):
        pool = SYSTEM_FLAGS + KEYWORDS
        k = self.rng.choice([1, 1, 1, 2, 2, 3]) if at_least_one else self.rng.choice([0, 0, 1, 2])
        flags = self.rng.sample(pool, k)
        return flags

    def message(self):
        self.stats["messages made"] += 1
        n = self.stats["messages made"]
        body = (
            f"From: Stress <stress@example.test>\r\nTo: {self.args.user}\r\n"
            f"Subject: stress {self.name} {n}\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{self.name}.{n}.{self.rng.randrange(1 << 30)}@stress.example>\r\n\r\n"
            f"body {n} of {self.name}\r\n"
        )
        return body.encode()

    def append(self, mailbox):
        flags = self.random_flags(at_least_one=False)
        flag_part = f" ({' '.join(flags)})" if flags or self.rng.random() < 0.3 else ""
        date = ' "05-Dec-2026 10:00:00 +0000"' if self.rng.random() < 0.3 else ""
        msg = self.message()
        nonsync = "LITERAL+" in self.capabilities and self.rng.random() < 0.5
        size = f"{{{len(msg)}{'+' if nonsync else ''}}}"
        line = f"APPEND {mailbox}{flag_part}{date} {size}"
        ctx = Ctx("APPEND", line)
        ctx.dest_selected = mailbox.upper() == self.mailbox.upper()
        self.command(line, "APPEND", literal=msg, nonsync=nonsync, ctx=ctx)

    def random_command(self):
        count = len(self.msgs)
        rng = self.rng
        big, small = count > 80, count < 10
        choices = [
            ("fetch", 0 if count == 0 else 14),
            ("uid fetch", 0 if count == 0 else 9),
            ("store", 0 if count == 0 else 18),
            ("uid store", 0 if count == 0 else 9),
            ("expunge", 12 if big else 4),
            ("uid expunge", 8 if big else 3),
            ("append", 0 if big else (12 if small else 4)),
            ("append other", 2),
            ("copy", 0 if count == 0 or big else (8 if small else 3)),
            ("copy other", 0 if count == 0 else 2),
            ("move", 0 if count == 0 else (6 if big else 2)),
            ("move self", 0 if count == 0 or big else 1),
            ("noop", 5),
            ("check", 3),
            ("search", 8),
            ("uid search", 6),
        ]
        total = sum(w for _, w in choices)
        pick = rng.uniform(0, total)
        for what, w in choices:
            pick -= w
            if pick <= 0 and w > 0:
                break
        other = self.args.other
        if what == "fetch":
            s, _ = self.seq_set()
            items = rng.choice(["(FLAGS)", "(UID FLAGS)", "(FLAGS UID)", "FLAGS", "(UID)"])
            self.command(f"FETCH {s} {items}", "FETCH")
        elif what == "uid fetch":
            s, _ = self.uid_set()
            self.command(f"UID FETCH {s} {rng.choice(['(FLAGS)', '(UID FLAGS)', 'FLAGS'])}", "UID FETCH")
        elif what in ("store", "uid store"):
            if what == "store":
                s, nums = self.seq_set()
                entries = [self.msgs[n - 1] for n in nums]
            else:
                s, uids = self.uid_set()
                entries = None if uids is None else [e for e in self.msgs if e.uid in set(uids)]
            op = rng.choice(["+", "+", "-", ""])
            flags = self.random_flags(at_least_one=op != "")
            if op == "-" and rng.random() < 0.3 and "\\Deleted" not in flags:
                flags.append("\\Deleted")
            silent = rng.random() < 0.2
            cmd = ("UID " if what == "uid store" else "") + f"STORE {s} {op}FLAGS{'.SILENT' if silent else ''} ({' '.join(flags)})"
            kind = "UID STORE" if what == "uid store" else "STORE"
            ctx = Ctx(kind, cmd)
            if entries is not None:
                before = {id(e): {norm(f) for f in e.flags} for e in entries if e.flags is not None}
                ctx.store = (op, flags, silent, entries, before)
            self.command(cmd, kind, ctx=ctx)
        elif what == "expunge":
            if rng.random() < 0.5 and count:
                s, nums = self.seq_set()
                line = f"STORE {s} +FLAGS.SILENT (\\Deleted)"
                ctx = Ctx("STORE", line)
                entries = [self.msgs[n - 1] for n in nums]
                ctx.store = ("+", ["\\Deleted"], True, entries, {})
                self.command(line, "STORE", ctx=ctx)
            self.command("EXPUNGE", "EXPUNGE")
        elif what == "uid expunge":
            if "UIDPLUS" not in self.capabilities and not self.rev2:
                self.command("NOOP", "NOOP")
                return
            s, _ = self.uid_set()
            self.command(f"UID EXPUNGE {s}", "UID EXPUNGE")
        elif what == "append":
            self.append(self.mailbox)
        elif what == "append other":
            self.append(other)
        elif what in ("copy", "copy other", "move", "move self"):
            dest = self.mailbox if what in ("copy", "move self") else other
            verb = "MOVE" if what.startswith("move") else "COPY"
            if verb == "MOVE" and "MOVE" not in self.capabilities:
                verb = "COPY"
            if rng.random() < 0.4:
                s, _ = self.uid_set()
                line, kind = f"UID {verb} {s} {dest}", f"UID {verb}"
            else:
                s, nums = self.seq_set()
                if verb == "COPY" and dest == self.mailbox and len(nums) > 4:
                    s = str(nums[0])
                line, kind = f"{verb} {s} {dest}", verb
            ctx = Ctx(kind, line)
            ctx.dest_selected = dest.upper() == self.mailbox.upper()
            self.command(line, kind, ctx=ctx)
        elif what == "noop":
            self.command("NOOP", "NOOP")
        elif what == "check":
            if self.rev2:
                self.command("NOOP", "NOOP")
            else:
                self.command("CHECK", "CHECK")
        elif what == "search":
            key = rng.choice(["ALL", "ALL", f"KEYWORD {rng.choice(KEYWORDS)}", "UNSEEN", "DELETED", "FLAGGED",
                              f"UNKEYWORD {rng.choice(KEYWORDS)}"])
            if count and rng.random() < 0.2:
                s, _ = self.seq_set()
                key = f"{s} {key}"
            self.command(f"SEARCH {key}", "SEARCH")
        elif what == "uid search":
            key = rng.choice(["ALL", f"KEYWORD {rng.choice(KEYWORDS)}", "SEEN", "NOT DELETED", f"KEYWORD {rng.choice(KEYWORDS)} UNSEEN"])
            if rng.random() < 0.2:
                s, _ = self.uid_set()
                key = f"UID {s} {key}"
            self.command(f"UID SEARCH {key}", "UID SEARCH")
        self.sync()

    def run_random(self, deadline, max_commands, start):
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        try:
            done = 0
            while time.time() < deadline and done < max_commands and not self.dead:
                self.random_command()
                done += 1
            self.stats["random commands"] = done
        except Drop as e:
            self.dead = True
            self.violation("protocol", f"connection dropped: {e}")
        except Exception as e:  # a bug of the checker: shown, and fails the run
            self.dead = True
            self.violation("checker-error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")

    def logout(self):
        try:
            self.command("LOGOUT", "LOGOUT")
        except Drop:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def view(self):
        return {e.uid: frozenset(norm(f) for f in (e.flags or ())) for e in self.msgs}


# ---------------------------------------------------------------------------------------

def setup(args, reg):
    s = Session("setup", args, reg, False, random.Random(args.seed))
    s.login()
    status, code, _ = s.command(f"CREATE {args.other}", "CREATE")
    if status != "OK" and not (code and code.upper().startswith("ALREADYEXISTS")):
        print(f"note: CREATE {args.other}: {status} [{code}]")
    ctx = None
    for i in range(args.prefill):
        flags = s.random_flags(at_least_one=False)
        msg = s.message()
        part = f" ({' '.join(flags)})" if flags else ""
        s.command(f"APPEND {args.mailbox}{part} {{{len(msg)}}}", "APPEND", literal=msg, ctx=ctx)
    s.logout()


def compare_views(reg, sessions, fresh):
    """The convergence rule: every session's view equals the fresh session's."""
    truth = fresh.view()
    for s in sessions:
        if s.dead:
            continue
        v = s.view()
        missing = sorted(set(truth) - set(v))
        extra = sorted(u for u in set(v) - set(truth) if u is not None)
        differ = [(u, sorted(v[u]), sorted(truth[u])) for u in sorted(set(v) & set(truth)) if v[u] != truth[u]]
        seq = [e.uid for e in s.msgs] != [e.uid for e in fresh.msgs]
        if missing or extra or differ or seq:
            parts = []
            if missing:
                parts.append(f"UIDs only the fresh session has: {compress(missing)}")
            if extra:
                parts.append(f"UIDs the fresh session does not have: {compress(extra)}")
            if differ:
                parts.append(f"flags differ (UID, this session, fresh): {differ[:3]}")
            if seq and not (missing or extra):
                parts.append("same UIDs in another order")
            s.violation("convergence", "; ".join(parts))


def self_test():
    """Feeds made-up responses to a session model: each rule must fire (or stay quiet)
    where expected. Checks the checker, without a server."""
    import types

    args = types.SimpleNamespace(mailbox="INBOX", log_dir=None, user="u", tls=False)
    base = ["* FLAGS (\\Seen \\Deleted $a)", "* 3 EXISTS", "* 1 FETCH (UID 10 FLAGS ())",
            "* 2 FETCH (UID 20 FLAGS ($a))", "* 3 FETCH (UID 30 FLAGS ())"]
    cases = [
        (["* 1 FETCH (FLAGS ($b))"], "keyword-announced", None),
        (["* FLAGS (\\Seen)", "* 2 FETCH (FLAGS ($a))"], "keyword-announced", None),
        (["* FLAGS (\\Seen $a $b)", "* 2 FETCH (FLAGS ($a $B))"], None, None),
        (["* 2 EXISTS"], "seq-count", None),
        (["* 4 EXPUNGE"], "seq-count", None),
        (["* 4 FETCH (FLAGS ())"], "seq-range", None),
        (["* SEARCH 1 4"], "seq-range", "SEARCH"),
        (['* ESEARCH (TAG "x") ALL 1:4'], "seq-range", "SEARCH"),
        (["* 1 EXPUNGE"], "expunge-forbidden", "FETCH"),
        (["* 1 EXPUNGE"], "expunge-forbidden", "STORE"),
        (["* 1 EXPUNGE"], None, "UID FETCH"),
        (["* 4 EXISTS", "* 4 FETCH (UID 25)"], "uid-order", None),
        (["* 2 FETCH (UID 21)"], "uid-consistency", None),
        (["* 2 FETCH (FLAGS ())"], "uid-consistency", "UID FETCH"),
        (["* SEARCH 10 11"], "uid-consistency", "UID SEARCH"),
        (['* ESEARCH (TAG "x") UID ALL 10:11'], "uid-consistency", "UID SEARCH"),
        (["* 1 FETCH (FLAGS (\\Recent))"], "recent", "rev2"),
        (["* 1 FETCH (FLAGS (\\Recent))"], None, None),
        (["* BAD oops"], "protocol", None),
        (["* 1 FETCH (FLAGS (\\Seen)"], "protocol", None),
        (["* 1 FETCH (UID 10 FLAGS (\\Seen $a))", "* 2 EXPUNGE", "* 1 EXPUNGE", "* 2 EXISTS"], None, "UID STORE"),
    ]
    failed = 0
    for lines, rule, kind in cases:
        reg = Registry(False)
        s = Session("t", args, reg, kind == "rev2", random.Random(1))
        for line in base:
            s.untagged(line, [])
        s.ctx = Ctx(kind, kind) if kind and kind != "rev2" else None
        for line in lines:
            s.untagged(line, [])
        got = sorted(reg.counts)
        good = got == ([rule] if rule else [])
        failed += not good
        print(f"{'ok  ' if good else 'FAIL'} {lines} -> {got}, expected {rule}")
    for what, code, expected in [("APPENDUID", "APPENDUID 7 25", "uid-order"), ("COPYUID", "COPYUID 8 1:2 31:32", "uid-order"),
                                 ("APPENDUID", "APPENDUID 7 31", None)]:
        reg = Registry(False)
        s = Session("t", args, reg, False, random.Random(1))
        s.uidvalidity = 7
        ctx = Ctx("APPEND", "x")
        ctx.dest_selected, ctx.max_uid_before = True, 30
        s.response_code(code, ctx)
        good = sorted(reg.counts) == ([expected] if expected else [])
        failed += not good
        print(f"{'ok  ' if good else 'FAIL'} [{code}] after UID 30 -> {sorted(reg.counts)}, expected {expected}")
    print("self-test", "FAILED" if failed else "passed")
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tls", action="store_true", help="implicit TLS (the IMAPS port)")
    p.add_argument("--rev2-fraction", type=float, default=0.0, help="share of sessions that ENABLE IMAP4rev2")
    p.add_argument("--strict", "--strict-recent", dest="strict_recent", action="store_true",
                   help="recent and stale-flags warnings fail the run")
    p.add_argument("--max-commands", type=int, default=20000, help="per session")
    p.add_argument("--prefill", type=int, default=20)
    p.add_argument("--mailbox", default="INBOX")
    p.add_argument("--log-dir", help="write each session's whole transcript there")
    p.add_argument("--other", default="Stress2", help="the second folder for COPY/MOVE/APPEND")
    p.add_argument("--self-test", action="store_true", help="check the checker on made-up responses, no server")
    if "--self-test" in sys.argv[1:]:
        return self_test()
    args = p.parse_args()
    if not (1 <= args.sessions <= 100 and 0 < args.seconds <= 3600):
        p.error("--sessions 1..100, --seconds up to 3600")

    print(f"imap-stress: {args.host}:{args.port} sessions={args.sessions} seconds={args.seconds} seed={args.seed} "
          f"tls={args.tls} rev2-fraction={args.rev2_fraction}", flush=True)
    reg = Registry(args.strict_recent)
    try:
        setup(args, reg)
    except (Drop, OSError) as e:
        print(f"setup failed: {e}")
        return 2

    n_rev2 = round(args.sessions * args.rev2_fraction)
    sessions = [
        Session(f"s{i}", args, reg, i < n_rev2, random.Random(args.seed * 1000 + i)) for i in range(args.sessions)
    ]
    for s in sessions:
        try:
            s.login()
            s.select()
        except (Drop, OSError) as e:
            s.dead = True
            s.violation("protocol", f"login/select failed: {e}")
    started = time.time()
    deadline = started + args.seconds
    barrier = threading.Barrier(len(sessions))
    threads = [threading.Thread(target=s.run_random, args=(deadline, args.max_commands, barrier), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.time()) + 2 * RESPONSE_TIMEOUT + 10)
    hung = [s.name for s, t in zip(sessions, threads) if t.is_alive()]
    for name in hung:
        reg.add("protocol", name, "session still waiting for a response after the run", [])
    elapsed = time.time() - started

    # Quiescent phase: nobody changes anything; two rounds of NOOP and CHECK each, then
    # FETCH 1:* (UID FLAGS) everywhere, and a fresh session for the truth.
    live = [s for s in sessions if not s.dead and s.name not in hung]
    before = {}
    try:
        for _ in range(2):
            for s in live:
                s.command("NOOP", "NOOP")
                s.sync()
                s.command("NOOP" if s.rev2 else "CHECK", "NOOP" if s.rev2 else "CHECK")
                s.sync()
        for s in live:
            before[s.name] = s.view()
            if s.msgs:
                s.command("FETCH 1:* (UID FLAGS)", "FETCH")
            lacking = [i + 1 for i, e in enumerate(s.msgs) if e.uid is None or e.flags is None]
            if lacking:
                s.violation("convergence", f"FETCH 1:* (UID FLAGS) gave no UID/FLAGS for {compress(lacking)}")
        fresh = Session("fresh", args, reg, False, random.Random(args.seed))
        fresh.login()
        fresh.select()
        if fresh.msgs:
            fresh.command("FETCH 1:* (UID FLAGS)", "FETCH")
    except Drop as e:
        reg.add("protocol", "quiescent", f"connection dropped in the quiescent phase: {e}", [])
        fresh = None
    if fresh is not None:
        compare_views(reg, live, fresh)
        for s in live:
            after = s.view()
            stale = [(u, sorted(before[s.name][u]), sorted(after[u]))
                     for u in sorted(set(before[s.name]) & set(after)) if u is not None and before[s.name][u] != after[u]]
            if stale:
                s.violation("stale-flags", f"{len(stale)} messages' flags changed by others not announced by NOOP/CHECK: {stale[:3]}")
        for s in live:
            alive = {id(e) for e in s.msgs}
            for e, message, lines in s.pending_store:
                if id(e) in alive:
                    reg.add("store-result", s.name, message, lines)
        # \Recent (IMAP4rev1 sessions only): at most one session has a message \Recent.
        holders = collections.defaultdict(list)
        for s in live:
            if not s.rev2:
                for e in s.msgs:
                    if e.recent:
                        holders[e.uid].append(s.name)
        for uid, names in sorted(holders.items()):
            if len(names) > 1:
                reg.add("recent", ",".join(names), f"UID {uid} is \\Recent in {len(names)} sessions: {names}", [])
        rev1 = [s for s in sessions if not s.rev2]
        added = sum(s.stats["APPEND"] + s.stats["COPY"] + s.stats["UID COPY"] for s in sessions)
        if rev1 and added and not any(s.saw_recent for s in rev1 + [fresh]):
            reg.add("recent", "all", "the server never reported \\Recent or a non-zero RECENT to an IMAP4rev1 "
                    "session although messages were added (RFC 3501 2.3.2: \\Recent not implemented)", [])
        for s in live + [fresh]:
            s.logout()

    # ---- summary ------------------------------------------------------------------------
    print(f"ran {elapsed:.1f} s")
    print(f"{'session':8} {'rev':5} {'commands':>8} {'OK':>6} {'NO':>5} {'BAD':>4} {'final':>6}  top commands")
    for s in sessions + ([fresh] if fresh else []):
        top = ", ".join([f"{k} {v}" for k, v in s.stats.most_common() if not k.startswith(("NO ", "messages", "random"))][:9])
        total = sum(v for k, v in s.stats.items() if not k.startswith(("NO ", "messages", "random")))
        print(f"{s.name:8} {'rev2' if s.rev2 else 'rev1':5} {total:8} {s.replies['OK']:6} {s.replies['NO']:5} "
              f"{s.replies['BAD']:4} {len(s.msgs):6}  {top}{'  (dropped)' if s.dead else ''}")
    nos = [(s.name, t) for s in sessions for t in s.no_examples]
    if nos:
        print("NO replies (not violations by themselves), first ones:")
        for name, t in nos[:6]:
            print(f"  {name}: {t}")
    fatal = reg.fatal_rules()
    print()
    for rule in RULES + WARNINGS + sorted(r for r in reg.counts if r not in RULES + WARNINGS):
        n = reg.counts.get(rule, 0)
        level = "FAIL" if rule in fatal else ("warn" if n else "pass")
        print(f"[{level}] {rule}: {n}")
        for session, message, lines in reg.examples.get(rule, []):
            print(f"    - {session}: {message}")
            for line in lines:
                print(f"        {line}")
    if fatal:
        print(f"\nFAILED: {', '.join(fatal)} (seed {args.seed})")
        return 1
    print(f"\nOK (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
