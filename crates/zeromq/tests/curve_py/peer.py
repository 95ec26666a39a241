"""libzmq (pyzmq) CURVE peers for tests/curve_libzmq.rs. Keys come in Z85."""
import sys
import time

import zmq


def main():
    mode, endpoint = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    if mode == "push_client":
        server_pub, pub, sec, n = sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
        # The Rust side derived `pub` from `sec`: libzmq must agree.
        assert zmq.curve_public(sec.encode()) == pub.encode(), "public key mismatch"
        s = ctx.socket(zmq.PUSH)
        s.curve_serverkey = server_pub.encode()
        s.curve_publickey = pub.encode()
        s.curve_secretkey = sec.encode()
        s.sndtimeo = 3000
        s.linger = 3000
        s.connect(endpoint)
        sent = 0
        try:
            for i in range(n):
                s.send_multipart([b"secret-payload-%d" % i, b"part2-%d" % i])
                sent += 1
        except zmq.Again:
            pass
        print("sent", sent, flush=True)
        s.close()
    elif mode == "push_null":
        n = int(sys.argv[3])
        s = ctx.socket(zmq.PUSH)
        s.sndtimeo = 1000
        s.linger = 1000
        s.connect(endpoint)
        try:
            for i in range(n):
                s.send(b"null-%d" % i)
        except zmq.Again:
            pass
        s.close()
    elif mode == "pull_server":
        sec, n = sys.argv[3], int(sys.argv[4])
        s = ctx.socket(zmq.PULL)
        s.curve_server = True
        s.curve_secretkey = sec.encode()
        s.rcvtimeo = 15000
        s.bind(endpoint)
        print("bound", flush=True)
        for _ in range(n):
            parts = s.recv_multipart()
            print(" ".join(p.decode() for p in parts), flush=True)
        s.close()
    else:
        raise SystemExit("unknown mode " + mode)
    ctx.term()


if __name__ == "__main__":
    main()
