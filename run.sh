#!/usr/bin/env bash
# Builds Gannet if needed and starts it on its embedded defaults (loopback high ports,
# data in ./data). Extra arguments go to `gannet serve`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release -j2 -p gannet-appliance
exec target/release/gannet serve "$@"
