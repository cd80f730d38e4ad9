#!/bin/bash
# bench/compare/compare.sh OUTDIR: Corosync and totemd measured one after the
# other in one run, on the same kind of layout (3 network namespaces on a
# bridge without uplink, udpu), with the same sizes and the same counting,
# and a side-by-side table in OUTDIR/compare.md.
#
# HOW TO RUN (as root, from anywhere; no Makefile needed):
#
#   make build                                   # or: go build -o bin/ ./...
#   bench/compare/compare.sh /tmp/compare        # full run: about 20 minutes
#   DUR=2 LAT_COUNT=1000 bench/compare/compare.sh /tmp/compare-short   # ~10 min
#
# It installs corosync with apt-get on first use (through the peer scripts'
# setup.sh) and takes minutes: a manual benchmark, not for CI.
#
# For every CRYPTO mode, in this order:
#   Corosync (scripts in $COROSYNC_SCRIPTS, namespaces cs1..cs3, bridge
#   csbr0, 10.77.0.1..3; sched_rr no):
#     crypto off: transport udpu, crypto_cipher/crypto_hash none
#     crypto on:  transport knet, aes256 + sha256 (Corosync 3 encrypts only
#                 with knet; udpu cannot)
#     setup.sh, bench.sh          -> OUTDIR/corosync-crypto-M/bench
#     failover.sh (defaults)      -> OUTDIR/corosync-crypto-M/failover-default
#     failover.sh ($COROSYNC_FAST)-> OUTDIR/corosync-crypto-M/failover-fast
#     teardown.sh
#   totemd (tools/cluster, namespaces tcb1..3 / tcf1..3, 198.18.0.1..3, udpu):
#     bench/run.sh                -> OUTDIR/totem-crypto-M/bench
#     failover, per profile       -> OUTDIR/totem-crypto-M/failover-PROFILE
# then bench/compare/summarize.py OUTDIR > OUTDIR/compare.md.
#
# totemd encrypts by default; for the "crypto off" tables it runs with
# TOTEMD_CRYPTO_OFF_FLAGS (default "--crypto off"). With that set empty,
# those tables compare Corosync without crypto against totemd WITH crypto,
# and say so; totemd is then run once and its figures serve both tables.
#
# Failover: kill -9 of node 3's daemon (its recorded pid; the timestamp is
# taken right after kill returns) while nodes 1..3 are members of one group;
# the figure is the time until the survivors (nodes 1, 2) receive the CPG
# configuration change removing node 3 (reason nodedown), on the same host
# clock. Corosync: cpgperf recv's CONFCHG timestamps (failover.sh); totemd:
# `totemctl cpg listen --json` lines stamped by stamp.py when read.
#
# Knobs (environment):
#   DUR=5            seconds per size (throughput)
#   SIZES=64,256,1024,4096,16384,65536
#   LAT_SIZES=64,1024,16384,65536   LAT_COUNT=5000 (latency samples per size)
#   PARTS="tput lat failover"       which parts to report
#   CRYPTO="off on"                 crypto modes, in order
#   SIDES="corosync totem"          which systems to run
#   FO_ROUNDS=3                     failover rounds per configuration
#   COROSYNC_FAST="TOKEN=100 TOKEN_COEFF=0 TOKEN_RETRANSMITS=3"
#                                   Corosync's short-timeout failover config
#   TOTEM_FO_PROFILES="default fast"  totemd profiles for failover
#   BIN_DIR=<root>/bin              totemd, totemctl, cluster, cpgbench (copied
#                                   into the run's work directory first)
#   COROSYNC_SCRIPTS=<root>/../shared/peer/corosync
#   TOTEMD_CRYPTO_OFF_FLAGS="--crypto off"  totemd flags that turn crypto
#                                   off (empty: totemd runs once, encrypted)
#   TOTEMD_FLAGS="--sched-rr=false" totemd flags for every run: Corosync
#                                   runs with sched_rr no, and so does
#                                   totemd (its default, said explicitly)
# bench/run.sh has no switch to skip parts: without "tput" in PARTS it runs
# its throughput with SIZES=64 DUR=1s (not reported); without "lat", its
# latency with LAT_SIZES=64 LAT_COUNT=100 (not reported).
#
# Everything made here (namespaces cs1..3, tcb1..3, tcf1..3, bridges,
# daemons, clients, state directories) is removed on every exit, also on
# failure or interruption. Exit status: 0 when every step worked, 1 when a
# step failed (its output is in OUTDIR/log.txt; the table shows what was
# measured), 2 on bad usage or when a namespace it needs is already in use.
set -euo pipefail
set -m # every step in its own process group, so cleanup can stop all of it

[ $# -eq 1 ] || { sed -n '2,12p' "$0" >&2; echo "usage: bench/compare/compare.sh OUTDIR" >&2; exit 2; }
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
ROOT=$(CDPATH='' cd -- "$HERE/../.." && pwd)
mkdir -p "$1"
OUT=$(CDPATH='' cd -- "$1" && pwd)

DUR=${DUR:-5}
DUR=${DUR%s}
SIZES=${SIZES:-64,256,1024,4096,16384,65536}
LAT_SIZES=${LAT_SIZES:-64,1024,16384,65536}
LAT_COUNT=${LAT_COUNT:-5000}
PARTS=${PARTS:-tput lat failover}
CRYPTO=${CRYPTO:-off on}
SIDES=${SIDES:-corosync totem}
FO_ROUNDS=${FO_ROUNDS:-3}
COROSYNC_FAST=${COROSYNC_FAST:-TOKEN=100 TOKEN_COEFF=0 TOKEN_RETRANSMITS=3}
TOTEM_FO_PROFILES=${TOTEM_FO_PROFILES:-default fast}
SRC_BIN=${BIN_DIR:-$ROOT/bin}
CS=${COROSYNC_SCRIPTS:-$ROOT/../shared/peer/corosync}
TOTEMD_CRYPTO_OFF_FLAGS=${TOTEMD_CRYPTO_OFF_FLAGS---crypto off}
TOTEMD_FLAGS=${TOTEMD_FLAGS---sched-rr=false}
FO_PREFIX=tcf     # our failover cluster's namespaces; bench/run.sh uses tcb
# The peer scripts read CRYPTO (the cipher) and DUR/SIZES from the
# environment too: ours must not leak into them.
export -n CRYPTO DUR SIZES LAT_SIZES LAT_COUNT
FO_GROUP=comparefo

has() { case " $2 " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
log() { echo "[compare $(date -u +%H:%M:%S) load $(cut -d" " -f1 /proc/loadavg)] $*" | tee -a "$OUT/log.txt" >&2; }

case "$DUR" in '' | *[!0-9.]*) echo "compare: DUR=$DUR: want seconds, like 5 or 2.5" >&2; exit 2 ;; esac
for m in $CRYPTO; do case "$m" in off | on) ;; *) echo "compare: CRYPTO: want off and/or on, not $m" >&2; exit 2 ;; esac; done
for p in $PARTS; do case "$p" in tput | lat | failover) ;; *) echo "compare: PARTS: want tput, lat, failover, not $p" >&2; exit 2 ;; esac; done
for s in $SIDES; do case "$s" in corosync | totem) ;; *) echo "compare: SIDES: want corosync, totem, not $s" >&2; exit 2 ;; esac; done
[ "$(id -u)" = 0 ] || { echo "compare: needs root (network namespaces, apt-get)" >&2; exit 2; }
if has corosync "$SIDES"; then
	[ -x "$CS/setup.sh" ] || { echo "compare: no Corosync scripts in $CS (set COROSYNC_SCRIPTS)" >&2; exit 2; }
fi
if has totem "$SIDES"; then
	for p in totemd totemctl cluster cpgbench; do
		[ -x "$SRC_BIN/$p" ] || { echo "compare: $SRC_BIN/$p missing: run \`make build\` (or set BIN_DIR)" >&2; exit 2; }
	done
fi
# Never share names with another run: cs1..3 (Corosync scripts), tcb1..3
# (bench/run.sh), tcf1..3 (our failover cluster).
busy=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(cs|tcb|tcf)[0-9]+$' || true)
if [ -n "$busy" ] || ip link show csbr0 >/dev/null 2>&1; then
	echo "compare: namespaces or bridge already in use (another run?): $busy $(ip -br link show csbr0 2>/dev/null | awk '{print $1}')" >&2
	exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/totem-compare.XXXXXX")
CHILD=""          # process group of the step running now
LISTENERS=""      # stamp.py pids of a totemd failover round
CS_STATE=""       # $STATE of a Corosync cluster that may be up
FAILED=0
: >"$OUT/log.txt"

cleanup() {
	status=$?
	trap - EXIT INT TERM
	if [ -n "$CHILD" ]; then
		kill -TERM -- "-$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
		CHILD=""
	fi
	stop_listeners
	if [ -e "$WORK/fo/state.json" ]; then
		CLUSTER_DIR="$WORK/fo" timeout -k 5 60 "$WORK/bin/cluster" down >/dev/null 2>&1 || status=1
	fi
	if [ -n "$CS_STATE" ]; then
		STATE=$CS_STATE timeout -k 5 120 "$CS/teardown.sh" >>"$OUT/log.txt" 2>&1 || status=1
		CS_STATE=""
	fi
	left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(cs|tcb|tcf)[0-9]+$' || true)
	[ -z "$left" ] || { echo "compare: namespaces left behind: $left" >&2; status=1; }
	rm -rf "$WORK"
	[ "$status" -eq 0 ] || echo "compare: FAILED (exit $status); see $OUT/log.txt" >&2
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME CMD...: run CMD in its own process group, output to log.txt;
# a failure is recorded (FAILED=1) and returned.
step() {
	local name=$1 rc=0
	shift
	log "$name"
	"$@" </dev/null >>"$OUT/log.txt" 2>&1 &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	if [ "$rc" -ne 0 ]; then
		log "FAILED ($rc): $name"
		echo "$name: exit $rc" >>"$OUT/failures.txt"
		FAILED=1
	fi
	return "$rc"
}

stop_listeners() {
	for p in $LISTENERS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $LISTENERS; do wait "$p" 2>/dev/null || true; done
	LISTENERS=""
}

# A private copy of the programs: bin/ may be rebuilt by others meanwhile,
# and mixed versions do not speak the same IPC. bin's totemd adds
# TOTEMD_FLAGS, bin-off's TOTEMD_CRYPTO_OFF_FLAGS too.
if has totem "$SIDES"; then
	mkdir -p "$WORK/prog" "$WORK/bin" "$WORK/bin-off"
	for p in totemd totemctl cluster cpgbench; do cp "$SRC_BIN/$p" "$WORK/prog/"; done
	for p in totemctl cluster cpgbench; do
		ln -s "$WORK/prog/$p" "$WORK/bin/$p"
		ln -s "$WORK/prog/$p" "$WORK/bin-off/$p"
	done
	printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$WORK/prog/totemd" "$TOTEMD_FLAGS" >"$WORK/bin/totemd"
	printf '#!/bin/sh\nexec "%s" %s %s "$@"\n' "$WORK/prog/totemd" "$TOTEMD_FLAGS" "$TOTEMD_CRYPTO_OFF_FLAGS" >"$WORK/bin-off/totemd"
	chmod +x "$WORK/bin/totemd" "$WORK/bin-off/totemd"
fi

{
	echo "command: $(for v in DUR SIZES LAT_SIZES LAT_COUNT PARTS CRYPTO SIDES FO_ROUNDS TOTEM_FO_PROFILES; do printf '%s=%q ' "$v" "${!v}"; done)$0 $1"
	echo "corosync_fast: $COROSYNC_FAST"
	echo "totemd_crypto_off_flags: ${TOTEMD_CRYPTO_OFF_FLAGS:-(none: totemd cannot turn crypto off)}"
	echo "totemd_flags: ${TOTEMD_FLAGS:-(none)}"
	echo "started: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "load_start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (tree has uncommitted changes)')"
	if has totem "$SIDES"; then
		echo "totemd: $SRC_BIN/totemd, built $(date -u -r "$SRC_BIN/totemd" '+%Y-%m-%d %H:%M:%S UTC'), sha256 $(sha256sum "$SRC_BIN/totemd" | cut -c1-12)"
	fi
	if command -v corosync >/dev/null 2>&1; then echo "corosync: $(corosync -v 2>/dev/null | head -1)"; fi
	echo "cpus: $(nproc)"
	echo "kernel: $(uname -r)"
} >"$OUT/run.txt"

# ---------------------------------------------------------------- Corosync

# cs_env MODE: the cluster.sh tunables of crypto MODE.
cs_env() {
	if [ "$1" = on ]; then
		echo "TRANSPORT=knet CRYPTO=aes256 SCHED_RR=no"
	else
		echo "TRANSPORT=udpu SCHED_RR=no"
	fi
}

# cs_save STATE DIR: keep the configs and logs before teardown removes them.
cs_save() {
	for i in 1 2 3; do
		mkdir -p "$2/n$i"
		cp "$1/n$i/corosync.conf" "$1/n$i/corosync.log" "$2/n$i/" 2>/dev/null || true
	done
}

corosync_side() {
	local m=$1 d=$OUT/corosync-crypto-$1 env
	env=$(cs_env "$m")
	mkdir -p "$d"
	echo "$env" >"$d/tunables.txt"
	export STATE=$WORK/cs-$m
	CS_STATE=$STATE
	# shellcheck disable=SC2086
	if step "corosync crypto $m: setup ($env)" env $env "$CS/setup.sh"; then
		if has tput "$PARTS" || has lat "$PARTS"; then
			local skip=""
			has tput "$PARTS" || skip="SKIP_TPUT1=1 SKIP_TPUT3=1"
			has lat "$PARTS" || skip="$skip SKIP_LAT=1"
			# shellcheck disable=SC2086
			step "corosync crypto $m: bench.sh" env $env $skip DUR="$DUR" SIZES="$SIZES" \
				LAT_N="$LAT_COUNT" LAT_SIZES="$LAT_SIZES" "$CS/bench.sh" "$d/bench" || true
		fi
		if has failover "$PARTS"; then
			step "corosync crypto $m: failover.sh, defaults" "$CS/failover.sh" "$d/failover-default" "$FO_ROUNDS" || true
			cs_save "$STATE" "$d/nodes-default"
			echo "$env $COROSYNC_FAST" >"$d/failover-fast.tunables.txt"
			# shellcheck disable=SC2086
			if step "corosync crypto $m: restart with $COROSYNC_FAST" \
				sh -c "'$CS/cluster.sh' stop && exec env $env $COROSYNC_FAST '$CS/cluster.sh' start"; then
				step "corosync crypto $m: failover.sh, $COROSYNC_FAST" "$CS/failover.sh" "$d/failover-fast" "$FO_ROUNDS" || true
			fi
			cs_save "$STATE" "$d/nodes-fast"
		else
			cs_save "$STATE" "$d/nodes-default"
		fi
	else
		cs_save "$STATE" "$d/nodes-default"
	fi
	step "corosync crypto $m: teardown" "$CS/teardown.sh" || true
	CS_STATE=""
	unset STATE
}

# ------------------------------------------------------------------ totemd

# totem_failover BIN DIR PROFILE: FO_ROUNDS rounds of kill -9 of node 3.
totem_failover() {
	local bin=$1 d=$2 profile=$3 r i kts pid
	mkdir -p "$d"
	export CLUSTER_DIR=$WORK/fo
	step "totemd failover $profile: cluster up" "$bin/cluster" up 3 --bin "$bin" --prefix "$FO_PREFIX" --profile "$profile" || return 1
	cp "$CLUSTER_DIR/n1/totemd.toml" "$d/totemd-n1.toml" 2>/dev/null || true
	echo "# totemd profile=$profile kill -9 of node 3; ms from the kill to the CPG confchg removing node 3 (nodedown)" >"$d/failover.txt"
	for r in $(seq 1 "$FO_ROUNDS"); do
		if ! wait_ring "$bin" 60; then
			log "totemd failover $profile round $r: no 3-node ring"
			echo "totemd failover $profile round $r: no 3-node ring" >>"$OUT/failures.txt"
			FAILED=1
			break
		fi
		for i in 1 2 3; do
			python3 "$HERE/stamp.py" "$d/r$r-listen$i.log" -- \
				"$bin/cluster" exec "$i" "$bin/totemctl" cpg listen --json "$FO_GROUP" 2>>"$OUT/log.txt" &
			LISTENERS="$LISTENERS $!"
		done
		i=0
		until python3 "$HERE/fo.py" ready 3 "$d/r$r-listen1.log" "$d/r$r-listen2.log" "$d/r$r-listen3.log"; do
			i=$((i + 1))
			[ "$i" -le 300 ] || break
			sleep 0.1
		done
		sleep 2
		# The same kill as Corosync's cluster.sh: SIGKILL of the recorded
		# pid, timestamp right after kill returns.
		pid=$(cat "$CLUSTER_DIR/n3/totemd.pid" 2>/dev/null || true)
		if [ -z "$pid" ] || ! grep -q totemd "/proc/$pid/cmdline" 2>/dev/null || ! kill -9 "$pid"; then
			log "totemd failover $profile round $r: node 3's totemd (pid '$pid') not found"
			echo "totemd failover $profile round $r: node 3's totemd not found" >>"$OUT/failures.txt"
			FAILED=1
			stop_listeners
			break
		fi
		kts=$(date +%s.%N)
		echo "KILLED node=3 pid=$pid ts=$kts" >"$d/r$r-kill.txt"
		i=0
		until python3 "$HERE/fo.py" gone 3 "$kts" "$d/r$r-listen1.log" "$d/r$r-listen2.log"; do
			i=$((i + 1))
			[ "$i" -le 600 ] || break
			sleep 0.1
		done
		echo "round=$r $(python3 "$HERE/fo.py" delays 3 "$kts" "$d/r$r-listen1.log" "$d/r$r-listen2.log")" | tee -a "$d/failover.txt" >>"$OUT/log.txt"
		stop_listeners
		# cluster's own record of node 3 is now a dead pid: start it again.
		step "totemd failover $profile: restart node 3" "$bin/cluster" start 3 || break
	done
	"$bin/cluster" status >"$d/status-end.txt" 2>&1 || true
	for i in 1 2 3; do cp "$CLUSTER_DIR/n$i/totemd.log" "$d/totemd-n$i.log" 2>/dev/null || true; done
	step "totemd failover $profile: cluster down" "$bin/cluster" down || true
	unset CLUSTER_DIR
}

# wait_ring BIN SECONDS: until node 1 reports ring members [1,2,3].
wait_ring() {
	local i=0
	until "$1/cluster" exec 1 "$1/totemctl" --timeout 2s status --json 2>/dev/null | tr -d ' \n' | grep -q '"members":\[1,2,3\]'; do
		i=$((i + 1))
		[ "$i" -le $(($2 * 5)) ] || return 1
		sleep 0.2
	done
}

totem_side() {
	local m=$1 d=$OUT/totem-crypto-$1 bin=$WORK/bin p
	[ "$m" = off ] && bin=$WORK/bin-off
	mkdir -p "$d"
	if has tput "$PARTS" || has lat "$PARTS"; then
		local sizes=$SIZES dur=${DUR}s lsizes=$LAT_SIZES lcount=$LAT_COUNT
		has tput "$PARTS" || { sizes=64; dur=1s; }
		has lat "$PARTS" || { lsizes=64; lcount=100; }
		step "totemd crypto $m: bench/run.sh" env BIN_DIR="$bin" SIZES="$sizes" DUR="$dur" \
			LAT_SIZES="$lsizes" LAT_COUNT="$lcount" "$ROOT/bench/run.sh" "$d/bench" || true
	fi
	if has failover "$PARTS"; then
		for p in $TOTEM_FO_PROFILES; do
			totem_failover "$bin" "$d/failover-$p" "$p" || true
		done
	fi
}

# ------------------------------------------------------------------- main

for m in $CRYPTO; do
	if has corosync "$SIDES"; then corosync_side "$m"; fi
	if has totem "$SIDES"; then
		if [ "$m" = off ] && [ -z "$TOTEMD_CRYPTO_OFF_FLAGS" ]; then
			# totemd cannot turn crypto off: measure it once, encrypted, and
			# let both tables use that run.
			if has on "$CRYPTO"; then
				log "totemd has no crypto off; its crypto-on run serves both tables"
			else
				totem_side on
			fi
		else
			totem_side "$m"
		fi
	fi
done

echo "finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC')" >>"$OUT/run.txt"
echo "load_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/run.txt"
python3 "$HERE/summarize.py" "$OUT" >"$OUT/compare.md"
cat "$OUT/compare.md"
exit "$FAILED"
