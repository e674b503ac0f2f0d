//! Door commands run here (`<run-root>/door.sock`; the door's side and the protocol are in
//! `berth_engine::door`). A worker thread accepts the connections itself, with its own
//! store connection kept open, so a command pays for its work and not for opening
//! the store and preparing its statements. What a command runs is the door's own code,
//! given to [`crate::run`] as a [`Handler`]; it tells the agent about its changes as any door
//! does, over `agent.sock`, which the control thread serves.
//!
//! The agent takes only commands that mean the same here as in their door: from its own
//! user, for its own root and cluster, from its own mount and network namespaces, from a
//! door that is its own executable (not one an upgrade put in its place). Anything
//! else is `refused` and runs in the door. On termination the agent stops taking commands
//! and waits for those it has started ([`Workers::finish`]).

use berth_engine::door::{Reply, Request};
use berth_engine::{Engine, Paths};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Runs one door command on a worker's engine.
pub type Handler = Arc<dyn Fn(&mut Engine, &Request) -> Reply + Send + Sync>;

/// Worker threads. One: commands run one after another, as netavark runs them under its
/// lock, and the one store connection's page cache stays valid from one command to the
/// next (a connection re-reads the pages another one has written since its last
/// transaction: two workers taking turns re-read ~15 pages per setup). A door that waits
/// longer than `berth_engine::door` allows for its command to be taken runs it itself.
const WORKERS: usize = 1;
/// The longest request read (a door's stdin: podman's options for one container).
const MAX_REQUEST: u64 = 16 << 20;

/// The running workers; [`Workers::finish`] waits for the commands they have started.
pub(crate) struct Workers {
    running: Arc<RwLock<()>>,
}

impl Workers {
    /// Waits until no started command is running; none starts after this.
    pub(crate) fn finish(self) {
        let held = self.running.write().unwrap_or_else(|e| e.into_inner());
        // Leaked: a worker that accepts a command from now on refuses to run it, and the
        // process exits.
        std::mem::forget(held);
    }
}

/// Starts the workers on `listener`.
pub(crate) fn spawn(
    listener: UnixListener,
    paths: Paths,
    handler: Handler,
) -> std::io::Result<Workers> {
    let running = Arc::new(RwLock::new(()));
    let namespaces = berth_engine::door::namespaces()?;
    let build = berth_engine::door::build()?;
    for i in 0..WORKERS {
        let listener = listener.try_clone()?;
        let (paths, handler, running) = (paths.clone(), Arc::clone(&handler), Arc::clone(&running));
        std::thread::Builder::new()
            .name(format!("door-{i}"))
            .spawn(move || {
                let mut worker = Worker {
                    paths,
                    handler,
                    running,
                    namespaces,
                    build,
                    engine: None,
                };
                for conn in listener.incoming().flatten() {
                    if let Err(e) = worker.serve(&conn) {
                        tracing::debug!("door connection: {e}");
                    }
                }
            })?;
    }
    Ok(Workers { running })
}

struct Worker {
    paths: Paths,
    handler: Handler,
    running: Arc<RwLock<()>>,
    namespaces: (u64, u64),
    build: (u64, u64, i64),
    engine: Option<Engine>,
}

impl Worker {
    fn serve(&mut self, conn: &UnixStream) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        BufReader::new(conn.take(MAX_REQUEST)).read_line(&mut line)?;
        let t0 = std::time::Instant::now();
        let req = match self.check(conn, &line) {
            Ok(req) => req,
            Err(why) => return write_line(conn, &format!("refused {why}")),
        };
        let Ok(_running) = self.running.try_read() else {
            return write_line(conn, "refused the agent is stopping");
        };
        if self.engine.is_none() {
            match Engine::open(self.paths.clone()) {
                Ok(e) => self.engine = Some(e),
                Err(e) => return write_line(conn, &format!("refused open the store: {e}")),
            }
        }
        // A door that gave up waiting has closed its end: this write fails and the command
        // does not run (the door runs it itself).
        write_line(conn, "started")?;
        let engine = self.engine.as_mut().expect("opened above");
        let handler = Arc::clone(&self.handler);
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(engine, &req)))
            .unwrap_or_else(|_| {
                // What the engine held may be half-changed: the next command opens anew.
                self.engine = None;
                Reply {
                    code: 1,
                    stdout: format!(
                        "{}\n",
                        serde_json::json!({"error": "the berth agent failed while running this command; see its log"})
                    ),
                    stderr: String::new(),
                    micros: 0,
                }
            });
        let reply = Reply {
            micros: t0.elapsed().as_micros() as u64,
            ..reply
        };
        let line = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
        write_line(conn, &line)
    }

    /// The request on `line`, if this agent may run it for the peer on `conn`.
    fn check(&self, conn: &UnixStream, line: &str) -> Result<Request, String> {
        let uid = peer_uid(conn).map_err(|e| format!("peer credentials: {e}"))?;
        // SAFETY: geteuid has no preconditions.
        if uid != unsafe { libc::geteuid() } {
            return Err(format!("user {uid} is not the agent's"));
        }
        let req: Request =
            serde_json::from_str(line).map_err(|e| format!("invalid request: {e}"))?;
        if req.root != self.paths.root {
            return Err(format!(
                "root {} is not the agent's ({})",
                req.root.display(),
                self.paths.root.display()
            ));
        }
        if req.cluster != berth_engine::door::cluster_of(&self.paths) {
            return Err("another cluster store than the agent's".into());
        }
        if req.namespaces != self.namespaces {
            return Err("another mount or network namespace than the agent's".into());
        }
        if req.build != self.build {
            return Err("another berth executable than the agent's".into());
        }
        Ok(req)
    }
}

fn write_line(conn: &UnixStream, line: &str) -> std::io::Result<()> {
    let mut conn = conn;
    conn.write_all(format!("{line}\n").as_bytes())
}

fn peer_uid(conn: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    match rc {
        0 => Ok(cred.uid),
        _ => Err(std::io::Error::last_os_error()),
    }
}
