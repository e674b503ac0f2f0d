#!/usr/bin/env python3
"""Interleaved netavark-door setups and teardowns of several berth builds on one berth root;
run by bench/ab/run.sh inside its own namespaces. Container i is set up by build i mod K and
torn down by build (i + 1) mod K; the first call of each build is left out of its medians."""
import json, os, statistics, subprocess, sys, time

n = int(sys.argv[1])
bins = [os.path.realpath(b) for b in sys.argv[2:]]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
work = "/run/berth-ab"
links = []
for k, b in enumerate(bins):
    d = f"{work}/build{k}"
    os.makedirs(d)
    os.symlink(b, d + "/netavark")  # the name podman calls it by
    links.append(d + "/netavark")
env = dict(os.environ, BERTH_NO_AGENT="1", BERTH_ROOT=work + "/root",
           BERTH_RUN_ROOT=work + "/run")


def options(i):
    return json.dumps({
        "container_id": f"{i + 1:064x}", "container_name": f"ab{i}",
        "networks": {"abnet": {"interface_name": "eth0",
                               "static_ips": [f"10.89.{i // 250}.{i % 250 + 2}"]}},
        "network_info": {"abnet": {
            "dns_enabled": False, "driver": "bridge", "id": f"b{7:063x}", "internal": False,
            "ipv6_enabled": False, "name": "abnet", "network_interface": "abnet0",
            "subnets": [{"gateway": "10.89.0.1", "subnet": "10.89.0.0/16"}]}},
        "port_mappings": [{"container_port": 80, "host_ip": "", "host_port": 20000 + i,
                           "protocol": "tcp", "range": 1}]})


def call(k, verb, i):
    t = time.perf_counter_ns()
    p = subprocess.run([links[k], "--config", work + "/config", verb, f"/run/netns/ab{i}"],
                       input=options(i), capture_output=True, text=True, env=env)
    ms = (time.perf_counter_ns() - t) / 1e6
    if p.returncode != 0:
        sys.exit(f"{bins[k]} {verb} ab{i} failed: {p.stdout.strip()} {p.stderr.strip()}")
    return ms


for i in range(n):
    subprocess.run(["ip", "netns", "add", f"ab{i}"], check=True)
setup = [[] for _ in bins]
teardown = [[] for _ in bins]
for i in range(n):
    setup[i % len(bins)].append(call(i % len(bins), "setup", i))
for i in range(n):
    teardown[(i + 1) % len(bins)].append(call((i + 1) % len(bins), "teardown", i))
print(f"{n} containers, {len(bins)} builds taking turns; medians in ms (first call left out)")
print("| build | setup median | teardown median | calls each |")
print("|---|---:|---:|---:|")
for k, b in enumerate(bins):
    print(f"| {b} | {statistics.median(setup[k][1:]):.2f} | "
          f"{statistics.median(teardown[k][1:]):.2f} | {len(setup[k])} |")
