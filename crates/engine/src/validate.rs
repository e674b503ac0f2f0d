//! Checks on user input that need no state: names, MTUs, interface names, privileges.

use crate::{Error, Result};

/// Object names (networks, containers, aliases): Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn name(kind: &str, s: &str) -> Result<()> {
    let ok = s.len() <= 128
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "invalid {kind} name {s:?}: use letters, digits, '_', '.' or '-', starting with a letter or digit (at most 128)"
        ))),
    }
}

/// Host names (RFC 1123 labels, at most 63 characters for the UTS name).
pub(crate) fn hostname(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "invalid hostname {s:?}: use letters, digits and '-' in dot-separated labels, at most 63 characters"
        ))),
    }
}

/// Link MTU: the IPv4 minimum to the largest jumbo frame a bridge takes.
pub(crate) fn mtu(s: &str) -> Result<u32> {
    match s.parse::<u32>() {
        Ok(v) if (68..=65535).contains(&v) => Ok(v),
        _ => Err(Error::Invalid(format!(
            "invalid MTU {s:?}: use a number from 68 to 65535"
        ))),
    }
}

/// Linux interface names: 1 to 15 bytes, no '/', ':' or white space, not "." or "..".
pub(crate) fn ifname(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "invalid interface name {s:?}: use 1 to 15 characters without '/', ':' or spaces"
        ))),
    }
}

/// A boolean option value.
pub(crate) fn boolean(key: &str, s: &str) -> Result<bool> {
    match s {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::Invalid(format!(
            "invalid value {s:?} for option {key}: use true or false"
        ))),
    }
}

/// berth changes network namespaces, links and mounts: it needs root.
pub(crate) fn require_root() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    match euid {
        Some(0) => Ok(()),
        _ => Err(Error::NotRoot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        name("network", "web-1.a_b").unwrap();
        for bad in ["", "-web", "we b", "a/b", &"x".repeat(129)] {
            let e = name("network", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid network name"), "{e}");
        }
    }

    #[test]
    fn mtus_and_ifnames() {
        assert_eq!(mtu("1450").unwrap(), 1450);
        for bad in ["0", "67", "65536", "abc", "-1"] {
            assert!(mtu(bad).unwrap_err().to_string().contains("invalid MTU"));
        }
        ifname("berth0").unwrap();
        for bad in ["", "a/b", "sixteen-chars-xx", "a b", "a:b"] {
            assert!(ifname(bad)
                .unwrap_err()
                .to_string()
                .contains("invalid interface name"));
        }
    }

    #[test]
    fn hostnames_and_booleans() {
        hostname("web-1.local").unwrap();
        assert!(hostname("-bad").is_err_and(|e| e.to_string().contains("invalid hostname")));
        assert!(boolean("icc", "false").is_ok_and(|b| !b));
        assert!(boolean("icc", "maybe").is_err_and(|e| e.to_string().contains("option icc")));
    }
}
