#!/usr/bin/env bash
# Exploration: which of `berth create`'s phases grow with the containers already on a bridge,
# on a network with the fast path (berth's default) or without it.
#   sudo bash bench/explore/create-phases.sh [N] [fast|plain]
# Makes N containers (default 1000) one after another with `berth create -p` (one published
# port each, agent off as in the bench's create row) on a network created plainly (`fast`) or
# with `-o fastpath=false` (`plain`), with berth's phase timings on
# (`BERTH_LOG=berth::timing=debug`), and prints the median of each phase per tenth of the
# containers, in creation order. Runs in namespaces of its own (network, mount, a tmpfs /run);
# nothing outlives it.
set -euo pipefail
. "$(dirname "$0")/sandbox.sh" "$@"
n=${1:-1000} kind=${2:-fast}
export BERTH_ROOT=/run/explore/root BERTH_RUN_ROOT=/run/explore/run BERTH_NO_AGENT=1 NO_COLOR=1
B=${BERTH:-$here/target/dist/berth}
case "$kind" in
  fast) "$B" network create --subnet 10.91.0.0/16 net >/dev/null ;;
  plain) "$B" network create --subnet 10.91.0.0/16 -o fastpath=false net >/dev/null ;;
  *) echo "usage: $0 [N] [fast|plain]" >&2; exit 2 ;;
esac
exec python3 - "$B" "$n" <<'PY'
import os, re, statistics, subprocess, sys, time
berth, n = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, BERTH_LOG="berth::timing=debug")
rows = []
for i in range(n):
    t = time.perf_counter()
    p = subprocess.run([berth, "create", "--name", f"c{i}", "--network", "net",
                        "-p", f"{20000 + i}:80", "--", "true"], capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"create {i} failed: {p.stderr}")
    row = {"wall": (time.perf_counter() - t) * 1e6}
    for line in p.stderr.splitlines():
        m = re.search(r'verb="(\S+)" phase="(\S+)" us=(\d+)', line)
        if m:
            key = f"{m[1]}.{m[2]}"
            row[key] = row.get(key, 0) + int(m[3])
    rows.append(row)
tenth = max(1, n // 10)
print(f"median us per tenth of {n} `berth create`s, in creation order")
for key in sorted({k for r in rows for k in r}):
    cols = [statistics.median([r.get(key, 0) for r in rows[j * tenth:(j + 1) * tenth]])
            for j in range(10)]
    print(f"{key:28s}", " ".join(f"{c:6.0f}" for c in cols))
subprocess.run([berth, "rm", "-f"] + [f"c{i}" for i in range(n)], capture_output=True, env=env)
PY
