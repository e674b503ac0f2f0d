#!/usr/bin/env bash
# Exploration, not a berth feature: how much faster is container->container traffic when
# frames between two containers of one bridge skip the bridge (and with it br_netfilter, which
# runs every bridged frame through the inet hooks of berth's table) by an nftables netdev
# ingress chain on the host ends that forwards by destination MAC (`fwd to ... map`)?
#   sudo bash bench/explore/fastpath.sh [ROUNDS]
# Two berth containers (iperf3 server and client) on the default bridge; iperf3 -t 3 samples
# alternate A B B A between berth's path as it is and the same containers with the prototype
# table added by hand (`nft -f`). Prints each sample and the medians. Runs in namespaces of its
# own (network, mount, a tmpfs /run); everything it starts is removed at the end.
set -euo pipefail
. "$(dirname "$0")/sandbox.sh" "$@"
rounds=${1:-3}
export BERTH_ROOT=/run/explore/root BERTH_RUN_ROOT=/run/explore/run
B=${BERTH:-$here/target/dist/berth}
cleanup() {
  nft delete table netdev explore 2>/dev/null || true
  "$B" rm -f srv cli >/dev/null 2>&1 || true
  if [ -s "$BERTH_RUN_ROOT/agent.pid" ]; then kill "$(cat "$BERTH_RUN_ROOT/agent.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT
"$B" run -d --name srv -- iperf3 -s >/dev/null
"$B" run -d --name cli -- sleep 3600 >/dev/null
field() { "$B" inspect "$1" | jq -r ".[0].Networks.bridge.$2"; }
sip=$(field srv IPAddress)
sleep 0.5
sample() { "$B" exec cli -- iperf3 -c "$sip" -t 3 -J | jq '.end.sum_received.bits_per_second / 1e9'; }
fast_on() {
  nft -f - <<NFT
table netdev explore {
  map dest { type ether_addr : iface_index; }
  chain ingress {
    type filter hook ingress devices = { $(field cli HostInterface), $(field srv HostInterface) } priority 0; policy accept;
    fwd to ether daddr map @dest
  }
}
NFT
  nft add element netdev explore dest "{ $(field cli MacAddress) : $(field cli HostInterface), $(field srv MacAddress) : $(field srv HostInterface) }"
}
fast_off() { nft delete table netdev explore; }
bridge=() fast=()
for r in $(seq "$rounds"); do
  for who in bridge fast fast bridge; do
    if [ "$who" = fast ]; then fast_on; fi
    g=$(sample)
    if [ "$who" = fast ]; then fast_off; fast+=("$g"); else bridge+=("$g"); fi
    printf 'round %s %-6s %.2f Gbit/s\n' "$r" "$who" "$g"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mb=$(median "${bridge[@]}") mf=$(median "${fast[@]}")
echo "median: berth's bridge path $mb Gbit/s, netdev fast path $mf Gbit/s ($(awk -v a="$mf" -v b="$mb" 'BEGIN {printf "%.0f", 100 * a / b}')%)"
