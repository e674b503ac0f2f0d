//! Many berth processes at once: the store and the network locks keep them consistent.

use berth_tests::Sandbox;
use std::collections::BTreeSet;

#[test]
fn thirty_two_parallel_runs_get_distinct_reachable_addresses() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "crowd"]);
    sb.ok(
        "for i in $(seq 1 32); do berth run -d --name c$i --network crowd sleep 100000 >/dev/null & done; \
         fail=0; for j in $(jobs -p); do wait $j || fail=1; done; exit $fail",
    );
    let mut addrs = BTreeSet::new();
    for i in 1..=32 {
        addrs.insert(sb.ip(&format!("c{i}"), "crowd"));
    }
    assert_eq!(addrs.len(), 32, "distinct addresses: {addrs:?}");
    // Each one answers from its own namespace: from the host, and from a sibling.
    let list = addrs.iter().cloned().collect::<Vec<_>>().join(" ");
    sb.ok(&format!("for a in {list}; do ping -c1 -W2 $a >/dev/null || {{ echo unreachable $a; exit 1; }}; done"));
    sb.ok(&format!(
        "berth exec c1 sh -c 'for a in {list}; do ping -c1 -W2 $a >/dev/null || exit 1; done'"
    ));
    // And they all go away in parallel too.
    sb.ok("for i in $(seq 1 32); do berth rm -f c$i >/dev/null & done; wait");
    assert!(sb.settle(), "the veth pairs go with the namespaces");
    assert_eq!(sb.ok("ip -br link | grep -c '^bth' || true").trim(), "0");
    assert_eq!(sb.berth_ok(&["ps", "-a", "-q"]).len(), 0);
}
