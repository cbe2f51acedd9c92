"""Waits until a Maildir's new/ holds the messages a peer said 250 to (its 250 came before
delivery): as many as the `ok=N` of LINE, a `gannet-bench smtp` result line; at most
1,200 s. Then prints LINE with the delivery's count, time and rate added:
`LINE delivered=N delivered_secs=S delivered_mps=R`, timed from START (Unix seconds,
when the client began) to the newest file's mtime.

usage: wait-maildir.py NEW_DIR START LINE
"""
import os
import re
import sys
import time

new, start, line = sys.argv[1], float(sys.argv[2]), sys.argv[3]
accepted = re.search(r"\bok=(\d+)", line)
want = int(accepted.group(1)) if accepted else 0
deadline = time.time() + 1200


def files():
    try:
        return [e for e in os.scandir(new) if e.is_file()]
    except FileNotFoundError:
        return []


while len(files()) < want and time.time() < deadline:
    time.sleep(0.2)
got = files()
last = max((e.stat().st_mtime for e in got), default=start)
secs = last - start
print(f"{line} delivered={len(got)} delivered_secs={secs:.3f} "
      f"delivered_mps={len(got) / secs if secs > 0 else 0:.1f}")
