#!/usr/bin/env python3
"""Writes the bench's inputs into DIR: the same N containers for both servers.

  snapshot.json    berth_dns::Snapshot for crates/dns/examples/serve.rs
  aardvark/bench   aardvark-dns config: network "bench", gateway 10.200.0.1
  queries.txt      dnsperf input: A queries for the containers' names, shuffled

The client (dnsperf's source address 10.200.0.5) is a container in both.
"""
import json
import os
import random
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
gateway = "10.200.0.1"
client = "10.200.0.5"


def addr(i):
    # 10.200.1.2 upwards, 250 per /24.
    return f"10.200.{1 + i // 250}.{2 + i % 250}"


containers = [(f"{i + 1:064x}", f"c{i:04d}", addr(i)) for i in range(n)]
containers.append((f"{0xc11e47:064x}", "client", client))

snapshot = {
    "domain": "berth.internal",
    "upstreams": ["127.0.0.1:53"],
    "networks": [{"name": "bench", "subnets": ["10.200.0.0/16"]}],
    "containers": [
        {
            "id": cid,
            "name": name,
            "endpoints": [{"network": "bench", "addresses": [ip], "aliases": []}],
        }
        for cid, name, ip in containers
    ],
}
with open(os.path.join(out, "snapshot.json"), "w") as f:
    json.dump(snapshot, f)

os.makedirs(os.path.join(out, "aardvark"), exist_ok=True)
with open(os.path.join(out, "aardvark", "bench"), "w") as f:
    f.write(gateway + "\n")
    for cid, name, ip in containers:
        # id, IPv4 list, IPv6 list (empty), names
        f.write(f"{cid} {ip}  {name}\n")

rng = random.Random(42)
names = [name for _, name, _ in containers if name != "client"]
rng.shuffle(names)
with open(os.path.join(out, "queries.txt"), "w") as f:
    for name in names:
        f.write(f"{name} A\n")
