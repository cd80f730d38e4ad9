#!/bin/sh
# bench/run.sh OUTDIR: the cpgbench measurement of docs/PERFORMANCE.md,
# the same runs as Corosync's baseline (shared/peer/corosync/bench.sh):
# a 3-node cluster (namespaces as root, else loopback), then
#   1 sender:  cpgbench on node 1, receivers (cpgbench --recv) on nodes 2, 3
#   3 senders: cpgbench on every node, phases started together (--start-at)
#   latency:   cpgbench --latency on node 1, receivers on nodes 2, 3
# Raw JSON, tables, daemon counters and CPU seconds go to OUTDIR;
# OUTDIR/summary.md has the tables. Removes the cluster on every exit.
#
# Knobs (environment): SIZES (64,256,1024,4096,16384,65536), DUR (5s),
# LAT_SIZES (64,1024,16384,65536), LAT_COUNT (5000), RECEIVERS (1; 0 runs
# without receivers and with --wait-members 1), UP_FLAGS (--profile default),
# DEMO_MODE=loopback, BIN_DIR (use the programs there instead of building), PROFILE=1 (totemd --cpuprofile/--memprofile: profiles of every
# daemon in OUTDIR/prof), SKIP_TPUT=1 (skip both throughput parts, 1 and
# 3 senders), SKIP_LAT=1 (skip the latency part), CPGBENCH_FLAGS (more
# cpgbench flags for the throughput runs, e.g. --sync for one goroutine
# per send in flight instead of the pipelined sender), PREFIX (tcb: the
# cluster's namespace/bridge name prefix, for runs side by side).
set -eu
[ $# -eq 1 ] || { echo "usage: bench/run.sh OUTDIR" >&2; exit 2; }
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
mkdir -p "$1"
OUT=$(CDPATH= cd -- "$1" && pwd)
cd "$ROOT"
SIZES=${SIZES:-64,256,1024,4096,16384,65536}
DUR=${DUR:-5s}
LAT_SIZES=${LAT_SIZES:-64,1024,16384,65536}
LAT_COUNT=${LAT_COUNT:-5000}
RECEIVERS=${RECEIVERS:-1}
SKIP_TPUT=${SKIP_TPUT:-0}
SKIP_LAT=${SKIP_LAT:-0}
CPGBENCH_FLAGS=${CPGBENCH_FLAGS:-}
PREFIX=${PREFIX:-tcb}
UP_FLAGS=${UP_FLAGS:---profile default}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/totem-bench.XXXXXX")
BIN=${BIN_DIR:-$WORK/bin}
export CLUSTER_DIR="$WORK/c"
RECV_PIDS=""

cleanup() {
	status=$?
	trap - EXIT INT TERM
	stop_receivers
	if [ -e "$CLUSTER_DIR/state.json" ]; then
		timeout -k 5 60 "$BIN/cluster" down >/dev/null || status=1
	fi
	rm -rf "$WORK"
	[ "$status" -eq 0 ] || echo "bench: FAILED (exit $status)" >&2
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_receivers() {
	for p in $RECV_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $RECV_PIDS; do wait "$p" 2>/dev/null || true; done
	RECV_PIDS=""
}
start_receivers() {
	[ "$RECEIVERS" = 1 ] || return 0
	for n in 2 3; do
		"$BIN/cluster" exec "$n" "$BIN/cpgbench" --recv --json --quiet >"$OUT/recv-$1-n$n.json" &
		RECV_PIDS="$RECV_PIDS $!"
	done
}
# CPU seconds (user+system) of every daemon, one line per node.
cpu() {
	for n in 1 2 3; do
		pid=$(cat "$CLUSTER_DIR/n$n/totemd.pid")
		awk -v n="$n" -v t="$(getconf CLK_TCK)" '{printf "node %s totemd cpu_s %.2f\n", n, ($14+$15)/t}' "/proc/$pid/stat"
	done
}

# One build of every program, private to this run: bin/ may be rebuilt
# by others meanwhile, and mixed versions do not speak the same IPC.
if [ -z "${BIN_DIR:-}" ]; then
	echo "building into $BIN"
	mkdir -p "$BIN"
	go build -o "$BIN/" ./daemon/totemd ./tools/totemctl ./tools/cluster ./bench/cpgbench
fi
BINDIR="$BIN"
if [ "${PROFILE:-0}" = 1 ]; then
	BINDIR="$WORK/profbin"
	mkdir -p "$BINDIR" "$OUT/prof"
	# totemd writing a CPU and a heap profile per daemon at exit.
	printf '#!/bin/sh\nexec "%s" --cpuprofile "%s/cpu-$$.prof" --memprofile "%s/heap-$$.prof" "$@"\n' \
		"$BIN/totemd" "$OUT/prof" "$OUT/prof" >"$BINDIR/totemd"
	chmod +x "$BINDIR/totemd"
	cp "$BIN/totemctl" "$BINDIR/"
fi

MODE_FLAG=""
if [ "${DEMO_MODE:-}" = loopback ] || [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
	MODE_FLAG=--loopback
fi
# shellcheck disable=SC2086
"$BIN/cluster" $MODE_FLAG up 3 --bin "$BINDIR" --prefix "$PREFIX" $UP_FLAGS | tee "$OUT/cluster-up.txt"
i=0
until "$BIN/cluster" exec 1 "$BIN/totemctl" --timeout 2s status --json 2>/dev/null | tr -d ' \n' | grep -q '"members":\[1,2,3\]'; do
	i=$((i + 1))
	[ "$i" -le 150 ] || { echo "bench: no 3-node ring after 30s" >&2; "$BIN/cluster" status >&2 || true; exit 1; }
	sleep 0.2
done
"$BIN/cluster" status >"$OUT/status-before.txt" || true
for n in 1 2 3; do cat "$CLUSTER_DIR/n$n/totemd.toml" >"$OUT/totemd-n$n.toml"; done
{ date -u; uname -a; nproc; uptime; } >"$OUT/machine.txt"

MEMBERS=1
[ "$RECEIVERS" = 1 ] && MEMBERS=3
WAIT="--wait-members $MEMBERS --wait-timeout 30s"

if [ "$SKIP_TPUT" = 1 ]; then
	echo "throughput: skipped (SKIP_TPUT=1)"
else
	echo "1 sender: $SIZES, $DUR each"
	cpu >"$OUT/cpu-1sender-before.txt"
	start_receivers 1sender
	# shellcheck disable=SC2086
	timeout -k 5 600 "$BIN/cluster" exec 1 "$BIN/cpgbench" --sizes "$SIZES" --duration "$DUR" $WAIT $CPGBENCH_FLAGS --json >"$OUT/tput-1sender.json"
	stop_receivers
	cpu >"$OUT/cpu-1sender-after.txt"
	for n in 1 2 3; do "$BIN/cluster" exec "$n" "$BIN/totemctl" stats >"$OUT/stats-1sender-n$n.txt" || true; done

	echo "3 senders: $SIZES, $DUR each"
	cpu >"$OUT/cpu-3sender-before.txt"
	g3() { if [ "$RECEIVERS" = 1 ]; then echo cpgbench; else echo "cpgbench-3s-n$1"; fi; }
	START=$(($(date +%s) + 15))
	# With receivers all three senders share one group (every node delivers
	# everything, as in Corosync's runs); without, each sender has its own
	# group: joins into a group someone just left could stall (see
	# docs/PERFORMANCE.md), and the summary checks that the phases overlapped.
	W3="--wait-members 1"
	[ "$RECEIVERS" = 1 ] && W3="--wait-members 3 --wait-timeout 10s"
	pids=""
	for n in 1 2 3; do
		# shellcheck disable=SC2086
		timeout -k 5 600 "$BIN/cluster" exec "$n" "$BIN/cpgbench" --sizes "$SIZES" --duration "$DUR" $W3 $CPGBENCH_FLAGS --group "$(g3 "$n")" --start-at "$START" --json --quiet >"$OUT/tput-3sender-n$n.json" &
		pids="$pids $!"
	done
	fail=0
	for p in $pids; do wait "$p" || fail=1; done
	[ "$fail" = 0 ] || { echo "bench: a 3-sender run failed" >&2; exit 1; }
	cpu >"$OUT/cpu-3sender-after.txt"
fi

if [ "$SKIP_LAT" = 1 ]; then
	echo "latency: skipped (SKIP_LAT=1)"
else
	echo "latency: $LAT_SIZES, $LAT_COUNT samples each"
	start_receivers lat
	# shellcheck disable=SC2086
	timeout -k 5 600 "$BIN/cluster" exec 1 "$BIN/cpgbench" --latency --sizes "$LAT_SIZES" --count "$LAT_COUNT" $WAIT --json >"$OUT/lat.json"
	stop_receivers
fi
for n in 1 2 3; do "$BIN/cluster" exec "$n" "$BIN/totemctl" stats >"$OUT/stats-end-n$n.txt" || true; done
"$BIN/cluster" status >"$OUT/status-after.txt" || true
for n in 1 2 3; do cp "$CLUSTER_DIR/n$n/totemd.log" "$OUT/totemd-n$n.log" 2>/dev/null || true; done
"$BIN/cluster" down >/dev/null

if [ -e "$OUT/tput-1sender.json" ]; then
	python3 "$ROOT/bench/summarize.py" "$OUT" >"$OUT/summary.md"
elif [ -e "$OUT/lat.json" ]; then
	# summarize.py needs the throughput runs: the latency table alone.
	python3 - "$OUT/lat.json" >"$OUT/summary.md" <<'PY'
import json, sys
lat = json.load(open(sys.argv[1]))
print("Throughput skipped (SKIP_TPUT=1).\n")
print(f"Latency, node 1, {lat['count']} samples per size, µs:\n")
print("| size B | p50 | p90 | p99 | max | mean |")
print("|---|---|---|---|---|---|")
for r in lat["latency"]:
    print(f"| {r['size']} | {r['p50_us']:.0f} | {r['p90_us']:.0f} | {r['p99_us']:.0f} | {r['max_us']:.0f} | {r['mean_us']:.0f} |")
PY
else
	echo "Throughput and latency skipped (SKIP_TPUT=1 SKIP_LAT=1)." >"$OUT/summary.md"
fi
cat "$OUT/summary.md"
