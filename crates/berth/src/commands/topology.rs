//! `berth topology`: the host's networks, bridges, containers, addresses and published
//! ports as text, DOT, SVG (graphviz's `dot -Tsvg` of the DOT) or JSON.

use crate::cli::{TopologyArgs, TopologyFormat};
use crate::{Failure, Outcome};
use anyhow::{anyhow, Context};
use berth_engine::observe::topology;
use berth_engine::Engine;
use std::io::Write;
use std::process::{Command, Stdio};

pub(crate) fn run(engine: &mut Engine, a: TopologyArgs) -> Result<Outcome, Failure> {
    let t = topology::build(engine)?;
    match a.format {
        TopologyFormat::Text => print!("{}", topology::text(&t)),
        TopologyFormat::Json => println!("{}", serde_json::to_string_pretty(&t)?),
        TopologyFormat::Dot => print!("{}", topology::dot(&t)),
        TopologyFormat::Svg => print!("{}", svg(&topology::dot(&t))?),
    }
    Ok(Outcome::Ok)
}

/// Lays the graph out with graphviz (`dot -Tsvg`).
fn svg(dot: &str) -> Result<String, Failure> {
    let mut child = Command::new(std::env::var_os("BERTH_DOT").unwrap_or_else(|| "dot".into()))
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!("--format svg needs graphviz's dot: install graphviz, or use --format dot")
            }
            _ => anyhow!("start graphviz dot: {e}"),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(dot.as_bytes())
        .context("send the graph to dot")?;
    let out = child.wait_with_output().context("run dot")?;
    if !out.status.success() {
        return Err(anyhow!(
            "dot failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout).context("dot wrote non-UTF-8 SVG")?)
}
