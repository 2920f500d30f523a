# Joins failover.py's line with the new owner's "owning the stream" log line (called by failover.sh).
import sys, json, datetime
line = sys.stdin.read().strip().splitlines()
out = line[0]; killed = float(out.split('killed_at=')[1])
own = json.loads(line[-1])
t = datetime.datetime.fromisoformat(own['timestamp'].replace('Z', '+00:00')).timestamp()
print(out.split(' killed_at')[0], f"took_lease_after={t - killed:.2f}s restore={own['fields']['seconds']*1000:.1f}ms from_sequence={own['fields']['from_sequence']}")
