"""A real libzmq PULL collector (pyzmq) that decodes every message the way the
Python distlog collector does and prints one JSON summary line per message.

usage: pull.py ENDPOINT COUNT TIMEOUT_S [--stop-after N] [--sleep-between-s X]
Exits after COUNT messages or TIMEOUT_S seconds of silence."""
import json, pickle, sys, time
import zmq

endpoint, want, silence = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
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
