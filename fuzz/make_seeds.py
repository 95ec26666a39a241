#!/usr/bin/env python3
"""Writes the fuzz seeds in fuzz/seeds/<target>/ from the golden frames that the real
Python distlog sent (tests/fixtures/, a copy of shared/wire/golden/; the topic is in
each file name). Run from anywhere: python3 fuzz/make_seeds.py"""
import pathlib
import struct

root = pathlib.Path(__file__).resolve().parent
fixtures = root.parent / "tests" / "fixtures"
seeds = root / "seeds"


def write(target, name, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def frame(b):
    # The `message` target's framing: 2-byte little-endian length, then the bytes.
    return struct.pack("<H", min(len(b), 0xFFFF)) + b


for sysl in b"TSP":
    for kind in b"LP":
        for enc in b"JP":
            t = bytes([sysl, kind, enc])
            write("topic", t.decode(), t)
write("topic", "bad-letter", b"TXJ")
write("topic", "too-long", b"TLJJ")

for f in sorted(fixtures.iterdir()):
    body = f.read_bytes()
    topic = f.stem.split("-")[1].encode()
    target = "json_decode" if f.suffix == ".json" else "pickle_decode"
    write(target, f.name, body)
    write("message", f.stem, frame(topic) + frame(body))
    # The round-trip targets read bytes as `Arbitrary` choices, so any bytes do; the
    # golden ones just start them off with some variety.
    write("roundtrip_" + ("json" if f.suffix == ".json" else "pickle"), f.name, body)

# curve: command bodies of each CURVE handshake step and a MESSAGE, in libzmq's sizes
# (their boxes cannot open under the target's fresh keys, but the parsers get past
# the names and lengths), and a metadata block as READY and INITIATE carry it.
write("curve", "hello", b"\x05HELLO\x01\x00" + bytes(200 - 8))
write("curve", "welcome", b"\x07WELCOME" + bytes(168 - 8))
write("curve", "initiate", b"\x08INITIATE" + bytes(257 - 9))
write("curve", "ready", b"\x05READY" + bytes(30 - 6))
write("curve", "message", b"\x07MESSAGE" + bytes(8 + 16 + 1 + 3))
write("curve", "metadata", b"\x0bSocket-Type\x00\x00\x00\x04PULL\x08Identity\x00\x00\x00\x00")
write("curve", "error", b"\x05ERROR\x03400")
