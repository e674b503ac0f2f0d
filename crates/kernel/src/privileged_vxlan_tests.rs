//! VXLAN devices, FDB and neighbour entries against the real kernel, each test inside its
//! own network + mount namespace (see `privileged_tests::sandboxed`).

use std::collections::BTreeSet;
use std::process::Command;

use crate::netlink::{FdbEntry, Netlink, StaticNeighbour, FLOOD_MAC, VXLAN_PORT};
use crate::privileged_tests::sandboxed;

macro_rules! test_name {
    ($f:ident) => {
        concat!("privileged_vxlan_tests::", stringify!($f))
    };
}

fn ip_detail(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vxlan_device_with_fdb_flood_and_neighbour_entries() {
    sandboxed(
        test_name!(vxlan_device_with_fdb_flood_and_neighbour_entries),
        |_| {
            let mut nl = Netlink::open().unwrap();
            let lo = nl.link_by_name("lo").unwrap().unwrap();
            nl.set_up(lo.index).unwrap();
            nl.add_address(lo.index, "10.9.0.1".parse().unwrap(), 32)
                .unwrap();
            let vx = nl
                .create_vxlan("vx-t", 4242, "10.9.0.1".parse().unwrap(), VXLAN_PORT, 1450)
                .unwrap();
            let err = nl
                .create_vxlan("vx-t", 4242, "10.9.0.1".parse().unwrap(), VXLAN_PORT, 1450)
                .unwrap_err();
            assert!(err.is_exists(), "{err}");
            let detail = ip_detail(&["-d", "link", "show", "vx-t"]);
            for want in [
                "vxlan id 4242",
                "local 10.9.0.1",
                "dstport 4789",
                "nolearning",
                "proxy",
                "mtu 1450",
            ] {
                assert!(detail.contains(want), "{want} missing: {detail}");
            }
            let peer = FdbEntry {
                mac: [2, 0x42, 10, 0, 0, 2],
                vtep: "10.9.0.2".parse().unwrap(),
            };
            let flood2 = FdbEntry {
                mac: FLOOD_MAC,
                vtep: "10.9.0.2".parse().unwrap(),
            };
            let flood3 = FdbEntry {
                mac: FLOOD_MAC,
                vtep: "10.9.0.3".parse().unwrap(),
            };
            for e in [&peer, &flood2, &flood3, &peer] {
                nl.add_fdb(vx, e).unwrap();
            }
            let got: BTreeSet<FdbEntry> = nl.fdb_entries(vx).unwrap().into_iter().collect();
            assert_eq!(
                got,
                BTreeSet::from([peer, flood2, flood3]),
                "two flood entries append"
            );
            let n = StaticNeighbour {
                ip: "10.0.0.2".parse().unwrap(),
                mac: peer.mac,
            };
            nl.add_neighbour(vx, &n).unwrap();
            nl.add_neighbour(vx, &n).unwrap();
            assert_eq!(nl.static_neighbours(vx).unwrap(), vec![n]);
            assert!(ip_detail(&["neigh", "show", "dev", "vx-t"])
                .contains("10.0.0.2 lladdr 02:42:0a:00:00:02 PERMANENT"));

            nl.delete_fdb(vx, &flood2).unwrap();
            nl.delete_fdb(vx, &flood2).unwrap();
            nl.delete_neighbour(vx, &n).unwrap();
            nl.delete_neighbour(vx, &n).unwrap();
            let got: BTreeSet<FdbEntry> = nl.fdb_entries(vx).unwrap().into_iter().collect();
            assert_eq!(got, BTreeSet::from([peer, flood3]));
            assert!(nl.static_neighbours(vx).unwrap().is_empty());
            let err = nl
                .create_vxlan(
                    "vx-bad",
                    1 << 24,
                    "10.9.0.1".parse().unwrap(),
                    VXLAN_PORT,
                    1450,
                )
                .unwrap_err();
            assert!(err.to_string().contains("VNI"), "{err}");
            nl.delete_link(vx).unwrap();
        },
    );
}
