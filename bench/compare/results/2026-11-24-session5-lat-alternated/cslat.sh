#!/bin/bash
# cslat.sh: Corosync latency run (receivers on 2,3; cpgperf lat on 1) with CPU per sample of each corosync
CS=/work/shared/peer/corosync; STATE=/tmp/cpgbench-cluster; BIN=$STATE/cpgperf
N=${N:-5000}; SIZES=${SIZES:-64,1024}
pids=(); for i in 1 2 3; do pids+=($(cat $STATE/n$i/corosync.hostpid)); done
snap() { for p in "${pids[@]}"; do t=$(awk '{print $14+$15}' /proc/$p/stat); c=$(cat /proc/$p/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'); echo -n "$t $c "; done; }
for i in 2 3; do ip netns exec cs$i $BIN recv >/dev/null 2>&1 & done
sleep 1
s0=$(snap)
out=$(ip netns exec cs1 $BIN lat -w 3 -n $N -s $SIZES 2>&1 | grep LAT | awk '{print $2, $4, $6}' | tr '\n' ' ')
s1=$(snap)
nsz=$(echo $SIZES | tr , ' ' | wc -w)
per=$(python3 -c "
a='$s0'.split(); b='$s1'.split(); n=$N*1.1*$nsz
print(' '.join('cs%d:%.0fus/%.1fcs'%(i+1,(float(b[2*i])-float(a[2*i]))*10000/n,(float(b[2*i+1])-float(a[2*i+1]))/n) for i in range(3)))")
echo "corosync load=$(cut -d' ' -f1 /proc/loadavg) $out | $per"
pkill -f "cpgperf recv"
