#!/usr/bin/env python3
"""berth's benchmark driver (stdlib only). Started by bench/run.sh inside throwaway network and
mount namespaces; every trial runs in a further fresh network namespace of its own
(`unshare -n`), so each implementation and each N starts from an empty kernel state and the
rule counts contain only that trial's rules.

  driver.py --work DIR --out DIR [--quick] [--only berth,netavark,cni] [--skip-dataplane]
  driver.py --trial JSON          (internal: one trial, result JSON on stdout)

Every setup/teardown call is timed on its own with time.perf_counter_ns() around
subprocess.run(), so the figures are per container (median, p95), process start included.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import kernelref  # bench/kernelref.py: the bare kernel's share of a setup

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NETAVARK = os.environ.get("NETAVARK", "/usr/lib/podman/netavark")
CNI_PATH = os.environ.get("CNI_PATH", "/usr/lib/cni")
BASELINE = os.environ.get("BENCH_BASELINE", "/work/shared/bench/dataplane-baseline.sh")
IMPLS = ["berth", "berth-door", "berth-door-agent", "berth-door-agent-dns", "berth-cni",
         "netavark", "cni", "kernel"]
LABEL = {"berth": "berth create/rm", "berth-door": "berth netavark door",
         "berth-door-agent": "berth netavark door, agent running",
         "berth-door-agent-dns": "berth netavark door, agent running, network with DNS",
         "berth-cni": "berth CNI plugin, agent running",
         "netavark": "netavark 1.4", "cni": "CNI bridge+portmap",
         "kernel": "bare kernel (veth port, no implementation)"}
COLOR = {"berth": "#d62728", "berth-door": "#ff7f0e", "berth-door-agent": "#9467bd",
         "berth-door-agent-dns": "#e377c2", "berth-cni": "#8c564b",
         "netavark": "#1f77b4", "cni": "#2ca02c", "kernel": "#7f7f7f"}
# Implementations with a data-path trial (the door programs the same kernel objects as
# `berth create`).
DATAPLANE_IMPLS = ["berth", "netavark", "cni"]
IPERF_SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))
# container->container samples per data-path trial, alternating with the paired reference as
# A B B A A B B A A B B A (a drift of the machine's speed over the trial falls on both alike), each
# `iperf3 -t PAIR_SECONDS`: one 5-second sample here ranged 13-26 Gbit/s on the same path, so
# the check needs many samples more than long ones.
C2C_ORDER = ("impl", "ref", "ref", "impl") * 3
PAIR_SECONDS = int(os.environ.get("BENCH_PAIR_SECONDS", "3"))
HOST_ADDR = "10.200.0.1"  # a non-loopback address of the trial's "host" (veth link)
SETUP_BASE_PORT = 20000   # container i publishes SETUP_BASE_PORT+i -> 80
MANY_BASE_PORT = 30000    # the 200-port container: 30000+k -> 8000+k
RANGE = (40000, 40999)    # the 1000-port range container: 40000-40999 -> 40000-40999
IPERF_PORT = 5201
PORT_ROUNDS = 3          # rounds of the 200-port and 1000-port-range trials


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class CmdError(Exception):
    pass


def run(cmd, stdin=None, timeout=300, env=None, check=True):
    """Runs cmd; returns (elapsed ms, CompletedProcess)."""
    t0 = time.perf_counter_ns()
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired as e:
        raise CmdError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
    dt = (time.perf_counter_ns() - t0) / 1e6
    if check and p.returncode != 0:
        raise CmdError(f"exit {p.returncode}: {' '.join(cmd)[:300]}\n{p.stderr.strip()[:2000]}")
    return dt, p


def out(cmd, **kw):
    return run(cmd, **kw)[1].stdout


def pct(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return None
    k = max(1, math.ceil(q / 100 * len(s)))
    return s[k - 1]


def summary(values):
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(pct(values, 95), 3),
        "mean": round(statistics.fmean(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


# ---------------------------------------------------------------------------------------------
# Rule counting: one method for all three implementations.
# netavark and the CNI plugins program iptables, which on Debian 12 is iptables-nft, so their
# rules are nftables rules too: we count the `rule` objects of `nft -j list ruleset` (every
# table, every family) for all three, and the elements of all sets and maps next to it.
# `iptables-save`/`ip6tables-save` `-A` lines are recorded as a cross-check.


def count_rules():
    d = json.loads(out(["nft", "-j", "list", "ruleset"]) or '{"nftables": []}')["nftables"]
    rules = sum(1 for o in d if "rule" in o)
    elements = 0
    for o in d:
        for k in ("set", "map"):
            if k in o:
                elements += len(o[k].get("elem", []))
    ipt = 0
    for prog in ("iptables-save", "ip6tables-save"):
        if shutil.which(prog):
            _, p = run([prog], check=False)
            ipt += sum(1 for line in p.stdout.splitlines() if line.startswith("-A "))
    return {"nft_rules": rules, "nft_set_elements": elements, "iptables_rules": ipt}


def link_count():
    return len(out(["ip", "-o", "link", "show"]).splitlines())


# ---------------------------------------------------------------------------------------------
# Implementations. Each one: prepare(), setup(i, ports) -> (ms, ip), teardown(i) -> ms,
# finish(). ports: list of (host_port, container_port, count) tcp mappings; count > 1 is a range.


class Netavark:
    name = "netavark"
    dns_enabled = False

    def __init__(self, work):
        self.work = work
        self.cfg = os.path.join(work, "netavark")
        os.makedirs(self.cfg, exist_ok=True)
        self.opts = {}
        self.netns_ms = []

    def prepare(self):
        pass

    def ip(self, i):
        return f"10.89.{i // 250}.{i % 250 + 2}"

    def _opts(self, i, ports):
        pm = [{"container_port": c, "host_ip": "", "host_port": h, "protocol": "tcp", "range": n}
              for (h, c, n) in ports]
        return json.dumps({
            "container_id": f"{i + 1:064x}", "container_name": f"nvb{i}",
            "networks": {"nvbench": {"interface_name": "eth0", "static_ips": [self.ip(i)]}},
            "network_info": {"nvbench": {
                "dns_enabled": self.dns_enabled, "driver": "bridge", "id": "b" + f"{7:063x}",
                "internal": False, "ipv6_enabled": False, "name": "nvbench",
                "network_interface": "nvbench0",
                "subnets": [{"gateway": "10.89.0.1", "subnet": "10.89.0.0/16"}]}},
            "port_mappings": pm})

    def netns(self, i):
        return f"nvb-{i}"

    def call(self, verb, i, stdin):
        """One netavark call: (ms, CompletedProcess)."""
        return run([NETAVARK, "--config", self.cfg, verb, f"/run/netns/{self.netns(i)}"],
                   stdin=stdin, timeout=3600)

    def setup(self, i, ports):
        ms, _ = run(["ip", "netns", "add", self.netns(i)])
        self.netns_ms.append(ms)
        self.opts[i] = self._opts(i, ports)
        ms, _ = self.call("setup", i, self.opts[i])
        return ms, self.ip(i)

    def teardown(self, i):
        ms, _ = self.call("teardown", i, self.opts.pop(i))
        run(["ip", "netns", "del", self.netns(i)])
        return ms

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.netns(i)]

    def finish(self):
        run(["ip", "link", "del", "nvbench0"], check=False)


class BerthDoor(Netavark):
    """berth doing exactly netavark's job, called the way podman calls it: the executable
    named `netavark` (target/dist/netavark: berth-shim beside berth, as contrib/podman
    installs it; with the agent off it becomes berth at once), the same
    NetworkOptions JSON on stdin, a namespace made beforehand with `ip netns add` (not
    counted). berth's directories come from BERTH_ROOT/BERTH_RUN_ROOT. Agent off
    (BERTH_NO_AGENT=1), as netavark runs with no resident process: teardown deletes the
    veth (and the network's bridge with its last container) itself."""
    name = "berth-door"

    def __init__(self, work):
        super().__init__(work)
        helpers = os.path.join(work, "door-helpers")
        os.makedirs(helpers, exist_ok=True)
        link = os.path.join(helpers, "netavark")
        if not os.path.lexists(link):
            os.symlink(os.path.join(os.path.dirname(os.environ["BERTH_BENCH_BIN"]), "netavark"),
                       link)
        self.base = [link, "--config", self.cfg]
        self.env = dict(os.environ, BERTH_NO_AGENT="1",
                        BERTH_ROOT=os.path.join(work, "door-root"),
                        BERTH_RUN_ROOT=os.path.join(work, "door-run"))

    def call(self, verb, i, stdin):
        return run(self.base + [verb, f"/run/netns/{self.netns(i)}"], stdin=stdin,
                   timeout=3600, env=self.env)


class BerthDoorAgent(BerthDoor):
    """The netavark door as berth runs by default: with its agent (DNS, the [::1] relay,
    firewall repair; started by the first setup that publishes a port, or by
    contrib/systemd). Here it is started before the first call and stopped after the last,
    by its pid. With it running, berth-shim hands each setup and teardown to the agent, which
    runs them on a warm store connection (docs/ARCHITECTURE.md, "Door commands", "Process
    start"). Its CPU
    time over the trial is reported beside the calls' wall times, since it does the work
    (the calls themselves, the deletion of a torn-down veth, the deferred reload)."""
    name = "berth-door-agent"

    def __init__(self, work):
        super().__init__(work)
        self.env = {k: v for k, v in self.env.items() if k != "BERTH_NO_AGENT"}
        self.pid = None

    def prepare(self):
        bin = os.environ["BERTH_BENCH_BIN"]
        log_path = os.path.join(self.work, "agent.log")
        with open(log_path, "a") as lf:
            self.agent = subprocess.Popen(
                [bin, "agent", "--foreground"], env=self.env, stdin=subprocess.DEVNULL,
                stdout=lf, stderr=lf)
        # door.sock comes last: from then on the agent runs the door's commands.
        sock = os.path.join(self.env["BERTH_RUN_ROOT"], "door.sock")
        for _ in range(500):
            if os.path.exists(sock):
                break
            if self.agent.poll() is not None:
                raise CmdError(f"the agent exited ({self.agent.returncode}); see {log_path}")
            time.sleep(0.01)
        else:
            raise CmdError("the agent did not make its socket in 5 s")
        self.cpu0 = self.agent_cpu_s()

    def agent_cpu_s(self):
        with open(f"/proc/{self.agent.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def finish(self):
        self.agent_cpu = round(self.agent_cpu_s() - self.cpu0, 3)
        self.agent.terminate()
        self.agent.wait(timeout=30)
        super().finish()


class BerthDoorAgentDns(BerthDoorAgent):
    """The same on a podman network with DNS (`dns_enabled`), as `podman network create`
    makes them: each setup waits until berth's DNS answers for its container (`reload-names`
    to the agent). Shown beside, not judged (netavark runs with DNS off here)."""
    name = "berth-door-agent-dns"
    dns_enabled = True


class Cni:
    name = "cni"

    def __init__(self, work):
        self.work = work
        self.data = os.path.join(work, "cni-data")
        os.makedirs(self.data, exist_ok=True)
        self.results = {}
        self.ports = {}
        self.netns_ms = []
        self.bridge_conf = json.dumps({
            "cniVersion": "1.0.0", "name": "cnibench", "type": "bridge", "bridge": "cnib0",
            "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "dataDir": self.data,
                     "ranges": [[{"subnet": "10.90.0.0/16"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}})

    def prepare(self):
        pass

    def netns(self, i):
        return f"cnb-{i}"

    def env(self, i, command):
        e = dict(os.environ)
        e.update({"CNI_PATH": CNI_PATH, "CNI_IFNAME": "eth0", "CNI_CONTAINERID": f"cnb{i}",
                  "CNI_NETNS": f"/run/netns/{self.netns(i)}", "CNI_COMMAND": command})
        return e

    def _pm_conf(self, i):
        # The portmap plugin has no port ranges: a range is given as one mapping per port.
        maps = []
        for (h, c, n) in self.ports[i]:
            maps += [{"hostPort": h + k, "containerPort": c + k, "protocol": "tcp"}
                     for k in range(n)]
        return json.dumps({"cniVersion": "1.0.0", "name": "cnibench", "type": "portmap",
                           "runtimeConfig": {"portMappings": maps},
                           "prevResult": self.results[i]})

    def setup(self, i, ports):
        ms, _ = run(["ip", "netns", "add", self.netns(i)])
        self.netns_ms.append(ms)
        self.ports[i] = ports
        t1, p = run([f"{CNI_PATH}/bridge"], stdin=self.bridge_conf, env=self.env(i, "ADD"))
        self.results[i] = json.loads(p.stdout)
        t2 = 0.0
        if ports:
            t2, _ = run([f"{CNI_PATH}/portmap"], stdin=self._pm_conf(i), env=self.env(i, "ADD"),
                        timeout=3600)
        ip = self.results[i]["ips"][0]["address"].split("/")[0]
        return t1 + t2, ip

    def teardown(self, i):
        t1 = 0.0
        if self.ports[i]:
            t1, _ = run([f"{CNI_PATH}/portmap"], stdin=self._pm_conf(i), env=self.env(i, "DEL"),
                        timeout=3600)
        t2, _ = run([f"{CNI_PATH}/bridge"], stdin=self.bridge_conf, env=self.env(i, "DEL"))
        run(["ip", "netns", "del", self.netns(i)])
        del self.results[i], self.ports[i]
        return t1 + t2

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.netns(i)]

    def finish(self):
        run(["ip", "link", "del", "cnib0"], check=False)


class Berth:
    name = "berth"

    def __init__(self, work):
        self.work = work
        self.bin = os.environ["BERTH_BENCH_BIN"]
        # netavark runs with dns_enabled=false and CNI has no DNS: berth's agent (DNS) off too,
        # which also keeps the trial from leaving a resident agent behind.
        os.environ["BERTH_NO_AGENT"] = "1"
        self.base = [self.bin, "--root", os.path.join(work, "berth-root"),
                     "--run-root", os.path.join(work, "berth-run")]
        self.netns_ms = []

    def b(self, *args):
        return self.base + list(args)

    def prepare(self):
        run(self.b("network", "create", "--subnet", "10.91.0.0/16", "benchnet"))

    @staticmethod
    def pflags(ports):
        flags = []
        for (h, c, n) in ports:
            if n == 1:
                flags += ["-p", f"{h}:{c}"]
            else:
                flags += ["-p", f"{h}-{h + n - 1}:{c}-{c + n - 1}"]
        return flags

    def setup(self, i, ports):
        ms, _ = run(self.b("create", "--network", "benchnet", "--name", f"b{i}",
                           *self.pflags(ports), "--", "sleep", "infinity"), timeout=3600)
        return ms, None

    def teardown(self, i):
        ms, _ = run(self.b("rm", "-f", f"b{i}"), timeout=3600)
        return ms

    def address(self, name):
        d = json.loads(out(self.b("inspect", name)))
        return d[0]["Networks"]["benchnet"]["IPAddress"]

    def finish(self):
        run(self.b("network", "rm", "benchnet"), check=False)


class BerthCni(BerthDoorAgent):
    """berth as a CNI plugin, called the way a CNI runtime calls it: the executable `berth`
    in a plugin directory (a link to berth-shim, as contrib/podman/containers-cni.conf
    installs it), `CNI_*` in the environment, one network configuration of type berth on
    stdin with the container's ports as the `portMappings` capability: the job the CNI row
    does with `bridge`, `host-local` and `portmap`. The agent runs, as berth's default, and
    the shim hands each ADD and DEL to it. Shown beside the CNI reference plugins (INFO)."""
    name = "berth-cni"

    def __init__(self, work):
        super().__init__(work)
        plugins = os.path.join(work, "cni-plugins")
        os.makedirs(plugins, exist_ok=True)
        self.plugin = os.path.join(plugins, "berth")
        if not os.path.lexists(self.plugin):
            shim = os.path.realpath(os.path.join(
                os.path.dirname(os.environ["BERTH_BENCH_BIN"]), "netavark"))
            # BERTH_BENCH_CNI_PLUGIN=berth: the plugin a link to berth itself, to set the
            # shim beside it (docs/ARCHITECTURE.md, "Process start").
            if os.environ.get("BERTH_BENCH_CNI_PLUGIN") == "berth":
                shim = os.path.realpath(os.environ["BERTH_BENCH_BIN"])
            os.symlink(shim, self.plugin)
        self.ports = {}

    def ip(self, i):
        return None

    def netns(self, i):
        return f"bcn-{i}"

    def conf(self, i):
        maps = []
        for (h, c, n) in self.ports[i]:
            maps += [{"hostPort": h + k, "containerPort": c + k, "protocol": "tcp"}
                     for k in range(n)]
        return json.dumps({
            "cniVersion": "1.0.0", "name": "bcnibench", "type": "berth", "bridge": "bcni0",
            "subnet": "10.92.0.0/16", "capabilities": {"portMappings": True},
            "runtimeConfig": {"portMappings": maps}})

    def cni(self, i, command):
        env = dict(self.env, CNI_COMMAND=command, CNI_CONTAINERID=f"bcni{i}",
                   CNI_NETNS=f"/run/netns/{self.netns(i)}", CNI_IFNAME="eth0",
                   CNI_PATH=os.path.dirname(self.plugin))
        return run([self.plugin], stdin=self.conf(i), timeout=3600, env=env)

    def setup(self, i, ports):
        ms, _ = run(["ip", "netns", "add", self.netns(i)])
        self.netns_ms.append(ms)
        self.ports[i] = ports
        ms, p = self.cni(i, "ADD")
        return ms, json.loads(p.stdout)["ips"][0]["address"].split("/")[0]

    def teardown(self, i):
        ms, _ = self.cni(i, "DEL")
        run(["ip", "netns", "del", self.netns(i)])
        del self.ports[i]
        return ms

    def finish(self):
        super().finish()
        run(["ip", "link", "del", "bcni0"], check=False)


def make_impl(name, work):
    return {"berth": Berth, "berth-door": BerthDoor, "berth-door-agent": BerthDoorAgent,
            "berth-door-agent-dns": BerthDoorAgentDns, "berth-cni": BerthCni,
            "netavark": Netavark, "cni": Cni, "kernel": kernelref.BareKernel}[name](work)


# ---------------------------------------------------------------------------------------------
# Trials (each in its own fresh network namespace).


@contextlib.contextmanager
def prepared(impl):
    """`impl.prepare()`, and `impl.finish()` however the trial ends: a failed trial must not
    leave an agent running or a bridge behind."""
    impl.prepare()
    try:
        yield impl
    except BaseException:
        try:
            impl.finish()
        except Exception as e:  # the trial's own error is the one to report
            log(f"  {impl.name}: clean-up after the failure failed too: {e}")
        raise
    impl.finish()


def trial_setup(spec):
    impl = make_impl(spec["impl"], spec["work"])
    n = spec["n"]
    with prepared(impl):
        r = setup_rounds(impl, n)
    # the resident agent's CPU over the trial, per container (the agent rows; `finish`
    # measures it)
    r["agent_cpu_ms_per_container"] = (round(1e3 * impl.agent_cpu / n, 3)
                                       if hasattr(impl, "agent_cpu") else None)
    return r


def setup_rounds(impl, n):
    setup, teardown = [], []
    every = max(1, n // 10)
    t0 = time.perf_counter_ns()
    for i in range(n):
        ms, _ = impl.setup(i, [(SETUP_BASE_PORT + i, 80, 1)])
        setup.append(ms)
        if (i + 1) % every == 0:
            log(f"  {impl.name} N={n}: set up {i + 1}/{n} (last {ms:.1f} ms)")
    t1 = time.perf_counter_ns()
    peak = count_rules()
    links_peak = link_count()
    for i in range(n):
        teardown.append(impl.teardown(i))
        if (i + 1) % every == 0:
            log(f"  {impl.name} N={n}: torn down {i + 1}/{n}")
    t2 = time.perf_counter_ns()
    after = count_rules()
    return {"impl": impl.name, "n": n, "setup_ms": setup, "teardown_ms": teardown,
            "setup": summary(setup), "teardown": summary(teardown),
            "setup_total_s": round((t1 - t0) / 1e9, 3),
            "teardown_total_s": round((t2 - t1) / 1e9, 3),
            "rules_at_peak": peak, "rules_after_teardown": after, "links_at_peak": links_peak,
            "netns_add_ms": summary(impl.netns_ms)}


def pool_setup(first, again):
    """One N's result from one more trial of it: the calls' times pooled, the summaries
    computed over the pool, each trial's own median kept (`trial_medians`). The machine's speed
    drifts by more than the growth being judged over the minutes between trials (the same N=10
    trial gave 1.25 and 1.60 ms two minutes apart, 2.65 and 3.32 ms in another run); N=10
    trials before, just before and after the N=1000 trial let that drift fall on both sides of
    the check. Rules and links are the first trial's."""
    if first is None or "setup_ms" not in first or "setup_ms" not in again:
        return again if first is None or "setup_ms" not in first else first
    setup = first["setup_ms"] + again["setup_ms"]
    teardown = first["teardown_ms"] + again["teardown_ms"]
    meds = first.get("trial_medians", [first["setup"]["median"]]) + [again["setup"]["median"]]
    return dict(first, setup_ms=setup, teardown_ms=teardown, setup=summary(setup),
                teardown=summary(teardown), trial_medians=meds)


def trial_ports(spec):
    impl = make_impl(spec["impl"], spec["work"])
    with prepared(impl):
        return port_rounds(impl, spec["kind"])


def port_rounds(impl, kind):
    if kind == "ports200":
        ports = [(MANY_BASE_PORT + k, 8000 + k, 1) for k in range(200)]
    else:
        ports = [(RANGE[0], RANGE[0], RANGE[1] - RANGE[0] + 1)]
    # Three rounds (a single one on this 2-CPU VM varied 8-22 ms for berth's 200 ports): the
    # medians are reported, every round's figures beside them.
    setups, teardowns = [], []
    for _ in range(PORT_ROUNDS):
        ms, _ = impl.setup(0, ports)
        setups.append(round(ms, 3))
        peak = count_rules()
        teardowns.append(round(impl.teardown(0), 3))
        after = count_rules()
    return {"impl": impl.name, "kind": kind,
            "setup_ms": round(statistics.median(setups), 3),
            "teardown_ms": round(statistics.median(teardowns), 3),
            "rounds": {"setup_ms": setups, "teardown_ms": teardowns},
            "rules_at_peak": peak, "rules_after_teardown": after}


def iperf_gbps(stdout):
    d = json.loads(stdout)
    if "error" in d:
        raise CmdError("iperf3: " + d["error"])
    return d["end"]["sum_received"]["bits_per_second"] / 1e9


def iperf_client(prefix, addr, port=IPERF_PORT, tries=20, seconds=IPERF_SECONDS):
    """Runs an iperf3 client (bounded by -t), retrying while the server is not listening yet."""
    last = None
    for _ in range(tries):
        _, p = run(prefix + ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds),
                             "-J"], timeout=seconds + 60, check=False)
        try:
            if p.returncode == 0:
                return iperf_gbps(p.stdout)
            last = p.stdout[-500:] + p.stderr[-500:]
        except (ValueError, KeyError, CmdError) as e:
            last = str(e)
        time.sleep(0.3)
    raise CmdError(f"iperf3 client to {addr}:{port} failed: {last}")


def add_host_address():
    # a veth pair standing for the host's uplink (this kernel may lack the dummy driver)
    run(["ip", "link", "add", "benchhost0", "type", "veth", "peer", "name", "benchhost1"])
    run(["ip", "link", "set", "benchhost1", "up"])
    run(["ip", "addr", "add", f"{HOST_ADDR}/24", "dev", "benchhost0"])
    run(["ip", "link", "set", "benchhost0", "up"])


class PairedBridge:
    """The bare veth + bridge reference of dataplane-baseline.sh, built with the same commands
    in the data-path trial itself, so that its samples and the implementation's alternate in
    one trial (the machine's load shifts by ±10-20% over seconds here; a reference measured in
    a trial of its own seconds earlier or later does not see the same machine). The bridge sits
    in a namespace of its own, so no firewall table of the implementation is on its path."""
    NS = ("pair-br", "pair-c", "pair-d")
    ADDR = "10.254.0.3"

    def __init__(self):
        self.server = None
        br, c, d = self.NS
        for n in self.NS:
            run(["ip", "netns", "add", n])
        inb = ["ip", "-n", br]
        run(inb + ["link", "add", "refbr0", "type", "bridge"])
        run(inb + ["link", "set", "refbr0", "up"])
        for ns, addr in ((c, "10.254.0.2"), (d, self.ADDR)):
            h, e = "h" + ns[-1], "e" + ns[-1]
            run(inb + ["link", "add", h, "type", "veth", "peer", "name", e, "netns", ns])
            run(inb + ["link", "set", h, "master", "refbr0"])
            run(inb + ["link", "set", h, "up"])
            run(["ip", "-n", ns, "link", "set", e, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", e])
        # ip netns exec execs iperf3 in place: this pid is the server's, killed in close().
        self.server = subprocess.Popen(["ip", "netns", "exec", d, "iperf3", "-s", "-B",
                                        self.ADDR], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)

    def sample(self):
        return iperf_client(["ip", "netns", "exec", self.NS[1]], self.ADDR,
                            seconds=PAIR_SECONDS)

    def close(self):
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        for n in self.NS:
            run(["ip", "netns", "del", n], check=False)


def trial_dataplane(spec):
    """container->container on one bridge, with the bare bridge reference alternating in the
    same trial, and host->container through a published port."""
    name = spec["impl"]
    impl = make_impl(name, spec["work"])
    impl.prepare()
    add_host_address()
    res = {"impl": name, "c2c_gbps": [], "paired_bridge_gbps": [], "published_gbps": [],
           "published_localhost_gbps": [], "errors": []}
    server = None
    pair = None
    try:
        pair = PairedBridge()
        if name == "berth":
            srv = impl.b("run", "-d", "--network", "benchnet", "--name", "srv",
                         "-p", f"{IPERF_PORT}:{IPERF_PORT}", "--", "iperf3", "-s")
            run(srv, timeout=60)
            ip = impl.address("srv")
            client_prefix = impl.b("run", "--rm", "--network", "benchnet", "--")
        else:
            _, ip = impl.setup(0, [(IPERF_PORT, IPERF_PORT, 1)])
            impl.setup(1, [])
            # ip netns exec execs iperf3 in place: this pid is the server's, killed below.
            server = subprocess.Popen(impl.exec_prefix(0) + ["iperf3", "-s"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client_prefix = impl.exec_prefix(1)
        res["container_ip"] = ip
        for who in C2C_ORDER:
            if who == "impl":
                g = iperf_client(client_prefix, ip, seconds=PAIR_SECONDS)
                res["c2c_gbps"].append(round(g, 3))
                log(f"  {name} container->container: {g:.2f} Gbit/s")
            else:
                g = pair.sample()
                res["paired_bridge_gbps"].append(round(g, 3))
                log(f"  bare bridge (paired with {name}): {g:.2f} Gbit/s")
        try:
            g = iperf_client([], HOST_ADDR, tries=10)
            res["published_gbps"].append(round(g, 3))
            log(f"  {name} host->container, published port: {g:.2f} Gbit/s")
        except CmdError as e:
            res["errors"].append(f"published port: {e}")
            log(f"  {name} host->container, published port: {e}")
        try:
            # localhost -> published port: informational (needs route_localnet + SNAT)
            g = iperf_client([], "127.0.0.1", tries=3)
            res["published_localhost_gbps"].append(round(g, 3))
            log(f"  {name} localhost->container, published port: {g:.2f} Gbit/s")
        except CmdError as e:
            res["errors"].append(f"localhost: {e}")
            log(f"  {name} localhost->container, published port: {e}")
    finally:
        if pair is not None:
            pair.close()
        if server is not None:
            server.kill()
            server.wait()
        if name == "berth":
            run(impl.b("rm", "-f", "srv"), check=False)
        else:
            for i in (0, 1):
                if i in getattr(impl, "opts", {}) or i in getattr(impl, "results", {}):
                    impl.teardown(i)
        impl.finish()
    for k in ("c2c_gbps", "paired_bridge_gbps", "published_gbps", "published_localhost_gbps"):
        res[k.replace("_gbps", "_median_gbps")] = (
            round(statistics.median(res[k]), 3) if res[k] else None)
    return res


def merge_dataplane(base_runs, dp_runs):
    """Medians over the rounds of the data-path trials."""
    def med(vals):
        return round(statistics.median(vals), 3) if vals else None

    ok = [r for r in base_runs if "error" not in r]
    base = {"runs": base_runs}
    for k in ("veth_gbps", "bridge_gbps", "vxlan_gbps"):
        base[k] = med([r[k] for r in ok if r.get(k) is not None])
    if not ok:
        base["error"] = base_runs[0]["error"]
    res = {"baseline": base}
    for impl, runs in dp_runs.items():
        good = [r for r in runs if "error" not in r]
        d = {"runs": len(runs), "errors": [r["error"] for r in runs if "error" in r]}
        if not good:
            d["error"] = runs[0]["error"] if runs else "not run"
            res[impl] = d
            continue
        d["container_ip"] = good[0].get("container_ip")
        for k in ("c2c_gbps", "paired_bridge_gbps", "published_gbps",
                  "published_localhost_gbps"):
            d[k] = [x for r in good for x in r.get(k, [])]
            d[k.replace("_gbps", "_median_gbps")] = med(d[k])
        d["errors"] += [e for r in good for e in r["errors"]]
        res[impl] = d
    return res


def trial_baseline(spec):
    """The bare kernel reference: /work/shared/bench/dataplane-baseline.sh, as it is."""
    env = dict(os.environ, T=str(IPERF_SECONDS))
    _, p = run(["bash", BASELINE], env=env, timeout=20 * IPERF_SECONDS + 120)
    res = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith("_gbps"):
            try:
                res[parts[0]] = float(parts[1])
            except ValueError:
                res[parts[0]] = None
    return res


def trial_main(spec):
    run(["ip", "link", "set", "lo", "up"])
    kind = spec["kind"]
    if kind == "setup":
        r = trial_setup(spec)
    elif kind in ("ports200", "range1000"):
        r = trial_ports(spec)
    elif kind == "dataplane":
        r = trial_dataplane(spec)
    elif kind == "baseline":
        r = trial_baseline(spec)
    else:
        raise SystemExit(f"unknown trial {kind}")
    json.dump(r, sys.stdout)


def cpu_busy(window=0.25):
    """The share of CPU time this machine spent working (user, system, interrupts; not idle,
    I/O wait or the hypervisor's steal) over the next `window` seconds."""
    def sample():
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    a = sample()
    time.sleep(window)
    d = [y - x for x, y in zip(a, sample())]
    work = d[0] + d[1] + d[2] + d[5] + d[6]
    return work / max(1, work + d[3] + d[4])


def settle(limit_s=10.0, quiet=0.10):
    """Waits (at most `limit_s`) until the machine is quiet. The kernel goes on cleaning up a
    finished trial's namespace (its links, their RCU callbacks) for seconds after the trial's
    process has exited; without this, that work falls into the next trial's first calls,
    whichever implementation it measures. Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s and cpu_busy() > quiet:
        pass
    return time.perf_counter() - t0


def start_trial(spec, work_root):
    """Runs one trial in a fresh network namespace, once the machine is quiet (`settle`);
    returns its result or {'error': ...}."""
    tag = "-".join(str(spec.get(k)) for k in ("impl", "kind", "n") if spec.get(k) is not None)
    waited = settle()
    if waited > 0.3:
        log(f"trial {tag}: waited {waited:.1f} s for the machine to be quiet")
    spec = dict(spec, work=os.path.join(work_root, tag))
    os.makedirs(spec["work"], exist_ok=True)
    cmd = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--trial",
           json.dumps(spec)]
    t0 = time.perf_counter()
    resfile = os.path.join(work_root, tag + ".json")
    tail = []
    with open(resfile, "w") as f:
        # stdout (the result) goes to a file; stderr (progress) is passed on as it comes
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            sys.stderr.write(line)
            tail = (tail + [line.rstrip()])[-8:]
        p.wait()
    shutil.rmtree(spec["work"], ignore_errors=True)
    # Namespaces a failed trial left in the bench's /run (their names are the next trial's).
    left = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    for name in left:
        run(["ip", "netns", "del", name], check=False)
    if left:
        log(f"trial {tag}: removed {len(left)} namespaces it left in /run/netns")
    if p.returncode != 0:
        log(f"trial {tag} failed (exit {p.returncode})")
        err = [t for t in tail if t.strip()]
        return {"error": (err[-1] if err else f"exit {p.returncode}")[:300]}
    log(f"trial {tag} done in {time.perf_counter() - t0:.1f} s")
    with open(resfile) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Environment, acceptance, reports.


def first_line(cmd):
    try:
        _, p = run(cmd, check=False, timeout=20)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, CmdError):
        return "unknown"


def pkg_version(pkg):
    try:
        return out(["dpkg-query", "-W", "-f=${Version}", pkg]).strip() or "unknown"
    except (OSError, CmdError):
        return "not installed"


def environment(berth_bin):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    try:
        _, p = run(["git", "-C", REPO, "-c", f"safe.directory={REPO}", "rev-parse", "--short",
                    "HEAD"], check=False)
        commit = p.stdout.strip() or "unknown"
        _, p = run(["git", "-C", REPO, "-c", f"safe.directory={REPO}", "status", "--porcelain",
                    "--untracked-files=no"], check=False)
        if p.stdout.strip():
            commit += " (with uncommitted changes)"
    except (OSError, CmdError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu": cpu,
        "versions": {
            "berth": f"{first_line([berth_bin, '--version'])}, commit {commit}",
            "netavark": first_line([NETAVARK, "--version"]),
            "containernetworking-plugins": pkg_version("containernetworking-plugins"),
            "iperf3": pkg_version("iperf3"),
            "nftables": first_line(["nft", "--version"]),
            "iptables": first_line(["iptables", "--version"]),
        },
    }


def berth_has_create(berth_bin):
    try:
        _, p = run([berth_bin, "create", "--help"], check=False, timeout=20)
        return p.returncode == 0 and "-p" in p.stdout
    except (OSError, CmdError):
        return False


def get(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def acceptance(R):
    checks = []

    def add(name, ok, detail):
        checks.append({"check": name,
                       "result": "PASS" if ok else "FAIL",
                       "detail": ("not measured: " + detail) if ok is None else detail})

    s = R["setup"]
    n100 = get(s, "netavark", "100", "setup", "median")
    # The 1/20 check compares like with like: berth's netavark door does netavark's job on
    # netavark's input (a namespace made beforehand, not counted for either). berth's
    # default is the agent running: the first setup that publishes a port starts it, and
    # every container here publishes one. The door with BERTH_NO_AGENT=1 and `create` (which
    # also makes the namespace and the container's record, work netavark is not given) are
    # shown beside (INFO), not judged.
    for impl, what, judged in (
            ("berth-door-agent", "berth (netavark door with its agent running, berth's default)",
             True),
            ("berth-door", "berth (netavark door, agent off: BERTH_NO_AGENT=1)", False),
            ("berth", "berth create (namespace included, not netavark's job)", False)):
        b100 = get(s, impl, "100", "setup", "median")
        check = f"{what} setup at N=100 <= 1/20 of netavark's median"
        if b100 is None or n100 is None:
            if judged:
                add(check, None, "a trial has no result")
            continue
        detail = (f"berth {b100:.2f} ms vs netavark {n100:.2f} ms / 20 = {n100 / 20:.2f} ms "
                  f"(ratio 1/{n100 / b100:.1f}; aim < 3 ms: {'met' if b100 < 3 else 'not met'})")
        if judged:
            add(check, b100 <= n100 / 20, detail)
        else:
            checks.append({"check": check, "result": "INFO", "detail": detail})
    for impl, what in (("berth", "berth create"), ("berth-door", "berth netavark door"),
                       ("berth-door-agent", "berth netavark door, agent running")):
        b10 = get(s, impl, "10", "setup", "median")
        b1000 = get(s, impl, "1000", "setup", "median")
        check = f"{what} setup median at N=1000 <= 1.25x N=10"
        if b10 is None or b1000 is None:
            add(check, None,
                "N=1000 not in this run" if "1000" not in R["ns"] else "a trial has no result")
        else:
            add(check, b1000 <= 1.25 * b10,
                f"N=1000 {b1000:.2f} ms vs 1.25 x {b10:.2f} ms = {1.25 * b10:.2f} ms")
    c100 = get(s, "cni", "100", "setup", "median")
    bc100 = get(s, "berth-cni", "100", "setup", "median")
    if c100 is not None and bc100 is not None:
        checks.append({"check": "berth CNI plugin (agent running) setup at N=100 vs the CNI "
                                "reference plugins' (bridge, host-local, portmap)",
                       "result": "INFO",
                       "detail": f"berth {bc100:.2f} ms vs CNI {c100:.2f} ms "
                                 f"(ratio 1/{c100 / bc100:.1f})"})
    d10 = get(s, "berth-door-agent-dns", "10", "setup", "median")
    d1000 = get(s, "berth-door-agent-dns", "1000", "setup", "median")
    if d10 is not None and d1000 is not None:
        checks.append({"check": "berth netavark door, agent running, network with DNS: setup "
                                "median at N=1000 vs N=10",
                       "result": "INFO",
                       "detail": f"{d1000:.2f} vs {d10:.2f} ms ({d1000 / d10:.2f}x)"})
    k10 = get(s, "kernel", "10", "setup", "median")
    k1000 = get(s, "kernel", "1000", "setup", "median")
    if k10 is not None and k1000 is not None:
        b10 = get(s, "berth-door-agent", "10", "setup", "median")
        b1000 = get(s, "berth-door-agent", "1000", "setup", "median")
        beside = ("" if b10 is None or b1000 is None else
                  f"; berth (agent running) {b1000:.2f} vs {b10:.2f} ms, "
                  f"+{1e3 * (b1000 - b10):.0f} us")
        checks.append({"check": "the bare kernel's own setup median at N=1000 vs N=10 (a veth "
                                "pair as a port of one bridge, bench/kernelref.py)",
                       "result": "INFO",
                       "detail": f"{k1000:.2f} vs {k10:.2f} ms, +{1e3 * (k1000 - k10):.0f} us "
                                 f"({k1000 / k10:.2f}x){beside}"})
    p200 = get(R, "ports", "berth", "ports200")
    if not p200 or "setup_ms" not in p200:
        add("200 ports published and removed in <= 20 ms each", None,
            "berth's 200-port trial has no result")
    else:
        add("200 ports published and removed in <= 20 ms each",
            p200["setup_ms"] <= 20 and p200["teardown_ms"] <= 20,
            f"setup {p200['setup_ms']:.2f} ms, teardown {p200['teardown_ms']:.2f} ms")
    r10 = get(s, "berth", "10", "rules_at_peak", "nft_rules")
    r1000 = get(s, "berth", "1000", "rules_at_peak", "nft_rules")
    if r10 is None or r1000 is None:
        add("berth rule count equal at N=10 and N=1000", None,
            "N=1000 not in this run" if "1000" not in R["ns"] else "a trial has no result")
    else:
        add("berth rule count equal at N=10 and N=1000", r10 == r1000,
            f"{r10} rules at N=10, {r1000} at N=1000")
    c2c = get(R, "dataplane", "berth", "c2c_median_gbps")
    pub = get(R, "dataplane", "berth", "published_median_gbps")
    bridge = get(R, "dataplane", "baseline", "bridge_gbps")
    if c2c is None or pub is None:
        add("published-port throughput >= 90% of container-to-container", None,
            "berth's data-path trial has no result")
    else:
        add("published-port throughput >= 90% of container-to-container", pub >= 0.9 * c2c,
            f"{pub:.2f} vs {c2c:.2f} Gbit/s ({100 * pub / c2c:.0f}%)")
    # Judged against the bare bridge measured in berth's own trials, its samples alternating
    # with berth's (PairedBridge); the reference script's bridge, run in trials of its own, is
    # shown beside (INFO).
    paired = get(R, "dataplane", "berth", "paired_bridge_median_gbps")
    check = "container-to-container >= 95% of the bare bridge reference"
    if c2c is None or paired is None:
        add(check, None, "berth's data-path trial has no result")
    else:
        add(check + " (paired in the same trials)", c2c >= 0.95 * paired,
            f"{c2c:.2f} vs {paired:.2f} Gbit/s ({100 * c2c / paired:.0f}%)")
    if c2c is not None and bridge is not None:
        checks.append({"check": check + " (dataplane-baseline.sh in trials of its own)",
                       "result": "INFO",
                       "detail": f"{c2c:.2f} vs {bridge:.2f} Gbit/s ({100 * c2c / bridge:.0f}%)"})
    return checks


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def rounds(t):
    """A ports trial's rounds, "8.1 / 7.8, ..." (older results have none)."""
    r = t.get("rounds")
    if not r:
        return "–"
    return ", ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(r["setup_ms"], r["teardown_ms"]))


def markdown(R):
    env = R["environment"]
    L = []
    L.append("# berth setup, port-publishing and data-path benchmark")
    L.append("")
    L.append(f"- date: {env['date']}{'  (quick run: N = 10, 100 only)' if R['quick'] else ''}")
    L.append(f"- machine: {env['nproc']} CPUs, {env['cpu']}, kernel {env['kernel']}; "
             f"load average (1, 5, 15 min) at start {env['loadavg_at_start']}"
             + (f", at end {env['loadavg_at_end']}" if "loadavg_at_end" in env else ""))
    for k, v in env["versions"].items():
        L.append(f"- {k}: {v}")
    L.append(f"- command: `{R['command']}`; method: bench/README.md")
    if R.get("notes"):
        L.append("")
        for n in R["notes"]:
            L.append(f"> **Note:** {n}")
    L.append("")
    L.append("## Acceptance")
    L.append("")
    L.append("| check | result | figures |")
    L.append("|---|---|---|")
    for c in R["acceptance"]:
        L.append(f"| {c['check']} | **{c['result']}** | {c['detail']} |")
    L.append("")
    for c in R["acceptance"]:
        L.append(f"{c['result']}: {c['check']} — {c['detail']}  ")
    L.append("")
    L.append("## Setup and teardown of N containers, one published port each")
    L.append("")
    L.append("Milliseconds per container (each call timed on its own); rules = nftables rules in "
             "the trial's namespace with all N containers up (`nft -j list ruleset`, every "
             "table; iptables-nft rules included), elements = elements of nftables sets and "
             "maps, iptables = `-A` lines of `iptables-save` + `ip6tables-save`.")
    L.append("")
    L.append("| implementation | N | setup median | setup p95 | teardown median | teardown p95 "
             "| rules | elements | iptables | rules after teardown |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for impl in IMPLS:
        for n in R["ns"]:
            t = get(R, "setup", impl, n)
            if t is None:
                continue
            if "error" in t:
                L.append(f"| {LABEL[impl]} | {n} | failed: {t['error']} |||||||| ")
                continue
            L.append(f"| {LABEL[impl]} | {n} | {fmt(t['setup']['median'])} | "
                     f"{fmt(t['setup']['p95'])} | {fmt(t['teardown']['median'])} | "
                     f"{fmt(t['teardown']['p95'])} | {t['rules_at_peak']['nft_rules']} | "
                     f"{t['rules_at_peak']['nft_set_elements']} | "
                     f"{t['rules_at_peak']['iptables_rules']} | "
                     f"{t['rules_after_teardown']['nft_rules']} |")
    L.append("")
    pooled = [(impl, n, get(R, "setup", impl, n, "trial_medians")) for impl in IMPLS
              for n in R["ns"]]
    pooled = [(impl, n, m) for impl, n, m in pooled if m and len(m) > 1]
    if pooled:
        L.append(f"Rows of N=10 pool {max(len(m) for _, _, m in pooled)} trials: the first, "
                 "one just before and one after the N=1000 trials "
                 "(each trial's own setup median: "
                 + "; ".join(f"{LABEL[impl]} {' / '.join(fmt(x) for x in m)}"
                             for impl, n, m in pooled)
                 + "). The bare kernel's row is a veth pair made a port of one bridge and "
                 "brought up, berth's way, by rtnetlink requests from the bench itself "
                 "(bench/kernelref.py): the part of every setup no bridge-based stack avoids.")
        L.append("")
    nns = [get(R, "setup", i, n, "netns_add_ms", "median") for i in ("netavark", "cni")
           for n in R["ns"]]
    nns = [x for x in nns if x is not None]
    if nns:
        L.append(f"netavark's, CNI's and berth's netavark-door figures are the plugin calls "
                 f"alone: the namespace they are given is made beforehand with `ip netns add` "
                 f"(median {statistics.median(nns):.2f} ms, not counted); the door gets the "
                 f"same NetworkOptions JSON as netavark and runs under the name `netavark`, as "
                 f"podman runs it, agent off. berth's `create` figure "
                 f"includes making the namespace and writing the container's state.")
        L.append("")
    big = R["ns"][-1] if R["ns"] else None
    blocks = {impl: get(R, "setup", impl, big, "setup_ms") for impl in IMPLS}
    blocks = {k: v for k, v in blocks.items() if v and len(v) >= 100}
    if blocks:
        L.append(f"How the cost of one container changes while the trial fills up, at N={big}: "
                 f"median setup ms of the 1st, 2nd, ... tenth of the containers in the order "
                 f"they were created, then median teardown ms likewise (removed in the same "
                 f"order, so the last tenth is removed from an almost empty host).")
        L.append("")
        L.append("| implementation | | " + " | ".join(f"{k + 1}/10" for k in range(10)) + " |")
        L.append("|---|---|" + "---:|" * 10)
        for impl, v in blocks.items():
            for what in ("setup", "teardown"):
                vals = get(R, "setup", impl, big, f"{what}_ms")
                w = len(vals) // 10
                meds = [statistics.median(vals[k * w:(k + 1) * w]) for k in range(10)]
                L.append(f"| {LABEL[impl]} | {what} | "
                         + " | ".join(f"{x:.1f}" for x in meds) + " |")
        L.append("")
    L.append("![setup ms per container against N](setup.svg)")
    L.append("")
    L.append("## One container publishing many ports")
    L.append("")
    L.append("Median of the rounds (each round's figures in the last column); rules and "
             "elements as published.")
    L.append("")
    L.append("| implementation | case | setup ms | teardown ms | rules | elements | rounds "
             "(setup / teardown ms) |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for impl in IMPLS:
        for kind, label in (("ports200", "200 separate ports"),
                            ("range1000", "one 1000-port range")):
            t = get(R, "ports", impl, kind)
            if t is None:
                continue
            if "error" in t:
                L.append(f"| {LABEL[impl]} | {label} | failed: {t['error']} ||||")
                continue
            L.append(f"| {LABEL[impl]} | {label} | {fmt(t['setup_ms'])} | "
                     f"{fmt(t['teardown_ms'])} | {t['rules_at_peak']['nft_rules']} | "
                     f"{t['rules_at_peak']['nft_set_elements']} | {rounds(t)} |")
    L.append("")
    L.append("The CNI portmap plugin has no port ranges: its 1000-port case is 1000 mappings.")
    L.append("")
    L.append("## Data path: iperf3 TCP throughput")
    L.append("")
    L.append(f"Gbit/s, median of {R.get('dataplane_reps', '?')} rounds (`iperf3 -t "
             f"{IPERF_SECONDS}`, one stream; each round measures every path once, one after "
             f"another). container→container is sampled {C2C_ORDER.count('impl')} times per "
             f"round (`-t {PAIR_SECONDS}`), alternating A B B A with a bare veth + bridge "
             f"built in the same trial (\"paired\"). "
             f"container→container: two containers on one bridge; host→container: from the "
             f"host namespace to a non-loopback host address ({HOST_ADDR}) and the published "
             f"port, DNAT'd to the container.")
    L.append("")
    L.append("| path | Gbit/s | runs |")
    L.append("|---|---:|---|")
    base = get(R, "dataplane", "baseline")
    if base:
        if "error" in base:
            L.append(f"| bare reference | failed: {base['error']} | |")
        else:
            runs = base.get("runs", [])
            for k, label in (("veth_gbps", "bare veth (reference)"),
                             ("bridge_gbps", "bare veth + bridge (reference)"),
                             ("vxlan_gbps", "VXLAN over veth (reference)")):
                L.append(f"| {label} | {fmt(base.get(k))} | "
                         f"{', '.join(fmt(r.get(k)) for r in runs)} |")
    for impl in IMPLS:
        d = get(R, "dataplane", impl)
        if d is None:
            continue
        if "error" in d:
            L.append(f"| {LABEL[impl]} | failed: {d['error']} | |")
            continue
        L.append(f"| {LABEL[impl]} container→container | {fmt(d['c2c_median_gbps'])} | "
                 f"{', '.join(fmt(x) for x in d['c2c_gbps'])} |")
        if d.get("paired_bridge_gbps"):
            L.append(f"| bare veth + bridge, paired with {LABEL[impl]} | "
                     f"{fmt(d['paired_bridge_median_gbps'])} | "
                     f"{', '.join(fmt(x) for x in d['paired_bridge_gbps'])} |")
        L.append(f"| {LABEL[impl]} host→container, published port | "
                 f"{fmt(d['published_median_gbps'])} | "
                 f"{', '.join(fmt(x) for x in d['published_gbps'])} |")
        L.append(f"| {LABEL[impl]} localhost→container, published port | "
                 f"{fmt(d['published_localhost_median_gbps'])} | "
                 f"{', '.join(fmt(x) for x in d['published_localhost_gbps']) or 'failed'} |")
    for impl in IMPLS:
        for e in (get(R, "dataplane", impl, "errors") or []):
            L.append(f"- {LABEL[impl]}: {e.splitlines()[0][:200]}")
    L.append("")
    return "\n".join(L)


def svg_plot(R):
    W, H = 720, 460
    ml, mr, mt, mb = 80, 200, 50, 60
    pw, ph = W - ml - mr, H - mt - mb
    series = {}
    for impl in IMPLS:
        pts = []
        for n in R["ns"]:
            m = get(R, "setup", impl, n, "setup", "median")
            if m is not None:
                pts.append((int(n), m))
        if pts:
            series[impl] = pts
    ns = [int(n) for n in R["ns"]]
    xmin, xmax = math.log10(min(ns)), math.log10(max(ns))
    if xmax == xmin:
        xmax = xmin + 1
    xmin -= 0.15
    xmax += 0.15
    ymax_data = max([m for pts in series.values() for _, m in pts] + [1])
    # a "nice" upper bound for the linear y axis
    mag = 10 ** math.floor(math.log10(ymax_data))
    step = next(s * mag for s in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10)
                if ymax_data / (s * mag) <= 6)
    ymax = step * math.ceil(ymax_data * 1.08 / step)

    def X(n):
        return ml + (math.log10(n) - xmin) / (xmax - xmin) * pw

    def Y(v):
        return mt + ph - v / ymax * ph

    def esc(s):
        return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace('"', "&quot;"))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
         f'<text x="{ml + pw / 2}" y="24" text-anchor="middle" font-size="15" '
         f'font-weight="bold">Container setup: median ms per container against N</text>']
    # grid and y ticks
    k = 0
    while k * step <= ymax + 1e-9:
        v = k * step
        y = Y(v)
        o.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        label = f"{v:g}"
        o.append(f'<text x="{ml - 8}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        k += 1
    # x ticks: the N values (log scale), plus decades
    ticks = sorted(set(ns) | {10 ** d for d in range(math.ceil(xmin), math.floor(xmax) + 1)})
    for n in ticks:
        x = X(n)
        o.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + ph}" stroke="#e0e0e0"/>')
        o.append(f'<text x="{x:.1f}" y="{mt + ph + 18}" text-anchor="middle">{n}</text>')
    # axes
    o.append(f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="black"/>')
    o.append(f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="black"/>')
    o.append(f'<text x="{ml + pw / 2}" y="{H - 15}" text-anchor="middle">'
             f'N containers (log scale)</text>')
    o.append(f'<text x="20" y="{mt + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 20 {mt + ph / 2})">median setup ms per container</text>')
    # series
    labels = {}  # n -> [(y, impl, value)], value labels placed so that they do not overlap
    for impl, pts in series.items():
        c = COLOR[impl]
        path = " ".join(f"{X(n):.1f},{Y(m):.1f}" for n, m in pts)
        o.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for n, m in pts:
            o.append(f'<circle cx="{X(n):.1f}" cy="{Y(m):.1f}" r="4" fill="{c}"/>')
            labels.setdefault(n, []).append([Y(m) - 6, impl, m])
    for n, items in labels.items():
        items.sort(key=lambda t: -t[0])  # bottom first; push the ones above further up
        for j in range(1, len(items)):
            items[j][0] = min(items[j][0], items[j - 1][0] - 13)
        for y, impl, m in items:
            o.append(f'<text x="{X(n) + 7:.1f}" y="{y:.1f}" fill="{COLOR[impl]}" '
                     f'font-size="11" stroke="white" stroke-width="3" '
                     f'paint-order="stroke">{m:.1f}</text>')
    # legend
    lx, ly = ml + pw + 20, mt + 10
    o.append(f'<rect x="{lx - 8}" y="{ly - 14}" width="{mr - 24}" '
             f'height="{22 * max(1, len(series)) + 8}" fill="white" stroke="#999"/>')
    for j, impl in enumerate(series):
        y = ly + 22 * j
        o.append(f'<line x1="{lx}" y1="{y}" x2="{lx + 24}" y2="{y}" stroke="{COLOR[impl]}" '
                 f'stroke-width="2"/>')
        o.append(f'<circle cx="{lx + 12}" cy="{y}" r="4" fill="{COLOR[impl]}"/>')
        o.append(f'<text x="{lx + 32}" y="{y + 4}">{esc(LABEL[impl])}</text>')
    o.append(f'<text x="{lx - 8}" y="{ly + 22 * max(1, len(series)) + 26}" font-size="10" '
             f'fill="#555">{esc(R["environment"]["date"])}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def write_outputs(R, outdir):
    os.makedirs(outdir, exist_ok=True)
    R["acceptance"] = acceptance(R)
    with open(os.path.join(outdir, "setup.json"), "w") as f:
        json.dump(R, f, indent=1)
        f.write("\n")
    with open(os.path.join(outdir, "setup.md"), "w") as f:
        f.write(markdown(R))
    with open(os.path.join(outdir, "setup.svg"), "w") as f:
        f.write(svg_plot(R))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trial")
    ap.add_argument("--work")
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true", help="N = 10, 100 only; one data-path run")
    ap.add_argument("--only", default=",".join(IMPLS),
                    help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument("--skip-dataplane", action="store_true")
    ap.add_argument("--skip-setup", action="store_true", help="no N-container trials")
    ap.add_argument("--skip-ports", action="store_true", help="no 200-port/range trials")
    ap.add_argument("--ns", help="comma-separated N values (default 10,100,1000)")
    ap.add_argument("--reps", type=int, help="data-path rounds (default 5, quick 1)")
    ap.add_argument("--render", metavar="JSON",
                    help="only rewrite setup.md/.svg (and the checks) from a setup.json")
    a = ap.parse_args()
    if a.trial:
        trial_main(json.loads(a.trial))
        return
    if a.render:
        with open(a.render) as f:
            R = json.load(f)
        write_outputs(R, a.out or os.path.dirname(os.path.abspath(a.render)))
        return
    if os.environ.get("BERTH_BENCH_SANDBOX") != "1":
        raise SystemExit("driver.py runs inside bench/run.sh's namespaces; use bash bench/run.sh")
    only = [i for i in IMPLS if i in a.only.split(",")]
    ns = a.ns.split(",") if a.ns else (["10", "100"] if a.quick else ["10", "100", "1000"])
    reps = a.reps or (1 if a.quick else 5)
    notes = []
    # A private copy of berth, so that a rebuild during the run changes nothing.
    src = os.environ.get("BERTH", os.path.join(REPO, "target/dist/berth"))
    berth_bin = os.path.join(a.work, "berth")
    if any(i.startswith("berth") for i in only):
        if not os.access(src, os.X_OK):
            notes.append(f"berth not measured: no executable at {src}")
            only = [i for i in only if not i.startswith("berth")]
        else:
            shutil.copy2(src, berth_bin)
            os.environ["BERTH_BENCH_BIN"] = berth_bin
            # The name podman runs, beside it: a copy of berth-shim where the build has one
            # (scripts/release.sh), else berth itself.
            shim = os.path.realpath(os.path.join(os.path.dirname(src), "netavark"))
            name = "berth"
            if os.path.basename(shim) == "berth-shim":
                shutil.copy2(shim, os.path.join(a.work, "berth-shim"))
                name = "berth-shim"
            link = os.path.join(a.work, "netavark")
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(name, link)
            notes.append(f"podman's `netavark` here is {name}")
            if "berth" in only and not berth_has_create(berth_bin):
                notes.append("berth not measured: this berth binary has no `create -p` yet")
                only.remove("berth")
    R = {"command": " ".join(["bash bench/run.sh"] + sys.argv[5:]), "quick": a.quick, "ns": ns,
         "implementations": only, "iperf_seconds": IPERF_SECONDS,
         "pair_seconds": PAIR_SECONDS,
         "dataplane_reps": reps,
         "environment": environment(berth_bin if os.path.exists(berth_bin) else src),
         "notes": notes, "setup": {}, "ports": {}, "dataplane": {}}
    for n in notes:
        log(n)
    outdir = a.out
    # With both N=10 and N=1000 run, the N=10 trials run again just before the N=1000 trials
    # (when other trials came between) and once more after them, all pooled (see pool_setup):
    # the growth check's two sides then cover the same stretch of time.
    bracket = "10" in ns and "1000" in ns
    trials = []
    for k, n in enumerate([] if a.skip_setup else ns):
        if bracket and n == "1000" and ns[k - 1] != "10":
            trials += [("setup", impl, "10") for impl in only]
        trials += [("setup", impl, n) for impl in only]
    if not a.skip_setup and bracket:
        trials += [("setup", impl, "10") for impl in only]
    if not a.skip_ports:
        trials += [(kind, impl, None) for impl in only for kind in ("ports200", "range1000")]
    for kind, impl, n in trials:
        log(f"trial: {impl} {kind}{'' if n is None else ' N=' + n}")
        spec = {"kind": kind, "impl": impl}
        if n is not None:
            spec["n"] = int(n)
        r = start_trial(spec, a.work)
        if kind == "setup":
            r = pool_setup(R["setup"].setdefault(impl, {}).get(n), r)
            R["setup"].setdefault(impl, {})[n] = r
            if "setup" in r:
                log(f"  {impl} N={n}: setup median {r['setup']['median']:.2f} ms "
                    f"p95 {r['setup']['p95']:.2f}; teardown median "
                    f"{r['teardown']['median']:.2f} ms; rules {r['rules_at_peak']['nft_rules']}")
        else:
            R["ports"].setdefault(impl, {})[kind] = r
            if "setup_ms" in r:
                log(f"  {impl} {kind}: setup {r['setup_ms']:.1f} ms, teardown "
                    f"{r['teardown_ms']:.1f} ms")
        write_outputs(R, outdir)  # partial results survive an interrupted run
    if not a.skip_dataplane:
        # Rounds: each round measures the reference and every implementation one after another,
        # so a change of load on the machine hits all of them alike; medians over the rounds.
        dp_only = [i for i in only if i in DATAPLANE_IMPLS]
        base_runs, dp_runs = [], {impl: [] for impl in dp_only}
        for r in range(reps):
            log(f"data path round {r + 1}/{reps}: bare reference (dataplane-baseline.sh)")
            base_runs.append(start_trial({"kind": "baseline", "impl": "ref", "n": r}, a.work))
            for impl in dp_only:
                log(f"data path round {r + 1}/{reps}: {impl}")
                dp_runs[impl].append(start_trial({"kind": "dataplane", "impl": impl, "n": r},
                                                 a.work))
            R["dataplane"] = merge_dataplane(base_runs, dp_runs)
            write_outputs(R, outdir)
    R["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_outputs(R, outdir)
    log(f"wrote {outdir}/setup.md, setup.json, setup.svg")
    for c in R["acceptance"]:
        log(f"{c['result']}: {c['check']} — {c['detail']}")


if __name__ == "__main__":
    main()
