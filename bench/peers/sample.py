#!/usr/bin/env python3
"""The scanning benchmarks' sample: 500 ham picked evenly from the corpus's ham/ (in
name order) and 500 spam (all of them when there are no more), as symbolic links in
OUT/ham and OUT/spam.

usage: sample.py CORPUS OUT
"""
import os
import sys

src, out = os.path.abspath(sys.argv[1]), sys.argv[2]
for label, k in (("ham", 500), ("spam", 500)):
    os.makedirs(os.path.join(out, label), exist_ok=True)
    files = sorted(os.listdir(os.path.join(src, label)))
    n = len(files)
    pick = files if k >= n else [files[(i * n) // k] for i in range(k)]
    for f in pick:
        os.symlink(os.path.join(src, label, f), os.path.join(out, label, f))
    print(f"{label}: {len(pick)} messages")
