#!/usr/bin/env python3
"""Runs inside a container on host B: waits for targets written by the bench and records
when the first TCP connect to each one succeeds (wall clock, ns)."""
import os
import socket
import sys
import time

work = sys.argv[1]
seen = 0
while True:
    try:
        with open(os.path.join(work, "target")) as f:
            n, ip, port = f.read().split()
    except (FileNotFoundError, ValueError):
        time.sleep(0.0005)
        continue
    n = int(n)
    if n == seen:
        time.sleep(0.0005)
        continue
    if n < 0:
        break
    while True:
        s = socket.socket()
        s.settimeout(0.02)
        try:
            s.connect((ip, int(port)))
            break
        except OSError:
            time.sleep(0.001)
        finally:
            s.close()
    done = time.time_ns()
    tmp = os.path.join(work, f"done-{n}.tmp")
    with open(tmp, "w") as f:
        f.write(str(done))
    os.rename(tmp, os.path.join(work, f"done-{n}"))
    seen = n
