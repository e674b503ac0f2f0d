//! The cluster settings: flags and environment first, then the config file.

use crate::cli::Cli;
use anyhow::Context;
use berth_cluster::{Config, FileConfig};
use std::path::Path;

/// The config file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG: &str = "/etc/berth/config.toml";

/// The cluster settings, or `None` when no store is configured anywhere.
pub(crate) fn cluster(cli: &Cli) -> anyhow::Result<Option<Config>> {
    let file = match &cli.config {
        Some(p) => read(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => read(Path::new(DEFAULT_CONFIG))?,
        None => FileConfig::default(),
    };
    let Some(store) = cli.store.clone().or(file.store) else {
        return Ok(None);
    };
    let host = cli.host_name.clone().or(file.host_name);
    let advertise = cli.advertise.clone().or(file.advertise);
    Ok(Some(Config::new(
        &store,
        host.as_deref(),
        advertise.as_deref(),
    )?))
}

fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read config file {}", path.display()))?;
    Ok(FileConfig::parse(&text, &path.display().to_string())?)
}
