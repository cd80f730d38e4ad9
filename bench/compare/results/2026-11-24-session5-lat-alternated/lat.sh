#!/bin/bash
# lat.sh LABEL [ENV...]: receivers on 2,3; cpgbench --latency on node 1 with ENV; prints p50/p99 per size
# and, per sample, the CPU (µs) and context switches of each daemon.
cd /work/main; export CLUSTER_DIR=/tmp/q5
label=$1; shift
pkill -f 'cpgbench --recv'; sleep 0.2
snap() { for i in 1 2 3; do p=$(pgrep -f "totemd.*q5/n$i/" | head -1); t=$(awk '{print $14+$15}' /proc/$p/stat); c=$(cat /proc/$p/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'); echo -n "$t $c "; done; }
for i in 2 3; do bin/cluster exec $i env ${RENV:-X=1} ${RBIN:-bin/cpgbench} --recv --quiet >/dev/null 2>&1 & done
sleep 0.5
s0=$(snap)
out=$(bin/cluster exec 1 env "$@" ${LBIN:-bin/cpgbench} --latency --sizes ${SIZES:-64,1024} --count ${N:-2000} --wait-members 3 --json 2>/dev/null | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(" ".join("%d:%.0f/%.0f"%(r["size"],r["p50_us"],r["p99_us"]) for r in d["latency"]))')
s1=$(snap)
nsz=$(echo ${SIZES:-64,1024} | tr , ' ' | wc -w)
per=$(python3 -c "
a='$s0'.split(); b='$s1'.split(); n=${N:-2000}*1.1*$nsz
print(' '.join('n%d:%.0fus/%.1fcs'%(i+1,(float(b[2*i])-float(a[2*i]))*10000/n,(float(b[2*i+1])-float(a[2*i+1]))/n) for i in range(3)))")
echo "$label load=$(cut -d' ' -f1 /proc/loadavg) $out | $per"
pkill -f 'cpgbench --recv'
