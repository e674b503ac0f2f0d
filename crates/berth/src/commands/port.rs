//! `berth port`: a container's published ports, as `docker port` prints them.

use crate::{Failure, Outcome};
use berth_engine::{container, ports, Engine};

pub(crate) fn run(
    engine: &mut Engine,
    reference: &str,
    private: Option<&str>,
) -> Result<Outcome, Failure> {
    let c = container::find(engine, reference)?;
    let filter = private
        .map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            match (port.parse::<u16>(), ports::spec::Proto::parse(proto)) {
                (Ok(n), Some(pr)) => Ok((n, pr.as_str())),
                _ => Err(anyhow::anyhow!(
                    "invalid port {p:?}: expected PORT or PORT/PROTO (tcp, udp, sctp)"
                )),
            }
        })
        .transpose()?;
    let rows = container::published_ports(engine, &c.id)?;
    let mut shown = 0;
    for r in &rows {
        if filter.is_some_and(|(n, pr)| r.container_port != n || r.protocol != pr) {
            continue;
        }
        for line in ports::describe(r) {
            println!("{line}");
        }
        shown += 1;
    }
    if let (Some((n, pr)), 0) = (filter, shown) {
        return Err(
            anyhow::anyhow!("no public port {n}/{pr} published for container {}", c.name).into(),
        );
    }
    Ok(Outcome::Ok)
}
