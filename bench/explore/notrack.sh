#!/usr/bin/env bash
# Exploration: what berth's inet hooks cost container->container traffic on one bridge, and
# whether leaving that traffic untracked (the `guard` chain's `ip daddr @bridged4 notrack`,
# docs/ARCHITECTURE.md "Firewall") pays for the extra hook it takes.
#   sudo bash bench/explore/notrack.sh [ROUNDS]
# Two berth containers (iperf3 server and client) on the default bridge; the agent is stopped
# once they run (it would put the table back). iperf3 -t 3 samples alternate, A B C C B A per
# round, between: berth's ruleset as it is; the same without the notrack rule (the flow is
# tracked by conntrack, as netavark's and the CNI plugins' are); and no berth table at all in
# the namespace (no inet hook on the bridged path; br_netfilter still runs, as for the bare
# bridge). Prints each sample and the medians. Runs in namespaces of its own (network, mount,
# a tmpfs /run); everything it starts is removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${BERTH_EXPLORE_SANDBOX:-}" != 1 ]; then
  export BERTH_EXPLORE_SANDBOX=1
  exec unshare -n -m --propagation private -- bash "$0" "$@"
fi
rounds=${1:-3}
mount -t tmpfs -o mode=0755 tmpfs /run
ip link set lo up
export BERTH_ROOT=/run/explore/root BERTH_RUN_ROOT=/run/explore/run
B=${BERTH:-$here/target/dist/berth}
saved=/run/explore/berth-table.nft
cleanup() {
  "$B" rm -f srv cli >/dev/null 2>&1 || true
  if [ -s "$BERTH_RUN_ROOT/agent.pid" ]; then kill "$(cat "$BERTH_RUN_ROOT/agent.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT
"$B" run -d --name srv -- iperf3 -s >/dev/null
"$B" run -d --name cli -- sleep 3600 >/dev/null
agent=$(cat "$BERTH_RUN_ROOT/agent.pid")
kill "$agent"
while kill -0 "$agent" 2>/dev/null; do sleep 0.05; done
sip=$("$B" inspect srv | jq -r '.[0].Networks.bridge.IPAddress')
nft list table inet berth > "$saved"
sleep 0.5
sample() { "$B" exec cli -- iperf3 -c "$sip" -t 3 -J | jq '.end.sum_received.bits_per_second / 1e9'; }
notrack_handle() {
  nft -a list chain inet berth guard | awk '/notrack/ && /bridged4/ {print $NF}'
}
enter() {
  case $1 in
    tracked) nft delete rule inet berth guard handle "$(notrack_handle)" ;;
    notable) nft delete table inet berth ;;
  esac
}
leave() {
  case $1 in
    tracked) nft insert rule inet berth guard ip daddr @bridged4 notrack accept ;;
    notable) nft -f "$saved" ;;
  esac
}
asis=() tracked=() notable=()
for r in $(seq "$rounds"); do
  for who in asis tracked notable notable tracked asis; do
    enter "$who"
    g=$(sample)
    leave "$who"
    eval "$who+=(\"$g\")"
    printf 'round %s %-8s %.2f Gbit/s\n' "$r" "$who" "$g"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ma=$(median "${asis[@]}") mt=$(median "${tracked[@]}") mn=$(median "${notable[@]}")
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
echo "median: as it is $ma Gbit/s; tracked (no notrack rule) $mt ($(pct "$mt" "$ma")% of as it is); no berth table $mn (as it is = $(pct "$ma" "$mn")% of it)"
