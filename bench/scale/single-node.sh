#!/usr/bin/env bash
# One node under loadgen (BENCHMARKS.md, issue 17): prints server CPU, loadgen's summary and eigen time.
# DUR=memory|periodic|per-ack (default per-ack).
# TLS=DIR serves HTTPS/WSS with DIR/server.pem and DIR/server-key.pem (for 127.0.0.1), and
# loadgen trusts DIR/ca.pem.
# usage: measure.sh BIN STREAMS DURATION
BIN=$1; S=$2; D=${3:-30}
dir=$(mktemp -d)
tls_serve=(); tls_client=(); scheme=http; curl_ca=()
if [ -n "${TLS:-}" ]; then
  tls_serve=(--tls-cert "$TLS/server.pem" --tls-key "$TLS/server-key.pem")
  tls_client=(--ca "$TLS/ca.pem"); scheme=https; curl_ca=(--cacert "$TLS/ca.pem")
fi
$BIN serve --listen 127.0.0.1:0 --data-dir $dir/data --durability ${DUR:-per-ack} "${tls_serve[@]}" > $dir/log 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "koopstream listening" $dir/log && break; sleep 0.1; done
addr=$(grep listening $dir/log | grep -o "127.0.0.1:[0-9]*" | head -1)
c0=$(awk '{print $14+$15}' /proc/$pid/stat)
line=$($BIN loadgen --server $scheme://$addr "${tls_client[@]}" --streams $S --rate 30 --duration $D --channels 32 --dictionary state,delay:4 2>&1 | tail -3 | tr '\n' ' ')
c1=$(awk '{print $14+$15}' /proc/$pid/stat)
metrics=$(curl -s "${curl_ca[@]}" $scheme://$addr/metrics)
m=$(echo "$metrics" | grep -E "^koopstream_eigen_seconds_(sum|count)|^koopstream_refresh_wait_seconds_(sum|count)" | tr '\n' ' ')
# The longest refresh wait lies below the first bucket bound that holds every wait.
total=$(echo "$metrics" | grep -E "^koopstream_refresh_wait_seconds_count" | awk '{print $2}')
wait_max=$(echo "$metrics" | grep -E '^koopstream_refresh_wait_seconds_bucket' | awk -v n="$total" '$2 == n {print $1; exit}' | grep -o 'le="[^"]*"')
kill $pid; wait $pid 2>/dev/null
echo "S=$S cpu_s=$(awk "BEGIN{print ($c1-$c0)/100}") | $line | $m | refresh wait below $wait_max"
rm -rf $dir
