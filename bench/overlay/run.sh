#!/usr/bin/env bash
# The overlay benchmark: two hosts of the multi-host harness (tests/src/cluster.rs), one
# etcd, everything inside throwaway namespaces. Writes bench/overlay/results.json.
#   sudo bash bench/overlay/run.sh        (N=100 endpoints, T=5 s iperf3 runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh
cargo build --locked --release --bins
cargo build --locked --release -p berth-tests --example overlay_bench
N=${N:-100} T=${T:-5} BASELINE=${BASELINE:-../shared/bench/dataplane-baseline.sh} \
  target/release/examples/overlay_bench | tee bench/overlay/results.json
