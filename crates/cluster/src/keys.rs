//! The key layout under `/berth/v1/`.
//!
//! | key | value | lease |
//! |---|---|---|
//! | `hosts/<host>` | [`crate::HostRecord`] | the host's |
//! | `networks/<name>` | [`crate::NetworkRecord`] | none |
//! | `ipam/<network id>/<address>` | [`crate::Claim`] | the claiming host's |
//! | `endpoints/<network id>/<endpoint id>` | [`crate::EndpointRecord`] | the host's |

use std::net::IpAddr;

pub const ROOT: &str = "/berth/v1/";

pub fn hosts() -> String {
    format!("{ROOT}hosts/")
}

pub fn host(name: &str) -> String {
    format!("{ROOT}hosts/{name}")
}

pub fn networks() -> String {
    format!("{ROOT}networks/")
}

pub fn network(name: &str) -> String {
    format!("{ROOT}networks/{name}")
}

pub fn claims(network_id: &str) -> String {
    format!("{ROOT}ipam/{network_id}/")
}

pub fn claim(network_id: &str, addr: IpAddr) -> String {
    format!("{ROOT}ipam/{network_id}/{addr}")
}

/// Every endpoint of every overlay network.
pub fn all_endpoints() -> String {
    format!("{ROOT}endpoints/")
}

pub fn endpoints(network_id: &str) -> String {
    format!("{ROOT}endpoints/{network_id}/")
}

pub fn endpoint(network_id: &str, endpoint_id: &str) -> String {
    format!("{ROOT}endpoints/{network_id}/{endpoint_id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout() {
        assert_eq!(super::host("h1"), "/berth/v1/hosts/h1");
        assert_eq!(
            super::claim("n1", "10.0.0.2".parse().unwrap()),
            "/berth/v1/ipam/n1/10.0.0.2"
        );
        assert!(super::endpoint("n1", "e1").starts_with(&super::endpoints("n1")));
        assert!(super::endpoints("n1").starts_with(&super::all_endpoints()));
    }
}
