#!/usr/bin/env bash
# Installs what berth's build, demo and tests need on Debian 12, only when missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have nft || need+=(nftables)
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
have socat || need+=(socat)
have jq || need+=(jq)
have ping || need+=(iputils-ping)
have make || need+=(make)
have gcc || need+=(gcc)
have setpriv || need+=(util-linux)
have sqlite3 || need+=(sqlite3)
have sysctl || need+=(procps)
have ps || need+=(procps)
have conntrack || need+=(conntrack)
have dig || need+=(bind9-dnsutils)
have python3 || need+=(python3)
have dot || need+=(graphviz)
have rsvg-convert || need+=(librsvg2-bin)
# podman and CNI doors: real podman, its runtime, an image made from a static busybox.
have podman || need+=(podman)
have runc || need+=(runc)
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
{ have busybox && busybox --list >/dev/null 2>&1 && file -L "$(command -v busybox)" 2>/dev/null | grep -q static; } \
  || need+=(busybox-static)
have file || need+=(file)
# Overlay networks: etcd for the multi-host tests and bench, protoc to build etcd-client's
# gRPC stubs, iperf3 for the overlay throughput bench.
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have protoc || need+=(protobuf-compiler)
have iperf3 || need+=(iperf3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]}: run this script as root (sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
