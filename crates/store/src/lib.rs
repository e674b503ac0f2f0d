//! berth's local state: networks, containers, endpoints, address allocations, published
//! ports and the event log in SQLite.
//!
//! The database lives at `<root>/berth.db` in WAL mode. Every operation is one short
//! transaction: [`Store::write`] takes the write lock up front (`BEGIN IMMEDIATE`) so that
//! concurrent berth processes (CNI runtimes call plugins in parallel) serialise their
//! read-modify-write steps, such as "find the lowest free address, then claim it".
//!
//! This crate knows nothing about the kernel or about address arithmetic: callers (the
//! engine) decide what to write; the store keeps it consistent (unique names, unique
//! addresses per network, no endpoint without its container and network).

mod error;
mod events;
mod hooks;
mod model;
mod ports;
mod schema;
mod tx;

pub use error::{Error, Result};
pub use events::EVENTS_KEPT;
pub use model::{
    Container, ContainerState, Endpoint, EndpointAddress, Event, Network, NetworkMode, PortMapping,
    SubnetRow,
};
pub use tx::Tx;

use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// WAL pages after which a commit checkpoints (SQLite's default is 1000).
pub const WAL_CHECKPOINT_PAGES: u32 = 64;

/// Compiled statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 128;

/// WAL frames above which even a connection that leaves checkpoints to another one
/// checkpoints on close: the bound when that other one (the agent) is gone.
pub const WAL_UNATTENDED_PAGES: u32 = 1000;

/// Who checkpoints the WAL (copies it into the database file, with its `fsync`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoints {
    /// This connection: at commit past [`WAL_CHECKPOINT_PAGES`] frames, and on close.
    Here,
    /// A long-lived connection does ([`Store::checkpoint_past`], the agent's): this one never
    /// waits for a checkpoint's `fsync`s, unless the WAL passes [`WAL_UNATTENDED_PAGES`].
    /// While that connection stays open the WAL index stays valid too, so opening does not
    /// re-read the WAL however long it is.
    Elsewhere,
}

/// An open state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    checkpoints: Checkpoints,
}

/// The number of valid frames in the WAL: `mxFrame` of the WAL-index header at the start of
/// `<db>-shm` (SQLite's file format, "WAL-index format": offset 16, native byte order). Its
/// file size says nothing, as a restarted WAL keeps its length.
///
/// The file is read through a descriptor this process keeps open until it exits, one per
/// `-shm` file (by device and inode), whatever its connections do: POSIX locks belong to
/// the process, and closing *any* descriptor of a file drops all of them. Opening and
/// closing `-shm` here each time dropped SQLite's own lock on it (the "dead man switch" that
/// tells a new connection that others have the WAL index), so the next process to open the
/// database took itself for the first, truncated `-shm` under the others' mappings and
/// rebuilt the index by reading the whole WAL. One descriptor per connection, closed with
/// it, still did that whenever one connection of several closed (the agent's firewall
/// repair opens and drops one): every door call after it paid the rebuild (~0.5 ms).
fn wal_frames(db: &Path) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; 20];
    shm_file(&db.with_extension("db-shm"))?
        .read_exact_at(&mut header, 0)
        .ok()?;
    Some(u32::from_ne_bytes(header[16..20].try_into().ok()?))
}

/// The process's descriptor of `shm` (see [`wal_frames`]): opened at the first call for
/// that file, never closed.
fn shm_file(shm: &Path) -> Option<&'static std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    static OPEN: std::sync::Mutex<Vec<((u64, u64), &'static std::fs::File)>> =
        std::sync::Mutex::new(Vec::new());
    let m = std::fs::metadata(shm).ok()?;
    let key = (m.dev(), m.ino());
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, f)) = open.iter().find(|(k, _)| *k == key) {
        return Some(f);
    }
    let f = std::fs::File::open(shm).ok()?;
    let m = f.metadata().ok()?;
    let f: &'static std::fs::File = Box::leak(Box::new(f));
    open.push(((m.dev(), m.ino()), f));
    Some(f)
}

/// Closing bounds the WAL (see [`Store::bound_wal`]).
impl Drop for Store {
    fn drop(&mut self) {
        self.bound_wal();
    }
}

impl Store {
    /// Closing: a WAL longer than [`WAL_CHECKPOINT_PAGES`] frames ([`WAL_UNATTENDED_PAGES`] for
    /// [`Checkpoints::Elsewhere`]) is checkpointed and truncated.
    ///
    /// Each CLI call is usually the database's only connection, so the next one to open it
    /// rebuilds the WAL index from the WAL file, reading every frame still in it, and marks
    /// none of them as checkpointed — even those that were. A writer restarts the WAL only
    /// after a read that found everything checkpointed, which a process whose last write comes
    /// after its own checkpoint never does again: the WAL then grew by every such call (the
    /// netavark door: 4 MB after 60 setups, each open re-reading and re-checkpointing all of
    /// it). Truncating it here, without waiting for a busy lock, bounds it; the cost is the
    /// checkpoint's syncs, paid once every few calls.
    fn bound_wal(&self) {
        let bound = match self.checkpoints {
            Checkpoints::Here => WAL_CHECKPOINT_PAGES,
            Checkpoints::Elsewhere => WAL_UNATTENDED_PAGES,
        };
        if wal_frames(&self.path).is_some_and(|n| n > bound) {
            let _ = self.conn.busy_timeout(Duration::ZERO);
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// Puts the database in WAL mode, which then stays with the file: every open but the first
/// only reads the mode. The first is a change of the file's header that needs the exclusive
/// lock, and SQLite answers a contended one with `SQLITE_BUSY` at once, without its busy
/// handler (several processes opening a new database together, as CNI runtimes do): that
/// is retried here until [`BUSY_TIMEOUT`].
fn enable_wal(conn: &Connection, path: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let failed = |e| Error::Sql {
        op: format!("enable WAL on {}", path.display()),
        source: e,
    };
    loop {
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(failed)?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(m) => {
                return Err(Error::Corrupt(format!(
                    "{} stays in journal mode {m:?}: berth needs WAL",
                    path.display()
                )))
            }
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(failed(e)),
        }
    }
}

impl Store {
    /// Ends the connection of a process that exits next: the WAL is bounded as on drop, but
    /// the connection is left for the exit to end. Closing it would finalize every cached
    /// statement and free SQLite's caches one allocation at a time (about 7% of a netavark
    /// door call's instructions, callgrind); its files, locks and mapping of `-shm` are the
    /// kernel's to release at exit, exactly as a close with no checkpoint does. Nothing is
    /// lost: [`Store::write`] and [`Store::read`] have ended every transaction, and WAL mode
    /// with `synchronous = NORMAL` leaves a commit's durability to the WAL's next sync
    /// whether the connection closes or not.
    pub fn close_at_exit(self) {
        std::mem::ManuallyDrop::new(self).bound_wal();
    }

    /// Opens (creating if needed) `<root>/berth.db` and applies pending schema migrations;
    /// this connection checkpoints ([`Checkpoints::Here`]).
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, Checkpoints::Here)
    }

    /// [`Store::open`], with the WAL checkpointed as `checkpoints` says.
    pub fn open_with(root: &Path, checkpoints: Checkpoints) -> Result<Store> {
        std::fs::create_dir_all(root).map_err(|source| Error::Io {
            op: format!("create state directory {}", root.display()),
            source,
        })?;
        let path = root.join("berth.db");
        let ctx = |op: &str| format!("{op} {}", path.display());
        let mut conn = Connection::open(&path).map_err(Error::sql(ctx("open")))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::sql(ctx("configure")))?;
        enable_wal(&conn, &path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(Error::sql(ctx("configure")))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(Error::sql(ctx("configure")))?;
        // Every CLI call is a short-lived process: without this, each one's close would
        // checkpoint the WAL (two fsyncs). SQLite's auto-checkpoint still bounds the WAL.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(Error::sql(ctx("configure")))?;
        // Each process is the database's only connection, so SQLite rebuilds the WAL index
        // on open by reading every frame since the last checkpoint: keep that short (the
        // default of 1000 pages made each call read up to 4 MB before its first query).
        let auto = match checkpoints {
            Checkpoints::Here => WAL_CHECKPOINT_PAGES,
            Checkpoints::Elsewhere => 0,
        };
        conn.pragma_update(None, "wal_autocheckpoint", auto)
            .map_err(Error::sql(ctx("configure")))?;
        // Room for every statement a call runs (see `tx::Cached`); rusqlite keeps 16.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn).map_err(Error::sql(ctx("migrate")))?;
        Ok(Store {
            conn,
            path,
            checkpoints,
        })
    }

    /// Checkpoints the WAL when it holds more than `past` frames, without waiting for anyone
    /// (`PASSIVE`: frames a reader still needs stay). The next writer then starts the WAL
    /// over, which costs that writer one `fsync` of the WAL's new header. Returns the WAL's
    /// frames and how many of them are now in the database file, or `None` when the WAL
    /// was shorter.
    pub fn checkpoint_past(&mut self, past: u32) -> Result<Option<(u32, u32)>> {
        if wal_frames(&self.path).is_none_or(|n| n <= past) {
            return Ok(None);
        }
        let (log, done): (i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .map_err(|e| Error::sql(format!("checkpoint {}", self.path.display()))(e))?;
        Ok(Some((log.max(0) as u32, done.max(0) as u32)))
    }

    /// Frames in the WAL now (0 when there is none).
    pub fn wal_frames(&self) -> u32 {
        wal_frames(&self.path).unwrap_or(0)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction (taken with the write lock up front); commits when
    /// `f` returns `Ok`, rolls back otherwise.
    pub fn write<T, E>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        self.run(TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in one read transaction: a consistent snapshot.
    pub fn read<T, E>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        self.run(TransactionBehavior::Deferred, f)
    }

    fn run<T, E>(
        &mut self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        // BEGIN, COMMIT and ROLLBACK come from the statement cache too (rusqlite's
        // `Transaction` compiles them anew each time); the guard rolls back whatever did
        // not commit, a panic included.
        let begin = match behavior {
            TransactionBehavior::Immediate => "BEGIN IMMEDIATE",
            _ => "BEGIN DEFERRED",
        };
        let conn = &self.conn;
        conn.prepare_cached(begin)
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::sql("begin transaction".into())(e))?;
        let open = Open { conn };
        let out = f(&Tx::new(conn))?;
        conn.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::sql("commit transaction".into())(e))?;
        drop(open);
        Ok(out)
    }
}

/// A transaction [`Store::run`] began: rolled back on drop unless it ended (committed).
struct Open<'a> {
    conn: &'a Connection,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}
