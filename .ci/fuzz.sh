#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a short time from the
# committed seeds; fails if any target finds a crash, a panic, a leak or a hang.
#
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   space-separated targets (default: all of `cargo fuzz list`)
#   FUZZ_PARALLEL  targets run at once (default 1; 2 on a 2-core machine halves the time)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 10)
#
# Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz if it is missing.
# The working corpus (fuzz/corpus/, gitignored) grows across runs; new crash inputs
# land in fuzz/artifacts/<target>/ and logs in fuzz/logs/. A crash input is reproduced
# with `cargo +nightly fuzz run <target> <file>` and belongs in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

seconds=${FUZZ_SECONDS:-60}
parallel=${FUZZ_PARALLEL:-1}
timeout=${FUZZ_TIMEOUT:-10}
# The fuzz build (ASan, coverage instrumentation, another target triple) is kept in
# its own folder, whatever CARGO_TARGET_DIR the caller uses for the main crate.
target_dir="$PWD/fuzz/target"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: a nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
echo "==> building fuzz targets: $(echo $targets)"
cargo +nightly fuzz build --target-dir "$target_dir"

mkdir -p logs
run_one() {
    local t=$1
    mkdir -p "corpus/$t" "artifacts/$t"
    # The first corpus folder takes new inputs; the seeds folder is only read.
    if cargo +nightly fuzz run --target-dir "$target_dir" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1; then
        echo "ok      $t: $(grep -m1 -o 'number_of_executed_units: *[0-9]*' "logs/$t.log" | tr -s ' ')"
    else
        echo "FAILED  $t: see fuzz/logs/$t.log; input in fuzz/artifacts/$t/"
        grep -E -m5 'panicked at|ERROR: |SUMMARY|Test unit written' "logs/$t.log" | sed 's/^/        /'
        return 1
    fi
}

echo "==> running each target for ${seconds}s, $parallel at a time"
start=$SECONDS
failed=0
pids=()
for t in $targets; do
    run_one "$t" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$parallel" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
echo "==> fuzzing took $((SECONDS - start))s"
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: a fuzz target failed" >&2
    exit 1
fi
