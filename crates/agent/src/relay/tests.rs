//! The relay against real sockets. Each test re-runs itself inside `unshare --net` (a fresh
//! network namespace with only `lo`), so nothing binds in the host's namespace.

use super::{udp, Relays};
use berth_engine::ports::relay::Relay;
use berth_engine::ports::spec::Proto;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

const SANDBOX_ENV: &str = "BERTH_AGENT_SANDBOXED";

/// Runs `body` in a fresh network namespace by re-executing this test binary for `name`.
fn sandboxed(name: &str, body: impl FnOnce()) {
    if std::env::var_os(SANDBOX_ENV).is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(SANDBOX_ENV, "1")
        .output()
        .expect("run unshare (util-linux); the relay tests need root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "sandboxed {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn loopback6(port: u16) -> SocketAddr {
    SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), port)
}

/// A TCP server on [::1] that echoes each connection until the client half-closes.
fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind(loopback6(0)).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind(loopback6(0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_is_spliced_with_half_close_and_a_removed_port_refuses_at_once() {
    sandboxed(
        "relay::tests::tcp_is_spliced_with_half_close_and_a_removed_port_refuses_at_once",
        || {
            let target = tcp_echo();
            let r = Relay {
                proto: Proto::Tcp,
                host_port: free_port(),
                target,
            };
            let mut relays = Relays::start().unwrap();
            relays.set(&[r]).unwrap();
            assert_eq!(relays.len(), 1);
            let mut c = TcpStream::connect(r.listen()).unwrap();
            c.write_all(b"hello through the relay").unwrap();
            // The echo server answers only once it sees our half-close passed on.
            c.shutdown(Shutdown::Write).unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hello through the relay");
            // Setting the same list again keeps the listener.
            relays.set(&[r]).unwrap();
            TcpStream::connect(r.listen()).unwrap();
            relays.set(&[]).unwrap();
            assert_eq!(relays.len(), 0);
            let e = TcpStream::connect(r.listen()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
            // A port something else holds is reported, and the rest still changes.
            let held = TcpListener::bind(loopback6(0)).unwrap();
            let busy = Relay {
                host_port: held.local_addr().unwrap().port(),
                ..r
            };
            let e = relays.set(&[busy, r]).unwrap_err();
            assert!(e.contains("in use"), "{e}");
            assert_eq!(relays.len(), 1);
        },
    );
}

#[test]
fn udp_flows_get_their_own_socket_until_idle() {
    sandboxed(
        "relay::tests::udp_flows_get_their_own_socket_until_idle",
        || {
            // The "container": replies with the address it saw the datagram come from.
            let server = UdpSocket::bind(loopback6(0)).unwrap();
            let target = server.local_addr().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    let (_, from) = server.recv_from(&mut buf).unwrap();
                    server.send_to(from.to_string().as_bytes(), from).unwrap();
                }
            });
            let listener = UdpSocket::bind(loopback6(0)).unwrap();
            let listen = listener.local_addr().unwrap();
            listener.set_nonblocking(true).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let idle = Duration::from_millis(300);
            let task = {
                let _g = rt.enter();
                let l = tokio::net::UdpSocket::from_std(listener).unwrap();
                rt.spawn(udp::serve(l, target, idle))
            };
            std::thread::spawn(move || rt.block_on(task));
            let client = UdpSocket::bind(loopback6(0)).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            client.connect(listen).unwrap();
            let ask = || {
                client.send(b"?").unwrap();
                let mut buf = [0u8; 64];
                let n = client.recv(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..n]).into_owned()
            };
            let first = ask();
            std::thread::sleep(idle / 3);
            assert_eq!(ask(), first, "same flow within the idle time");
            // Another client gets another flow.
            let other = UdpSocket::bind(loopback6(0)).unwrap();
            other
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            other.send_to(b"?", listen).unwrap();
            let mut buf = [0u8; 64];
            let n = other.recv(&mut buf).unwrap();
            assert_ne!(String::from_utf8_lossy(&buf[..n]), first);
            // After the idle time the flow is gone: the next datagram opens a new one.
            std::thread::sleep(idle * 2);
            assert_ne!(ask(), first, "a new flow after the idle time");
        },
    );
}
