"""Logs through the real Python distlog 0.1 to a collector at argv[1], in JSON and in
pickle, and prints for every record sent the exact line `distlogd --output jsonl` must
write for it: json.dumps({"topic": ..., "record": <the dict that was serialized>})."""
import json
import logging
import sys

import distlog

endpoint = sys.argv[1]


class Tee(distlog.ZmqHandler):
    def emit(self, record):
        super().emit(record)
        # After formatting, record.__dict__ is the very dict the formatter serialized.
        print(json.dumps({"topic": self.log_topic, "record": record.__dict__}), flush=True)


root = logging.getLogger()
root.setLevel(logging.DEBUG)
log = logging.getLogger("shop.orders")
extra = {
    "order_id": 42,
    "big": 2**100,
    "neg": -(2**80),
    "nan": float("nan"),
    "inf": float("inf"),
    "nested": {"a": [1, 2.5, None, True, {"b": "c\u00e9"}]},
}
for system, fmt in (("T", distlog.JSONFormatter()), ("P", distlog.PickleFormatter())):
    # On the root logger, so the task enter/exit records (logged there) are sent too.
    h = Tee(endpoint, system=system)
    h.setFormatter(fmt)
    root.addHandler(h)
    log.debug("plain debug")
    log.info("unicode \u00fcn\u00efc\u00f8d\u00e9 \u2713 %s", "tab\tand\nnewline")
    log.warning("with extra", extra=extra)
    with distlog.task("checkout %s", "cart-1", user="alice") as t:
        t.bind(region="eu")
        log.info("inside task")
        with distlog.to("charge card", attempt=1):
            try:
                raise ValueError("card declined")
            except ValueError:
                log.exception("charge failed")
    try:
        with distlog.task("doomed"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    log.critical("big %s", "x" * 5000)
    root.removeHandler(h)
    h.socket.close(linger=30000)
