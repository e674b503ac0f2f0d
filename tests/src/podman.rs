//! Real podman (Debian's 4.3.1) inside a [`Sandbox`], with berth behind one of its doors.
//!
//! Everything podman keeps goes under the sandbox's directory (`--root`, `--runroot`,
//! `CONTAINERS_CONF`, network definitions, storage `vfs`), and the sandbox's mount namespace
//! gets private tmpfs mounts over `/run` (podman insists on `/run/netns`) and `/dev/shm`
//! (podman's lock segment), so nothing of the machine's own is touched. podman's cleanup
//! process does not keep the caller's environment, so berth is reached through small
//! scripts in the helper directory that set `BERTH_ROOT`/`BERTH_RUN_ROOT` and `exec` berth.
//! Containers are removed (`podman rm -af -t 0`) when the [`Podman`] goes.

use crate::{berth_bin, eventually, Out, Sandbox};
use std::path::{Path, PathBuf};

/// Which door podman uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// berth as podman's `netavark`.
    Berth,
    /// Debian's netavark 1.4 and aardvark-dns (for comparison).
    Netavark,
    /// podman's CNI backend with berth as the plugin.
    Cni,
}

/// podman in a sandbox.
pub struct Podman<'a> {
    pub sb: &'a Sandbox,
    pub dir: PathBuf,
}

/// The busybox image every test imports.
pub const IMAGE: &str = "localhost/berth-busybox:latest";

impl<'a> Podman<'a> {
    /// Prepares podman with `backend` in `sb` and imports the busybox image.
    pub fn new(sb: &'a Sandbox, backend: Backend) -> Podman<'a> {
        for (tool, package) in [
            ("podman", "podman"),
            ("runc", "runc"),
            ("busybox", "busybox-static"),
        ] {
            let found = sb.sh(&format!("command -v {tool}")).code == 0;
            assert!(
                found,
                "{tool} not found: install {package} (scripts/deps.sh does)"
            );
        }
        let dir = sb.root().parent().expect("sandbox dir").join("podman");
        let d = dir.display();
        let bin = berth_bin();
        let (root, run) = (sb.root(), sb.run_root());
        // podman's netavark and the CNI plugin are berth-shim, as contrib/podman installs
        // them (each runs the berth beside the shim's own file).
        let wrapper = |command: &Path| {
            format!(
                "#!/bin/sh\nexport BERTH_ROOT={} BERTH_RUN_ROOT={}\nexec {} \"$@\"\n",
                root.display(),
                run.display(),
                command.display()
            )
        };
        let (backend_key, helpers) = match backend {
            Backend::Berth => (
                "netavark",
                format!(
                    "printf %s {w} > {d}/helpers/netavark && chmod +x {d}/helpers/netavark && \
                 ln -s {b} {d}/helpers/aardvark-dns",
                    w = crate::shell_quote(&wrapper(&sb.shim_dir().join("netavark"))),
                    b = bin.display()
                ),
            ),
            Backend::Netavark => (
                "netavark",
                format!(
                    "ln -s /usr/lib/podman/netavark {d}/helpers/netavark && \
                 ln -s /usr/lib/podman/aardvark-dns {d}/helpers/aardvark-dns"
                ),
            ),
            Backend::Cni => (
                "cni",
                format!(
                    "printf %s {w} > {d}/cni-bin/berth && chmod +x {d}/cni-bin/berth",
                    w = crate::shell_quote(&wrapper(&sb.shim_dir().join("berth-shim")))
                ),
            ),
        };
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             helper_binaries_dir = [\"{d}/helpers\"]\n\
             tmp_dir = \"{d}/tmp\"\n\
             [network]\n\
             network_backend = \"{backend_key}\"\n\
             network_config_dir = \"{d}/networks\"\n\
             cni_plugin_dirs = [\"{d}/cni-bin\"]\n"
        );
        sb.ok(&format!(
            "mkdir -p {d}/helpers {d}/cni-bin {d}/networks {d}/tmp {d}/rootfs/bin && \
             mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/lock && \
             mount -t tmpfs tmpfs /dev/shm && {helpers} && \
             printf %s {conf} > {d}/containers.conf && \
             cp \"$(command -v busybox)\" {d}/rootfs/bin/busybox && \
             for c in sh sleep nc ping ip cat nslookup true echo wget httpd; do ln -s busybox {d}/rootfs/bin/$c; done && \
             tar -C {d}/rootfs -cf {d}/rootfs.tar .",
            conf = crate::shell_quote(&conf),
        ));
        let tar = format!("{d}/rootfs.tar");
        let p = Podman { sb, dir };
        p.ok(&format!("import {tar} {IMAGE}"));
        p
    }

    /// `podman ARGS` (a shell fragment) with this podman's directories.
    pub fn sh(&self, args: &str) -> Out {
        let d = self.dir.display();
        self.sb.sh(&format!(
            "CONTAINERS_CONF={d}/containers.conf podman --root {d}/root --runroot {d}/runroot \
             --storage-driver vfs {args}"
        ))
    }

    /// `podman ARGS` that must succeed; returns stdout trimmed.
    pub fn ok(&self, args: &str) -> String {
        let out = self.sh(args);
        assert_eq!(
            out.code, 0,
            "podman {args} failed\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout.trim().to_string()
    }

    /// `podman run -d` of a TCP echo server on port 80 (`nc -ll -e cat`); returns its id.
    pub fn echo_server(&self, name: &str, extra: &str) -> String {
        self.ok(&format!(
            "run -d --ulimit host --name {name} {extra} {IMAGE} nc -ll -p 80 -e /bin/cat"
        ))
    }

    /// Whether container `from` gets its line echoed by `addr` port 80 (3 s budget).
    pub fn reaches(&self, from: &str, addr: &str) -> bool {
        let out = self.sh(&format!(
            "exec {from} sh -c 'echo ping-{addr} | timeout 3 nc -w 2 {addr} 80'"
        ));
        out.stdout.trim() == format!("ping-{addr}")
    }

    /// Like [`Podman::reaches`], retrying while servers start.
    pub fn wait_reaches(&self, from: &str, addr: &str) -> bool {
        (0..20).any(|_| {
            let ok = self.reaches(from, addr);
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            ok
        })
    }

    /// A container's address on a network, from podman's inspect.
    pub fn ip(&self, name: &str, network: &str) -> String {
        self.ok(&format!(
            "inspect {name} --format '{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}'"
        ))
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // The containers (and their conmon) this test started.
        let _ = self.sh("rm -af -t 0");
    }
}

/// Host → 127.0.0.1:`port`, one line echoed back (up to 20 tries, 200 ms apart).
pub fn host_reaches(sb: &Sandbox, port: u16) -> bool {
    (0..20).any(|_| {
        let o = sb.sh(&format!(
            "echo ping | timeout 3 socat -T2 - TCP:127.0.0.1:{port},connect-timeout=2"
        ));
        let ok = o.stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        ok
    })
}

/// What must be gone after the last container: links, addresses, firewall elements. Waits
/// (see [`eventually`]) for the deletions the agent makes after a teardown returned;
/// empty when nothing is left.
pub fn leftovers(sb: &Sandbox) -> String {
    eventually(
        || {
            sb.ok(
                "ip -br link | awk '$1 != \"lo\" {print \"link\", $1}'; \
                 ip -br addr | awk '$1 != \"lo\" && $3 != \"\" {print \"addr\", $1, $3}'; \
                 nft -j list table inet berth 2>/dev/null | jq -r '.nftables[] | (.set // .map) | select(.elem) | \"elements \" + .name' || true",
            )
        },
        |l| l.is_empty(),
    )
}
