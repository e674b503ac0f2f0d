//! This process's claim on the WAL index outlives any one of its connections. SQLite marks a
//! process that uses `-shm` with a read lock on its byte 128 (the "dead man switch"); POSIX
//! locks belong to the process, and closing any descriptor of the file drops all of them.
//! When the claim went, the next process to open the database took itself for the first,
//! truncated `-shm` under this one's mapping and rebuilt the index from the whole WAL.

mod common;

use berth_store::{Checkpoints, Store};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether this process holds a lock on byte 128 of `shm` (from `/proc/locks`).
fn holds_dead_man_switch(shm: &Path) -> bool {
    let ino = std::fs::metadata(shm).unwrap().ino().to_string();
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        // "1: POSIX  ADVISORY  READ 1234 00:2e:5678 128 128"
        .any(|f| {
            f.len() >= 8
                && f[4] == pid
                && f[5].rsplit(':').next() == Some(ino.as_str())
                && f[6] == "128"
        })
}

fn insert(store: &mut Store, i: usize) {
    let net = berth_store::Network {
        id: format!("n{i}"),
        name: format!("net{i}"),
        bridge: Some(format!("br-{i}")),
        ..common::network()
    };
    store
        .write(|tx| -> berth_store::Result<()> { tx.insert_network(&net) })
        .unwrap();
}

#[test]
fn closing_one_connection_keeps_the_others_claim_on_the_wal_index() {
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("berth.db-shm");
    // The agent's long-lived connection, and its checkpointer reading the WAL's length.
    let mut long = Store::open_with(dir.path(), Checkpoints::Elsewhere).unwrap();
    insert(&mut long, 0);
    let mut checkpointer = Store::open(dir.path()).unwrap();
    let _ = checkpointer.checkpoint_past(u32::MAX).unwrap();
    assert!(holds_dead_man_switch(&shm), "an open connection holds it");
    // A connection of the same process that comes and goes (the agent's firewall repair);
    // its close reads the WAL's length too.
    for i in 1..4 {
        let mut short = Store::open(dir.path()).unwrap();
        insert(&mut short, i);
        assert!(short.wal_frames() > 0);
    }
    assert!(
        holds_dead_man_switch(&shm),
        "a closed connection took the others' lock on -shm with it"
    );
    insert(&mut long, 9);
    assert!(long.wal_frames() > 0);
    drop(checkpointer);
    assert!(holds_dead_man_switch(&shm));
}
