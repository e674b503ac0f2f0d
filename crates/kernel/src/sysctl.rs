//! Kernel parameters under `/proc/sys`, read and written directly (never by
//! spawning `sysctl`).
//!
//! `net/...` keys are per network namespace: the kernel resolves them in
//! the namespace of the thread that opens the file, so these functions act
//! on the calling thread's namespace (wrap them in
//! [`crate::netns::run_in`] for another one).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use crate::{Error, Result};

/// Maps a key to its file: `net/ipv4/ip_forward` (or the dotted
/// `net.ipv4.ip_forward`) to `/proc/sys/net/ipv4/ip_forward`. Keys may not
/// climb out of `/proc/sys`.
pub(crate) fn key_path(key: &str) -> Result<PathBuf> {
    // Dotted keys cannot name interfaces with dots ("eth0.100"); slash keys can.
    let key = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let valid = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    if !valid {
        return Err(Error::Invalid(format!("sysctl key {key:?}")));
    }
    Ok(PathBuf::from("/proc/sys").join(key))
}

/// Writes `value` to the sysctl `key` (`sysctl -w KEY=VALUE`), e.g.
/// `write("net/ipv4/ip_forward", "1")`.
pub fn write(key: &str, value: &str) -> Result<()> {
    let path = key_path(key)?;
    let op = || format!("write sysctl {key} = {value}");
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(op(), e))?;
    // One write call: procfs parses each write on its own.
    file.write_all(value.as_bytes())
        .map_err(|e| Error::io(op(), e))
}

/// Reads the sysctl `key` (`sysctl -n KEY`), without the trailing newline.
pub fn read(key: &str) -> Result<String> {
    let path = key_path(key)?;
    let mut value =
        fs::read_to_string(&path).map_err(|e| Error::io(format!("read sysctl {key}"), e))?;
    while value.ends_with('\n') {
        value.pop();
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys() {
        assert_eq!(
            key_path("net/ipv4/ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            key_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            key_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
    }

    #[test]
    fn bad_keys_are_rejected() {
        for key in [
            "",
            "/etc/passwd",
            "net/../../etc",
            "net//x",
            "net/ipv4/a b",
            "net/x\0",
        ] {
            assert!(key_path(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn read_a_global_key() {
        assert!(!read("kernel/ostype").unwrap().is_empty());
        assert!(read("kernel/no_such_key_berth").unwrap_err().is_not_found());
    }
}
