#!/usr/bin/env bash
# Exploration: where an agent-off netavark door setup spends its time, and which part grows
# with the containers already on the bridge.
#   sudo bash bench/explore/door-phases.sh [N]
# Makes N containers (default 1000) one after another through target/dist/netavark (berth-shim,
# which becomes berth with BERTH_NO_AGENT=1) with bench/driver.py's options (one published
# port each, a namespace made beforehand with `ip netns add`), with berth's phase timings on
# (`BERTH_LOG=berth::timing=debug`). Prints, per tenth of the containers in creation order,
# the median wall time of the call, the time inside berth (up to its last phase), the rest
# (process start and exit), and each phase. Runs in namespaces of its own (network, mount, a
# tmpfs /run); nothing outlives it.
set -euo pipefail
. "$(dirname "$0")/sandbox.sh" "$@"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
exec python3 - "$here/target/dist/netavark" "${1:-1000}" "$here/bench" <<'PY'
import os, re, statistics, subprocess, sys, time
door, n, bench = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, bench)
from driver import SETUP_BASE_PORT, Netavark  # the options the setup trials give
work = "/run/door-phases"
nv = Netavark(work)
env = dict(os.environ, BERTH_NO_AGENT="1", BERTH_ROOT=work + "/root",
           BERTH_RUN_ROOT=work + "/run", BERTH_LOG="berth::timing=debug", NO_COLOR="1")

def opts(i):
    return nv._opts(i, [(SETUP_BASE_PORT + i, 80, 1)])

rows = []
for i in range(n):
    subprocess.run(["ip", "netns", "add", f"nvb-{i}"], check=True)
    t = time.perf_counter()
    p = subprocess.run([door, "--config", nv.cfg, "setup", f"/run/netns/nvb-{i}"],
                       input=opts(i), capture_output=True, text=True, env=env)
    row = {"wall": (time.perf_counter() - t) * 1e6}
    if p.returncode:
        sys.exit(f"setup {i} failed: {p.stdout}{p.stderr}")
    for line in p.stderr.splitlines():
        m = re.search(r'verb="(\S+)" phase="(\S+)" us=(\d+)(?: total_us=(\d+))?', line)
        if m:
            key = f"{m[1]}.{m[2]}"
            row[key] = row.get(key, 0) + int(m[3])
            if key == "netavark.close":
                row["in berth"] = int(m[4])
    row["start+exit"] = row["wall"] - row.get("in berth", 0)
    rows.append(row)

# Phases that only sum others ("attach.build" is the endpoint.* ones) are left out.
sums = {"netavark.setup", "netavark.close", "netavark-setup.attach", "attach.build"}
keys = ["wall", "in berth", "start+exit"] + sorted(
    {k for r in rows for k in r if "." in k and k not in sums})
print(f"median us per tenth of {n} agent-off door setups, in creation order")
print(f"{'':24s}" + "".join(f"{t + 1:>7d}" for t in range(10)))
for k in keys:
    meds = [statistics.median([r.get(k, 0) for r in rows[t * n // 10:(t + 1) * n // 10]])
            for t in range(10)]
    print(f"{k:24s}" + "".join(f"{m:7.0f}" for m in meds))
PY
