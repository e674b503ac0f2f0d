//! The control socket: the doors say `reload` after changing the store; the agent answers
//! `ok` once DNS and the `[::1]` relay serve the new state. `reload-soon` is answered `ok`
//! at once and reloads later: a setup that needs nothing served before it returns (no names
//! asked of berth's DNS, no ports). `reload-ports ID [setup MICROS]` (a setup that published
//! ports and asked for no names) is answered once container ID's `[::1]` relays listen,
//! read by id, and reloads the rest later. `reload-names ID [setup MICROS]` (a setup or
//! network connect of container ID, which may be asked for by name) is answered once DNS
//! serves ID's names and its `[::1]` relays listen, both read by id, and reloads the rest
//! later. `adopt-ports ID port=PROTO/PORT... [setup
//! MICROS]` does the same with the listening sockets its door bound and passed along. `reap teardown MICROS ...` hands links and idle
//! door networks (and any descriptors sent with it, see `reaper`) to the `reaper` thread,
//! answers `ok`, and reloads later. "Later" is the
//! `deferred` reload: one for a burst of requests, once the socket is quiet.
//! `dns-port N` moves DNS to port N on every gateway (the netavark door's
//! `NETAVARK_DNS_PORT`): `ok` once it listens there, else `error WHY` with DNS back on the
//! old port.

use crate::deferred::Deferred;
use crate::{snapshot, State};
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serves requests one connection at a time (they are short) on its own thread.
pub(crate) fn spawn(
    listener: UnixListener,
    state: Arc<Mutex<State>>,
    deferred: Arc<Deferred>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                deferred.touch();
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = handle(conn, &mut st, &deferred) {
                    tracing::debug!("control connection: {e}");
                }
            }
        })?;
    Ok(())
}

/// The longest request line read (a `reap` of a container with many relayed ports).
const MAX_REQUEST: usize = 1 << 20;

fn handle(conn: UnixStream, st: &mut State, deferred: &Deferred) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    // A request may carry descriptors (`reap`: sockets to close on the reaper's thread);
    // any other request's are closed when they drop here.
    let (bytes, mut fds) = berth_kernel::fdpass::recv_line(&conn, MAX_REQUEST)?;
    let line = String::from_utf8_lossy(&bytes).into_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    // `reap` and `reload-soon` are answered before their reload: the runtime need not wait
    // for it (a removed name may answer for a moment longer).
    let mut reload_after = false;
    // Any change but a container's setup by `reload-names` may have removed or renamed
    // records (a teardown, a setup that did not wait for its names): until the full reload
    // that follows it, `reload_names` has no exact records to add to, and re-reads them all.
    if !matches!(words.first(), Some(&("ping" | "reload-names"))) {
        st.records = None;
    }
    let answer = match words.as_slice() {
        ["ping"] => "pong".to_string(),
        [verb @ ("reload" | "reload-soon"), rest @ ..] => {
            if let [op @ ("setup" | "teardown"), micros] = rest {
                if let Ok(us) = micros.parse::<u64>() {
                    st.metrics.observe(op, Duration::from_micros(us));
                }
            }
            if *verb == "reload-soon" {
                reload_after = true;
                "ok".to_string()
            } else {
                let answer = match reload(st) {
                    Ok(Ok(())) => "ok".to_string(),
                    Ok(Err(e)) | Err(e) => format!("error {e}"),
                };
                deferred.done();
                answer
            }
        }
        [verb @ ("reload-ports" | "reload-names"), id, rest @ ..] => {
            if let [op @ "setup", micros] = rest {
                if let Ok(us) = micros.parse::<u64>() {
                    st.metrics.observe(op, Duration::from_micros(us));
                }
            }
            reload_after = true;
            let served = match *verb {
                "reload-names" => reload_names(st, id),
                _ => reload_ports(st, id),
            };
            match served {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(e)) | Err(e) => format!("error {e}"),
            }
        }
        ["adopt-ports", id, rest @ ..] => {
            let (ports, timing) = match rest {
                [ports @ .., "setup", micros] => (ports, micros.parse::<u64>().ok()),
                ports => (ports, None),
            };
            if let Some(us) = timing {
                st.metrics.observe("setup", Duration::from_micros(us));
            }
            reload_after = true;
            match adopt_ports(st, id, ports, std::mem::take(&mut fds)) {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(e)) | Err(e) => {
                    // Nobody reads the answer (the door posted the request).
                    tracing::warn!("adopt-ports {id}: {e}");
                    format!("error {e}")
                }
            }
        }
        ["reap", "teardown", micros, rest @ ..] => {
            match berth_engine::reap::Reap::parse(rest.iter().copied()) {
                Ok(job) => {
                    if let Ok(us) = micros.parse::<u64>() {
                        st.metrics.observe("teardown", Duration::from_micros(us));
                    }
                    reload_after = true;
                    st.relays.close_ports(&job.ports);
                    st.metrics.relayed_ports.set(st.relays.len() as i64);
                    let job = crate::reaper::Job {
                        reap: job,
                        close: std::mem::take(&mut fds),
                    };
                    match st.reaper.send(job) {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("error {e}"),
                    }
                }
                Err(e) => format!("error {e}"),
            }
        }
        ["dns-port", port] => match port.parse::<u16>() {
            Ok(p) if p > 0 => match move_dns(st, p) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error {e}"),
            },
            _ => format!("error invalid DNS port {port:?}"),
        },
        _ => format!("error unknown request {:?}", line.trim()),
    };
    // A posted request's door is gone by now (`berth_engine::agent::post`): the answer
    // then fails, and the reload still follows.
    let answered = (&conn).write_all(format!("{answer}\n").as_bytes());
    if reload_after {
        deferred.request();
    }
    answered
}

/// The part of a setup's reload its runtime waits for when it asked for no names: the
/// `[::1]` relays of container `id`'s ports, read by id (a few point lookups, whatever the
/// number of containers). The rest (DNS records and listeners, metrics) is deferred. With
/// overlay peers, the whole reload (a new VXLAN device gets its entries before the answer).
fn reload_ports(st: &mut State, id: &str) -> Result<Result<(), String>, String> {
    if st.peers.is_some() {
        return reload(st);
    }
    let mine =
        berth_engine::ports::relay::relays_of(&mut st.engine, id).map_err(|e| e.to_string())?;
    let relayed = st.relays.add(&mine);
    st.metrics.relayed_ports.set(st.relays.len() as i64);
    Ok(relayed)
}

/// The part of a setup's reload its runtime waits for when its container may be asked for by
/// name: container `id`'s records added to those DNS serves, and its `[::1]` relays, all read
/// by id. The whole reload instead when there is nothing exact to add to (no full reload
/// since the last change of another kind: a name freed by a teardown must not answer beside
/// its new owner's), with overlay peers (as in [`reload_ports`]), or when the container is on
/// a network DNS does not know or listen on yet (its first container here): then the
/// listeners change too.
fn reload_names(st: &mut State, id: &str) -> Result<Result<(), String>, String> {
    if st.peers.is_some() || st.records.is_none() {
        return reload(st);
    }
    let Some(one) = snapshot::one(&mut st.engine, id, st.dns_port).map_err(|e| e.to_string())?
    else {
        return reload(st);
    };
    let served = st.dns.listeners();
    let snap = st.records.as_ref().expect("checked above");
    let known = one.networks.iter().all(|n| snap.networks.contains(n))
        && one
            .listeners
            .iter()
            .all(|l| served.iter().any(|(asked, _)| asked == l));
    if !known {
        return reload(st);
    }
    let snap = st.records.as_mut().expect("checked above");
    let known_container = snap.containers.iter().any(|c| c.id == id);
    match (one.record, known_container) {
        // Already served (a network connect): its records change, so build them anew.
        (record, true) => {
            snap.containers.retain(|c| c.id != id);
            snap.containers.extend(record);
            if let Err(e) = st.dns.set_records(snap) {
                st.records = None;
                return Err(e.to_string());
            }
        }
        (Some(record), false) => {
            snap.containers.push(record);
            let added = snap.containers.last().expect("just pushed");
            if let Err(e) = st.dns.add_container(snap, added) {
                st.records = None;
                return Err(e.to_string());
            }
        }
        (None, false) => {}
    }
    reload_ports(st, id)
}

/// `adopt-ports`: container `id`'s `[::1]` relays, on the sockets its door bound (`fds`, one
/// per `port=PROTO/PORT` word, in order). The targets come from the store, read by id as in
/// [`reload_ports`]; a relay of the container the door did not bind is bound here, and a
/// socket for a port the store does not relay for it is closed.
fn adopt_ports(
    st: &mut State,
    id: &str,
    words: &[&str],
    fds: Vec<std::os::fd::OwnedFd>,
) -> Result<Result<(), String>, String> {
    use berth_engine::ports::spec::Proto;
    let ports = words
        .iter()
        .map(|w| {
            w.strip_prefix("port=")
                .and_then(|p| p.split_once('/'))
                .and_then(|(proto, n)| Some((Proto::parse(proto)?, n.parse::<u16>().ok()?)))
                .ok_or_else(|| format!("invalid adopt-ports argument {w:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.len() != fds.len() {
        return Err(format!("{} ports but {} sockets", ports.len(), fds.len()));
    }
    let mine =
        berth_engine::ports::relay::relays_of(&mut st.engine, id).map_err(|e| e.to_string())?;
    let mut given = Vec::new();
    for ((proto, port), fd) in ports.into_iter().zip(fds) {
        if let Some(r) = mine
            .iter()
            .find(|r| r.proto == proto && r.host_port == port)
        {
            given.push((*r, fd));
        }
    }
    let rest: Vec<_> = mine
        .iter()
        .filter(|r| !given.iter().any(|(g, _)| g == *r))
        .copied()
        .collect();
    let adopted = st.relays.adopt(given);
    let added = st.relays.add(&rest);
    st.metrics.relayed_ports.set(st.relays.len() as i64);
    if st.peers.is_some() {
        // As in `reload_ports`: with overlay peers, the whole reload now (it keeps the
        // relays just adopted).
        reload(st)??;
    }
    Ok(match (adopted, added) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    })
}

/// Re-reads the store, programs overlay peers (a new VXLAN device gets its entries before
/// the door's command returns), hands DNS its new records and listeners and the relay its
/// `[::1]` ports. A port the relay cannot bind is reported in the inner result; everything
/// else still changes.
pub(crate) fn reload(st: &mut State) -> Result<Result<(), String>, String> {
    if let Some(peers) = st.peers.clone() {
        for e in crate::overlay::program(&mut st.engine, &peers) {
            tracing::warn!("overlay: {e}");
        }
    }
    reload_dns(st)?;
    let relays = berth_engine::ports::relay::relays(&mut st.engine).map_err(|e| e.to_string())?;
    let relayed = st.relays.set(&relays);
    st.metrics.relayed_ports.set(st.relays.len() as i64);
    Ok(relayed)
}

/// Serves DNS on `port` from now on; when it cannot listen there, goes back to the old one.
fn move_dns(st: &mut State, port: u16) -> Result<(), String> {
    let old = st.dns_port;
    if port == old {
        return Ok(());
    }
    st.dns_port = port;
    match reload_dns(st) {
        Ok(()) => {
            tracing::info!(from = old, to = port, "DNS port moved");
            Ok(())
        }
        Err(e) => {
            st.dns_port = old;
            let back = reload_dns(st)
                .err()
                .map(|b| format!("; back on {old}: {b}"));
            Err(format!(
                "cannot serve DNS on port {port}: {e}{}",
                back.unwrap_or_default()
            ))
        }
    }
}

/// Re-reads the store (and the remote overlay endpoints) and hands DNS its new records and
/// listeners.
pub(crate) fn reload_dns(st: &mut State) -> Result<(), String> {
    let remote = st.peers.as_ref().map(|p| p.remote()).unwrap_or_default();
    st.metrics.overlay_peers.set(remote.len() as i64);
    let (snap, listeners, counts) =
        snapshot::read(&mut st.engine, st.dns_port, &remote).map_err(|e| e.to_string())?;
    st.dns.set_records(&snap).map_err(|e| e.to_string())?;
    st.records = Some(snap);
    st.dns
        .set_listeners(&listeners)
        .map_err(|e| e.to_string())?;
    st.metrics.networks.set(counts.networks);
    st.metrics.endpoints.set(counts.endpoints);
    st.metrics.published_ports.set(counts.published_ports);
    Ok(())
}
