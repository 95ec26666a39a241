"""The independent reader of a JetStream stream, with nats-py (not distlog's code).

Usage: nats_read.py URL STREAM

Prints one JSON object per stored message, in stream order:
{"seq": N, "subject": "...", "headers": {"Name": "value", ...}, "body": "<base64>"}
and nothing else on stdout.
"""

import asyncio
import base64
import json
import sys

import nats


async def main(url, stream):
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        first, last = info.state.first_seq, info.state.last_seq
        if info.state.messages:
            for seq in range(first, last + 1):
                msg = await js.get_msg(stream, seq)
                print(json.dumps({
                    "seq": msg.seq,
                    "subject": msg.subject,
                    "headers": dict(msg.headers or {}),
                    "body": base64.b64encode(msg.data or b"").decode("ascii"),
                }))
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
