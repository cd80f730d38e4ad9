#!/bin/bash
# bench/wakeups.sh: a census of thread wakeups during a 1-sender run, by
# who woke whom and through which kernel path. On a small virtual machine a
# wakeup (context switch plus an IPI) costs more CPU than most of the work
# per message, so this is the first profile to take.
#
#   CLUSTER_DIR=/tmp/x bin/cluster up 3; CLUSTER_DIR=/tmp/x bench/wakeups.sh [SIZE] [BIN_DIR]
#
# Needs root and perf (Debian: linux-perf). The cluster must be up with
# all 3 nodes; receivers (cpgbench --recv) run on nodes 2 and 3 while
# cpgbench on node 1 sends SIZE-byte messages (default 1024) for 4 s, and
# perf records every sched:sched_wakeup of the machine for 1 s in the
# middle. It prints the sender's rate, the wakeups per second and per
# message, and the most frequent (waker, woken, kernel path) triples:
# ep_poll_callback/sock_wfree is a writable event nobody waits for,
# futex_wake a Go runtime hand-off between threads.
set -eu
SIZE=${1:-1024}
BIN=${2:-$(dirname "$0")/../bin}
: "${CLUSTER_DIR:?set CLUSTER_DIR to the state directory of the cluster}"
export CLUSTER_DIR
command -v perf >/dev/null || { echo "wakeups: perf not found (apt-get install linux-perf)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
for n in 2 3; do "$BIN/cluster" exec "$n" "$BIN/cpgbench" --recv --quiet >/dev/null 2>&1 & done
sleep 1
"$BIN/cluster" exec 1 "$BIN/cpgbench" --sizes "$SIZE" --duration 4s --wait-members 3 >"$TMP/out" 2>&1 &
bench=$!
sleep 1.5
perf record -a -g -e sched:sched_wakeup -o "$TMP/perf.data" -- sleep 1 >/dev/null 2>&1
wait "$bench"
perf script -i "$TMP/perf.data" 2>/dev/null >"$TMP/wakeups.txt"
rate=$(awk '/^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9]+/ {print $5}' "$TMP/out")
python3 - "$TMP/wakeups.txt" "${rate:-0}" <<'PY'
import collections, re, sys
keys = ['ep_poll_callback', 'unix_write_space', 'sock_def_readable', 'sock_wfree',
        'futex_wake', 'udp_send_skb', 'unix_stream_sendmsg', '__udp_enqueue']
count = collections.Counter()
for ev in open(sys.argv[1]).read().split('\n\n'):
    lines = ev.strip().split('\n')
    m = re.match(r'\s*(\S+)\s+\d+.*comm=(\S+)', lines[0]) if lines and lines[0] else None
    if not m:
        continue
    fns = [l.split()[1].split('+')[0] for l in lines[1:] if len(l.split()) > 1]
    if 'hrtimer_wakeup' in fns:
        continue  # timers, not the message path
    path = []
    for f in fns:
        if any(k in f for k in keys) and f not in path:
            path.append(f)
    count[(m.group(1), m.group(2), '/'.join(path[:3]))] += 1
total, rate = sum(count.values()), float(sys.argv[2])
print(f"sender {rate:.0f} msgs/s; {total} wakeups/s" + (f", {total / rate:.2f} per message" if rate else ""))
for (waker, woken, path), n in count.most_common(12):
    print(f"{n:7d}  {waker} -> {woken}  {path}")
PY
