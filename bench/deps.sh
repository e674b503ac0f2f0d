#!/usr/bin/env bash
# Installs what the benchmark needs (Debian 12), only when something is missing:
# netavark 1.4 and the CNI reference plugins to compare against, iperf3 for the data path,
# jq, iptables (to count netavark's/CNI's rules), nftables, iproute2, util-linux (unshare),
# gcc (the podman bench's timing wrapper).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/host-local ] \
  || need+=(containernetworking-plugins)
have iperf3 || need+=(iperf3)
have jq || need+=(jq)
have iptables-save || need+=(iptables)
have nft || need+=(nftables)
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
have python3 || need+=(python3)
have cc || need+=(gcc)   # bench/podman/timer.c
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]}: run bench/deps.sh as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
