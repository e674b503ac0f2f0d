//! The WAL stays bounded when every process is the database's only connection and makes one
//! write (the pattern of the netavark door's calls): such a process rebuilds the WAL index,
//! finds nothing marked checkpointed, and so never restarts the WAL.

mod common;

use berth_store::{Checkpoints, Network, Store, SubnetRow};
use std::path::Path;

/// Network `i`, with a label that makes its row a few pages.
fn network(i: usize) -> Network {
    Network {
        id: format!("n{i}"),
        name: format!("net{i}"),
        bridge: Some(format!("br-{i}")),
        labels: [("padding".to_string(), "x".repeat(3000))].into(),
        subnets: vec![SubnetRow {
            subnet: format!("10.{}.0.0/16", i % 250).parse().unwrap(),
            gateway: format!("10.{}.0.1", i % 250).parse().unwrap(),
            range: None,
        }],
        ..common::network()
    }
}

/// One "process": a connection that makes one write transaction of a few pages (network
/// `i`), then closes.
fn one_process(root: &Path, checkpoints: Checkpoints, i: usize) {
    let mut store = Store::open_with(root, checkpoints).unwrap();
    store
        .write(|tx| -> berth_store::Result<()> { tx.insert_network(&network(i)) })
        .unwrap();
}

#[test]
fn many_short_lived_connections_keep_the_wal_short() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("berth.db-wal");
    let mut largest = 0;
    for i in 0..120 {
        one_process(dir.path(), Checkpoints::Here, i);
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // 64 frames of 4 KiB pages is ~260 KiB; without truncation it grew past 4 MiB here.
    assert!(largest < 1 << 20, "WAL grew to {largest} bytes");
    let mut store = Store::open(dir.path()).unwrap();
    let n = store
        .read(|tx| -> berth_store::Result<usize> { Ok(tx.networks()?.len()) })
        .unwrap();
    assert_eq!(n, 120, "every write is still there");
}

#[test]
fn connections_that_leave_checkpoints_to_a_checkpointer_never_checkpoint_themselves() {
    let dir = tempfile::tempdir().unwrap();
    // The agent: one connection that stays open (so the WAL index stays valid) and
    // checkpoints now and then.
    let mut agent = Store::open(dir.path()).unwrap();
    let mut most = 0;
    for i in 0..40 {
        one_process(dir.path(), Checkpoints::Elsewhere, i);
        most = most.max(agent.wal_frames());
    }
    // Each write adds frames and none of the doors' closes took them back: well past the
    // 64 frames at which a connection that checkpoints itself would have.
    assert!(most > 64, "the WAL reached only {most} frames");
    assert_eq!(agent.wal_frames(), most, "no door checkpointed");
    let (frames, copied) = agent.checkpoint_past(64).unwrap().expect("a long WAL");
    assert_eq!((frames, copied), (most, most), "every frame copied");
    // The next writer starts the WAL over: it is short again, and everything is there.
    let mut door = Store::open_with(dir.path(), Checkpoints::Elsewhere).unwrap();
    door.write(|tx| -> berth_store::Result<()> { tx.insert_network(&network(99)) })
        .unwrap();
    assert!(door.wal_frames() < 16, "{} frames", door.wal_frames());
    let n = door
        .read(|tx| -> berth_store::Result<usize> { Ok(tx.networks()?.len()) })
        .unwrap();
    assert_eq!(n, 41);
    assert_eq!(
        agent.checkpoint_past(64).unwrap(),
        None,
        "nothing to do on a short WAL"
    );
}

#[test]
fn without_a_checkpointer_the_wal_is_still_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("berth.db-wal");
    let mut largest = 0;
    for i in 0..800 {
        one_process(dir.path(), Checkpoints::Elsewhere, i);
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // 1000 frames of ~4 KiB, the bound for an absent checkpointer, plus one write's worth;
    // 800 writes of a few pages each make ~10 MiB without it.
    assert!(
        largest > 1 << 20,
        "the WAL never grew ({largest} bytes): no bound was tested"
    );
    assert!(largest < 5 << 20, "WAL grew to {largest} bytes");
}
