//! Reading the whole ruleset (every table, not only berth's) for `berth diagnose`: one
//! `nft -j list ruleset` and one `nft -a list ruleset`. Diagnosis only: never on a
//! container's setup path.

use crate::apply::locate_nft;
use crate::{Error, Result};
use std::process::Command;

/// The ruleset as nft prints it: JSON (`-j`) and text with rule handles (`-a`).
pub fn list_ruleset() -> Result<(String, String)> {
    Ok((
        nft_list(&["-j", "list", "ruleset"])?,
        nft_list(&["-a", "list", "ruleset"])?,
    ))
}

fn nft_list(args: &[&str]) -> Result<String> {
    let nft = locate_nft()?;
    let op = format!("nft {}", args.join(" "));
    let out = Command::new(&nft)
        .args(args)
        .output()
        .map_err(|source| Error::Io {
            op: op.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Nft {
            op,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
