#!/usr/bin/env python3
"""fo.py: reads the stamped `totemctl cpg listen --json` logs of compare.sh's
totemd failover rounds (lines "<unix_ts> <json>", written by stamp.py).

  fo.py ready N LOG...          exit 0 when the last configuration change in
                                every LOG has N members
  fo.py gone NODE KTS LOG...    exit 0 when every LOG has a configuration change
                                stamped at or after KTS whose left list holds
                                node NODE with reason nodedown
  fo.py delays NODE KTS LOG...  print "nI_cpg_confchg_ms=D ..." (one per LOG,
                                numbered from 1; NA when missing) and
                                "spurious_nodedown_events=K": the time from KTS
                                to that change, and the number of nodedown
                                entries for other nodes after KTS
"""
import json
import sys


def events(path):
    """Yields (timestamp, confchg) for every configuration change in path."""
    try:
        f = open(path)
    except FileNotFoundError:
        return
    with f:
        for line in f:
            ts, _, rest = line.partition(" ")
            try:
                ev = json.loads(rest)
                t = float(ts)
            except ValueError:
                continue
            if isinstance(ev, dict) and ev.get("type") == "confchg":
                yield t, ev


def left_nodedown(ev, node):
    """Whether ev removes a process of node with reason nodedown."""
    return any(m.get("nodeid") == node and m.get("reason") == "nodedown" for m in ev.get("left") or [])


def first_gone(path, node, kts):
    """Timestamp of the first change at or after kts removing node, or None."""
    for t, ev in events(path):
        if t >= kts and left_nodedown(ev, node):
            return t
    return None


def spurious(path, node, kts):
    """Nodedown entries for nodes other than node after kts."""
    n = 0
    for t, ev in events(path):
        if t >= kts:
            n += sum(1 for m in ev.get("left") or [] if m.get("reason") == "nodedown" and m.get("nodeid") != node)
    return n


def main(argv):
    if len(argv) >= 4 and argv[1] == "ready":
        want = int(argv[2])
        for p in argv[3:]:
            last = None
            for _, ev in events(p):
                last = ev
            if last is None or len(last.get("members") or []) != want:
                return 1
        return 0
    if len(argv) >= 5 and argv[1] in ("gone", "delays"):
        node, kts, logs = int(argv[2]), float(argv[3]), argv[4:]
        if argv[1] == "gone":
            return 0 if all(first_gone(p, node, kts) is not None for p in logs) else 1
        parts = []
        for i, p in enumerate(logs, 1):
            t = first_gone(p, node, kts)
            parts.append(f"n{i}_cpg_confchg_ms=" + ("NA" if t is None else f"{(t - kts) * 1000:.0f}"))
        parts.append(f"spurious_nodedown_events={sum(spurious(p, node, kts) for p in logs)}")
        print(" ".join(parts))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
