//! Many processes' worth of connections claiming addresses at once never share one.

mod common;

use berth_store::{Endpoint, EndpointAddress, Store};
use common::{container, network};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

#[test]
fn concurrent_writers_claim_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path())
        .unwrap()
        .write(|tx| tx.insert_network(&network()))
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // Each thread has its own connection, as separate berth processes would.
                let mut store = Store::open(&root).unwrap();
                for i in 0..20 {
                    let id = format!("c{t}-{i}");
                    store
                        .write(|tx| -> berth_store::Result<()> {
                            let used = tx.used_addresses("n1")?;
                            let addr = (2u32..)
                                .map(|h| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + h)))
                                .find(|a| !used.contains(a))
                                .unwrap();
                            tx.insert_container(&container(&id))?;
                            tx.insert_endpoint(&Endpoint {
                                id: format!("e-{id}"),
                                container_id: id.clone(),
                                network_id: "n1".into(),
                                ifname: "eth0".into(),
                                host_ifname: format!("h-{id}"),
                                mac: "02:00:00:00:00:01".into(),
                                aliases: vec![],
                                addresses: vec![EndpointAddress {
                                    addr,
                                    prefix_len: 16,
                                    gateway: None,
                                }],
                            })
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    let (eps, used) = store
        .read(|tx| -> berth_store::Result<_> {
            Ok((tx.all_endpoints()?, tx.used_addresses("n1")?))
        })
        .unwrap();
    assert_eq!(eps.len(), 160);
    let distinct: BTreeSet<_> = eps.iter().map(|e| e.addresses[0].addr).collect();
    assert_eq!(distinct.len(), 160);
    assert_eq!(used, distinct);
}

#[test]
fn removing_a_container_releases_its_addresses_and_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .write(|tx| -> berth_store::Result<()> {
            tx.insert_network(&network())?;
            tx.insert_container(&container("a"))?;
            tx.insert_endpoint(&Endpoint {
                id: "e".into(),
                container_id: "a".into(),
                network_id: "n1".into(),
                ifname: "eth0".into(),
                host_ifname: "h".into(),
                mac: "02:00:00:00:00:01".into(),
                aliases: vec!["x".into()],
                addresses: vec![EndpointAddress {
                    addr: "10.0.0.2".parse().unwrap(),
                    prefix_len: 16,
                    gateway: Some("10.0.0.1".parse().unwrap()),
                }],
            })
        })
        .unwrap();
    let dup = store.write(|tx| tx.insert_container(&container("a")));
    assert!(dup.is_err_and(|e| e.is_unique_violation()));
    store.write(|tx| tx.delete_container("a")).unwrap();
    let (eps, used) = store
        .read(|tx| -> berth_store::Result<_> {
            Ok((tx.all_endpoints()?, tx.used_addresses("n1")?))
        })
        .unwrap();
    assert!(eps.is_empty());
    assert!(used.is_empty());
}

#[test]
fn connections_opening_a_new_database_together_all_get_it() {
    // The first open puts the file in WAL mode, which needs its exclusive lock; SQLite
    // answers the others' contended attempts with SQLITE_BUSY without waiting. CNI
    // runtimes call plugins in parallel, so the very first calls on a host do this.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let root = dir.path().to_path_buf();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&root)
                        .and_then(|mut s| s.read(|tx| tx.networks()))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(()), "round {round}");
        }
    }
}

#[test]
fn a_failed_or_panicking_transaction_leaves_nothing_and_the_store_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let failed: berth_store::Result<()> = store.write(|tx| {
        tx.insert_network(&network())?;
        Err(berth_store::Error::Corrupt("on purpose".into()))
    });
    assert!(failed.is_err());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.write(|tx| -> berth_store::Result<()> {
            tx.insert_network(&network())?;
            panic!("on purpose");
        });
    }));
    assert!(panicked.is_err());
    assert!(store.read(|tx| tx.network("crowd")).unwrap().is_none());
    store.write(|tx| tx.insert_network(&network())).unwrap();
    assert!(store.read(|tx| tx.network("crowd")).unwrap().is_some());
    // A second connection sees the committed row (no transaction was left open).
    let mut other = Store::open(dir.path()).unwrap();
    assert!(other.read(|tx| tx.network("crowd")).unwrap().is_some());
}
