"""The independent check of an acknowledged run, with nats-py (not distlog's code):
every record of `emit --count N` is in the stream exactly once, intact.

Usage: nats_check.py STREAM SUBJECT COUNT URL [URL ...]

Reads every message of STREAM by its sequence number, from the first to the last
stored when it starts, through whichever of the URLs answers. Each message must be
on SUBJECT, carry `Nats-Msg-Id: <32 hex digits>:<seq>` and `Distlog-Topic`,
and a JSON body of a record of logger `emit` whose message is `record <i> of
COUNT`. Prints one JSON object and nothing else on stdout:

{"ok": bool, "messages": stored, "read": read, "records": distinct i,
 "missing": n, "missing_first": [i...], "duplicate_records": n,
 "duplicate_first": [[i, copies]...], "duplicate_ids": n, "bad": n,
 "bad_first": ["why"...], "producers": n}

"ok" is true when every i in 0..COUNT was read once, no two messages share an id,
no message is bad, and what was read is what the stream says it stores.
"""

import asyncio
import json
import re
import sys

import nats

ID = re.compile(r"^([0-9a-f]{32}):([0-9]+)$")
FIRST = 10
# Gets in flight at once: one at a time, a stream of 20,000 takes 10 s to read.
PARALLEL = 200


async def main(stream, subject, count, urls):
    nc = await nats.connect(servers=urls, connect_timeout=5, max_reconnect_attempts=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        stored, last = info.state.messages, info.state.last_seq
        copies = {}
        ids = {}
        producers = set()
        bad = []
        read = 0
        if stored:
            for start in range(info.state.first_seq, last + 1, PARALLEL):
                seqs = range(start, min(start + PARALLEL, last + 1))
                got = await asyncio.gather(*(get(js, stream, seq) for seq in seqs))
                for seq, msg in zip(seqs, got):
                    if msg is None:
                        bad.append("stream seq %d: not stored" % seq)
                        continue
                    read += 1
                    why = check(msg, subject, count, copies, ids, producers)
                    if why:
                        bad.append("stream seq %d: %s" % (seq, why))
        missing = [i for i in range(count) if i not in copies]
        duplicates = sorted((i, c) for i, c in copies.items() if c > 1)
        duplicate_ids = sum(c - 1 for c in ids.values())
        print(json.dumps({
            "ok": not missing and not duplicates and not duplicate_ids and not bad
            and read == stored,
            "messages": stored,
            "read": read,
            "records": len(copies),
            "missing": len(missing),
            "missing_first": missing[:FIRST],
            "duplicate_records": len(duplicates),
            "duplicate_first": duplicates[:FIRST],
            "duplicate_ids": duplicate_ids,
            "bad": len(bad),
            "bad_first": bad[:FIRST],
            "producers": len(producers),
        }))
    finally:
        await nc.close()


async def get(js, stream, seq):
    """One stored message by its sequence number (a direct request to the stream's
    leader: no consumer, which a cluster that just lost a node may be slow to
    place), or None if there is none. Tried again on a timeout."""
    for attempt in range(3):
        try:
            return await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            return None
        except nats.errors.TimeoutError:
            if attempt == 2:
                raise


def check(msg, subject, count, copies, ids, producers):
    """Counts one message; why it is bad, or None."""
    if msg.subject != subject:
        return "subject %r" % msg.subject
    headers = msg.headers or {}
    msg_id = headers.get("Nats-Msg-Id")
    if msg_id is None:
        return "no Nats-Msg-Id"
    m = ID.match(msg_id)
    if not m:
        return "bad Nats-Msg-Id %r" % msg_id
    ids[msg_id] = ids.get(msg_id, 0) + 1
    producers.add(m.group(1))
    if headers.get("Distlog-Topic") != "TLJ":
        return "Distlog-Topic %r" % headers.get("Distlog-Topic")
    try:
        record = json.loads(msg.data)
    except ValueError as e:
        return "body is not JSON: %s" % e
    if not isinstance(record, dict) or record.get("name") != "emit":
        return "not a record of logger emit: %r" % msg.data[:80]
    text = record.get("msg")
    words = text.split(" ") if isinstance(text, str) else []
    if len(words) != 4 or words[0] != "record" or words[2] != "of" \
            or words[3] != str(count) or not words[1].isdigit() \
            or int(words[1]) >= count:
        return "message %r is not `record i of %d`" % (text, count)
    i = int(words[1])
    copies[i] = copies.get(i, 0) + 1
    return None


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
