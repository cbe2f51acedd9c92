#!/usr/bin/env bash
# Checks the layering rules of docs/architecture.md on the source text (no cargo, no build):
#
#   store-internals  Nothing outside core/src/store/ names the store's column families
#                    (`Cf`), its key builders (`keys::`, or `keys` imported from the store)
#                    or its raw write batch (`Batch`). Scanned: core/src, appliance/src,
#                    bench/, tests/, fuzz/fuzz_targets.
#   runtime-import   Nothing outside core/src/runtime/ imports `runtime` (`crate::runtime`,
#                    `gannet_core::runtime`, `super::runtime`, or `runtime` inside a
#                    `use crate::{...}` / `use gannet_core::{...}` tree), so that nothing
#                    depends on the runtime. Exception: appliance/ (the `gannet` binary
#                    wires everything together, so it may start the runtime). bench/, tests/
#                    and fuzz/ are not exempt.
#   module-cycle     No import cycle between gannet-core's top-level modules (smtp, imap,
#                    pop3, mime, filter, policy, store, delivery, auth, config, runtime,
#                    antivirus).
#                    An edge A -> B is any `crate::B` path (in a `use` or inline, `use
#                    crate::{B, ...}` trees expanded) in a file under core/src/A/. `super::`
#                    paths stay inside a folder and are ignored. Every strongly connected
#                    component of more than one module is reported.
#   file-cycle       No import cycle between the files of appliance/src (edges: `crate::F`
#                    where F is a sibling file; main.rs is the crate root, its `mod`
#                    declarations are not imports).
#
# Lines whose first non-blank characters are `//` (comments, doc comments) are skipped;
# everything else, test modules included, is checked.
#
#   scripts/check-layers.sh            one line per violation and a summary; exit 1 if any
#   scripts/check-layers.sh --report   the same, but always exit 0 (while the refactor of
#                                      issue #13 is in progress)
set -euo pipefail
cd "$(dirname "$0")/.."
report=0
for arg in "$@"; do
    case "$arg" in
        --report) report=1 ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-layers: unknown argument $arg (use --report)" >&2; exit 2 ;;
    esac
done
command -v python3 >/dev/null || { echo "check-layers: python3 is needed" >&2; exit 2; }

status=0
python3 - <<'PY' || status=$?
import os
import re
import sys

CORE_MODULES = ["smtp", "imap", "pop3", "mime", "filter", "policy", "store", "delivery",
                "auth", "config", "runtime", "antivirus"]


def rust_files(*roots):
    for root in roots:
        if not os.path.isdir(root):
            continue
        for d, dirs, files in os.walk(root):
            dirs[:] = sorted(x for x in dirs if x not in ("target", "corpus", "artifacts"))
            for f in sorted(files):
                if f.endswith(".rs"):
                    yield os.path.join(d, f)


def code_lines(path):
    """(line number, text) of every line that is not a `//` comment line."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.lstrip().startswith("//"):
                yield n, line.rstrip("\n")


def code_text(path):
    """The file with comment lines blanked (line numbers kept)."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            out.append("" if line.lstrip().startswith("//") else line.rstrip("\n"))
    return "\n".join(out)


def split_top(s):
    """Split a use-tree list on commas that are not inside braces."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def expand_use(tree, prefix=""):
    """Every full path a use tree names: `crate::{a, b::{c, d}}` -> crate::a, crate::b::c..."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # renames do not change the path
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if m:
        head, body = m.group(1), m.group(2)
        paths = []
        for part in split_top(body):
            paths.extend(expand_use(part, prefix + head))
        return paths
    return [prefix + tree]


USE_RE = re.compile(r"\buse\s+([^;]+);", re.S)


def use_paths(text):
    """(line number, path) of every path named by a `use` statement."""
    out = []
    for m in USE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for p in expand_use(m.group(1)):
            out.append((line, p))
    return out


violations = {"store-internals": [], "runtime-import": [], "module-cycle": [], "file-cycle": []}

# ---- rule 1: store internals -------------------------------------------------------------
STORE_WORDS = re.compile(r"\bkeys::|\bCf\b|\bBatch\b")
STORE_KEYS_IMPORT = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?use\s+(crate|gannet_core)::store\b.*\bkeys\b")
for path in rust_files("core/src", "appliance/src", "bench", "tests", "fuzz/fuzz_targets"):
    if path.startswith("core/src/store/"):
        continue
    for n, line in code_lines(path):
        if STORE_WORDS.search(line) or STORE_KEYS_IMPORT.search(line):
            violations["store-internals"].append(f"{path}:{n}: {line.strip()}")

# ---- rule 2: runtime imports -------------------------------------------------------------
RUNTIME_INLINE = re.compile(r"\b(crate|gannet_core|super)::runtime\b")
for path in rust_files("core/src", "bench", "tests", "fuzz/fuzz_targets"):
    if path.startswith("core/src/runtime/"):
        continue
    seen = set()
    text = code_text(path)
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if RUNTIME_INLINE.search(line):
            seen.add(n)
    for n, p in use_paths(text):
        if re.match(r"^(::)?(crate|gannet_core|super)::runtime\b", p):
            seen.add(n)
    for n in sorted(seen):
        violations["runtime-import"].append(f"{path}:{n}: {lines[n - 1].strip()}")


# ---- strongly connected components (Tarjan) ----------------------------------------------
def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def simple_cycles(comp, edges, limit=50):
    """Elementary cycles inside one component, each starting at its smallest node."""
    out = []

    def walk(start, v, path):
        for w in sorted(edges.get(v, ())):
            if len(out) >= limit or w not in comp or w < start:
                continue
            if w == start:
                out.append(path + [start])
            elif w not in path:
                walk(start, w, path + [w])

    for start in comp:
        walk(start, start, [start])
    return sorted(out, key=lambda c: (len(c), c))


def describe_component(comp, edges, where):
    """The edges inside one component, each with the first place that makes it."""
    parts = []
    for a in comp:
        for b in sorted(edges.get(a, ())):
            if b in comp:
                parts.append(f"{a} -> {b} ({where[(a, b)]})")
    return parts


# ---- rule 3a: module cycles in gannet-core -----------------------------------------------
CRATE_PATH = re.compile(r"\bcrate::(\w+)")
mod_edges, mod_where = {}, {}
for path in rust_files("core/src"):
    rel = path[len("core/src/"):]
    if "/" not in rel:
        continue  # lib.rs: the module list
    src = rel.split("/")[0]
    text = code_text(path)
    targets = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in CRATE_PATH.finditer(line):
            targets.append((n, m.group(1)))
    for n, p in use_paths(text):
        m = re.match(r"^crate::(\w+)", p)
        if m:
            targets.append((n, m.group(1)))
    for n, dst in sorted(targets):
        if dst == src or dst not in CORE_MODULES:
            continue
        mod_edges.setdefault(src, set()).add(dst)
        mod_where.setdefault((src, dst), f"{path}:{n}")

module_cycles = []
for comp in sccs(CORE_MODULES, mod_edges):
    violations["module-cycle"].append(
        "core modules {" + ", ".join(comp) + "}: " + "; ".join(describe_component(comp, mod_edges, mod_where)))
    module_cycles.extend(simple_cycles(comp, mod_edges))

# ---- rule 3b: file cycles in appliance/src -----------------------------------------------
app_files = {os.path.basename(p)[:-3]: p for p in rust_files("appliance/src")
             if os.path.dirname(p) == "appliance/src"}
file_edges, file_where = {}, {}
for name, path in sorted(app_files.items()):
    text = code_text(path)
    targets = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in CRATE_PATH.finditer(line):
            targets.append((n, m.group(1)))
    for n, p in use_paths(text):
        m = re.match(r"^crate::(\w+)", p)
        if m:
            targets.append((n, m.group(1)))
    for n, dst in sorted(targets):
        if dst == name or dst == "main" or dst not in app_files:
            continue
        file_edges.setdefault(name, set()).add(dst)
        file_where.setdefault((name, dst), f"{path}:{n}")

for comp in sccs(app_files, file_edges):
    violations["file-cycle"].append(
        "appliance/src files {" + ", ".join(c + ".rs" for c in comp) + "}: "
        + "; ".join(describe_component(comp, file_edges, file_where)))

# ---- output ------------------------------------------------------------------------------
total = 0
for rule, items in violations.items():
    for item in items:
        print(f"{rule}: {item}")
    total += len(items)
print()
print("module graph (core/src, A -> B: A uses crate::B):")
for src in CORE_MODULES:
    print(f"  {src:8} -> {', '.join(sorted(mod_edges.get(src, ()))) or '-'}")
if module_cycles:
    print()
    print(f"elementary module cycles ({len(module_cycles)}{'+' if len(module_cycles) >= 50 else ''}):")
    for c in module_cycles:
        print("  " + " -> ".join(c))
print()
summary = ", ".join(f"{rule} {len(items)}" for rule, items in violations.items())
print(f"check-layers: {total} violation(s): {summary}")
sys.exit(1 if total else 0)
PY
if [ "$report" = 1 ]; then
    exit 0
fi
exit "$status"
