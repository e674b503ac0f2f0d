//! Applies element updates over nf_tables netlink; installs the ruleset with `nft`.

use crate::elements::{PortElement, Update};
use crate::fastpath::{self, FastPort};
use crate::ruleset::{self, TABLE_NAME};
use crate::{Error, Result};
use berth_kernel::nftables::{Batch, Element, Family, Nftables};
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// berth's firewall in the calling process's network namespace: element batches over
/// nf_tables netlink, and the `nft` program for the rare (re)install of the ruleset.
pub struct Firewall {
    nl: Nftables,
}

/// Finds `nft`: `$BERTH_NFT` if set, else the first `nft` in `$PATH`.
pub fn locate_nft() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_NFT") {
        let p = PathBuf::from(p);
        return match p.is_file() {
            true => Ok(p),
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
        .ok_or_else(in_path)
}

impl std::os::fd::AsFd for Firewall {
    /// The nf_tables socket (see `Nftables::as_fd`).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.nl.as_fd()
    }
}

impl Firewall {
    /// Opens an nf_tables netlink socket. Spawns nothing.
    pub fn open() -> Result<Firewall> {
        let nl = Nftables::open().map_err(|e| Error::Netlink {
            op: "open nf_tables netlink socket".into(),
            source: e,
        })?;
        Ok(Firewall { nl })
    }

    /// Whether both tables hold this version of the ruleset (two netlink round trips).
    pub fn is_installed(&mut self) -> Result<bool> {
        let look = |e| Error::Netlink {
            op: "look up the berth tables".into(),
            source: e,
        };
        Ok(self
            .nl
            .set_exists(Family::Inet, TABLE_NAME, ruleset::MARKER)
            .map_err(look)?
            && self
                .nl
                .set_exists(Family::Netdev, fastpath::TABLE_NAME, fastpath::MARKER)
                .map_err(look)?)
    }

    /// Whether the table holds this version of the ruleset with every rule in place (for the
    /// agent's self-repair; runs `nft -j list table`, so not for the hot path).
    pub fn is_complete(&mut self) -> Result<bool> {
        if !self.is_installed()? {
            return Ok(false);
        }
        let nft = locate_nft()?;
        let rules = |family: &str| -> Result<Option<usize>> {
            let out = Command::new(&nft)
                .args(["-j", "list", "table", family, TABLE_NAME])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|source| Error::Io {
                    op: format!("list the table {family} {TABLE_NAME}"),
                    source,
                })?;
            let n = String::from_utf8_lossy(&out.stdout)
                .matches("{\"rule\":")
                .count();
            Ok(out.status.success().then_some(n))
        };
        Ok(rules("inet")? == Some(ruleset::rule_count())
            && rules("netdev")? == Some(fastpath::RULES))
    }

    /// Makes sure the ruleset is installed; when it is not (first use on this host, or
    /// someone deleted or flushed it, or an older berth left another version), reinstalls it
    /// with every element `everything` lists. Returns whether it had to repair.
    pub fn ensure<E: From<Error>>(
        &mut self,
        everything: impl FnOnce() -> std::result::Result<Update, E>,
    ) -> std::result::Result<bool, E> {
        if self.is_installed()? {
            return Ok(false);
        }
        self.reinstall(&everything()?)?;
        Ok(true)
    }

    /// Replaces the inet table whole (one `nft` batch: whatever was there, damaged or from
    /// an older berth, goes), declares the netdev table ([`Firewall::install_fast`]) and adds
    /// `all`, which must be every element the store implies.
    pub fn reinstall(&mut self, all: &Update) -> Result<()> {
        let nft = locate_nft()?;
        let script = format!(
            "add table inet berth\ndelete table inet berth\n{}",
            ruleset::skeleton()
        );
        run_nft(&nft, "install the berth ruleset", &script)?;
        if let Err(e) = self.install_fast(&nft, false) {
            tracing::debug!(error = %e, "the fast path's table is declared afresh");
            self.install_fast(&nft, true)?;
        }
        self.apply(all)
    }

    /// The netdev table, in three idempotent steps (two processes may run them at once): an
    /// `nft` batch declares the table and its map, a netlink message creates the chain with
    /// no device (nft 1.0.6 requires one), a second `nft` batch writes its rule and, last,
    /// its marker, so that an install cut short anywhere is redone. `fresh` deletes the
    /// table first.
    fn install_fast(&mut self, nft: &Path, fresh: bool) -> Result<()> {
        let declared = fastpath::declarations(fresh);
        run_nft(nft, "declare the fast path's table", &declared)?;
        let mut chain = Batch::new();
        chain.add_devices(
            Family::Netdev,
            fastpath::TABLE_NAME,
            fastpath::CHAIN,
            fastpath::HOOK,
            &[],
        );
        self.nl.send(&chain).map_err(|e| Error::Netlink {
            op: "create the fast path's chain".into(),
            source: e,
        })?;
        run_nft(nft, "install the fast path's rule", &fastpath::rules())
    }

    /// Sends an update as one atomic batch: removals (missing elements are fine), then
    /// additions (present ones are fine). A fast-path host end the chain does not list
    /// (the kernel refuses to remove it) is no error: the batch goes again without the
    /// device removals.
    pub fn apply(&mut self, u: &Update) -> Result<()> {
        if u.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        for (set, elems) in group(&u.removals) {
            batch.destroy(Family::Inet, TABLE_NAME, set, &elems);
        }
        fast(&mut batch, &u.fast_removals, &u.hooks_removed, false);
        for (set, elems) in group(&u.additions) {
            batch.add(Family::Inet, TABLE_NAME, set, &elems);
        }
        fast(&mut batch, &u.fast_additions, &u.hooks_added, true);
        let failed = |e| Error::Netlink {
            op: format!("update {} firewall elements", u.len()),
            source: e,
        };
        match self.nl.send(&batch) {
            Err(e) if batch.removes_devices() => {
                tracing::debug!(error = %e, "fast-path device removal refused; without it");
                self.nl
                    .send(&batch.without_device_removals())
                    .map_err(failed)
            }
            r => r.map_err(failed),
        }
    }
}

impl Firewall {
    /// How many connections the DNAT lookups of these port elements have translated since
    /// they were added (their element counters, summed). `None` when an element is missing
    /// or has no counter (a table from before `schema_4`): then nothing is known.
    pub fn ports_used(&mut self, ports: &[PortElement]) -> Result<Option<u64>> {
        let mut u = Update::new();
        u.add_ports(ports);
        let mut total = 0u64;
        for (set, elems) in group(&u.additions) {
            let keys: Vec<Vec<u8>> = elems.into_iter().map(|e| e.key).collect();
            let n = self
                .nl
                .packets_of(Family::Inet, TABLE_NAME, set, &keys)
                .map_err(|e| Error::Netlink {
                    op: format!("read the counters of {} port elements", keys.len()),
                    source: e,
                })?;
            match n {
                Some(n) => total = total.saturating_add(n),
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }
}

/// The fast path's part of a batch: on addition the host-end names join the chain before
/// the elements; on removal the elements go first.
fn fast(batch: &mut Batch, ports: &[FastPort], hooks: &[String], add: bool) {
    let (table, chain, hook) = (fastpath::TABLE_NAME, fastpath::CHAIN, fastpath::HOOK);
    let mut names = hooks.to_vec();
    names.sort();
    names.dedup();
    let elems: Vec<Element> = ports.iter().map(FastPort::element).collect();
    // The kernel takes fewer than 256 devices per message (NFT_NETDEVICE_MAX).
    let lists = names.chunks(200);
    if add {
        for names in lists {
            batch.add_devices(Family::Netdev, table, chain, hook, names);
        }
        batch.add(Family::Netdev, table, fastpath::MAP, &elems);
    } else {
        batch.destroy(Family::Netdev, table, fastpath::MAP, &elems);
        for names in lists {
            batch.remove_devices(Family::Netdev, table, chain, hook, names);
        }
    }
}

/// Consecutive runs of one set, in order, as (set, elements).
fn group(v: &[(&'static str, Element)]) -> Vec<(&'static str, Vec<Element>)> {
    let mut out: Vec<(&'static str, Vec<Element>)> = Vec::new();
    for (set, e) in v {
        match out.last_mut() {
            Some((s, es)) if s == set => es.push(e.clone()),
            _ => out.push((set, vec![e.clone()])),
        }
    }
    out
}

/// Runs one `nft -f -` batch.
fn run_nft(nft: &Path, op: &str, script: &str) -> Result<()> {
    let io = |source| Error::Io {
        op: format!("{op}: run {}", nft.display()),
        source,
    };
    let mut child = Command::new(nft)
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

/// The first `Error:` line nft printed, or its whole output trimmed.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .map(|l| l.trim_start_matches("Error:").trim().to_string())
        .unwrap_or_else(|| stderr.trim().to_string())
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
        assert!(is_unsupported(
            "Could not process rule: Operation not supported"
        ));
    }
}
