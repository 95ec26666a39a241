"""A pyzmq SUB client of `distlogd --publish`: connects to argv[1], subscribes to the
prefix argv[2], prints each message as a JSON list of hex frames until one whose last
frame is bytes.fromhex(argv[3]) (included), or 120 s pass."""
import json
import sys
import time

import zmq

endpoint, prefix, end = sys.argv[1], sys.argv[2].encode(), bytes.fromhex(sys.argv[3])
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, prefix)
sub.connect(endpoint)
deadline = time.time() + 120
while time.time() < deadline:
    if sub.poll(200):
        frames = sub.recv_multipart()
        print(json.dumps([f.hex() for f in frames]), flush=True)
        if frames[-1] == end:
            break
sub.close(linger=0)
ctx.term()
