//! Several berth "hosts" on one underlay, with one etcd: the multi-host harness.
//!
//! The underlay is a [`Sandbox`] holding bridge `ul0` (10.100.0.254/24) and etcd listening on
//! 10.100.0.254:2379 — only inside that sandbox. Host `i` (from 1) is a network namespace
//! made inside the sandbox (sharing its mount namespace) with `eth0` = 10.100.0.`i`/24 on
//! `ul0`, its own berth root, run root and agent, and `BERTH_STORE`, `BERTH_HOST_NAME`
//! (`hostI`) and `BERTH_ADVERTISE` in its environment. Dropping a host kills its agent and
//! containers and its namespace goes: the host "dies".

use crate::Sandbox;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The store every host uses.
pub const STORE: &str = "etcd://10.100.0.254:2379";

/// The underlay, its etcd and the hosts. Hosts are dropped first, then etcd, then the
/// underlay.
pub struct Cluster {
    pub hosts: Vec<Sandbox>,
    etcd: Option<Child>,
    pub underlay: Sandbox,
}

impl Cluster {
    /// Starts the underlay, etcd and `n` hosts.
    pub fn new(n: usize) -> Cluster {
        Cluster::build(n, false)
    }

    /// Two hosts whose VTEPs (10.101.0.1 and .2) sit on a direct veth pair `data0` between
    /// them, as the bare VXLAN reference of `shared/bench/dataplane-baseline.sh` does; etcd
    /// stays on the underlay bridge. For the throughput bench.
    pub fn pair_with_data_link() -> Cluster {
        let c = Cluster::build(2, true);
        let (h1, h2) = (c.host(1), c.host(2));
        h1.ok(&format!(
            "ip link add data0 type veth peer name data0 netns {} && ip addr add 10.101.0.1/24 dev data0 && ip link set data0 up",
            h2.pid()
        ));
        h2.ok("ip addr add 10.101.0.2/24 dev data0 && ip link set data0 up");
        c
    }

    fn build(n: usize, data_link: bool) -> Cluster {
        let underlay = Sandbox::new();
        for (tool, package) in [("etcd", "etcd-server"), ("etcdctl", "etcd-client")] {
            assert!(
                underlay.sh(&format!("command -v {tool}")).code == 0,
                "{tool} not found: install the {package} package (scripts/deps.sh does)"
            );
        }
        underlay.ok(
            "ip link add ul0 type bridge && ip addr add 10.100.0.254/24 dev ul0 && ip link set ul0 up",
        );
        let mut c = Cluster {
            hosts: Vec::new(),
            etcd: None,
            underlay,
        };
        c.start_etcd();
        for i in 1..=n {
            c.add_host(i, data_link);
        }
        c
    }

    fn add_host(&mut self, i: usize, data_link: bool) {
        let name = format!("host{i}");
        let addr = format!("10.100.0.{i}");
        let vtep = match data_link {
            true => format!("10.101.0.{i}"),
            false => addr.clone(),
        };
        let host = self.underlay.host_in(
            &name,
            vec![
                ("BERTH_STORE".into(), STORE.into()),
                ("BERTH_HOST_NAME".into(), name.clone()),
                ("BERTH_ADVERTISE".into(), vtep),
            ],
        );
        self.underlay.ok(&format!(
            "ip link add ul{i} type veth peer name eth0 netns {pid} && ip link set ul{i} master ul0 && ip link set ul{i} up",
            pid = host.pid()
        ));
        host.ok(&format!(
            "ip addr add {addr}/24 dev eth0 && ip link set eth0 up && ip route add default via 10.100.0.254"
        ));
        self.hosts.push(host);
    }

    /// Host `i` (from 1).
    pub fn host(&self, i: usize) -> &Sandbox {
        &self.hosts[i - 1]
    }

    /// Starts etcd (again, on the same data directory) and waits until it answers.
    pub fn start_etcd(&mut self) {
        assert!(self.etcd.is_none(), "etcd already runs");
        let data = self.underlay.dir().join("etcd");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.underlay.dir().join("etcd.log"))
            .expect("open etcd log");
        // nsenter execs etcd itself: the child's pid is etcd's, so kill() ends it.
        let child = Command::new("nsenter")
            .args([
                "-t",
                &self.underlay.pid().to_string(),
                "-n",
                "-m",
                "--",
                "etcd",
            ])
            .args(["--name", "berth-test", "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls=http://10.100.0.254:2379",
                "--advertise-client-urls=http://10.100.0.254:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=berth-test=http://127.0.0.1:2380",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start etcd (etcd-server)");
        self.etcd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .underlay
            .sh("ETCDCTL_API=3 etcdctl --endpoints=http://10.100.0.254:2379 --dial-timeout=1s endpoint health")
            .code
            != 0
        {
            assert!(Instant::now() < deadline, "etcd did not become healthy: see {}", self.underlay.dir().join("etcd.log").display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops etcd (SIGKILL: as a crash would) and waits for it to end.
    pub fn stop_etcd(&mut self) {
        if let Some(mut child) = self.etcd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `etcdctl ARGS` against the store in the underlay; returns its stdout.
    pub fn etcdctl(&self, args: &str) -> String {
        self.underlay.ok(&format!(
            "ETCDCTL_API=3 etcdctl --endpoints=http://10.100.0.254:2379 {args}"
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.hosts.clear();
        self.stop_etcd();
    }
}

/// Polls `f` every 50 ms until it holds or `within` passes; returns whether it held.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
