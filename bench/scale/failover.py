# Feeds one stream, waits until its owner applied it all, SIGKILLs the owner and times the take-over
# (called by failover.sh).
# usage: failover.py BASE_A BASE_B PID_A PID_B IDS(a,b) BATCHES  -> prints the failover timeline
import http.client, json, math, os, signal, sys, time
a, b, pa, pb, ids, L = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(','), int(sys.argv[6])
C, ROWS, RATE = 32, 30, 30.0
def conn(base):
    host, port = base.replace('http://', '').split(':')
    return http.client.HTTPConnection(host, int(port), timeout=30)
def req(c, method, path, body=None):
    c.request(method, path, body=None if body is None else json.dumps(body), headers={'content-type': 'application/json'})
    r = c.getresponse(); data = r.read()
    return r.status, dict(r.getheaders()), data
ca = conn(a)
chans = [{"name": f"c{i}"} for i in range(1, C + 1)]
sid = "fo"
st, _, d = req(ca, 'POST', '/v1/streams', {"id": sid, "channels": chans, "ts": 1 / RATE, "dictionary": "state,delay:4", "warmup": 300, "mu": 1e-3})
assert st in (200, 201), d
def sample(k):
    return [math.sin(k * 0.05 * (1 + 0.1 * i)) + 0.01 * math.sin(k * 1.7 * (i + 1)) for i in range(C)]
t0 = time.time()
for bi in range(L):
    rows = [sample(bi * ROWS + j) for j in range(ROWS)]
    while True:
        st, _, d = req(ca, 'POST', f'/v1/streams/{sid}/samples', {"seq": bi + 1, "t0": bi * ROWS / RATE, "x": rows})
        if st == 200: break
        time.sleep(0.05)
fed = time.time() - t0
def status(base):
    try:
        c = conn(base); st, h, d = req(c, 'GET', f'/v1/streams/{sid}'); c.close()
        if st != 200: return None, None
        return h.get('koopstream-served-by'), json.loads(d)['status']['batches']
    except Exception:
        return None, None
while True:
    owner, n = status(a)
    if n == L and owner: break
    time.sleep(0.05)
# kill the owner; watch the other node
dead_pid, other = (pa, b) if owner == ids[0] else (pb, a)
killed = time.time()
os.kill(dead_pid, signal.SIGKILL)
first_owner = None
while True:
    who, n = status(other)
    if who and who != owner and first_owner is None: first_owner = time.time() - killed
    if who and who != owner and n == L: break
    time.sleep(0.02)
total = time.time() - killed
print(f"batches={L} fed_in={fed:.1f}s owner={owner} new_owner={who} lease_gone_after={first_owner:.2f}s applied_after={total:.2f}s killed_at={killed:.3f}")
