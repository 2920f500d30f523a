# Shared by the cluster scripts (sourced): a loopback nats-server with its store in $dir,
# and the address a node logs when it listens.

# Starts nats-server -js on a free loopback port, with its monitoring endpoint on another;
# sets $port, $mport and $npid.
start_nats() {
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
  mport=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
  nats-server -js -a 127.0.0.1 -p "$port" -m "$mport" -sd "$dir/nats" > "$dir/nats.log" 2>&1 &
  npid=$!
  sleep 1
}

# Waits (up to 10 s) for a node's "koopstream listening" line in LOG; prints its address.
node_address() {
  for _ in $(seq 100); do grep -q "koopstream listening" "$1" && break; sleep 0.1; done
  grep listening "$1" | grep -o "127.0.0.1:[0-9]*" | head -1
}

# Messages and bytes of each JetStream stream (the log, the buckets), from the monitoring
# endpoint: "NAME messages MiB" per stream.
stream_states() {
  python3 -c "
import json, urllib.request
j = json.load(urllib.request.urlopen('http://127.0.0.1:$mport/jsz?streams=true'))
for a in j.get('account_details', []):
    for s in a.get('stream_detail', []):
        print('%s %d %.1f' % (s['name'], s['state']['messages'], s['state']['bytes'] / 2**20))
"
}

# Samples stream_states every 5 s into $dir/states until killed (run in the background).
sample_states() {
  while sleep 5; do echo "t=$(date +%s)" >> "$dir/states"; stream_states >> "$dir/states"; done
}

# The largest size the ingest log reached while sampled: "log N messages X MiB".
log_peak() {
  grep '^KOOPSTREAM_INGEST ' "$dir/states" | sort -k3,3n | tail -1 | awk '{print "log peak " $2 " messages " $3 " MiB"}'
}
