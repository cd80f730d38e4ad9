#!/usr/bin/env python3
"""summarize.py OUTDIR: markdown tables from a bench/run.sh output directory."""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def cpu(path):
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        f = line.split()
        out[int(f[1])] = float(f[4])
    return out


def cpu_delta(d, phase):
    a, b = cpu(f"{d}/cpu-{phase}-before.txt"), cpu(f"{d}/cpu-{phase}-after.txt")
    return " / ".join(f"{b[n] - a[n]:.1f}" for n in sorted(b) if n in a)


def faults(r):
    bad = {k: r[k] for k in ("lost", "duplicates", "reordered", "unknown") if r.get(k)}
    return ", ".join(f"{k} {v}" for k, v in bad.items()) or "none"


def main(d):
    one = load(f"{d}/tput-1sender.json")
    print(f"Members in the group: {one['members']}; guarantee {one['guarantee']}; "
          f"{one['duration_s']}s per size; {one['inflight']} sends in flight.\n")
    three = [load(f"{d}/tput-3sender-n{n}.json") for n in (1, 2, 3) if os.path.exists(f"{d}/tput-3sender-n{n}.json")]
    print("| size B | 1 sender msgs/s | 1 sender MB/s | 3 senders sum msgs/s | 3 senders sum MB/s | faults |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(one["throughput"]):
        rs = [t["throughput"][i] for t in three if i < len(t["throughput"])]
        s_msgs = sum(x["own_msgs_s"] for x in rs)
        s_mb = sum(x["own_mb_s"] for x in rs)
        fl = [faults(r)] + [faults(x) for x in rs]
        fl = "none" if all(f == "none" for f in fl) else "; ".join(fl)
        print(f"| {r['size']} | {r['own_msgs_s']:.0f} | {r['own_mb_s']:.2f} | {s_msgs:.0f} | {s_mb:.2f} | {fl} |")
    print()
    if three:
        from datetime import datetime
        worst = 0.0
        for i in range(len(one["throughput"])):
            ts = [datetime.fromisoformat(t["throughput"][i]["started"].replace("Z", "+00:00"))
                  for t in three if i < len(t["throughput"])]
            worst = max(worst, (max(ts) - min(ts)).total_seconds())
        note = "" if worst < 1 else " — NOT concurrent: the sum is not a 3-sender figure"
        print(f"3-sender phases started within {worst:.2f} s of each other{note}.\n")
        print("Per node, 3 senders (msgs/s): " + "; ".join(
            f"node {t['nodeid']}: " + " / ".join(f"{r['own_msgs_s']:.0f}" for r in t["throughput"]) for t in three) + "\n")
    print(f"Daemon CPU seconds (node 1 / 2 / 3) during the 1-sender runs: {cpu_delta(d, '1sender')}; "
          f"during the 3-sender runs: {cpu_delta(d, '3sender')}.\n")
    if os.path.exists(f"{d}/lat.json"):
        lat = load(f"{d}/lat.json")
        print(f"Latency, node 1, {lat['count']} samples per size, µs:\n")
        print("| size B | p50 | p90 | p99 | max | mean |")
        print("|---|---|---|---|---|---|")
        for r in lat["latency"]:
            print(f"| {r['size']} | {r['p50_us']:.0f} | {r['p90_us']:.0f} | {r['p99_us']:.0f} | {r['max_us']:.0f} | {r['mean_us']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
