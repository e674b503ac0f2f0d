//! The exact lookups the doors use, and a connection left for the process exit to close.

mod common;

use berth_store::{Endpoint, Network, Store};
use common::{container, network};

fn endpoint(id: &str, container_id: &str, network_id: &str) -> Endpoint {
    Endpoint {
        id: id.into(),
        container_id: container_id.into(),
        network_id: network_id.into(),
        ifname: format!("eth-{id}"),
        host_ifname: format!("h-{id}"),
        mac: "02:00:00:00:00:01".into(),
        aliases: vec![],
        addresses: vec![],
    }
}

#[test]
fn exact_lookups_match_only_the_whole_id_or_the_whole_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .write(|tx| -> berth_store::Result<()> {
            tx.insert_container(&container("abcdef"))?;
            // Named like the other one's id prefix.
            let mut named = container("123456");
            named.name = "abc".into();
            tx.insert_container(&named)
        })
        .unwrap();
    store
        .read(|tx| -> berth_store::Result<()> {
            assert_eq!(tx.container_by_id("abcdef")?.unwrap().name, "abcdef");
            assert!(tx.container_by_id("abc")?.is_none(), "a prefix is no id");
            assert!(tx.container_by_id("abcdefg")?.is_none());
            assert_eq!(tx.container_by_name("abc")?.unwrap().id, "123456");
            assert!(
                tx.container_by_name("123456")?.is_none(),
                "an id is no name"
            );
            // The user-facing lookup still takes a unique id prefix, a name first.
            assert_eq!(tx.container("abcd")?.unwrap().id, "abcdef");
            assert_eq!(tx.container("abc")?.unwrap().id, "123456");
            Ok(())
        })
        .unwrap();
}

#[test]
fn networks_of_endpoints_are_each_network_once_and_none_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let second = Network {
        id: "n2".into(),
        name: "second".into(),
        bridge: Some("br-second".into()),
        subnets: vec![],
        ..network()
    };
    store
        .write(|tx| -> berth_store::Result<()> {
            tx.insert_network(&network())?;
            tx.insert_network(&second)
        })
        .unwrap();
    let eps = [
        endpoint("a", "c", "n1"),
        endpoint("b", "c", "n2"),
        endpoint("d", "c", "n1"),
        endpoint("e", "c", "gone"),
    ];
    let nets = store.read(|tx| tx.networks_of(&eps)).unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["n1", "n2"]);
    assert_eq!(nets["n1"].subnets.len(), 1, "with the network's subnets");
    assert_eq!(nets["n2"].name, "second");
    assert!(store.read(|tx| tx.networks_of(&[])).unwrap().is_empty());
}

#[test]
fn a_connection_left_to_the_exit_has_committed_everything() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100 {
        let mut store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| tx.insert_container(&container(&format!("c{i:03}"))))
            .unwrap();
        store.close_at_exit();
    }
    let mut store = Store::open(dir.path()).unwrap();
    let n = store
        .read(|tx| -> berth_store::Result<usize> { Ok(tx.containers()?.len()) })
        .unwrap();
    assert_eq!(n, 100, "every write is there for the next connection");
    // Connections left open this way do not let the WAL grow without bound.
    assert!(
        store.wal_frames() <= berth_store::WAL_CHECKPOINT_PAGES + 8,
        "WAL holds {} frames",
        store.wal_frames()
    );
}
