//! Rows the store's integration tests share.

use berth_store::{Container, ContainerState, Network, NetworkMode, SubnetRow};

/// A bridge network `n1` named `crowd` on 10.0.0.0/16.
pub(crate) fn network() -> Network {
    Network {
        id: "n1".into(),
        name: "crowd".into(),
        driver: "bridge".into(),
        bridge: Some("br-crowd".into()),
        internal: false,
        icc: true,
        mtu: None,
        ipv6: false,
        builtin: false,
        options: Default::default(),
        labels: Default::default(),
        subnets: vec![SubnetRow {
            subnet: "10.0.0.0/16".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            range: None,
        }],
        created: "2026-01-01T00:00:00Z".into(),
    }
}

/// A created container whose id, name and hostname are all `id`.
#[allow(dead_code)] // not every test file uses every helper
pub(crate) fn container(id: &str) -> Container {
    Container {
        id: id.into(),
        name: id.into(),
        hostname: id.into(),
        command: vec!["true".into()],
        mode: NetworkMode::Bridge,
        netns: None,
        pid: None,
        pid_start: None,
        state: ContainerState::Created,
        exit_code: None,
        auto_remove: false,
        dns: vec![],
        created: "2026-01-01T00:00:00Z".into(),
        started: None,
        finished: None,
        owner: None,
    }
}
