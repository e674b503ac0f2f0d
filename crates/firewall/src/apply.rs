//! Applies nft batches by running `nft -f -` once per operation.

use crate::ruleset::{self, NetworkElements};
use crate::{Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A handle on the `nft` program, for the calling process's network namespace.
#[derive(Clone, Debug)]
pub struct Firewall {
    nft: PathBuf,
}

impl Firewall {
    /// Finds `nft`: `$BERTH_NFT` if set, else the first `nft` in `$PATH`.
    pub fn locate() -> Result<Firewall> {
        if let Some(p) = std::env::var_os("BERTH_NFT") {
            let p = PathBuf::from(p);
            return match p.is_file() {
                true => Ok(Firewall { nft: p }),
                false => Err(Error::MissingNft {
                    place: format!("at {} (BERTH_NFT)", p.display()),
                }),
            };
        }
        let in_path = || Error::MissingNft {
            place: "in PATH".into(),
        };
        let path = std::env::var_os("PATH").ok_or_else(in_path)?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("nft"))
            .find(|p| p.is_file())
            .map(|nft| Firewall { nft })
            .ok_or_else(in_path)
    }

    /// Creates or repairs the skeleton and adds one network's elements, atomically.
    pub fn add_network(&self, net: &NetworkElements) -> Result<()> {
        let mut script = ruleset::skeleton();
        for l in net.add_lines() {
            script.push_str(&l);
            script.push('\n');
        }
        self.run(
            &format!("add firewall elements of bridge {}", net.bridge),
            &script,
        )
    }

    /// Removes one network's elements. Elements already gone are not an error.
    pub fn remove_network(&self, net: &NetworkElements) -> Result<()> {
        let op = format!("remove firewall elements of bridge {}", net.bridge);
        let lines = net.delete_lines();
        if self.run(&op, &lines.join("\n")).is_ok() {
            return Ok(());
        }
        // One element (or the whole table) was missing: the batch failed as a whole, so
        // delete one element at a time and let only the real failures through.
        let mut first = None;
        for line in &lines {
            match self.run(&op, line) {
                Err(Error::Nft { detail, .. }) if is_missing(&detail) => {}
                Err(e) => first = first.or(Some(e)),
                Ok(()) => {}
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn run(&self, op: &str, script: &str) -> Result<()> {
        let io = |source| Error::Io {
            op: format!("{op}: run {}", self.nft.display()),
            source,
        };
        let mut child = Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io)?;
        let mut stdin = child.stdin.take().expect("stdin was piped");
        let written = stdin.write_all(script.as_bytes());
        drop(stdin);
        let out = child.wait_with_output().map_err(io)?;
        written.map_err(io)?;
        if out.status.success() {
            return Ok(());
        }
        let detail = first_error(&String::from_utf8_lossy(&out.stderr));
        tracing::debug!(op, %detail, "nft batch failed");
        if is_unsupported(&detail) {
            return Err(Error::KernelFeature {
                op: op.to_string(),
                detail,
            });
        }
        Err(Error::Nft {
            op: op.to_string(),
            detail,
        })
    }
}

/// The first `Error:` line nft printed, or its whole output trimmed.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .map(|l| l.trim_start_matches("Error:").trim().to_string())
        .unwrap_or_else(|| stderr.trim().to_string())
}

fn is_missing(detail: &str) -> bool {
    detail.contains("No such file or directory") || detail.contains("does not exist")
}

fn is_unsupported(detail: &str) -> bool {
    detail.contains("Operation not supported") || detail.contains("Protocol not supported")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_error_line_is_extracted() {
        let e = "Error: Could not process rule: No such file or directory\nadd element ...\n^^^\n";
        assert_eq!(
            first_error(e),
            "Could not process rule: No such file or directory"
        );
        assert!(is_missing(&first_error(e)));
        assert!(is_unsupported(
            "Could not process rule: Operation not supported"
        ));
    }
}
