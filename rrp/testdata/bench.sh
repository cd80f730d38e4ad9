#!/bin/bash
# bench.sh - rrp throughput beside the raw UDP reference, measured back to
# back so that both see the same machine load. Run as root from the module
# root: rrp/testdata/bench.sh [N]   (N datagrams per Go benchmark, default 300000)
#
# 1. raw UDP: /work/shared/peer/corosync/udpblast.c (if present and cc is
#    installed) between two namespaces on a bridge, 1000-byte datagrams,
#    sendto (batch 1) and sendmmsg (batch 32);
# 2. go test -bench: rrp over one udpu link on loopback and between two
#    namespaces, with and without crypto, plus a raw Go sendmmsg reference
#    on loopback; metrics sent/s, recv/s, loss% and cpu-ns/dgram; each
#    with UDP segmentation offload and receive coalescing on and off;
# 3. the token ring (3 transports, 17 and 50 full-size frames per visit):
#    rotations/s, the transport's ceiling for one sender (RING_N rotations,
#    default 3000).
set -euo pipefail
N=${1:-300000}
SRC=${UDPBLAST_SRC:-/work/shared/peer/corosync/udpblast.c}
id=$$
S=rrpt-b$id-sw A=rrpt-b$id-a B=rrpt-b$id-b
cleanup() { for n in $A $B $S; do ip netns del "$n" 2>/dev/null || true; done; rm -f /tmp/rrpt-udpblast-$id; }
trap cleanup EXIT
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -r "$SRC" ] && command -v cc >/dev/null; then
	cc -O2 -o /tmp/rrpt-udpblast-$id "$SRC"
	ip netns add $S; ip netns add $A; ip netns add $B
	ip -n $S link add br0 type bridge; ip -n $S link set br0 up
	for n in a b; do
		ns=rrpt-b$id-$n
		ip -n $S link add p$n type veth peer name eth0 netns $ns
		ip -n $S link set p$n master br0 up
		ip -n $ns link set eth0 up; ip -n $ns link set lo up
	done
	ip -n $A addr add 198.18.0.1/24 dev eth0; ip -n $B addr add 198.18.0.2/24 dev eth0
	for batch in 1 32; do
		ip netns exec $B /tmp/rrpt-udpblast-$id recv 9000 4 &
		sleep 0.3
		ip netns exec $A /tmp/rrpt-udpblast-$id send 198.18.0.2 9000 1000 3 $batch
		wait
	done
else
	echo "# udpblast.c or cc missing: raw C reference skipped"
fi
go test -run XXX -bench '^Benchmark(Loopback|Netns|RawUDPBatch)$' -benchtime ${N}x ./rrp
go test -run XXX -bench '^Benchmark(Ring|NetnsRing)$' -benchtime ${RING_N:-3000}x ./rrp
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
