#!/usr/bin/env bash
# Runs a command inside fresh network and mount namespaces with its own berth directories,
# so berth never touches this machine's own network, firewall or /run/netns.
#   scripts/in-sandbox.sh COMMAND [ARG...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/berth-sandbox.XXXXXX)
trap 'rm -rf "$dir"' EXIT
export BERTH_ROOT="$dir/root" BERTH_RUN_ROOT="$dir/run"
export PATH="$here/target/release:$PATH"
unshare -n -m --propagation private -- bash -c 'ip link set lo up && exec "$@"' sandbox "$@"
