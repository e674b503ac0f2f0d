//! Which etcd to use and who this host is: from `--store`/`--host-name`/`--advertise`, or
//! the config file (`/etc/berth/config.toml`).

use crate::{Error, Result};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};

/// The cluster settings of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The URL as given (`etcd://HOST:PORT[,HOST:PORT...]`), for messages.
    pub url: String,
    /// `HOST:PORT` of each etcd member.
    pub endpoints: Vec<String>,
    /// This host's name in the registry.
    pub host: String,
    /// This host's VTEP address, when configured.
    pub advertise: Option<Ipv4Addr>,
}

/// The keys the config file may hold.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub store: Option<String>,
    pub host_name: Option<String>,
    pub advertise: Option<String>,
}

impl FileConfig {
    /// Parses the config file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| Error::Invalid(format!("config file {what}: {e}")))
    }
}

/// Parses `etcd://HOST:PORT[,HOST:PORT...]` into `HOST:PORT` strings.
pub fn parse_url(url: &str) -> Result<Vec<String>> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "store {url:?}: {why}: use etcd://HOST:PORT[,HOST:PORT...]"
        ))
    };
    let rest = url
        .strip_prefix("etcd://")
        .ok_or_else(|| bad("only etcd:// is supported"))?;
    let mut out = Vec::new();
    for member in rest.split(',') {
        let (host, port) = member
            .rsplit_once(':')
            .ok_or_else(|| bad("a member has no port"))?;
        if host.is_empty() || host.contains('/') {
            return Err(bad("a member has no host"));
        }
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("a port is not a number from 1 to 65535"))?;
        out.push(member.to_string());
    }
    Ok(out)
}

fn check_host_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "host name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.'"
        ))),
    }
}

impl Config {
    /// Builds the settings from the store URL, an optional host name (else the machine's
    /// hostname) and an optional advertise address.
    pub fn new(url: &str, host: Option<&str>, advertise: Option<&str>) -> Result<Config> {
        let endpoints = parse_url(url)?;
        let host = match host {
            Some(h) => h.to_string(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .map_err(|e| Error::Invalid(format!("read the hostname: {e}: give --host-name")))?,
        };
        check_host_name(&host)?;
        let advertise = advertise
            .map(|a| {
                a.parse::<Ipv4Addr>().map_err(|_| {
                    Error::Invalid(format!("advertise address {a:?} is not an IPv4 address"))
                })
            })
            .transpose()?;
        Ok(Config {
            url: url.to_string(),
            endpoints,
            host,
            advertise,
        })
    }

    /// The VTEP address: the advertise address, else the source address of the route
    /// towards the first store member (a connected UDP socket sends nothing).
    pub fn vtep(&self) -> Result<Ipv4Addr> {
        if let Some(a) = self.advertise {
            return Ok(a);
        }
        let member = &self.endpoints[0];
        let target = member
            .to_socket_addrs()
            .map_err(|e| Error::Invalid(format!("resolve store member {member}: {e}")))?
            .find(|a| a.is_ipv4())
            .ok_or_else(|| Error::Invalid(format!("store member {member} has no IPv4 address")))?;
        let sock = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect(target).map(|()| s))
            .map_err(|e| {
                Error::Invalid(format!(
                    "find the route to the store {member}: {e}: give --advertise"
                ))
            })?;
        match sock.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(a)) if !a.is_unspecified() => Ok(a),
            _ => Err(Error::Invalid(format!(
                "no source address towards the store {member}: give --advertise"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("etcd://10.0.0.1:2379,e2:2379").unwrap(),
            vec!["10.0.0.1:2379", "e2:2379"]
        );
        for bad in [
            "http://a:1",
            "etcd://a",
            "etcd://:1",
            "etcd://a:0",
            "etcd://a:x",
            "etcd://a:1,",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.to_string().contains("etcd://HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_names_and_advertise() {
        let c = Config::new("etcd://127.0.0.1:2379", Some("h1"), Some("10.1.0.1")).unwrap();
        assert_eq!(c.vtep().unwrap(), "10.1.0.1".parse::<Ipv4Addr>().unwrap());
        let e = Config::new("etcd://127.0.0.1:2379", Some("a b"), None).unwrap_err();
        assert!(e.to_string().contains("host name"), "{e}");
        let e = Config::new("etcd://127.0.0.1:2379", Some("h"), Some("fd00::1")).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 address"), "{e}");
        let c = Config::new("etcd://127.0.0.1:2379", Some("h"), None).unwrap();
        assert_eq!(c.vtep().unwrap(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn config_file() {
        let f = FileConfig::parse("store = \"etcd://a:1\"\nhost_name = \"h\"\n", "x").unwrap();
        assert_eq!(f.store.as_deref(), Some("etcd://a:1"));
        let e = FileConfig::parse("stor = 1", "/etc/berth/config.toml").unwrap_err();
        assert!(e.to_string().contains("/etc/berth/config.toml"), "{e}");
    }
}
