"""A real libzmq PULL collector (pyzmq) that decodes every message the way the
Python distlog collector does and prints one JSON summary line per message.

usage: pull.py ENDPOINT COUNT TIMEOUT_S [--curve-secret Z85]
Exits after COUNT messages or TIMEOUT_S seconds of silence. With --curve-secret the
socket is a CURVE server with that secret key (any client that knows its public key
may connect: no ZAP handler)."""
import json, pickle, sys, time
import zmq

endpoint, want, silence = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
if "--curve-secret" in sys.argv[4:]:
    secret = sys.argv[sys.argv.index("--curve-secret") + 1].encode()
    s.curve_server = True
    s.curve_secretkey = secret
    s.curve_publickey = zmq.curve_public(secret)
s.bind(endpoint)
print(json.dumps({"ready": True}), flush=True)
n = 0
last = time.time()
while n < want and time.time() - last < silence:
    if not s.poll(100):
        continue
    frames = s.recv_multipart()
    last = time.time()
    topic, body = frames[0], frames[1]
    rec = pickle.loads(body) if topic[2:3] == b"P" else json.loads(body)
    types = {k: type(v).__name__ for k, v in rec.items()}
    print(json.dumps({"frames": len(frames), "topic": topic.decode(), "record": rec, "types": types, "keys": list(rec)}), flush=True)
    n += 1
s.close(linger=0)
ctx.term()
