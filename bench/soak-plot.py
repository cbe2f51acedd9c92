"""Plots and summarises a `gannet-bench soak` CSV (bench/soak.sh runs it).

usage: soak-plot.py SOAK.csv OUT.png SESSIONS RATE
"""
import csv, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
num = lambda r, k: float(r[k]) if r[k] not in ("", None) else 0.0
t = [num(r, "seconds") / 60 for r in rows]
# Newer CSVs also have the server's stages and the CPU time (bench/src/probes.rs).
probes = "steal_cores" in (rows[0] if rows else {})
panels = 7 if probes else 5
fig, ax = plt.subplots(panels, 1, figsize=(9, 2.6 * panels), sharex=True)
ax[0].plot(t, [num(r, "smtp_per_s") for r in rows], label="SMTP delivered")
ax[0].plot(t, [num(r, "imap_msgs_per_s") for r in rows], label="IMAP fetched")
ax[0].plot(t, [num(r, "pop3_msgs_per_s") for r in rows], label="POP3 downloaded")
ax[0].plot(t, [num(r, "relayed_per_s") for r in rows], label="relayed to the sink")
ax[0].set_ylabel("messages/s")
ax[0].set_ylim(bottom=0)
ax[0].legend(fontsize=8)
for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
    ax[1].plot(t, [max(num(r, key), 0.01) for r in rows], label=label)
ax[1].set_ylabel("final SMTP reply, ms")
ax[1].set_yscale("log")
ax[1].legend(fontsize=8)
ax[2].plot(t, [num(r, "rss_mb") for r in rows], label="gannet RSS")
if "block_cache_mb" in (rows[0] if rows else {}):
    # What RocksDB accounts for (older CSVs have no such columns).
    ax[2].plot(t, [num(r, "block_cache_mb") + num(r, "memtables_mb") + num(r, "table_readers_mb")
                   for r in rows], label="RocksDB: block cache, memtables, table readers")
    ax[2].legend(fontsize=8)
if "c_heap_mb" in (rows[0] if rows else {}):
    # Where the resident memory is (newer CSVs): anonymous pages; glibc's heap and its
    # free part (RocksDB's allocations until mimalloc served malloc too: fragmentation
    # when the free part grows, empty since); mimalloc's committed memory.
    for key, label in (("rss_anon_mb", "RSS, anonymous"), ("c_heap_mb", "C heap (RocksDB)"),
                       ("c_heap_free_mb", "C heap, free"), ("heap_committed_mb", "mimalloc, committed")):
        if key in rows[0]:
            ax[2].plot(t, [num(r, key) for r in rows], label=label, linewidth=0.8)
    ax[2].legend(fontsize=8)
ax[2].set_ylabel("MB")
ax[2].set_ylim(bottom=0)
ax[3].plot(t, [num(r, "data_mb") / 1000 for r in rows], label="data directory")
ax[3].set_ylabel("GB")
ax[3].set_ylim(bottom=0)
ax[4].plot(t, [num(r, "pending_compaction_mb") for r in rows], label="pending compaction, MB")
ax[4].plot(t, [num(r, "delayed_write_rate") / 1e6 for r in rows], label="write delay rate, MB/s (0: none)")
ax[4].set_ylabel("RocksDB")
ax[4].legend(fontsize=8)
if probes:
    for key, label in (("delivery_ms", "delivery (end of DATA to stored)"), ("scan_ms", "spam scan"),
                       ("commit_wait_ms", "commit wait"), ("group_commit_ms", "group commit (resolve + write)"),
                       ("group_write_ms", "group write + fsync")):
        ax[5].plot(t, [num(r, key) for r in rows], label=label)
    ax[5].set_ylabel("mean per message, ms")
    ax[5].set_ylim(bottom=0)
    ax[5].legend(fontsize=8)
    for key, label in (("gannet_cores", "gannet"), ("busy_cores", "whole machine busy"),
                       ("iowait_cores", "iowait"), ("steal_cores", "steal (hypervisor)")):
        ax[6].plot(t, [num(r, key) for r in rows], label=label)
    if "cpu_speed_ms" in rows[0]:
        # The same arithmetic each interval: its CPU time is the machine's slowness.
        speed = ax[6].twinx()
        speed.plot(t, [num(r, "cpu_speed_ms") for r in rows], color="gray", linewidth=0.8, label="fixed work, CPU ms (right)")
        speed.set_ylabel("fixed work, ms")
        speed.set_ylim(bottom=0)
        speed.legend(fontsize=8, loc="lower right")
    ax[6].set_ylabel("CPU, cores")
    ax[6].set_ylim(bottom=0)
    ax[6].legend(fontsize=8)
ax[-1].set_xlabel("minutes")
fig.suptitle(f"gannet soak: mixed load, {sys.argv[3]} SMTP sessions, rate {sys.argv[4]} (0: flat out)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
n = len(rows)
tenth = max(1, n // 10)
full = rows[:-1] or rows  # the last interval may be partial
first = statistics.median(num(r, "smtp_per_s") for r in full[:tenth])
last = statistics.median(num(r, "smtp_per_s") for r in full[-tenth:])
print(f"intervals: {n}")
print(f"SMTP rate, median of the first 10 %: {first:.0f} msgs/s; of the last 10 %: {last:.0f} msgs/s; ratio {last / max(first, 1e-9):.2f}")
for key in ("imap_msgs_per_s", "pop3_msgs_per_s", "relayed_per_s"):
    print(f"{key}: median {statistics.median(num(r, key) for r in full):.1f}")
p99 = [num(r, "p99_ms") for r in full]
print(f"p99 of the final reply: median {statistics.median(p99):.1f} ms, max {max(p99):.1f} ms; p99.9 max {max(num(r, 'p999_ms') for r in full):.1f} ms")
print(f"SMTP failures: {sum(num(r, 'smtp_failed') for r in rows):.0f}; intervals with writes stopped: {sum(1 for r in rows if r['write_stopped'] == 'true')}, delayed: {sum(1 for r in rows if num(r, 'delayed_write_rate') > 0)}")
for key in ("rss_anon_mb", "rss_file_mb", "c_heap_mb", "c_heap_free_mb", "heap_committed_mb"):
    values = [num(r, key) for r in full[len(full) // 3:] if r.get(key)]
    if values:
        print(f"{key} over the last two-thirds: min {min(values):.0f}, max {max(values):.0f}")
if probes:
    for key in ("delivery_ms", "scan_ms", "commit_wait_ms", "group_commit_ms", "group_write_ms", "groups_per_s", "cpu_speed_ms", "gannet_cores", "steal_cores", "iowait_cores"):
        values = [num(r, key) for r in full if r.get(key)]
        if values:
            print(f"{key}: median {statistics.median(values):.2f}, max {max(values):.2f}")
rss = [num(r, "rss_mb") for r in full if r["rss_mb"]]
if rss:
    tail = rss[len(rss) // 3:]
    print(f"RSS: first {rss[0]:.0f} MB, last {rss[-1]:.0f} MB; over the last two-thirds min {min(tail):.0f}, max {max(tail):.0f} MB (spread {100 * (max(tail) - min(tail)) / max(min(tail), 1):.0f} %)")
