#!/usr/bin/env python3
"""Writes the inputs of the servers compared with the berth agent, from the real containers.

usage: gen.py DIR INSPECT_JSON NETWORK AARDVARK_ADDR

INSPECT_JSON is `berth inspect` of every container of the bench (the CONTAINERS named ones
and "client", the container dnsperf runs in). From their real addresses on NETWORK it writes:

  aardvark/NETWORK  aardvark-dns config: listens on AARDVARK_ADDR, same containers, same names
  snapshot.json     berth_dns::Snapshot for crates/dns/examples/serve.rs (the library alone)
  queries.txt       dnsperf input: A queries for the containers' names (not "client"), shuffled

so the agent (which reads berth's store), aardvark-dns and the library example all serve the
same names with the same addresses, and the client's address is a container in all of them.
"""
import ipaddress
import json
import os
import random
import sys

out, inspect_path, network, aardvark_addr = sys.argv[1:5]
with open(inspect_path) as f:
    inspected = json.load(f)

containers = []
subnet = None
for c in inspected:
    ep = c["Networks"][network]
    containers.append((c["Id"], c["Name"], ep["IPAddress"]))
    subnet = ipaddress.ip_network(f"{ep['IPAddress']}/{ep['IPPrefixLen']}", strict=False)
if not any(name == "client" for _, name, _ in containers):
    sys.exit("gen.py: no container named client")

snapshot = {
    "domain": "berth.internal",
    "upstreams": ["127.0.0.1:53"],
    "networks": [{"name": network, "subnets": [str(subnet)]}],
    "containers": [
        {
            "id": cid,
            "name": name,
            "endpoints": [{"network": network, "addresses": [ip], "aliases": []}],
        }
        for cid, name, ip in containers
    ],
}
with open(os.path.join(out, "snapshot.json"), "w") as f:
    json.dump(snapshot, f)

os.makedirs(os.path.join(out, "aardvark"), exist_ok=True)
with open(os.path.join(out, "aardvark", network), "w") as f:
    f.write(aardvark_addr + "\n")
    for cid, name, ip in containers:
        # id, IPv4 list, IPv6 list (empty), names
        f.write(f"{cid} {ip}  {name}\n")

rng = random.Random(42)
names = sorted(name for _, name, _ in containers if name != "client")
rng.shuffle(names)
with open(os.path.join(out, "queries.txt"), "w") as f:
    for name in names:
        f.write(f"{name} A\n")
print(f"gen.py: {len(names)} names, client {dict((n, ip) for _, n, ip in containers)['client']}",
      file=sys.stderr)
