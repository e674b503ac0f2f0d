#!/usr/bin/env bash
# `podman run --rm IMAGE true` wall time with berth as podman's netavark and with Debian's
# netavark 1.4 + aardvark-dns, in one run, alternating, median of N (default 20), on the
# default network (no DNS) and on a created network (DNS on). The network share is the time
# podman spends in its netavark (setup + teardown) per run.
#   sudo bash bench/podman/run.sh [N]      results: bench/podman/results.md
# Everything runs inside fresh network + mount namespaces (private tmpfs over /run and
# /dev/shm): the machine's own network, firewall and /run/netns are not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-20}
if [ "${BERTH_BENCH_INNER:-}" != 1 ]; then
  bash "$here/scripts/deps.sh"
  bash "$here/scripts/release.sh" >/dev/null
  export BERTH_BENCH_INNER=1
  exec unshare -n -m --propagation private -- bash "$0" "$@"
fi
ip link set lo up
berth="$here/target/dist/berth"
dir=$(mktemp -d /tmp/berth-podman-bench.XXXXXX)
mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/lock
mount -t tmpfs tmpfs /dev/shm
cleanup() {
  for b in berth netavark; do
    [ -f "$dir/$b/containers.conf" ] && pm "$b" rm -af -t 0 >/dev/null 2>&1 || true
  done
  if [ -s "$dir/run/agent.pid" ]; then kill "$(cat "$dir/run/agent.pid")" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# Both helpers go through the same timing wrapper: a script that sets berth's directories and
# execs bench/podman/timer.c, which spawns the helper and logs how long the call took and
# which verb it was. The clock starts at the spawn, so the wrapper's own start is not
# counted; the helper's start and exit are, as in podman's own call. (The earlier wrapper
# timed the call in bash: its fork and wait added ~1 ms to every call, to both helpers.)
cc -O2 -o "$dir/timer" "$here/bench/podman/timer.c"
wrapper() { # NAME COMMAND...
  local name=$1
  shift
  cat <<W
#!/bin/sh
export BERTH_ROOT=$dir/root BERTH_RUN_ROOT=$dir/run
exec $dir/timer $dir/$name/calls.log $* "\$@"
W
}
# The floor of that measurement: the same timer around a program that does nothing.
floor_ns() {
  local log=$dir/floor.log i
  : > "$log"
  for i in $(seq 50); do "$dir/timer" "$log" /bin/true; done
  sort -n "$log" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
mkdir -p "$dir/rootfs/bin"
cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
ln -s busybox "$dir/rootfs/bin/true"
tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
for b in berth netavark; do
  d=$dir/$b
  mkdir -p "$d/helpers" "$d/networks" "$d/tmp"
  if [ "$b" = berth ]; then
    # Called by the name podman runs (`netavark`, a link to berth), as contrib/podman installs it.
    wrapper berth "$here/target/dist/netavark" > "$d/helpers/netavark"
    ln -s "$berth" "$d/helpers/aardvark-dns"
  else
    wrapper netavark /usr/lib/podman/netavark > "$d/helpers/netavark"
    ln -s /usr/lib/podman/aardvark-dns "$d/helpers/aardvark-dns"
  fi
  chmod +x "$d/helpers/netavark"
  cat > "$d/containers.conf" <<C
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/events.log"
helper_binaries_dir = ["$d/helpers"]
tmp_dir = "$d/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$d/networks"
C
done
pm() { local b=$1; shift; CONTAINERS_CONF="$dir/$b/containers.conf" podman --root "$dir/$b/root" \
  --runroot "$dir/$b/runroot" --storage-driver vfs "$@"; }
for b in berth netavark; do
  pm $b import "$dir/rootfs.tar" localhost/bench:latest >/dev/null
  pm $b network create dnsnet >/dev/null
done

# One timed run: prints "wall_ns net_ns".
one() { # BACKEND NETWORK
  : > "$dir/$1/calls.log"
  local t0 t1
  t0=$(date +%s%N)
  pm "$1" run --rm --ulimit host --network "$2" localhost/bench true
  t1=$(date +%s%N)
  echo "$(( t1 - t0 )) $(awk '{s += $1} END {print s + 0}' "$dir/$1/calls.log")" \
    "$(awk '$2 == "setup" {s += $1} END {print s + 0}' "$dir/$1/calls.log")" \
    "$(awk '$2 == "teardown" {s += $1} END {print s + 0}' "$dir/$1/calls.log")"
}
results=$dir/results.txt
floor=$(floor_ns)
for net in podman dnsnet; do
  for b in berth netavark; do one $b $net >/dev/null; done   # warm-up
  for i in $(seq "$n"); do
    for b in berth netavark; do echo "$net $b $(one $b $net)" >> "$results"; done
  done
done
out="$here/bench/podman/results.md"
python3 - "$results" "$n" "$floor" > "$out" <<'PY'
import statistics, sys, datetime, os
rows = [l.split() for l in open(sys.argv[1])]
n = sys.argv[2]
floor = int(sys.argv[3]) / 1e6
print("# `podman run --rm IMAGE true`: berth as netavark vs netavark 1.4\n")
print(f"Run of {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load {open('/proc/loadavg').read().split()[0]}; "
      f"podman 4.3.1, runc, vfs storage, median of {n} alternating runs after one warm-up each. "
      "`network` = time in podman's netavark calls (setup + teardown), each timed from its spawn to its exit by the same "
      f"wrapper for both (bench/podman/timer.c); that wrapper around `/bin/true` takes {floor:.2f} ms (median of 50).\n")
print("| network | implementation | wall median ms | wall p90 ms | network median ms | setup median ms | teardown median ms | network share |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for net in ("podman", "dnsnet"):
    for b in ("berth", "netavark"):
        w = sorted(int(r[2]) / 1e6 for r in rows if r[0] == net and r[1] == b)
        k = sorted(int(r[3]) / 1e6 for r in rows if r[0] == net and r[1] == b)
        su = statistics.median(int(r[4]) / 1e6 for r in rows if r[0] == net and r[1] == b)
        td = statistics.median(int(r[5]) / 1e6 for r in rows if r[0] == net and r[1] == b)
        p90 = w[min(len(w) - 1, int(len(w) * 0.9))]
        label = "berth" if b == "berth" else "netavark 1.4"
        desc = "default `podman` (no DNS)" if net == "podman" else "`dnsnet` (DNS on)"
        print(f"| {desc} | {label} | {statistics.median(w):.1f} | {p90:.1f} | {statistics.median(k):.1f} | {su:.1f} | {td:.1f} | {statistics.median(k) / statistics.median(w) * 100:.0f}% |")
PY
cat "$out"
