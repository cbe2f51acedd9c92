#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo fuzz with libFuzzer) and runs each one for a
# bounded time from its seed corpus, so that CI keeps them honest. New inputs go to a
# temporary directory; the committed seeds are not changed. A crash fails the run and
# leaves its input in fuzz/artifacts/TARGET/.
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked -j2 >&2
fi
# The fuzz build needs nightly flags (sanitizers); the stable toolchain allows them with
# RUSTC_BOOTSTRAP for this build only.
export RUSTC_BOOTSTRAP=1
CARGO_BUILD_JOBS=2 cargo fuzz build -O >&2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
passed=0
failed=0
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    log="$work/log"
    if cargo fuzz run -O "$t" "$work" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz $t: ok, ${runs:-?} runs in ${seconds}s (${cov:-cov: ?})"
        passed=$((passed + 1))
    else
        echo "fuzz $t: FAILED"
        tail -40 "$log"
        failed=$((failed + 1))
    fi
    rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
