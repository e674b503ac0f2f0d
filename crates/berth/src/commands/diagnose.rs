//! `berth diagnose SRC DST[:PORT][/PROTO]`: each check with pass/fail, then the verdict.
//! Exit 0 when DST is reachable, 1 when it is not (and for errors).

use crate::cli::{DiagnoseArgs, Format};
use crate::{Failure, Outcome};
use berth_engine::observe::diagnose;
use berth_engine::Engine;

pub(crate) fn run(engine: &mut Engine, a: DiagnoseArgs) -> Result<Outcome, Failure> {
    let r = diagnose::diagnose(engine, &a.src, &a.dst)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Format::Table => {
            println!("{} -> {}", r.source, r.destination);
            for c in &r.checks {
                let mark = if c.ok { "ok  " } else { "FAIL" };
                match c.detail.is_empty() {
                    true => println!("  [{mark}] {}", c.name),
                    false => println!("  [{mark}] {}: {}", c.name, c.detail),
                }
            }
            let v = &r.verdict;
            match r.reachable {
                true => println!("verdict: reachable: {}", v.cause),
                false => println!("verdict: {}: {}", v.code, v.cause),
            }
            if !v.fix.is_empty() {
                println!("fix: {}", v.fix);
            }
        }
    }
    Ok(match r.reachable {
        true => Outcome::Ok,
        false => Outcome::Code(1),
    })
}
