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
    elif mode == "sub_client":
        # Prints the first n messages on "keep", then exits.
        server_pub, n = sys.argv[3], int(sys.argv[4])
        pub, sec = zmq.curve_keypair()
        s = ctx.socket(zmq.SUB)
        s.curve_serverkey = server_pub.encode()
        s.curve_publickey = pub
        s.curve_secretkey = sec
        s.rcvtimeo = 15000
        s.subscribe(b"keep")
        s.connect(endpoint)
        for _ in range(n):
            print(s.recv().decode(), flush=True)
        s.close(linger=0)
    elif mode == "pub_server":
        # Publishes "keep-i" and "drop-i" until stdin closes.
        sec = sys.argv[3]
        s = ctx.socket(zmq.PUB)
        s.curve_server = True
        s.curve_secretkey = sec.encode()
        s.bind(endpoint)
        print("bound", flush=True)
        import select
        i = 0
        while not select.select([sys.stdin], [], [], 0.01)[0]:
            s.send(b"drop-%d" % i)
            s.send(b"keep-%d" % i)
            i += 1
        s.close(linger=0)
    else:
        raise SystemExit("unknown mode " + mode)
    ctx.term()


if __name__ == "__main__":
    main()
