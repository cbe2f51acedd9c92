#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds once in the release profile (the
# binary, the tests and the benchmarks share it: each profile rebuilds RocksDB), then runs
# the unit tests and the end-to-end tests against the real `gannet` binary, and a short
# run of every fuzz target (FUZZ_SECONDS each, 20 by default; 0 skips them), and builds
# the appliance image and boots it under qemu by UEFI and BIOS (image/build, image/test;
# GANNET_IMAGE=0 skips them).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/unpack-corpus.sh >/dev/null   # tests/corpus.tar.xz -> tests/corpus/ (the tests read it)
cargo build --release -j2 --workspace --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release -j2 --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
    scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}" 2>&1 | tee -a "$log" || status=$?
fi
if [ "${GANNET_IMAGE:-1}" != 0 ]; then
    built=0
    image/build 2>&1 | tee -a "$log" || built=$?
    if [ "$built" = 3 ]; then
        # No Debian root could be fetched or set up on this machine (mmdebstrap's log
        # is printed above): the image is not tested here, and the summary says so.
        echo "image: skipped, no Debian root on this machine (image/build exit 3)" | tee -a "$log"
    elif [ "$built" != 0 ]; then
        status=1
        echo "image: 0 passed, 1 failed" >>"$log"
    elif image/test 2>&1 | tee -a "$log"; then
        echo "image: 1 passed, 0 failed" >>"$log"
    else
        status=1
        echo "image: 0 passed, 1 failed" >>"$log"
    fi
fi
# One closing line for the whole suite, summed over every test binary and fuzz target.
awk '/^test result:/ { p += $4; f += $6 }
     /^fuzz: [0-9]+ passed/ { p += $2; f += $4 }
     /^image: [0-9]+ passed/ { p += $2; f += $4 }
     /^image: skipped/ { s += 1 }
     END { printf "tests: %d passed, %d failed%s\n", p, f, s ? ", image skipped" : "" }' "$log"
exit "$status"
