//! update: `update NETWORK --network-dns-servers IP[,IP...]` (repeatable; an empty value
//! clears them) sets the upstream DNS servers of podman's containers on that network.

use super::OWNER;
use berth_engine::container::external;
use berth_engine::Engine;

/// The network and the servers from update's operands.
fn parse(operands: &[String]) -> Result<(String, Vec<String>), String> {
    let mut network = None;
    let mut servers = None::<Vec<String>>;
    let mut it = operands.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "-d" | "--network-dns-servers" => {
                let v = it.next().ok_or("--network-dns-servers needs a value")?;
                servers.get_or_insert_with(Vec::new).extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
            o if o.starts_with('-') => return Err(format!("unknown option {o} for update")),
            o if network.is_none() => network = Some(o.to_string()),
            o => return Err(format!("unexpected argument {o:?} for update")),
        }
    }
    let network = network.ok_or("update needs a network name")?;
    let servers = servers.ok_or("update needs --network-dns-servers")?;
    Ok((network, servers))
}

pub(super) fn run(engine: &mut Engine, operands: &[String]) -> Result<(), String> {
    let (network, servers) = parse(operands)?;
    external::set_network_dns(engine, OWNER, &network, &servers)
        .map(drop)
        .map_err(|e| format!("update of network {network}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_comma_lists_repeats_and_clearing() {
        let (n, d) = parse(&s(&["n1", "--network-dns-servers", "1.1.1.1,8.8.8.8"])).unwrap();
        assert_eq!((n.as_str(), d), ("n1", s(&["1.1.1.1", "8.8.8.8"])));
        let (_, d) = parse(&s(&["-d", "1.1.1.1", "n1", "-d", "9.9.9.9"])).unwrap();
        assert_eq!(d, s(&["1.1.1.1", "9.9.9.9"]));
        let (_, d) = parse(&s(&["n1", "--network-dns-servers", ""])).unwrap();
        assert!(d.is_empty());
        let e = parse(&s(&["n1"])).unwrap_err();
        assert!(e.contains("--network-dns-servers"), "{e}");
    }
}
