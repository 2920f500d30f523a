#!/usr/bin/env bash
# nats-server and N clustered nodes under loadgen (BENCHMARKS.md, issue 17): p99, nats-server and node CPU,
# and the size of the NATS store at the end (the log, the snapshots and the buckets).
# usage: cluster-nodes.sh BIN NODES STREAMS DURATION  (loadgen targets node 1)
BIN=$1; N=$2; S=$3; D=${4:-8}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster-lib.sh"
dir=$(mktemp -d)
start_nats
pids=()
for k in $(seq $N); do
  $BIN serve --cluster nats://127.0.0.1:$port --node-id n$k --data-dir $dir/d$k --listen 127.0.0.1:0 > $dir/n$k.log 2>&1 &
  pids+=($!)
done
addr=$(node_address $dir/n1.log)
sleep 2
ncpu0=$(awk '{print $14+$15}' /proc/$npid/stat)
sample_states & sampler=$!
line=$(timeout 600 /usr/bin/time -f "loadgen cpu %U+%S s" $BIN loadgen --server http://$addr --streams $S --rate 30 --duration $D --channels 32 --dictionary state,delay:4 2>&1 | grep -E "streams:|loadgen cpu" | tr '\n' ' ')
ncpu=$(( $(awk '{print $14+$15}' /proc/$npid/stat) - ncpu0 ))
kill $sampler
log=$(log_peak)
after=$(stream_states | tr '\n' ';')
cpus=""
for p in "${pids[@]}"; do cpus="$cpus $(awk '{print $14+$15}' /proc/$p/stat)"; done
for p in "${pids[@]}"; do kill $p; done; wait "${pids[@]}" 2>/dev/null
kill $npid; wait $npid 2>/dev/null
store=$(du -sk "$dir/nats" | cut -f1)
echo "nodes=$N S=$S | $line | nats cpu ticks $ncpu | node cpu ticks$cpus | $log | after the streams' deletion: $after | nats store ${store} KiB"
rm -rf $dir
