#!/bin/sh
# demo.sh: build everything, start a local 3-node totemd cluster, show its
# status, benchmark it with cpgbench (throughput and latency), and remove
# it again, also when something fails. Bounded: about half a minute with a
# warm build cache; every step gets only what is left of DEMO_LIMIT seconds
# (default 110), then the cleanup runs.
#
# As root with iproute2 (ip) the nodes live in network namespaces on a
# bridge with no uplink (198.18.0.0/24); otherwise, or when namespaces
# cannot be made here, every node runs on 127.0.0.1 (--loopback).
# DEMO_MODE=loopback forces loopback. Run from anywhere: make demo.
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$ROOT"
LIMIT=${DEMO_LIMIT:-110}
BIN="$ROOT/bin"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/totem-demo.XXXXXX")
export CLUSTER_DIR="$WORK/c"
PREFIX=tcd
RECV_PIDS=""

say() { printf '\n=== %s\n' "$*"; }

# bounded CMD...: run CMD with whatever is left of the time limit (timeout
# signals CMD's whole process group, so nothing outlives it).
DEADLINE=$(($(date +%s) + LIMIT))
bounded() {
	left=$((DEADLINE - $(date +%s)))
	if [ "$left" -le 0 ]; then
		echo "demo: time limit of ${LIMIT}s reached" >&2
		exit 124
	fi
	timeout -k 5 "$left" "$@"
}

cleanup() {
	status=$?
	trap - EXIT INT TERM
	for p in $RECV_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $RECV_PIDS; do wait "$p" 2>/dev/null || true; done
	if [ -x "$BIN/cluster" ] && [ -e "$CLUSTER_DIR/state.json" ]; then
		say "removing the cluster"
		timeout -k 5 60 "$BIN/cluster" down || status=1
	fi
	rm -rf "$WORK"
	if [ "$status" -ne 0 ]; then
		echo "demo: FAILED (exit $status)" >&2
	else
		echo "demo: done"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building (go build -o bin/ ./...)"
bounded go build -o bin/ ./...

MODE=loopback
if [ "${DEMO_MODE:-}" != loopback ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1; then
	MODE=netns
fi
UP_FLAGS="--profile default --token 1s --prefix $PREFIX"
say "starting a 3-node cluster ($MODE)"
if [ "$MODE" = netns ]; then
	if ! bounded "$BIN/cluster" up 3 $UP_FLAGS; then
		echo "demo: namespaces are not available here; falling back to --loopback" >&2
		MODE=loopback
	fi
fi
if [ "$MODE" = loopback ]; then
	started=no
	for base in 15400 25400 35400 45400; do
		if bounded "$BIN/cluster" --loopback up 3 $UP_FLAGS --base-port "$base"; then
			started=yes
			break
		fi
	done
	[ "$started" = yes ] || { echo "demo: could not start a loopback cluster" >&2; exit 1; }
fi

say "waiting for the ring to form (3 members)"
i=0
until bounded "$BIN/cluster" exec 1 "$BIN/totemctl" --timeout 2s status --json 2>/dev/null | tr -d ' \n' | grep -q '"members":\[1,2,3\]'; do
	i=$((i + 1))
	if [ "$i" -gt 150 ]; then
		echo "demo: the ring did not form within 30s" >&2
		"$BIN/cluster" status || true
		exit 1
	fi
	sleep 0.2
done
echo "ring formed after ~$((i / 5)).$((i % 5 * 2))s"

say "cluster status"
bounded "$BIN/cluster" status

# Group members on nodes 2 and 3 receive everything node 1 sends, as
# Corosync's cpgperf recv did in the baseline (DEMO_RECEIVERS=0: none).
MEMBERS=1
if [ "${DEMO_RECEIVERS:-1}" = 1 ]; then
	say "receivers on nodes 2 and 3 (cpgbench --recv)"
	for n in 2 3; do
		"$BIN/cluster" exec "$n" "$BIN/cpgbench" --recv --quiet --recv-time 60s >/dev/null &
		RECV_PIDS="$RECV_PIDS $!"
	done
	MEMBERS=3
fi
WAIT="--wait-members $MEMBERS"
DEGRADED=""
if [ "$MEMBERS" -gt 1 ]; then
	say "checking that node 1 sees the members on nodes 2 and 3"
	if ! bounded "$BIN/cluster" exec 1 "$BIN/cpgbench" --latency --count 1 --sizes 64 --wait-members 3 --wait-timeout 15s --quiet >/dev/null; then
		DEGRADED="node 1 did not see the group members of nodes 2 and 3 within 15 s: process groups do not span the nodes"
		echo "demo: WARNING: $DEGRADED; measuring without receivers" >&2
		for p in $RECV_PIDS; do kill "$p" 2>/dev/null || true; done
		RECV_PIDS=""
		WAIT="--wait-members 1"
	fi
fi

say "throughput, node 1 sending (cpgbench --sizes 64,1024,65536 --duration 2s)"
bounded "$BIN/cluster" exec 1 "$BIN/cpgbench" --sizes 64,1024,65536 --duration 2s $WAIT --drain-timeout 20s

say "latency, node 1 (cpgbench --latency --count 500 --sizes 64,1024,65536)"
bounded "$BIN/cluster" exec 1 "$BIN/cpgbench" --latency --count 500 --sizes 64,1024,65536 $WAIT --quiet

say "totemctl status on node 2"
bounded "$BIN/cluster" exec 2 "$BIN/totemctl" status

if [ -n "$DEGRADED" ]; then
	echo "demo: ran degraded: $DEGRADED" >&2
	exit 3
fi
