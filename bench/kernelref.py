"""The bare kernel's share of a container's setup: a veth pair whose host end is born a port of
one bridge and whose peer is born in the container's namespace, both ends brought up, torn
down by deleting the host end. No implementation around it: each step is one rtnetlink
request sent from this process, timed from its send to its acknowledgement.

The links are made as berth makes them (docs/ARCHITECTURE.md, "Kernel rules"): a bridge with a
MAC of its own and no multicast snooping, one queue per veth end, the host end a port from
birth and without IPv6, the host end up last. So the N-container trials show how much of
berth's per-container cost, and of its growth with N, is the kernel's own: whatever grows
here (the bridge's per-port work walks every port) grows under any bridge-based stack.
"""

import ctypes
import os
import socket
import struct
import subprocess
import time

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK = 16, 17
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
NLMSG_ERROR = 2
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BR_MCAST_SNOOPING = 23
IFF_UP = 1
CLONE_NEWNET = 0x40000000
BRIDGE = "kref0"


def _attr(kind, data):
    n = 4 + len(data)
    return struct.pack("HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _nest(kind, *attrs):
    return _attr(kind | 0x8000, b"".join(attrs))


def _name(s):
    return s.encode() + b"\0"


def _ifinfo(index=0, flags=0, change=0):
    return struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def _queues():
    one = struct.pack("I", 1)
    return _attr(IFLA_NUM_TX_QUEUES, one) + _attr(IFLA_NUM_RX_QUEUES, one)


class Rtnl:
    """One rtnetlink socket; `request` sends a message and waits for its acknowledgement."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def request(self, kind, flags, payload):
        self.seq += 1
        msg = struct.pack("IHHII", 16 + len(payload), kind, flags | NLM_F_REQUEST | NLM_F_ACK,
                          self.seq, 0) + payload
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off < len(data):
                length, typ, _, seq, _ = struct.unpack_from("IHHII", data, off)
                if typ == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("i", data, off + 16)[0]
                    if err:
                        raise OSError(err, f"rtnetlink request {kind}: {os.strerror(err)}")
                    return
                off += (length + 3) & ~3

    def set_up(self, name):
        self.request(RTM_NEWLINK, 0, _ifinfo(flags=IFF_UP, change=IFF_UP)
                     + _attr(IFLA_IFNAME, _name(name)))

    def close(self):
        self.sock.close()


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def rtnl_in(netns_path):
    """An rtnetlink socket opened inside the namespace at `netns_path` (this thread enters it
    for the socket() call and returns to its own)."""
    libc = _libc()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns_path}")
        try:
            return Rtnl()
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class BareKernel:
    """The kernel alone (see the module doc), in the trials' implementation interface."""
    name = "kernel"

    def __init__(self, work):
        self.work = work
        self.netns_ms = []
        self.nl = None

    def prepare(self):
        self.nl = Rtnl()
        info = _nest(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge"),
                     _nest(IFLA_INFO_DATA, _attr(IFLA_BR_MCAST_SNOOPING, b"\0")))
        self.nl.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                        _ifinfo() + _attr(IFLA_IFNAME, _name(BRIDGE))
                        + _attr(IFLA_ADDRESS, bytes([0x02, 0x42, 10, 90, 0, 1])) + info)
        self.nl.set_up(BRIDGE)
        self.bridge = socket.if_nametoindex(BRIDGE)

    def netns(self, i):
        return f"kref-{i}"

    def setup(self, i, ports):
        t0 = time.perf_counter_ns()  # the namespace is made beforehand, not counted
        subprocess.run(["ip", "netns", "add", self.netns(i)], check=True)
        self.netns_ms.append((time.perf_counter_ns() - t0) / 1e6)
        path = f"/run/netns/{self.netns(i)}"
        inner = rtnl_in(path)
        fd = os.open(path, os.O_RDONLY)
        host = f"kh{i}"
        try:
            t0 = time.perf_counter_ns()
            peer = (_ifinfo() + _queues() + _attr(IFLA_IFNAME, _name("eth0"))
                    + _attr(IFLA_NET_NS_FD, struct.pack("I", fd)))
            info = _nest(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"veth"),
                         _nest(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer)))
            self.nl.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                            _ifinfo() + _attr(IFLA_IFNAME, _name(host)) + _queues()
                            + _attr(IFLA_MASTER, struct.pack("I", self.bridge)) + info)
            with open(f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6", "w") as f:
                f.write("1")
            inner.set_up("eth0")
            self.nl.set_up(host)
            ms = (time.perf_counter_ns() - t0) / 1e6
        finally:
            os.close(fd)
            inner.close()
        return ms, None

    def teardown(self, i):
        t0 = time.perf_counter_ns()
        self.nl.request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(f"kh{i}")))
        ms = (time.perf_counter_ns() - t0) / 1e6
        subprocess.run(["ip", "netns", "del", self.netns(i)], check=True)
        return ms

    def finish(self):
        self.nl.request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(BRIDGE)))
        self.nl.close()
