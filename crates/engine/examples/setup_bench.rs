//! In-process setup/teardown timing: the engine's own cost per container, without the
//! `berth` process that a CLI call (or a runtime calling berth) adds around it.
//!
//! Usage (as root, inside a throwaway namespace — `bench/run.sh` does that):
//!   setup_bench ROOT RUN_ROOT N [PORTS_PER_CONTAINER]
//! Creates network `benchnet` (10.91.0.0/16) if missing, then N containers with one
//! published port each (or PORTS_PER_CONTAINER ports), then removes them. Prints one JSON
//! object: {"n":N,"setup_ms":[...],"teardown_ms":[...]}.

use berth_engine::container::{self, RunRequest};
use berth_engine::network::{self, CreateRequest};
use berth_engine::{Engine, Paths};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (root, run_root, n) = match args.as_slice() {
        [_, r, rr, n, ..] => (r.clone(), rr.clone(), n.parse::<usize>()?),
        _ => return Err("usage: setup_bench ROOT RUN_ROOT N [PORTS]".into()),
    };
    let ports: u16 = args.get(4).map(|p| p.parse()).transpose()?.unwrap_or(1);
    let mut engine = Engine::open(Paths::new(root, run_root))?;
    if network::find(&mut engine, "benchnet").is_err() {
        network::create(
            &mut engine,
            &CreateRequest {
                name: "benchnet".into(),
                subnets: vec!["10.91.0.0/16".into()],
                ..CreateRequest::default()
            },
        )?;
    }
    let mut setup = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let base = 20000 + (i as u32) * u32::from(ports);
        let publish = (0..u32::from(ports))
            .map(|p| format!("{}:{}", base + p, 80 + p))
            .collect();
        let req = RunRequest {
            name: Some(format!("b{i}")),
            networks: vec!["benchnet".into()],
            publish,
            command: vec!["sleep".into(), "1".into()],
            ..RunRequest::default()
        };
        let t = Instant::now();
        let c = container::create(&mut engine, &req)?;
        setup.push(t.elapsed().as_secs_f64() * 1000.0);
        ids.push(c.id);
    }
    let mut teardown = Vec::with_capacity(n);
    for id in &ids {
        let t = Instant::now();
        container::remove(&mut engine, id, true)?;
        teardown.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{{\"n\":{n},\"ports\":{ports},\"setup_ms\":{:?},\"teardown_ms\":{:?}}}",
        setup, teardown
    );
    Ok(())
}
