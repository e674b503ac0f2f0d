#!/usr/bin/env bash
# Overlay networks on one machine: N "hosts" as network namespaces on an underlay bridge,
# one etcd, a berth root, run root and agent per host — the topology of the test harness
# (tests/src/cluster.rs). Run it inside a throwaway namespace:
#   scripts/in-sandbox.sh bash scripts/overlay-demo.sh [N]     (make overlay-demo)
# With KEEP=1 it ends in a shell where `on I berth ...` runs berth on host I.
set -euo pipefail
n=${1:-2}
work=$(mktemp -d /tmp/berth-overlay.XXXXXX)
pids=()
cleanup() {
  for i in $(seq 1 "$n"); do
    [ -s "$work/host$i/run/agent.pid" ] && kill "$(cat "$work/host$i/run/agent.pid")" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link set lo up
ip link add ul0 type bridge && ip addr add 10.100.0.254/24 dev ul0 && ip link set ul0 up
etcd --name demo --data-dir "$work/etcd" --listen-client-urls http://10.100.0.254:2379 \
  --advertise-client-urls http://10.100.0.254:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster demo=http://127.0.0.1:2380 >"$work/etcd.log" 2>&1 &
pids+=($!)
until ETCDCTL_API=3 etcdctl --endpoints=http://10.100.0.254:2379 endpoint health >/dev/null 2>&1; do sleep 0.1; done
for i in $(seq 1 "$n"); do
  unshare -n sh -c 'ip link set lo up; exec sleep infinity' &
  pids+=($!); echo $! >"$work/host$i.pid"
  sleep 0.1
  ip link add "ul$i" type veth peer name eth0 netns "$(cat "$work/host$i.pid")"
  ip link set "ul$i" master ul0 up
  nsenter -t "$(cat "$work/host$i.pid")" -n sh -c \
    "ip addr add 10.100.0.$i/24 dev eth0 && ip link set eth0 up && ip route add default via 10.100.0.254"
done
# on I COMMAND...: runs a command on host I with its berth directories and identity.
on() {
  local i=$1; shift
  nsenter -t "$(cat "$work/host$i.pid")" -n env BERTH_ROOT="$work/host$i/root" \
    BERTH_RUN_ROOT="$work/host$i/run" BERTH_STORE=etcd://10.100.0.254:2379 \
    BERTH_HOST_NAME="host$i" BERTH_ADVERTISE="10.100.0.$i" "$@"
}
demo() { echo "\$ on $*" | sed 's/^\$ on \([0-9]*\) /$ (host\1) /'; on "$@"; }
demo 1 berth network create -d overlay web
demo 2 berth network ls
demo 1 berth run -d --name api --network web socat TCP-LISTEN:80,fork,reuseaddr EXEC:cat
demo 2 berth run -d --name cli --network web sleep infinity
echo '$ (host2) echo hello over vxlan | berth exec cli socat - TCP:api:80'
echo hello over vxlan | on 2 berth exec cli socat - TCP:api:80
demo 2 berth exec cli ping -c1 -W2 api
demo 2 bridge fdb show dev "vx-$(on 2 berth network inspect web | jq -r '.[0].Id[:12]')" self
on 1 berth rm -f api >/dev/null; on 2 berth rm -f cli >/dev/null
if [ "${KEEP:-0}" = 1 ]; then
  export -f on; export work
  echo "hosts: $n; 'on I berth ...' runs berth on host I; exit to clean up"
  bash -i
fi
