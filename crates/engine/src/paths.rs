//! Where berth keeps its state and runtime files, and which cluster store (if any) holds
//! its global state.

use std::path::{Path, PathBuf};

/// The two directories of one berth "host": persistent state and runtime files.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `berth.db` lives here (default `/var/lib/berth`).
    pub root: PathBuf,
    /// Namespace files, container files and locks (default `/run/berth`).
    pub run_root: PathBuf,
    /// The cluster store and this host's identity in it, when overlays are configured.
    pub cluster: Option<berth_cluster::Config>,
}

impl Paths {
    /// Paths at the given directories.
    pub fn new(root: impl Into<PathBuf>, run_root: impl Into<PathBuf>) -> Paths {
        Paths {
            root: root.into(),
            run_root: run_root.into(),
            cluster: None,
        }
    }

    /// The agent's pid file, also its single-instance lock.
    pub fn agent_pid(&self) -> PathBuf {
        self.run_root.join("agent.pid")
    }

    /// The agent's control socket.
    pub fn agent_socket(&self) -> PathBuf {
        self.run_root.join("agent.sock")
    }

    /// The agent's socket for whole door commands (`crate::door`).
    pub fn door_socket(&self) -> PathBuf {
        self.run_root.join("door.sock")
    }

    /// Where a daemonized agent writes its log.
    pub fn agent_log(&self) -> PathBuf {
        self.run_root.join("agent.log")
    }

    /// The persistent network namespace file of a container.
    pub fn netns(&self, container_id: &str) -> PathBuf {
        self.run_root.join("netns").join(container_id)
    }

    /// The directory of a container's runtime files (resolv.conf, hosts, log).
    pub fn container_dir(&self, container_id: &str) -> PathBuf {
        self.run_root.join("containers").join(container_id)
    }

    /// A container's log (its stdout and stderr when detached).
    pub fn log(&self, container_id: &str) -> PathBuf {
        self.container_dir(container_id).join("log")
    }

    /// The lock file that serialises kernel changes to one network on this host.
    pub fn network_lock(&self, network_id: &str) -> PathBuf {
        self.run_root
            .join("locks")
            .join(format!("net-{network_id}"))
    }

    /// All namespace files.
    pub fn netns_dir(&self) -> PathBuf {
        self.run_root.join("netns")
    }

    /// All container directories.
    pub fn containers_dir(&self) -> PathBuf {
        self.run_root.join("containers")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
