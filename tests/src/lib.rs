//! The test harness: throwaway "hosts" for black-box tests of the real `berth` binary.
//!
//! A [`Sandbox`] is a fresh network namespace and mount namespace (made by `unshare -n -m`,
//! held open by a `sleep` process) with its own berth root and run root. Every command a test
//! runs goes through `nsenter` into that sandbox, so the machine's own network namespace,
//! firewall and `/run/netns` are never touched. An [`Outside`] is one more namespace wired to
//! the sandbox by a veth pair: a machine "beyond the host" for NAT and isolation checks.
//!
//! A [`cluster::Cluster`] is several such hosts on one underlay bridge with one etcd, for
//! overlay networks.
//!
//! Missing privileges or tools make a test fail with a message saying what to install; no
//! test is ever skipped. Every command runs under `timeout`, so a hang fails the test.

pub mod podman;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub mod cluster;

/// Seconds any one command may take before it is killed and the test fails.
const COMMAND_TIMEOUT: &str = "120";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The berth binary under test: `$BERTH_BIN`, else `target/<profile>/berth` next to the
/// test executable.
pub fn berth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join("berth");
    assert!(
        bin.is_file(),
        "berth binary not found at {}: run `cargo build --bins` first (make test does)",
        bin.display()
    );
    bin
}

/// berth-shim (shim/), what podman runs as `netavark`: `$BERTH_SHIM`, else
/// `target/shim/release/berth-shim` in berth's target directory (`make build` builds it).
pub fn shim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(p);
    }
    let target = berth_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/berth")
        .to_path_buf();
    let bin = target.join("shim/release/berth-shim");
    assert!(
        bin.is_file(),
        "berth-shim not found at {}: run `make build` first (make test does)",
        bin.display()
    );
    bin
}

fn require_environment() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        == Some("0");
    assert!(root, "berth's tests need root (they create namespaces, links and nftables tables): run them with sudo");
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("socat", "socat"),
        ("jq", "jq"),
        ("ping", "iputils-ping"),
        ("timeout", "coreutils"),
        ("sqlite3", "sqlite3"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} not found: install the {package} package (scripts/deps.sh does)"
        );
    }
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The parsed stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A process holding a namespace open; killed by its pid on drop.
struct Holder {
    child: Child,
}

impl Holder {
    /// Starts `unshare ARGS -- sh -c 'ip link set lo up; echo ready; exec sleep'` and waits
    /// for it to be ready.
    fn start(unshare_args: &[&str], via: Option<u32>) -> Holder {
        let script = "ip link set lo up && echo ready && exec sleep 100000";
        let mut cmd = match via {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-m", "--", "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(unshare_args)
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start unshare (util-linux)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read from namespace holder");
        assert_eq!(line.trim(), "ready", "namespace holder did not start");
        Holder { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway host: its own network and mount namespaces and berth directories.
pub struct Sandbox {
    holder: Holder,
    dir: PathBuf,
    background: Mutex<Vec<Child>>,
    /// Extra environment of every command (a cluster host's store and identity).
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// Makes a new sandbox (fails the test when root or a tool is missing).
    pub fn new() -> Sandbox {
        require_environment();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create sandbox directory");
        let holder = Holder::start(&["-n", "-m", "--propagation", "private"], None);
        Sandbox {
            holder,
            dir,
            background: Mutex::new(Vec::new()),
            env: Vec::new(),
        }
    }

    /// A further "host" inside this sandbox: its own network namespace (sharing this
    /// sandbox's mount namespace), berth directories under `name`, and `env` on every
    /// command. See [`cluster::Cluster`].
    pub fn host_in(&self, name: &str, env: Vec<(String, String)>) -> Sandbox {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("create host directory");
        Sandbox {
            holder: Holder::start(&["-n"], Some(self.pid())),
            dir,
            background: Mutex::new(Vec::new()),
            env,
        }
    }

    /// The sandbox's own directory (removed with it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The holder's pid: `nsenter -t PID -n -m` enters the sandbox.
    pub fn pid(&self) -> u32 {
        self.holder.pid()
    }

    /// berth's state directory in this sandbox.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// berth's runtime directory in this sandbox.
    pub fn run_root(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// A directory installed as contrib/podman installs berth: `berth-shim` (a copy), a
    /// link to it named `netavark`, and the `berth` the shim runs beside it (a link to
    /// [`berth_bin`]). Made on the first call.
    pub fn shim_dir(&self) -> PathBuf {
        let dir = self.dir.join("shim");
        if !dir.join("netavark").exists() {
            std::fs::create_dir_all(&dir).expect("create shim directory");
            std::fs::copy(shim_bin(), dir.join("berth-shim")).expect("copy berth-shim");
            std::os::unix::fs::symlink("berth-shim", dir.join("netavark")).expect("link");
            std::os::unix::fs::symlink(berth_bin(), dir.join("berth")).expect("link berth");
        }
        dir
    }

    fn command(&self, script: &str) -> Command {
        let bin_dir = berth_bin().parent().expect("bin dir").to_path_buf();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let mut c = Command::new("timeout");
        c.args([
            COMMAND_TIMEOUT,
            "nsenter",
            "-t",
            &self.pid().to_string(),
            "-n",
            "-m",
            "--",
        ])
        .args(["bash", "-o", "pipefail", "-c", script])
        .env("PATH", path)
        .env("BERTH_ROOT", self.root())
        .env("BERTH_RUN_ROOT", self.run_root())
        .env("BERTH_BIN", berth_bin())
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
        c
    }

    /// Runs a bash script inside the sandbox (berth on PATH, its directories in the env).
    pub fn sh(&self, script: &str) -> Out {
        Out::from(self.command(script).output().expect("run nsenter"))
    }

    /// Runs a script that must succeed; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        expect_ok(self.sh(script), "sandbox", script)
    }

    /// Runs berth with these arguments.
    pub fn berth(&self, args: &[&str]) -> Out {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        self.sh(&format!("berth {}", quoted.join(" ")))
    }

    /// Runs berth, which must succeed; returns stdout trimmed.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert_eq!(
            out.code, 0,
            "berth {args:?} failed\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout.trim().to_string()
    }

    /// Starts a script in the sandbox in the background; it is killed when the sandbox goes
    /// (its whole process group: `timeout`, `nsenter` and what the script exec'd).
    pub fn spawn(&self, script: &str) {
        use std::os::unix::process::CommandExt;
        let child = self
            .command(script)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn background script");
        self.background.lock().expect("lock").push(child);
    }

    /// One container's inspect object.
    pub fn inspect(&self, container: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.berth_ok(&["inspect", container]))
            .expect("inspect prints JSON");
        v[0].clone()
    }

    /// A container's IPv4 address on a network.
    pub fn ip(&self, container: &str, network: &str) -> String {
        let v = self.inspect(container);
        v["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("{container} has no address on {network}: {v}"))
            .to_string()
    }

    /// Starts a detached container serving TCP `port` (replies with what it reads).
    pub fn echo_server(&self, name: &str, network_args: &[&str], port: u16) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(network_args);
        let listen = format!("TCP-LISTEN:{port},fork,reuseaddr");
        args.extend_from_slice(&["socat", &listen, "EXEC:cat"]);
        self.berth_ok(&args)
    }

    /// Whether `container` can open TCP to `addr:port` and get its line echoed (2 s budget).
    pub fn can_reach(&self, container: &str, addr: &str, port: u16) -> bool {
        let out = self.sh(&format!(
            "echo ping-{port} | berth exec {container} timeout 3 socat -T2 - TCP:{addr}:{port},connect-timeout=2"
        ));
        out.code == 0 && out.stdout.trim() == format!("ping-{port}")
    }

    /// Waits until `container` reaches `addr:port` (servers take a moment to listen).
    pub fn wait_reach(&self, container: &str, addr: &str, port: u16) -> bool {
        for _ in 0..20 {
            if self.can_reach(container, addr, port) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        false
    }

    /// Waits (up to 5 s) until the kernel has destroyed the veth pairs of removed
    /// containers: `rm` releases a container's namespace and detaches the host end from its
    /// bridge, and the kernel deletes the pair in its namespace clean-up work, after `rm`
    /// returned. Such a host end is a `bth…` veth without a master. Returns whether it
    /// settled.
    pub fn settle(&self) -> bool {
        let pending = "ip -o link show type veth | grep -v ' master ' | grep -c ': bth' || true";
        for _ in 0..100 {
            if self.ok(pending).trim() == "0" {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// A snapshot of everything berth may change: links (without their carrier state, which
    /// an empty bridge's changes by itself), addresses, routes, the nftables ruleset, berth's view of networks and containers, and its runtime files (taken once
    /// removed containers' veth pairs are gone, see [`Sandbox::settle`]).
    pub fn state(&self) -> String {
        self.settle();
        self.ok(
            "ip -br link | awk '{print $1, $3, $4}' | sed -e 's/NO-CARRIER,//' -e 's/,LOWER_UP//' | sort; ip -br addr | awk '{$2=\"\"; print}' | sort; ip route | sed 's/ linkdown//'; nft list ruleset; \
             berth network ls --format json; berth ps -a --format json; \
             { find \"$BERTH_RUN_ROOT\" -path '*/locks' -prune -o -print 2>/dev/null || true; } | sort",
        )
    }

    /// Makes an "outside" machine beyond the host: namespace `o0` 10.99.0.2/24 and
    /// fd99::2/64 with default routes to the host at 10.99.0.1 / fd99::1 on `out0`.
    pub fn outside(&self) -> Outside {
        let holder = Holder::start(&["-n"], None);
        let pid = holder.pid();
        self.ok(&format!(
            "ip link add out0 type veth peer name o0 netns {pid} && \
             ip addr add 10.99.0.1/24 dev out0 && ip addr add fd99::1/64 dev out0 nodad && \
             ip link set out0 up"
        ));
        let o = Outside {
            holder,
            servers: Vec::new(),
        };
        o.ok(
            "ip addr add 10.99.0.2/24 dev o0 && ip addr add fd99::2/64 dev o0 nodad && \
              ip link set o0 up && ip route add default via 10.99.0.1 && \
              ip -6 route add default via fd99::1",
        );
        o
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The agent this sandbox's berth started, by its pid file.
        if let Ok(pid) = std::fs::read_to_string(self.run_root().join("agent.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Containers are processes berth started for this test: end them by pid.
        let ps = self.sh("berth ps -a --format json");
        if let Ok(serde_json::Value::Array(cs)) = serde_json::from_str(&ps.stdout) {
            for c in cs {
                if let Some(pid) = c["Pid"].as_i64().filter(|p| *p > 1) {
                    // A detached container leads its own process group: end all of it.
                    let _ = Command::new("kill")
                        .args(["-9", "--", &format!("-{pid}"), &pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        for mut child in self
            .background
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
        {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A namespace beyond the host, reached through the sandbox.
pub struct Outside {
    holder: Holder,
    servers: Vec<Child>,
}

impl Outside {
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args([
            COMMAND_TIMEOUT,
            "nsenter",
            "-t",
            &self.holder.pid().to_string(),
            "-n",
            "--",
        ])
        .args(["bash", "-o", "pipefail", "-c", script])
        .stdin(Stdio::null());
        c
    }

    /// Runs a script in the outside namespace.
    pub fn sh(&self, script: &str) -> Out {
        Out::from(self.command(script).output().expect("run nsenter"))
    }

    /// Runs a script that must succeed; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        expect_ok(self.sh(script), "outside", script)
    }

    /// Starts a TCP server on 10.99.0.2:`port` that replies with the client's address; it
    /// ends with this namespace.
    pub fn whoami_server(&mut self, port: u16) {
        let child = self
            .command(&format!(
                "exec socat TCP-LISTEN:{port},fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR'"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start outside server");
        self.servers.push(child);
    }
}

impl Outside {
    /// Starts a DNS server on 10.99.0.2:53 (UDP) that answers every A question with
    /// 192.0.2.7 (TTL 300) and everything else with NXDOMAIN: an upstream for forwarding.
    pub fn dns_upstream(&mut self) {
        let script = r#"exec python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.99.0.2", 53))
while True:
    q, a = s.recvfrom(512)
    i = 12
    while q[i]: i += q[i] + 1
    qtype = struct.unpack("!H", q[i+1:i+3])[0]
    question = q[12:i+5]
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 7])
        hdr = q[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 1, 0, 0)
        s.sendto(hdr + question + ans, a)
    else:
        hdr = q[:2] + b"\x81\x83" + struct.pack("!HHHH", 1, 0, 0, 0)
        s.sendto(hdr + question, a)
'"#;
        let child = self
            .command(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start outside DNS server");
        self.servers.push(child);
    }

    /// Like [`Outside::whoami_server`], on [fd99::2]:`port`.
    pub fn whoami_server6(&mut self, port: u16) {
        let child = self
            .command(&format!(
                "exec socat TCP6-LISTEN:{port},fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR'"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start outside server");
        self.servers.push(child);
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        for s in std::mem::take(&mut self.servers) {
            terminate(s);
        }
    }
}

/// Ends a `timeout`-wrapped command: SIGTERM, which `timeout` passes on to its command
/// (SIGKILL would leave the command running).
fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The stdout of a script that must have succeeded.
fn expect_ok(out: Out, place: &str, script: &str) -> String {
    assert_eq!(
        out.code, 0,
        "{place} script failed: {script}\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Quotes one shell word.
/// Polls `f` (every 50 ms, up to 5 s) until `done` holds for its value; returns the last
/// value. For what the kernel or the agent finishes after a command returned: the veth
/// pairs and idle bridges a door's teardown hands to the agent (`berth_engine::reap`).
pub fn eventually<T>(mut f: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let mut v = f();
    for _ in 0..100 {
        if done(&v) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        v = f();
    }
    v
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}
