#!/usr/bin/env bash
# Builds the libFuzzer targets with coverage instrumentation on stable Rust (the -C flags
# cargo-fuzz passes) and runs each for RUNS inputs (default 1 000 000), starting from the
# seed inputs in fuzz/seeds/<target>. libFuzzer stops at the first crash, at any single
# allocation above 256 MB (-malloc_limit_mb) and at a resident size above 2 GB; the
# corpora it grows go to fuzz/corpus/<target> (not committed).
#   bash fuzz/run.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-1000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(json_batch ndjson_batch csv_batch protobuf_batch create_stream predict_request c37118_frame)
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --release --target "$host" --bins
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    started=$(date +%s)
    "target/$host/release/$target" -runs="$runs" -malloc_limit_mb=256 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 "corpus/$target" "seeds/$target" 2> "corpus/$target.log" || {
        tail -40 "corpus/$target.log"
        exit 1
    }
    echo "$target: $(grep -m1 'stat::number_of_executed_units' "corpus/$target.log" | awk '{print $2}') inputs in $(( $(date +%s) - started )) s, $(grep -m1 'stat::peak_rss_mb' "corpus/$target.log" | awk '{print $2}') MB peak, no crash"
done
