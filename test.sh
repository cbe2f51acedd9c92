#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds once in the release profile (the
# binary, the tests and the benchmarks share it: each profile rebuilds RocksDB), then runs
# the unit tests and the end-to-end tests against the real `gannet` binary.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release -j2 --workspace --all-targets
cargo test --release -j2 --workspace
