//! Reading upstream servers from resolv.conf text.

use std::net::{IpAddr, SocketAddr};

/// The `nameserver` entries of resolv.conf `text`, in order, on port 53.
///
/// Comments (`#`, `;`) and other options are ignored, and so are entries that are not
/// plain addresses, such as IPv6 addresses with a zone (`fe80::1%eth0`): a scoped
/// link-local upstream cannot be reached from the gateway addresses berth listens on.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let sa = SocketAddr::new(ip, 53);
            if !out.contains(&sa) {
                out.push(sa);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_in_order() {
        let text = "# generated\nsearch example.com\nnameserver 192.0.2.1\n  nameserver\t2001:db8::1 # v6\n\
                    ;nameserver 192.0.2.9\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver 192.0.2.1\n\
                    options ndots:2\nnameserver 127.0.0.53";
        let got: Vec<String> = parse_resolv_conf(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["192.0.2.1:53", "[2001:db8::1]:53", "127.0.0.53:53"]);
        assert!(parse_resolv_conf("").is_empty());
    }
}
