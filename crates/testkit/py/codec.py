"""Python's own decoders as a service for the tests: each input line is
`J <base64 body>` or `P <base64 body>`; each output line is json.dumps of what
json.loads / pickle.loads made of it (bytes as Latin-1 text, sets as lists, the
same choices distlog's JSON encoder makes), or `ERROR <exception>`."""
import base64, json, pickle, sys

def default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.decode("latin-1")
    if isinstance(o, (set, frozenset)):
        return list(o)
    raise TypeError(type(o).__name__)

for line in sys.stdin:
    kind, _, data = line.strip().partition(" ")
    body = base64.b64decode(data)
    try:
        obj = pickle.loads(body) if kind == "P" else json.loads(body)
        print(json.dumps(obj, default=default), flush=True)
    except Exception as e:
        print("ERROR " + type(e).__name__ + ": " + str(e), flush=True)
