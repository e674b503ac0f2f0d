#!/usr/bin/env bash
# Runs a command inside fresh network and mount namespaces with its own berth directories,
# so berth never touches this machine's own network, firewall or /run/netns.
#   scripts/in-sandbox.sh COMMAND [ARG...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/berth-sandbox.XXXXXX)
# The agent berth started on demand lives in the sandbox's namespace: end it by its pid.
stop_agent() {
  if [ -s "$dir/run/agent.pid" ]; then kill "$(cat "$dir/run/agent.pid")" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap stop_agent EXIT
export BERTH_ROOT="$dir/root" BERTH_RUN_ROOT="$dir/run"
export PATH="$here/target/dist:$PATH"
unshare -n -m --propagation private -- bash -c 'ip link set lo up && "$@"' sandbox "$@"
