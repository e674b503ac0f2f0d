#!/usr/bin/env bash
# berth-dns against aardvark-dns 1.4 on the same records, measured with dnsperf.
#
#   sudo bash bench/dns/run.sh          # writes bench/dns/results.md and results.json
#
# Everything runs inside `unshare -n -m` (a new network and mount namespace): `lo` is
# brought up there with 10.200.0.1 (the "gateway" both servers listen on) and 10.200.0.5
# (the client, a container in both record sets); no packet leaves that namespace, and the
# host's network, firewall and /run/netns are not touched. Inside, /run is a fresh tmpfs and
# /etc/resolv.conf points at 127.0.0.1 so that nothing either server forwards goes anywhere.
#
# Both servers get the same CONTAINERS containers on one network (bench/dns/gen.py) and the
# same query file (A queries for their names, shuffled). Per round and server, alternating
# the two so that noise from other load on the machine hits both alike:
#   - throughput: dnsperf with its defaults (1 client socket, 100 queries outstanding,
#     1 thread) for DURATION seconds: queries per second;
#   - latency: dnsperf -v at a fixed RATE_LOW and RATE_HIGH queries per second, which both
#     servers sustain: p50/p99/p99.9 of the per-query latencies it prints.
# The reported figure is the median over ROUNDS. RSS (VmRSS, and VmHWM, the peak) of each
# server is read from /proc at the end. Every process started here is stopped by its pid.
#
# Needs: root, `apt-get install -y aardvark-dns dnsperf`, python3, cargo.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${DURATION:=10}" "${ROUNDS:=3}" "${CONTAINERS:=1000}" "${RATE_LOW:=10000}" "${RATE_HIGH:=40000}"
export DURATION ROUNDS CONTAINERS RATE_LOW RATE_HIGH
AARDVARK=/usr/lib/podman/aardvark-dns
GATEWAY=10.200.0.1
CLIENT=10.200.0.5
APORT=5301
BPORT=5302

die() { echo "bench/dns: $*" >&2; exit 1; }

if [[ "${1:-}" != "--inside" ]]; then
    [[ $EUID -eq 0 ]] || die "run as root (it creates a network namespace)"
    [[ -x $AARDVARK ]] || die "aardvark-dns is missing: apt-get install -y aardvark-dns"
    command -v dnsperf >/dev/null || die "dnsperf is missing: apt-get install -y dnsperf"
    command -v python3 >/dev/null || die "python3 is missing"
    target=${CARGO_TARGET_DIR:-$repo/target}
    (cd "$repo" && cargo build --release -p berth-dns --example serve) >&2
    serve=$target/release/examples/serve
    [[ -x $serve ]] || die "no $serve after the build"
    work=$(mktemp -d /tmp/berth-dns-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    # Bounded: the whole run stops by itself even if something hangs.
    limit=$((ROUNDS * DURATION * 6 + 120))
    rc=0
    timeout --kill-after=10 "$limit" \
        unshare -n -m --propagation private bash "$0" --inside "$work" "$serve" || rc=$?
    [[ $rc -eq 0 ]] || die "the run inside the namespace failed (exit $rc); see above"
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    python3 "$here/summarize.py" "$work" "$here" \
        --serve "$serve" --load-before "$load_before" --load-after "$load_after" \
        --command "bash bench/dns/run.sh (DURATION=$DURATION ROUNDS=$ROUNDS CONTAINERS=$CONTAINERS RATE_LOW=$RATE_LOW RATE_HIGH=$RATE_HIGH)"
    exit 0
fi

# ---- inside the namespaces ----
work=$2
serve=$3
pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

ip link set lo up
ip addr add "$GATEWAY/32" dev lo
ip addr add "$CLIENT/32" dev lo
mount -t tmpfs tmpfs /run
printf 'nameserver 127.0.0.1\n' >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

python3 "$(dirname "$0")/gen.py" "$work" "$CONTAINERS"
mkdir -p "$work/out"

# aardvark-dns forks; the parent exits once the child serves, and the child writes its pid.
"$AARDVARK" --config "$work/aardvark" -p "$APORT" run 2>"$work/aardvark.err" ||
    { cat "$work/aardvark.err" >&2; exit 1; }
apid=$(cat "$work/aardvark/aardvark.pid")
pids+=("$apid")

"$serve" "$work/snapshot.json" "$GATEWAY:$BPORT" >"$work/berth.out" 2>"$work/berth.err" &
bpid=$!
pids+=("$bpid")
for _ in $(seq 50); do grep -q '^ready' "$work/berth.out" && break; sleep 0.1; done
grep -q '^ready' "$work/berth.out" || { cat "$work/berth.err" >&2; exit 1; }

echo "$apid" >"$work/aardvark.pid"
echo "$bpid" >"$work/berth.pid"

measure() { # server port kind round [extra dnsperf args...]
    local server=$1 port=$2 kind=$3 round=$4
    shift 4
    dnsperf -s "$GATEWAY" -p "$port" -a "$CLIENT" -d "$work/queries.txt" -l "$DURATION" "$@" \
        >"$work/out/$server-$kind-$round.txt" 2>&1
}

# Warm-up: both servers answer, and caches/pages are touched.
for p in "aardvark $APORT" "berth $BPORT"; do
    set -- $p
    dnsperf -s "$GATEWAY" -p "$2" -a "$CLIENT" -d "$work/queries.txt" -n 1 >"$work/out/$1-warmup.txt" 2>&1
    grep -q 'Queries completed: *'"$(wc -l <"$work/queries.txt")"' ' "$work/out/$1-warmup.txt" ||
        { echo "$1 did not answer every warm-up query:" >&2; cat "$work/out/$1-warmup.txt" >&2; exit 1; }
done

for round in $(seq "$ROUNDS"); do
    for p in "aardvark $APORT" "berth $BPORT"; do
        set -- $p
        echo "round $round: $1" >&2
        measure "$1" "$2" qps "$round"
        measure "$1" "$2" lat-low "$round" -Q "$RATE_LOW" -v
        measure "$1" "$2" lat-high "$round" -Q "$RATE_HIGH" -v
    done
done

for s in aardvark berth; do
    grep -E '^(VmRSS|VmHWM|Threads):' "/proc/$(cat "$work/$s.pid")/status" >"$work/out/$s-status.txt"
done
stop_all
