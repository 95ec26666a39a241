"""Times the real Python distlog 0.1 handler: N JSON records through logging to
ENDPOINT. Prints `python_records_per_s <rate>` and `python_us_per_call <us>`."""
import logging, sys, time
import distlog

endpoint, n = sys.argv[1], int(sys.argv[2])
log = logging.getLogger("bench")
log.setLevel(logging.INFO)
log.propagate = False
h = distlog.ZmqHandler(endpoint, system="T")
h.setFormatter(distlog.JSONFormatter())
log.addHandler(h)
pad = "x" * 40
start = time.perf_counter()
for i in range(n):
    log.info("order %d paid %s", i, pad, extra={"order_id": i, "amount": 9.5, "user": "alice"})
elapsed = time.perf_counter() - start
time.sleep(0.5)
print("python_records_per_s %.0f" % (n / elapsed))
print("python_us_per_call %.2f" % (elapsed / n * 1e6))
h.close()
