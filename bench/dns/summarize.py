#!/usr/bin/env python3
"""Turns the dnsperf outputs of bench/dns/run.sh into results.json and results.md.

usage: summarize.py WORKDIR OUTDIR --berth BIN --load-before L --load-after L --command C
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess

SERVERS = ["aardvark", "agent", "library"]
LABELS = {"aardvark": "aardvark-dns", "agent": "berth agent", "library": "berth-dns library example"}
# Acceptance for the agent with 1000 containers.
MAX_AGENT_RSS_MIB = 30
MIN_QPS_RATIO = 2.0


def stat(text, label):
    m = re.search(r"^\s*" + re.escape(label) + r":\s+([0-9.]+)", text, re.M)
    return float(m.group(1)) if m else None


def summary(path):
    text = open(path).read()
    return {
        "qps": stat(text, "Queries per second"),
        "sent": stat(text, "Queries sent"),
        "completed": stat(text, "Queries completed"),
        "lost": stat(text, "Queries lost"),
        "avg_latency_ms": (stat(text, "Average Latency (s)") or 0) * 1000,
    }


def percentiles(path):
    lat = []
    codes = {}
    with open(path) as f:
        for line in f:
            # "> NOERROR c0776 A 0.000252"; timeouts are "> T ..."
            if not line.startswith("> "):
                continue
            parts = line.split()
            codes[parts[1]] = codes.get(parts[1], 0) + 1
            if parts[1] == "T":
                continue
            try:
                lat.append(float(parts[-1]))
            except ValueError:
                pass
    lat.sort()

    def p(q):
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    return {"count": len(lat), "p50_ms": p(0.50), "p99_ms": p(0.99), "p999_ms": p(0.999),
            "rcodes": codes}


def status(path):
    out = {}
    for line in open(path):
        k, v = line.split(":", 1)
        out[k] = v.strip()
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001 - informational only
        return f"unknown ({e})"


def server(out, s):
    rounds = sorted(glob.glob(os.path.join(out, f"{s}-qps-*.txt")))
    qps = [summary(p) for p in rounds]
    lat = {}
    for kind in ["lat-low", "lat-high"]:
        runs = [percentiles(p) | summary(p) for p in
                sorted(glob.glob(os.path.join(out, f"{s}-{kind}-*.txt")))]
        lat[kind] = {
            "runs": runs,
            "p50_ms": median([r["p50_ms"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]),
            "p999_ms": median([r["p999_ms"] for r in runs]),
            "achieved_qps": median([r["qps"] for r in runs]),
            "timeouts": sum(r["rcodes"].get("T", 0) for r in runs),
        }
    st = status(os.path.join(out, f"{s}-status.txt"))
    idle = status(os.path.join(out, f"{s}-status-idle.txt"))
    return {
        "qps_runs": qps,
        "qps": median([r["qps"] for r in qps]),
        "avg_latency_ms_at_max": median([r["avg_latency_ms"] for r in qps]),
        "lost": sum((r["lost"] or 0) for r in qps),
        "latency": lat,
        "rss_after_warmup_kb": int(idle.get("VmRSS", "0 kB").split()[0]),
        "rss_kb": int(st.get("VmRSS", "0 kB").split()[0]),
        "peak_rss_kb": int(st.get("VmHWM", "0 kB").split()[0]),
        "threads": int(st.get("Threads", "0")),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("outdir")
    ap.add_argument("--berth")
    ap.add_argument("--load-before")
    ap.add_argument("--load-after")
    ap.add_argument("--command")
    a = ap.parse_args()
    out = os.path.join(a.work, "out")
    setup = {}
    for line in open(os.path.join(out, "setup.txt")):
        k, v = line.split()
        setup[k] = float(v)
    res = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": a.command,
        "machine": {"cores": os.cpu_count(), "loadavg_before": a.load_before,
                    "loadavg_after": a.load_after},
        "versions": {
            "aardvark-dns": version(["/usr/lib/podman/aardvark-dns", "--version"]),
            "dnsperf": version(["sh", "-c", "dnsperf -h 2>&1 | grep -i version"]),
            "berth": version([a.berth, "--version"]),
            "berth_tree": version(["git", "-C", os.path.dirname(os.path.abspath(a.outdir)),
                                   "describe", "--always", "--dirty"]),
        },
        "params": {k: int(os.environ[k]) for k in
                   ["DURATION", "ROUNDS", "CONTAINERS", "RATE_LOW", "RATE_HIGH"]
                   if k in os.environ},
        "agent_process": open(os.path.join(out, "agent-cmdline.txt")).read().strip(),
        "setup_s": setup,
        "servers": {},
    }
    servers = [s for s in SERVERS if glob.glob(os.path.join(out, f"{s}-qps-*.txt"))]
    for s in servers:
        res["servers"][s] = server(out, s)
    A, G = res["servers"]["aardvark"], res["servers"]["agent"]
    res["ratio_qps"] = G["qps"] / A["qps"] if A["qps"] else None
    if "library" in res["servers"] and A["qps"]:
        res["ratio_qps_library"] = res["servers"]["library"]["qps"] / A["qps"]
    p99_lower = all(
        G["latency"][k]["p99_ms"] is not None and A["latency"][k]["p99_ms"] is not None
        and G["latency"][k]["p99_ms"] < A["latency"][k]["p99_ms"] for k in ["lat-low", "lat-high"])
    res["acceptance"] = {
        "agent_rss_mib": G["rss_kb"] / 1024,
        "agent_peak_rss_mib": G["peak_rss_kb"] / 1024,
        "rss_ok": G["peak_rss_kb"] / 1024 <= MAX_AGENT_RSS_MIB,
        "qps_ok": res["ratio_qps"] is not None and res["ratio_qps"] >= MIN_QPS_RATIO,
        "p99_ok": p99_lower,
    }
    with open(os.path.join(a.outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    def fmt(x, d=3):
        return "n/a" if x is None else f"{x:.{d}f}"

    def yes(b):
        return "yes" if b else "**no**"

    p = res["params"]
    S = [res["servers"][s] for s in servers]
    ratio = {"agent": res["ratio_qps"], "library": res.get("ratio_qps_library")}

    def row(label, f):
        return f"| {label} | " + " | ".join(f(s, x) for s, x in zip(servers, S)) + " |"

    acc = res["acceptance"]
    lines = [
        "# berth agent DNS vs aardvark-dns",
        "",
        f"Produced by `{res['command']}` on {res['date']} "
        f"({res['machine']['cores']} cores; load average before/after: "
        f"{a.load_before} / {a.load_after}; other work on the machine makes absolute "
        "numbers noisy, the servers are measured alternately so the ratios are fairer). "
        "How to run it and what exactly is measured: [README.md](README.md).",
        "",
        f"{p.get('CONTAINERS')} real containers (`berth create`) on one bridge network plus the "
        "client container; the agent is the real `berth agent --foreground` process started on "
        "demand by `berth create` and serving the gateway; aardvark-dns serves the same names "
        "and addresses on a second address of the same bridge. dnsperf runs inside the client "
        "container (`berth exec`), A queries for the containers' names; median of "
        f"{p.get('ROUNDS')} rounds of {p.get('DURATION')} s each.",
        "",
        "| | " + " | ".join(LABELS[s] for s in servers) + " |",
        "|---|" + "---|" * len(servers),
        row("queries/s (dnsperf defaults: 1 socket, 100 outstanding)",
            lambda s, x: fmt(x["qps"], 0)
            + (f" ({fmt(ratio[s], 2)}x)" if s in ratio and ratio[s] else "")),
        row("mean latency at that load, ms", lambda s, x: fmt(x["avg_latency_ms_at_max"])),
    ]
    for kind, rate in [("lat-low", p.get("RATE_LOW")), ("lat-high", p.get("RATE_HIGH"))]:
        lines.append(row(
            f"p50 / p99 / p99.9 latency at {rate} q/s, ms",
            lambda s, x, kind=kind: f"{fmt(x['latency'][kind]['p50_ms'])} / "
            f"{fmt(x['latency'][kind]['p99_ms'])} / {fmt(x['latency'][kind]['p999_ms'])}"))
    lines += [
        row("queries lost (throughput runs) / timeouts (latency runs)",
            lambda s, x: f"{x['lost']:.0f} / "
            f"{x['latency']['lat-low']['timeouts'] + x['latency']['lat-high']['timeouts']}"),
        row("RSS after warm-up / at the end / peak, MiB",
            lambda s, x: f"{x['rss_after_warmup_kb'] / 1024:.1f} / {x['rss_kb'] / 1024:.1f} / "
            f"{x['peak_rss_kb'] / 1024:.1f}"),
        row("threads", lambda s, x: str(x["threads"])),
        "",
        f"Acceptance (agent, {p.get('CONTAINERS')} containers): peak RSS "
        f"{acc['agent_peak_rss_mib']:.1f} MiB <= {MAX_AGENT_RSS_MIB} MiB: {yes(acc['rss_ok'])}; "
        f"queries/s >= {MIN_QPS_RATIO:g}x aardvark's: {yes(acc['qps_ok'])} "
        f"({fmt(res['ratio_qps'], 2)}x); p99 lower than aardvark's at both rates: "
        f"{yes(acc['p99_ok'])}.",
        "",
        "Per round (queries/s): "
        + "; ".join(LABELS[s] + " " + ", ".join(fmt(r["qps"], 0) for r in x["qps_runs"])
                    for s, x in zip(servers, S))
        + ".",
        "",
        f"Setup: {p.get('CONTAINERS')} `berth create` with BERTH_NO_AGENT=1 took "
        f"{setup.get('create_s', 0):.1f} s; the last `berth create` (starting the agent, which "
        f"loads the whole store) {setup.get('first_agent_create_s', 0) * 1000:.0f} ms. "
        f"Agent process: `{res['agent_process']}`.",
        "",
        f"Versions: {res['versions']['aardvark-dns']}; dnsperf {res['versions']['dnsperf']}; "
        f"{res['versions']['berth']} (tree {res['versions']['berth_tree']}).",
        "",
    ]
    with open(os.path.join(a.outdir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
