#!/usr/bin/env python3
"""Turns the dnsperf outputs of bench/dns/run.sh into results.json and results.md.

usage: summarize.py WORKDIR OUTDIR --serve BIN --load-before L --load-after L --command C
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess

SERVERS = ["aardvark", "berth"]


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("outdir")
    ap.add_argument("--serve")
    ap.add_argument("--load-before")
    ap.add_argument("--load-after")
    ap.add_argument("--command")
    a = ap.parse_args()
    out = os.path.join(a.work, "out")
    res = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": a.command,
        "machine": {"cores": os.cpu_count(), "loadavg_before": a.load_before,
                    "loadavg_after": a.load_after},
        "versions": {
            "aardvark-dns": version(["/usr/lib/podman/aardvark-dns", "--version"]),
            "dnsperf": version(["sh", "-c", "dnsperf -h 2>&1 | grep -i version"]),
            "berth": version(["git", "-C", os.path.dirname(os.path.abspath(a.outdir)),
                              "describe", "--always", "--dirty"]),
        },
        "params": {k: int(os.environ[k]) for k in
                   ["DURATION", "ROUNDS", "CONTAINERS", "RATE_LOW", "RATE_HIGH"]
                   if k in os.environ},
        "servers": {},
    }
    for s in SERVERS:
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
            }
        st = status(os.path.join(out, f"{s}-status.txt"))
        res["servers"][s] = {
            "qps_runs": qps,
            "qps": median([r["qps"] for r in qps]),
            "avg_latency_ms_at_max": median([r["avg_latency_ms"] for r in qps]),
            "lost": sum((r["lost"] or 0) for r in qps),
            "latency": lat,
            "rss_kb": int(st.get("VmRSS", "0 kB").split()[0]),
            "peak_rss_kb": int(st.get("VmHWM", "0 kB").split()[0]),
            "threads": int(st.get("Threads", "0")),
        }
    A, B = res["servers"]["aardvark"], res["servers"]["berth"]
    res["ratio_qps"] = B["qps"] / A["qps"] if A["qps"] else None
    with open(os.path.join(a.outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    def fmt(x, d=3):
        return "n/a" if x is None else f"{x:.{d}f}"

    p = res["params"]
    lines = [
        "# berth-dns vs aardvark-dns",
        "",
        f"Produced by `{res['command']}` on {res['date']} "
        f"({res['machine']['cores']} cores; load average before/after: "
        f"{a.load_before} / {a.load_after}; other work on the machine makes absolute "
        "numbers noisy, the two servers are measured alternately so the ratio is fairer).",
        "",
        f"{p.get('CONTAINERS')} containers on one network, dnsperf from a container address, "
        f"A queries for their names; median of {p.get('ROUNDS')} rounds of "
        f"{p.get('DURATION')} s each.",
        "",
        "| | aardvark-dns | berth-dns |",
        "|---|---|---|",
        f"| queries/s (dnsperf defaults: 1 socket, 100 outstanding) | {fmt(A['qps'], 0)} | "
        f"{fmt(B['qps'], 0)} ({fmt(res['ratio_qps'], 2)}x) |",
        f"| mean latency at that load, ms | {fmt(A['avg_latency_ms_at_max'])} | "
        f"{fmt(B['avg_latency_ms_at_max'])} |",
    ]
    for kind, rate in [("lat-low", p.get("RATE_LOW")), ("lat-high", p.get("RATE_HIGH"))]:
        la, lb = A["latency"][kind], B["latency"][kind]
        lines += [
            f"| p50 / p99 / p99.9 latency at {rate} q/s, ms | "
            f"{fmt(la['p50_ms'])} / {fmt(la['p99_ms'])} / {fmt(la['p999_ms'])} | "
            f"{fmt(lb['p50_ms'])} / {fmt(lb['p99_ms'])} / {fmt(lb['p999_ms'])} |",
        ]
    lines += [
        f"| queries lost (all throughput runs) | {A['lost']:.0f} | {B['lost']:.0f} |",
        f"| RSS at the end / peak, MiB | {A['rss_kb'] / 1024:.1f} / {A['peak_rss_kb'] / 1024:.1f} | "
        f"{B['rss_kb'] / 1024:.1f} / {B['peak_rss_kb'] / 1024:.1f} |",
        f"| threads | {A['threads']} | {B['threads']} |",
        "",
        "Per round (queries/s): aardvark "
        + ", ".join(fmt(r["qps"], 0) for r in A["qps_runs"])
        + "; berth "
        + ", ".join(fmt(r["qps"], 0) for r in B["qps_runs"])
        + ".",
        "",
        f"Versions: {res['versions']['aardvark-dns']}; {res['versions']['dnsperf']}; "
        f"berth {res['versions']['berth']}.",
        "",
    ]
    with open(os.path.join(a.outdir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
