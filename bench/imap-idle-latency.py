#!/usr/bin/env python3
"""IDLE push latency with many idle sessions (issue #18).

Opens SESSIONS IMAP sessions to one account, SELECTs INBOX and IDLEs in each, then
delivers MESSAGES messages over SMTP one at a time; for each, records when every idling
session receives its `* n EXISTS`. Latency is measured from the SMTP server's 250 reply
to the DATA (the message is durable by then: Gannet answers after its commit), and, as an
upper bound, from the moment the end of the data was sent. Prints p50/p90/p99/max over all
(session, message) pairs, and how many sessions never heard of a message within the
timeout.

usage: imap-idle-latency.py --imap PORT --smtp PORT --user U --password P
                            [--sessions 1000] [--messages 50] [--timeout 10]
Loopback only; every loop is bounded in count and time.
"""
import argparse, selectors, smtplib, socket, sys, time


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


class Session:
    def __init__(self, port, user, password, i):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.i = i
        self.readline()  # greeting
        self.command(f"a LOGIN {user} {password}")
        self.command("b SELECT INBOX")
        self.sock.sendall(b"c IDLE\r\n")
        while not self.readline().startswith(b"+"):
            pass
        self.sock.setblocking(False)
        self.exists = None

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, line):
        tag = line.split(" ", 1)[0].encode()
        self.sock.sendall(line.encode() + b"\r\n")
        while True:
            l = self.readline()
            if l.startswith(tag + b" "):
                if not l.startswith(tag + b" OK"):
                    raise RuntimeError(l.decode(errors="replace"))
                return

    def feed(self):
        """Reads what has come; the last EXISTS count seen, or None."""
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return None
        if not chunk:
            raise ConnectionError(f"session {self.i} closed")
        self.buf += chunk
        seen = None
        while b"\r\n" in self.buf:
            line, self.buf = self.buf.split(b"\r\n", 1)
            parts = line.split()
            if len(parts) == 3 and parts[0] == b"*" and parts[2] == b"EXISTS":
                seen = int(parts[1])
        return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imap", type=int, required=True)
    ap.add_argument("--smtp", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    t = time.time()
    sessions = [Session(a.imap, a.user, a.password, i) for i in range(a.sessions)]
    print(f"{len(sessions)} sessions idling (set up in {time.time() - t:.1f} s)", flush=True)
    sel = selectors.DefaultSelector()
    for s in sessions:
        sel.register(s.sock, selectors.EVENT_READ, s)
    # The count each session was told at SELECT is not tracked: wait for the count after
    # each delivery, which the first EXISTS after it carries.
    from_reply, from_send, missed = [], [], 0
    smtp = smtplib.SMTP("127.0.0.1", a.smtp, timeout=30)
    smtp.ehlo("bench.example")
    for m in range(a.messages):
        body = f"Subject: idle {m}\r\nFrom: b@bench.example\r\n\r\nmessage {m}\r\n"
        smtp.mail("b@bench.example")
        smtp.rcpt(a.user)
        smtp.putcmd("data")
        code, _ = smtp.getreply()
        if code != 354:
            raise RuntimeError(f"DATA: {code}")
        smtp.send(body.encode() + b".\r\n")
        t_send = time.monotonic()
        code, _ = smtp.getreply()
        t_reply = time.monotonic()
        if code != 250:
            raise RuntimeError(f"end of DATA: {code}")
        pending = set(range(len(sessions)))
        deadline = t_reply + a.timeout
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.05):
                s = key.data
                if s.feed() is not None and s.i in pending:
                    now = time.monotonic()
                    pending.discard(s.i)
                    from_reply.append(max(0.0, now - t_reply))
                    from_send.append(now - t_send)
        missed += len(pending)
    smtp.quit()
    ms = lambda v: f"{v * 1000:.1f}"
    print(f"sessions {a.sessions} messages {a.messages} notifications {len(from_reply)} missed {missed}")
    for name, v in (("from 250", from_reply), ("from end of data", from_send)):
        print(f"latency {name} (ms): p50 {ms(percentile(v, 50))} p90 {ms(percentile(v, 90))} "
              f"p99 {ms(percentile(v, 99))} max {ms(max(v) if v else float('nan'))}")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
