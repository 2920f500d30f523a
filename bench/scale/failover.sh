#!/usr/bin/env bash
# Failover after SIGKILL against replay length (BENCHMARKS.md, issue 17): two nodes, lease TTL 3 s, no
# snapshots, one stream of 68-bus size fed BATCHES batches of 30 samples.
# usage: failover.sh BIN BATCHES
BIN=$1; L=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster-lib.sh"
dir=$(mktemp -d)
start_nats
pids=()
for k in 1 2; do
  KOOPSTREAM_CLUSTER__LEASE_TTL_S=3 KOOPSTREAM_CLUSTER__SNAPSHOT_EVERY_BATCHES=100000000 $BIN serve --cluster nats://127.0.0.1:$port --node-id n$k --listen 127.0.0.1:0 > $dir/n$k.log 2>&1 &
  pids+=($!)
done
a=$(node_address $dir/n1.log)
b=$(node_address $dir/n2.log)
{ python3 "$here/failover.py" http://$a http://$b ${pids[0]} ${pids[1]} n1,n2 $L; grep -h "owning the stream" $dir/n1.log $dir/n2.log | sort | tail -1; } | python3 "$here/failover-report.py"
for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait "${pids[@]}" 2>/dev/null || true
kill $npid; wait $npid 2>/dev/null
if [ -n "$KEEP" ]; then grep -h "handed off\|lease lost\|heartbeat failed\|owning the stream\|renewal failed" $dir/n*.log | sort | cut -c1-250; fi; rm -rf $dir
