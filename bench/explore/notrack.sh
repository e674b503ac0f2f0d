#!/usr/bin/env bash
# Exploration: what berth's inet hooks cost container->container traffic on one bridge, and
# whether leaving that traffic untracked (the `guard` chain's `ip daddr @bridged4 notrack`,
# docs/ARCHITECTURE.md "Firewall") pays for the extra hook it takes.
#   sudo bash bench/explore/notrack.sh [ROUNDS]
# Two berth containers (iperf3 server and client) on a bridge network created with
# `-o fastpath=false` (on berth's default networks such frames skip the bridge and these hooks
# altogether: bench/explore/fastpath.sh); the agent is stopped
# once they run (it would put the table back). iperf3 -t 3 samples alternate, A B C C B A per
# round (A B C D D C B A), between: berth's ruleset as it is; the same without the notrack
# rule (the flow is tracked by conntrack, as netavark's and the CNI plugins' are); no berth
# table at all in the namespace (no inet hook on the bridged path; br_netfilter still runs);
# and the bench's bare veth + bridge (bench/driver.py's PairedBridge, in namespaces of its
# own). Prints each sample and the medians. Runs in namespaces of its own (network, mount, a
# tmpfs /run); everything it starts is removed at the end.
set -euo pipefail
. "$(dirname "$0")/sandbox.sh" "$@"
rounds=${1:-3}
export BERTH_ROOT=/run/explore/root BERTH_RUN_ROOT=/run/explore/run
B=${BERTH:-$here/target/dist/berth}
saved=/run/explore/berth-table.nft
bare_server=
cleanup() {
  if [ -n "$bare_server" ]; then kill "$bare_server" 2>/dev/null || true; fi
  for n in pair-br pair-c pair-d; do ip netns del "$n" 2>/dev/null || true; done
  "$B" rm -f srv cli >/dev/null 2>&1 || true
  if [ -s "$BERTH_RUN_ROOT/agent.pid" ]; then kill "$(cat "$BERTH_RUN_ROOT/agent.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT
"$B" network create -o fastpath=false plain >/dev/null
"$B" run -d --name srv --network plain -- iperf3 -s >/dev/null
"$B" run -d --name cli --network plain -- sleep 3600 >/dev/null
agent=$(cat "$BERTH_RUN_ROOT/agent.pid")
kill "$agent"
while kill -0 "$agent" 2>/dev/null; do sleep 0.05; done
sip=$("$B" inspect srv | jq -r '.[0].Networks.plain.IPAddress')
nft list table inet berth > "$saved"
# The bare reference, built as bench/driver.py's PairedBridge builds it.
for n in pair-br pair-c pair-d; do ip netns add "$n"; done
ip -n pair-br link add refbr0 type bridge
ip -n pair-br link set refbr0 up
for s in c d; do
  addr=10.254.0.2
  if [ "$s" = d ]; then addr=10.254.0.3; fi
  ip -n pair-br link add "h$s" type veth peer name "e$s" netns "pair-$s"
  ip -n pair-br link set "h$s" master refbr0
  ip -n pair-br link set "h$s" up
  ip -n "pair-$s" link set "e$s" up
  ip -n "pair-$s" link set lo up
  ip -n "pair-$s" addr add "$addr/24" dev "e$s"
done
ip netns exec pair-d iperf3 -s -B 10.254.0.3 >/dev/null 2>&1 &
bare_server=$!
sleep 0.5
sample() {
  local cmd=("$B" exec cli -- iperf3 -c "$sip")
  if [ "$1" = bare ]; then cmd=(ip netns exec pair-c iperf3 -c 10.254.0.3); fi
  "${cmd[@]}" -t 3 -J | jq '.end.sum_received.bits_per_second / 1e9'
}
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
asis=() tracked=() notable=() bare=()
for r in $(seq "$rounds"); do
  for who in asis tracked notable bare bare notable tracked asis; do
    enter "$who"
    g=$(sample "$who")
    leave "$who"
    eval "$who+=(\"$g\")"
    printf 'round %s %-8s %.2f Gbit/s\n' "$r" "$who" "$g"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ma=$(median "${asis[@]}") mt=$(median "${tracked[@]}") mn=$(median "${notable[@]}")
mb=$(median "${bare[@]}")
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
echo "median Gbit/s: as it is $ma ($(pct "$ma" "$mb")% of bare); tracked $mt ($(pct "$mt" "$mb")%); no berth table $mn ($(pct "$mn" "$mb")%); bare bridge $mb"
