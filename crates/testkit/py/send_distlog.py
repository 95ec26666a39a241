"""The real Python distlog 0.1 handler sending to ENDPOINT in ENCODING (json|pickle).
For every message it sends it prints one line: json.dumps of the dict it sent, as
Python decodes its own body (the reference the Rust decoder must match)."""
import json, logging, math, pickle, sys, time
import distlog

endpoint, encoding = sys.argv[1], sys.argv[2]
bodies = []

def default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.decode("latin-1")
    if isinstance(o, (set, frozenset)):
        return list(o)
    raise TypeError(type(o).__name__)

base = distlog.JSONFormatter if encoding == "json" else distlog.PickleFormatter
class Recording(base):
    def format(self, record):
        body = super().format(record)
        bodies.append(body)
        return body

log = logging.getLogger("shop.orders")
log.setLevel(logging.DEBUG)
log.propagate = False
h = distlog.ZmqHandler(endpoint, system="S")
h.setFormatter(Recording())
log.addHandler(h)

log.debug("plain debug")
log.info("unicode ünïcødé ✓ 😀 %s", "tab\tand\nnewline")
log.warning("with extra", extra={"order_id": 42, "amount": 9.5, "tags": ["a", "b"], "flag": True, "none": None})
log.warning("python values", extra={
    "big": 2 ** 100, "neg_big": -(2 ** 70), "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"),
    "nested": {"a": [1, {"b": (2, 3)}], "c": {}}, "tup": (1, "two", None), "taskName": "t-1",
    "astral": "\U0001F600\U00010348", "tiny": 1e-300, "ctrl": "\x00\x1f\x7f",
})
if encoding == "pickle":
    log.warning("pickle only", extra={"raw": b"\x00\xffbytes", "s": {1}, "fs": frozenset(), "key_int": {1: "one", 2.5: "float"}})
with distlog.task("checkout %s", "cart-1", user="alice") as t:
    t.bind(region="eu")
    log.info("inside task")
    with distlog.to("charge card", attempt=1):
        try:
            raise ValueError("card declined")
        except ValueError:
            log.exception("charge failed")
log.critical("big %s", "x" * 5000)
time.sleep(0.5)  # pyzmq sends in the background: let it finish before exit
for body in bodies:
    obj = pickle.loads(body) if encoding == "pickle" else json.loads(body)
    print(json.dumps(obj, default=default), flush=True)
h.close()
