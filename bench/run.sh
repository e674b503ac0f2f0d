#!/usr/bin/env bash
# berth's benchmark suite: berth beside netavark 1.4 and the CNI reference plugins, in one run.
#   bash bench/run.sh [--quick] [--only berth,netavark,cni] [--skip-dataplane]
# Writes bench/results/setup.{md,json,svg}. Needs root. Everything runs inside fresh network and
# mount namespaces made here: the machine's own network, firewall and /run are never touched.
# BERTH=/path/to/berth selects the binary (default: target/dist/berth of this checkout, which
# `make release` builds; see scripts/release.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export BERTH=${BERTH:-$repo/target/dist/berth}
# The programs measured run with the same environment whatever the caller's shell has set
# (this machine's shell sets RUST_BACKTRACE=1): no backtraces asked for.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

if [ "${BERTH_BENCH_SANDBOX:-}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh needs root (it creates namespaces, links and firewall rules inside them)" >&2
    exit 1
  fi
  bash "$here/deps.sh"
  export BERTH_BENCH_SANDBOX=1
  # Re-exec in a new network namespace and a private mount namespace.
  exec unshare -n -m --propagation private -- bash "$0" "$@"
fi

# From here on: inside the throwaway network + mount namespaces.
ip link set lo up
# A private /run: `ip netns add`, netavark, the CNI plugins and iptables' lock file write there,
# and none of it must reach the host's /run.
mount -t tmpfs -o mode=0755 tmpfs /run
# The CNI host-local plugin is given its own dataDir, but should anything fall back to
# /var/lib/cni, it lands in a tmpfs too (only mounted over a directory that already exists).
if [ -d /var/lib/cni ]; then mount -t tmpfs tmpfs /var/lib/cni; fi
work=/run/berth-bench
mkdir -p "$work"
exec python3 "$here/driver.py" --work "$work" --out "$here/results" "$@"
