"""The real Python distlog 0.1 ZmqHandler, given a pyzmq PUSH socket (which it accepts
as its endpoint), logs COUNT records "LABEL record I of COUNT" to ENDPOINT, then waits
SECONDS and exits.

usage: curve_send.py ENDPOINT LABEL COUNT SECONDS [SERVER_PUBLIC_Z85 CLIENT_SECRET_FILE]
With the keys the socket is a CURVE client (libzmq's curve_serverkey, curve_secretkey
and the public key libzmq derives from it); without, it speaks NULL (plaintext).
Says on stderr how many records libzmq queued (fewer once a refused handshake has
left it without a peer)."""
import logging, sys, time
import zmq
import distlog

endpoint, label, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
# libzmq drops the pipe of a peer whose handshake failed (a NULL client of a CURVE
# server, a refused key), and PUSH's send then blocks for want of a peer: bounded.
s.sndtimeo = 1000
if len(sys.argv) > 5:
    server_public = sys.argv[5].encode()
    with open(sys.argv[6], "rb") as f:
        secret = f.read().strip()
    s.curve_serverkey = server_public
    s.curve_secretkey = secret
    s.curve_publickey = zmq.curve_public(secret)
s.connect(endpoint)

log = logging.getLogger("py.curve")
log.setLevel(logging.INFO)
log.propagate = False
h = distlog.ZmqHandler(s, system="T")
h.setFormatter(distlog.JSONFormatter())
log.addHandler(h)
queued = 0
for i in range(count):
    try:
        log.info("%s record %d of %d", label, i, count)
    except zmq.Again:
        break  # no peer to queue for: the rest would wait as long, each
    queued += 1
print("%s: %d of %d queued" % (label, queued, count), file=sys.stderr, flush=True)
time.sleep(seconds)
# A refused client's messages can never leave: do not wait for them forever.
s.close(linger=1000)
ctx.term()
