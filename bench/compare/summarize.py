#!/usr/bin/env python3
"""summarize.py OUTDIR: the side-by-side markdown of a compare.sh run.

Reads OUTDIR/corosync-crypto-{off,on}/ (the peer scripts' bench.sh and
failover.sh output) and OUTDIR/totem-crypto-{off,on}/ (bench/run.sh output
and compare.sh's failover rounds) and prints, per crypto mode, one table per
metric with the columns Corosync | totemd | ratio, where ratio = totemd /
Corosync (above 1: totemd has more throughput, or more latency / a longer
failover). A missing figure shows as "-".

When totemd has no crypto-off run, the crypto-off tables use its crypto-on
run and say so (totemd always encrypts).
"""
import glob
import json
import os
import re
import statistics
import sys

# Timeouts of totemd's profiles for 3 nodes (totem.Config / FastConfig).
TOTEM_PROFILES = {
    "default": "default profile: token 3000 ms + 650 ms per node above 2 = 3650 ms, consensus 4380 ms",
    "fast": "fast profile: token 100 ms, consensus 60 ms",
}


def kv_lines(path, key):
    """Rows of "KEY a=1 b=2" lines in path, as dicts."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            if line.startswith(key + " "):
                rows.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    return rows


def read(path):
    """The stripped text of path, or "" when it does not exist."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read().strip()


def load_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def corosync_bench(d):
    """{"t1": {size: (msgs, MB)}, "t3": {size: (sum msgs, sum MB)}, "lat": {size: (p50, p99)}}."""
    b = os.path.join(d, "bench")
    t1 = {int(r["size"]): (float(r["own_msgs_s"]), float(r["own_MB_s"]))
          for r in kv_lines(os.path.join(b, "tput1-n1.txt"), "TPUT")}
    per = [kv_lines(f, "TPUT") for f in sorted(glob.glob(os.path.join(b, "tput3-n*.txt")))]
    t3 = {}
    if len(per) == 3:
        sizes = set.intersection(*[{int(r["size"]) for r in rs} for rs in per])
        for s in sizes:
            rows = [next(r for r in rs if int(r["size"]) == s) for rs in per]
            t3[s] = (sum(float(r["own_msgs_s"]) for r in rows), sum(float(r["own_MB_s"]) for r in rows))
    lat = {int(r["size"]): (float(r["p50_us"]), float(r["p99_us"]))
           for r in kv_lines(os.path.join(b, "lat-n1.txt"), "LAT")}
    return {"t1": t1, "t3": t3, "lat": lat, "faults": []}


def totem_bench(d):
    """Like corosync_bench, from bench/run.sh's JSON; faults lists any
    lost, duplicated, reordered or unknown own messages."""
    b = os.path.join(d, "bench")
    faults = []

    def note(tag, r):
        bad = {k: r.get(k) for k in ("lost", "duplicates", "reordered", "unknown") if r.get(k)}
        if bad:
            faults.append(f"{tag} {r['size']} B: " + ", ".join(f"{k} {v}" for k, v in bad.items()))

    t1 = {}
    one = load_json(os.path.join(b, "tput-1sender.json"))
    for r in (one or {}).get("throughput") or []:
        t1[r["size"]] = (r["own_msgs_s"], r["own_mb_s"])
        note("1 sender", r)
    three = [load_json(os.path.join(b, f"tput-3sender-n{n}.json")) for n in (1, 2, 3)]
    t3 = {}
    if all(three):
        sizes = set.intersection(*[{r["size"] for r in t["throughput"]} for t in three])
        for s in sizes:
            rows = [next(r for r in t["throughput"] if r["size"] == s) for t in three]
            t3[s] = (sum(r["own_msgs_s"] for r in rows), sum(r["own_mb_s"] for r in rows))
            for r in rows:
                note("3 senders", r)
    lat = {}
    lj = load_json(os.path.join(b, "lat.json"))
    for r in (lj or {}).get("latency") or []:
        lat[r["size"]] = (r["p50_us"], r["p99_us"])
    return {"t1": t1, "t3": t3, "lat": lat, "faults": faults}


def failover(path):
    """{"vals": delays in ms of the survivors over all rounds, "rounds": rounds,
    "missing": survivors that never reported the change, "spurious": nodedown
    events of other nodes (membership flapping), "head": header comment}."""
    r = {"vals": [], "rounds": 0, "missing": 0, "spurious": 0, "head": ""}
    if not os.path.exists(path):
        return r
    with open(path) as f:
        for line in f:
            if line.startswith("#") and not r["head"]:
                r["head"] = line[1:].strip()
            if not line.startswith("round="):
                continue
            r["rounds"] += 1
            m = re.search(r"spurious_nodedown_events=(\d+)", line)
            if m:
                r["spurious"] += int(m.group(1))
            for m in re.finditer(r"n\d+_cpg_confchg_ms=(\S+)", line):
                try:
                    r["vals"].append(float(m.group(1)))
                except ValueError:
                    r["missing"] += 1
    return r


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def ratio(a, b):
    """b / a as "0.25x", or "-"."""
    if a is None or b is None or a == 0:
        return "-"
    r = b / a
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def fo_cell(r):
    vals = r["vals"]
    miss = f", {r['missing']} never seen" if r["missing"] else ""
    if r["spurious"]:
        miss += f", {r['spurious']} spurious nodedown events: flapping"
    if not vals:
        return f"- ({r['rounds']} rounds{miss})" if r["rounds"] else "-"
    return (f"{statistics.median(vals):.0f} (min {min(vals):.0f}, max {max(vals):.0f}; "
            f"{r['rounds']} rounds × 2 survivors{miss})")


def section(out, mode, lines):
    cdir = os.path.join(out, f"corosync-crypto-{mode}")
    tdir = os.path.join(out, f"totem-crypto-{mode}")
    t_mode = mode
    if not os.path.isdir(tdir) and mode == "off":
        tdir, t_mode = os.path.join(out, "totem-crypto-on"), "on"
    if not os.path.isdir(cdir) and not os.path.isdir(tdir):
        return
    cs = corosync_bench(cdir)
    tt = totem_bench(tdir)
    tun = read(os.path.join(cdir, "tunables.txt"))
    lines.append(f"## Crypto {mode}\n")
    if not os.path.isdir(cdir):
        lines.append("Corosync: not run.")
    elif mode == "off":
        lines.append(f"Corosync: udpu, `crypto_cipher: none`, `crypto_hash: none`, sched_rr no (cluster.sh: `{tun}`).")
    else:
        lines.append(f"Corosync: **knet** with `crypto_cipher: aes256`, `crypto_hash: sha256`, sched_rr no "
                     f"(cluster.sh: `{tun}`): Corosync 3 encrypts only with knet, udpu cannot.")
    if not os.path.isdir(tdir):
        lines.append("totemd: not run.")
    elif t_mode != mode:
        lines.append("totemd: **crypto on** (XChaCha20-Poly1305) — totemd cannot turn crypto off, so this "
                     "column is its crypto-on run (the same figures as in the crypto-on tables).")
    elif mode == "on":
        lines.append("totemd: udpu, crypto on (XChaCha20-Poly1305, always).")
    else:
        lines.append("totemd: udpu, crypto off.")
    lines.append("")
    unit = "totemd / Corosync"
    sizes = sorted(set(cs["t1"]) | set(tt["t1"]) | set(cs["t3"]) | set(tt["t3"]))
    for idx, name, digits in ((0, "msgs/s", 0), (1, "MB/s", 2)):
        if not sizes:
            break
        lines.append(f"### Throughput, {name} (own messages delivered back; ratio = {unit})\n")
        lines.append(f"| size B, senders | Corosync {name} | totemd {name} | ratio |")
        lines.append("|---|---|---|---|")
        for key, label in (("t1", "1 sender"), ("t3", "3 senders")):
            for s in sizes:
                a = cs[key].get(s, (None, None))[idx]
                b = tt[key].get(s, (None, None))[idx]
                lines.append(f"| {s}, {label} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio(a, b)} |")
        lines.append("")
    lsizes = sorted(set(cs["lat"]) | set(tt["lat"]))
    if lsizes:
        lines.append(f"### Latency, self-delivery, µs (ratio = {unit}; above 1: totemd slower)\n")
        lines.append("| size B, percentile | Corosync µs | totemd µs | ratio |")
        lines.append("|---|---|---|---|")
        for idx, pct in ((0, "p50"), (1, "p99")):
            for s in lsizes:
                a = cs["lat"].get(s, (None, None))[idx]
                b = tt["lat"].get(s, (None, None))[idx]
                lines.append(f"| {s}, {pct} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} |")
        lines.append("")
    rows = []
    for cname, tname, label in (("failover-default", "failover-default", "default timeouts"),
                                ("failover-fast", "failover-fast", "short timeouts")):
        cf = failover(os.path.join(cdir, cname, "failover.txt"))
        tf = failover(os.path.join(tdir, tname, "failover.txt"))
        cv, tv = cf["vals"], tf["vals"]
        if not cf["rounds"] and not tf["rounds"]:
            continue
        cconf = cf["head"] or "-"
        ftun = read(os.path.join(cdir, cname + ".tunables.txt"))
        if ftun:
            cconf = ftun + "; " + cconf
        tconf = TOTEM_PROFILES.get(tname.split("-", 1)[1], tname)
        a = statistics.median(cv) if cv else None
        b = statistics.median(tv) if tv else None
        rows.append(f"| {label} | {fo_cell(cf)} | {fo_cell(tf)} | {ratio(a, b)} | Corosync: {cconf}; totemd: {tconf} |")
    if rows:
        lines.append("### Failover, ms from kill -9 of node 3's daemon to the survivors' CPG confchg "
                     "removing it (median over rounds and both survivors; ratio = totemd / Corosync)\n")
        lines.append("| config | Corosync ms | totemd ms | ratio | timeouts |")
        lines.append("|---|---|---|---|---|")
        lines.extend(rows)
        lines.append("")
    if tt["faults"]:
        lines.append("totemd message faults (cpgbench): " + "; ".join(tt["faults"]) + "\n")
    elif tt["t1"] or tt["t3"]:
        lines.append("Every totemd own message came back exactly once and in order (cpgbench checks).\n")


def main(out):
    lines = ["# Corosync vs totemd, side by side\n"]
    run = read(os.path.join(out, "run.txt"))
    if run:
        lines.append("```")
        lines.append(run)
        lines.append("```\n")
    lines.append("Both systems run 3 daemons in 3 network namespaces on one bridge without uplink, on this "
                 "machine's shared CPUs, one after the other. Throughput: own msgs/s = own messages delivered "
                 "back / (phase start to last own delivery), MB = 10^6 B of payload, sizes include a 32-byte "
                 "header; 3 senders = one sender per node, phases started together, rates summed. Latency: one "
                 "message at a time, time to its self-delivery, receivers on nodes 2 and 3. Failover: "
                 "kill -9 of node 3's daemon (timestamp right after kill returns), time until nodes 1 and 2 "
                 "receive the CPG configuration change that removes node 3 (nodedown), same host clock.\n")
    fails = read(os.path.join(out, "failures.txt"))
    if fails:
        lines.append("**Steps that failed** (their figures are missing or partial; see log.txt):\n")
        lines.append("```")
        lines.append(fails)
        lines.append("```\n")
    for mode in ("off", "on"):
        section(out, mode, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: summarize.py OUTDIR", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
