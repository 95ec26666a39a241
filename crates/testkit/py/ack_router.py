"""A real libzmq ROUTER (pyzmq) that speaks distlog's acknowledged-delivery protocol,
version 1 (README, "Acknowledged delivery"), as a collector that holds nothing.

usage: ack_router.py ENDPOINT MODE SILENCE_S
MODE: "all" acknowledges, after each run of ready messages, the last seq each
connection carried; "none" never acknowledges; "none-first" acknowledges every
connection but the first. Prints {"ready": true}, then one JSON line per record
(peer, producer, seq, base, flags, msg), and at the end {"acks": N}. Exits after
SILENCE_S seconds without a message. A malformed header is printed as {"bad": ...}."""
import json, struct, sys, time
import zmq

endpoint, mode, silence = sys.argv[1], sys.argv[2], float(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.bind(endpoint)
print(json.dumps({"ready": True}), flush=True)
first_peer = None
acks = 0
last = time.time()
while time.time() - last < silence:
    if not s.poll(50):
        continue
    latest = {}
    while True:
        try:
            frames = s.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        last = time.time()
        peer, header = frames[0], frames[1]
        if first_peer is None:
            first_peer = peer
        if len(frames) != 4 or len(header) != 37 or header[:4] != b"DLA\x01":
            print(json.dumps({"bad": header[:8].hex(), "frames": len(frames)}), flush=True)
            continue
        producer = header[4:20]
        seq, base = struct.unpack(">QQ", header[20:36])
        record = json.loads(frames[3])
        print(json.dumps({"peer": peer.hex(), "producer": producer.hex(), "seq": seq,
                          "base": base, "flags": header[36], "topic": frames[2].decode(),
                          "msg": record.get("msg")}), flush=True)
        latest[peer] = (producer, seq)
    for peer, (producer, seq) in latest.items():
        if mode == "none" or (mode == "none-first" and peer == first_peer):
            continue
        s.send_multipart([peer, b"DLK\x01" + producer + struct.pack(">Q", seq)])
        acks += 1
print(json.dumps({"acks": acks}), flush=True)
