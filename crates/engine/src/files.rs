//! A container's resolv.conf, hosts and hostname files, written under its runtime directory
//! and bind-mounted over `/etc` inside its mount namespace.

use crate::error::KernelContext;
use crate::Result;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The host's resolver configuration, as seen from the host namespace.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The files made for one container.
pub(crate) struct ContainerFiles {
    pub(crate) resolv_conf: PathBuf,
    pub(crate) hosts: PathBuf,
    pub(crate) hostname: PathBuf,
}

impl ContainerFiles {
    pub(crate) fn at(dir: &Path) -> ContainerFiles {
        ContainerFiles {
            resolv_conf: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
        }
    }

    /// `(source, /etc target)` pairs for the bind mounts.
    pub(crate) fn binds(&self) -> Vec<(PathBuf, PathBuf)> {
        vec![
            (self.resolv_conf.clone(), "/etc/resolv.conf".into()),
            (self.hosts.clone(), "/etc/hosts".into()),
            (self.hostname.clone(), "/etc/hostname".into()),
        ]
    }
}

/// Writes the files; `addrs` are the container's addresses on all its networks.
pub(crate) fn write(
    dir: &Path,
    hostname: &str,
    name: &str,
    addrs: &[IpAddr],
    dns: &[String],
    resolver: Option<IpAddr>,
) -> Result<ContainerFiles> {
    std::fs::create_dir_all(dir).op(|| format!("create {}", dir.display()))?;
    let files = ContainerFiles::at(dir);
    let host_resolv = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let put =
        |p: &Path, text: String| std::fs::write(p, text).op(|| format!("write {}", p.display()));
    let text = match resolver {
        Some(server) => agent_resolv_conf(server),
        None => resolv_conf(&host_resolv, dns),
    };
    put(&files.resolv_conf, text)?;
    put(&files.hosts, hosts(hostname, name, addrs))?;
    put(&files.hostname, format!("{hostname}\n"))?;
    Ok(files)
}

/// The container's resolv.conf: `--dns` servers if given, else the host's servers minus
/// loopback ones (unreachable from the container); search and options lines are kept.
pub(crate) fn resolv_conf(host: &str, dns: &[String]) -> String {
    let mut out = String::new();
    let mut servers: Vec<String> = dns.iter().map(|s| format!("nameserver {s}")).collect();
    for line in host.lines() {
        let t = line.trim();
        if let Some(server) = t.strip_prefix("nameserver") {
            let server = server.trim();
            let loopback = server
                .parse::<IpAddr>()
                .map(|a| a.is_loopback())
                .unwrap_or(true);
            if dns.is_empty() && !loopback {
                servers.push(format!("nameserver {server}"));
            }
        } else if t.starts_with("search") || t.starts_with("options") || t.starts_with("domain") {
            out.push_str(t);
            out.push('\n');
        }
    }
    servers.iter().fold(String::new(), |acc, s| acc + s + "\n") + &out
}

/// The resolv.conf of a container on a DNS-enabled network: berth's agent on its gateway
/// answers container names and forwards the rest (to `--dns` servers, else the host's).
pub(crate) fn agent_resolv_conf(server: IpAddr) -> String {
    format!("nameserver {server}\nsearch {DNS_DOMAIN}\noptions ndots:0\n")
}

/// The domain under which the agent also serves container names.
pub(crate) const DNS_DOMAIN: &str = "berth.internal";

/// The container's hosts file: localhost entries, then each address with its names.
pub(crate) fn hosts(hostname: &str, name: &str, addrs: &[IpAddr]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let names = if hostname == name {
        hostname.to_string()
    } else {
        format!("{hostname} {name}")
    };
    for a in addrs {
        out.push_str(&format!("{a}\t{names}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers_and_keeps_search() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n";
        assert_eq!(
            resolv_conf(host, &[]),
            "nameserver 10.0.0.2\nsearch example.org\n"
        );
        assert_eq!(
            resolv_conf(host, &["192.0.2.1".into()]),
            "nameserver 192.0.2.1\nsearch example.org\n"
        );
    }

    #[test]
    fn hosts_lists_every_address_with_names() {
        let h = hosts("abc123", "web", &["172.17.0.2".parse().unwrap()]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.17.0.2\tabc123 web\n"));
    }
}
