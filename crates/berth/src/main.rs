//! The one berth binary: parses the command line, sets up logging, dispatches to a command
//! module, and turns an error into the CLI's contract (`Error: ...` on stderr, exit 1; usage
//! errors exit 2; `berth run` exits 125 when berth itself failed).

mod cli;
mod commands;
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

fn main() -> ExitCode {
    let start = std::time::Instant::now();
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
