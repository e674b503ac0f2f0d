//! The one berth binary: parses the command line, sets up logging, dispatches to a command
//! module, and turns an error into the CLI's contract (`Error: ...` on stderr, exit 1; usage
//! errors exit 2; `berth run` exits 125 when berth itself failed).
//!
//! Two more doors share the binary: the CNI plugin (`cni`), taken when `CNI_COMMAND` is
//! set, and netavark's interface for podman (`netavark`), taken when the program is invoked
//! as `netavark` or as `berth netavark ...`. Each speaks its caller's protocol on stdout.

mod cli;
mod cni;
mod commands;
mod config;
mod in_agent;
mod netavark;
mod table;

use clap::Parser;
use std::process::ExitCode;

/// How a command ended, when it did not fail.
pub(crate) enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit with this code (a container command's status).
    Code(i32),
}

/// A failure plus the exit code it maps to.
pub(crate) struct Failure {
    error: anyhow::Error,
    code: u8,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            error: e.into(),
            code: 1,
        }
    }
}

impl Failure {
    /// The same error with another exit code (125 for `run`).
    pub(crate) fn with_code(error: impl Into<anyhow::Error>, code: u8) -> Failure {
        Failure {
            error: error.into(),
            code,
        }
    }
}

/// Logs go to stderr: stdout belongs to each door's protocol.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// berth's directories for the doors that take no berth options: `BERTH_ROOT` and
/// `BERTH_RUN_ROOT`, else the defaults.
fn env_paths() -> berth_engine::Paths {
    let var = |k: &str, d: &str| std::env::var_os(k).unwrap_or_else(|| d.into());
    berth_engine::Paths::new(
        var("BERTH_ROOT", "/var/lib/berth"),
        var("BERTH_RUN_ROOT", "/run/berth"),
    )
}

fn main() -> ExitCode {
    let start = std::time::Instant::now();
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let invoked_as = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked_as == "netavark" {
        let log = std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".into());
        init_logging(&log);
        let args: Vec<String> = std::env::args().skip(1).collect();
        return netavark::main(env_paths(), &args, &log);
    }
    if invoked_as == "aardvark-dns" {
        return aardvark_dns();
    }
    if std::env::var_os("CNI_COMMAND").is_some() {
        let log = std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".into());
        init_logging(&log);
        return cni::main(env_paths(), &log);
    }
    let cli = cli::Cli::parse();
    init_logging(&cli.log_level);
    if let cli::Command::Netavark { args } = cli.command {
        return netavark::main(
            berth_engine::Paths::new(cli.root, cli.run_root),
            &args,
            &cli.log_level,
        );
    }
    tracing::debug!(target: "berth::timing", verb = "main", phase = "parse", us = start.elapsed().as_micros() as u64);
    let outcome = commands::dispatch(cli);
    tracing::debug!(target: "berth::timing", verb = "main", phase = "dispatch", us = start.elapsed().as_micros() as u64);
    match outcome {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Code(c)) => ExitCode::from(c.clamp(0, 255) as u8),
        Err(f) => {
            eprintln!("Error: {}", one_line(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// podman enables DNS on a network only when it finds `aardvark-dns` beside `netavark`, so
/// the install links that name to berth too. berth's agent answers DNS itself: there is
/// nothing to run.
fn aardvark_dns() -> ExitCode {
    if std::env::args().any(|a| a == "--version" || a == "version") {
        println!(
            "aardvark-dns {} (berth: its agent serves DNS)",
            netavark::NETAVARK_VERSION
        );
    } else {
        eprintln!("aardvark-dns: berth's agent serves DNS for podman's networks; nothing to do");
    }
    ExitCode::SUCCESS
}

/// The error and its causes on one line, without repeating a cause already in the message.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out.replace('\n', " ")
}
