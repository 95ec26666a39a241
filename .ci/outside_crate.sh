#!/usr/bin/env bash
# Proof that distlog works as a dependency: a new crate in a temporary directory,
# outside this workspace (so no [patch] or workspace setting of ours reaches it),
# depends on distlog by path, logs with the README's quickstart calls, and its records
# must arrive at a real PULL peer: pyzmq's libzmq, decoding as Python distlog does.
#
#   DISTLOG_PYTHON  the Python with pyzmq (default: .venv/bin/python of the workspace)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${DISTLOG_PYTHON:-$root/.venv/bin/python}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/outside/src"
cat > "$dir/outside/Cargo.toml" <<TOML
[package]
name = "outside"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
distlog = { path = "$root" }
log = { version = "0.4", features = ["kv"] }
TOML
cat > "$dir/outside/src/main.rs" <<'RS'
fn main() -> Result<(), distlog::InitError> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "tcp://127.0.0.1:5010".into());
    let guard = distlog::init(&endpoint)?;
    log::info!(target: "shop.orders", order_id = 42, amount = 9.5; "order paid");
    log::warn!("stock low");
    log::error!(target: "shop.payments", "card declined");
    let report = guard.shutdown();
    println!("sent {} dropped {}", report.sent, report.dropped);
    Ok(())
}
RS

echo "==> building a crate outside the workspace that depends on distlog by path"
(cd "$dir/outside" && cargo build --quiet)

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="tcp://127.0.0.1:$port"
"$python" "$root/crates/testkit/py/pull.py" "$endpoint" 3 20 > "$dir/pulled.jsonl" &
peer=$!
for _ in $(seq 100); do grep -q ready "$dir/pulled.jsonl" 2>/dev/null && break; sleep 0.1; done
"$dir/outside/target/debug/outside" "$endpoint" | tee "$dir/report.txt"
wait "$peer"

got=$(grep -c '"topic"' "$dir/pulled.jsonl" || true)
echo "the pyzmq PULL peer received $got records"
grep -q '"msg": "order paid"' "$dir/pulled.jsonl"
grep -q '"name": "shop.payments"' "$dir/pulled.jsonl"
grep -qx 'sent 3 dropped 0' "$dir/report.txt"
[ "$got" -eq 3 ]
echo "outside crate: ok"
