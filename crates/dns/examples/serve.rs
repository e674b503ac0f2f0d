//! Serves a snapshot from a JSON file: `serve RECORDS.json ADDR:PORT [ADDR:PORT...]`.
//!
//! The JSON is a `berth_dns::Snapshot` (see `bench/dns/` for one). When the snapshot lists
//! no upstreams, the servers of `/etc/resolv.conf` are used. Prints `ready` and the bound
//! addresses on stdout, then serves until killed.

use std::net::SocketAddr;
use std::process::ExitCode;

use berth_dns::{parse_resolv_conf, Config, Server, Snapshot};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: serve RECORDS.json ADDR:PORT [ADDR:PORT...]";
    let path = args.next().ok_or(usage)?;
    let addrs = args
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|e| format!("address {a}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(usage.into());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
    let mut snapshot: Snapshot =
        serde_json::from_str(&text).map_err(|e| format!("parse {path}: {e}"))?;
    if snapshot.upstreams.is_empty() {
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        snapshot.upstreams = parse_resolv_conf(&resolv);
    }
    let server = Server::start(Config::default()).map_err(|e| e.to_string())?;
    server.set_records(&snapshot).map_err(|e| e.to_string())?;
    server.set_listeners(&addrs).map_err(|e| e.to_string())?;
    let bound: Vec<String> = server
        .listeners()
        .iter()
        .map(|(_, b)| b.to_string())
        .collect();
    println!("ready {}", bound.join(" "));
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve: {e}");
            ExitCode::FAILURE
        }
    }
}
