#!/usr/bin/env bash
# Exploration: what the fast path (crates/firewall/src/fastpath.rs) gives container->container
# traffic. Frames between two containers of one network go host end to host end by a netdev
# ingress chain (`fwd to ... map`), skipping the bridge and, with it, br_netfilter, which runs
# every bridged frame through the inet hooks of berth's table.
#   sudo bash bench/explore/fastpath.sh [ROUNDS]
# Two pairs of berth containers (iperf3 server and client): one on a network with the fast
# path (berth's default), one on a network created with `-o fastpath=false` (the bridge).
# iperf3 -t 3 samples alternate A B B A between them. Prints each sample and the medians.
# Runs in namespaces of its own (network, mount, a tmpfs /run); everything it starts is
# removed at the end.
set -euo pipefail
. "$(dirname "$0")/sandbox.sh" "$@"
rounds=${1:-3}
export BERTH_ROOT=/run/explore/root BERTH_RUN_ROOT=/run/explore/run
B=${BERTH:-$here/target/dist/berth}
cleanup() {
  "$B" rm -f fsrv fcli bsrv bcli >/dev/null 2>&1 || true
  if [ -s "$BERTH_RUN_ROOT/agent.pid" ]; then kill "$(cat "$BERTH_RUN_ROOT/agent.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT
"$B" network create fast >/dev/null
"$B" network create -o fastpath=false plain >/dev/null
for p in "f fast" "b plain"; do
  set -- $p
  "$B" run -d --name "${1}srv" --network "$2" -- iperf3 -s >/dev/null
  "$B" run -d --name "${1}cli" --network "$2" -- sleep 3600 >/dev/null
done
ip_of() { "$B" inspect "$1" | jq -r ".[0].Networks.$2.IPAddress"; }
fip=$(ip_of fsrv fast) bip=$(ip_of bsrv plain)
sleep 0.5
sample() { "$B" exec "$1" -- iperf3 -c "$2" -t 3 -J | jq '.end.sum_received.bits_per_second / 1e9'; }
bridge=() fast=()
for r in $(seq "$rounds"); do
  for who in bridge fast fast bridge; do
    if [ "$who" = fast ]; then g=$(sample fcli "$fip"); fast+=("$g"); else g=$(sample bcli "$bip"); bridge+=("$g"); fi
    printf 'round %s %-6s %.2f Gbit/s\n' "$r" "$who" "$g"
  done
done
# The fast path's element counters say the fast pair's frames took it.
echo "fast-path elements: $(nft list map netdev berth to_port | grep -c 'counter packets [1-9]') with packets counted"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mb=$(median "${bridge[@]}") mf=$(median "${fast[@]}")
echo "median: bridge (fastpath=false) $mb Gbit/s, fast path $mf Gbit/s ($(awk -v a="$mf" -v b="$mb" 'BEGIN {printf "%.0f", 100 * a / b}')%)"
