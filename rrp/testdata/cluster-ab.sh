#!/bin/bash
# cluster-ab.sh - totemd throughput of two builds back to back on a local
# 3-namespace cluster (bin/cluster, prefix "ra"), so that both see the same
# machine load. Run as root from the module root:
#
#   rrp/testdata/cluster-ab.sh BEFORE_DIR AFTER_DIR [key=value...]
#
# Each DIR holds totemd, totemctl and cpgbench (go build -o DIR
# ./daemon/totemd ./tools/totemctl ./bench/cpgbench, e.g. from a
# `git archive REV` of the commit to compare). Options: crypto=off,
# window=N and maxmsg=N (written to [totem] window_size / max_messages),
# sizes="1024 4096 16384 65536", dur=3s, rounds=2. Per size it prints the
# sender's msgs/s and MB/s (cpgbench, 1 sender, agreed) and the CPU the
# three daemons used per MB delivered, with the load average.
set -u
BEFORE=$1 AFTER=$2; shift 2
CRYPTO=on WIN= MAXM= SIZES="1024 4096 16384 65536" DUR=3s ROUNDS=2
for a in "$@"; do case $a in
	crypto=*) CRYPTO=${a#*=};; window=*) WIN=${a#*=};; maxmsg=*) MAXM=${a#*=};;
	sizes=*) SIZES=${a#*=};; dur=*) DUR=${a#*=};; rounds=*) ROUNDS=${a#*=};;
	*) echo "unknown option $a" >&2; exit 2;;
esac; done
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/ra-ab}
trap 'bin/cluster down >/dev/null 2>&1' EXIT
run() {
	local label=$1 bin=$2
	bin/cluster down >/dev/null 2>&1
	bin/cluster up 3 --prefix ra --no-start --bin "$bin" >/dev/null || return 1
	for i in 1 2 3; do
		f=$CLUSTER_DIR/n$i/totemd.toml
		[ "$CRYPTO" = off ] && sed -i "s/^keyfile = .*/&\ncrypto = \"off\"/" "$f"
		[ -n "$WIN" ] && sed -i "s/^profile = .*/&\nwindow_size = $WIN/" "$f"
		[ -n "$MAXM" ] && sed -i "s/^profile = .*/&\nmax_messages = $MAXM/" "$f"
	done
	bin/cluster start >/dev/null || return 1
	sleep 1
	local pids
	pids=$(bin/cluster status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
	cpu() { local s=0 p; for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); s=$((s + $1 + $2)); done; echo $s; }
	echo "== $label crypto=$CRYPTO window=${WIN:-default} max_messages=${MAXM:-default} $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
	printf "%8s %9s %8s %12s\n" size msgs/s MB/s cpu-ms/MB
	for s in $SIZES; do
		c0=$(cpu)
		bin/cluster exec 1 "$bin/cpgbench" --sizes "$s" --duration "$DUR" --wait-members 1 >"$CLUSTER_DIR.out" 2>&1
		c1=$(cpu)
		awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v s="$s" '/^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9]+/ {
			mb = $3 * s / 1e6; printf "%8s %9s %8s %12.1f\n", $1, $5, $6, (mb > 0 ? c * 1000 / hz / mb : 0) }' "$CLUSTER_DIR.out"
	done
	rm -f "$CLUSTER_DIR.out"
}
for r in $(seq 1 "$ROUNDS"); do
	run before "$BEFORE"
	run after "$AFTER"
done
