//! The overlay benchmark (bench/overlay/run.sh runs it): on two hosts of the multi-host
//! harness, convergence from `run` returning on host A to the first TCP connect from host
//! B over N endpoints; overlay TCP throughput beside the bare VXLAN reference of
//! `shared/bench/dataplane-baseline.sh` measured in the same run; IP fragment counters
//! around a full-size TCP stream. Prints a JSON object on stdout.
//!
//! The hosts' VTEPs sit on a direct veth pair, like the reference's (`UNDERLAY=bridge` puts
//! them on the harness's underlay bridge instead), so the ratio measures berth's path —
//! container veth, bridge, firewall — over the same underlay.

use berth_tests::cluster::Cluster;
use berth_tests::Sandbox;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sum of `Ip: FragCreates` and `Ip: ReasmReqds` in the calling namespace's /proc/net/snmp.
fn fragments(snmp: &str) -> u64 {
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Ip:")).collect();
    let (names, values) = (lines[0], lines[1]);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter(|(n, _)| *n == "FragCreates" || *n == "ReasmReqds")
        .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
        .sum()
}

fn frag_total(hosts: &[&Sandbox], containers: &[(&Sandbox, &str)]) -> u64 {
    let mut t = 0;
    for h in hosts {
        t += fragments(&h.ok("cat /proc/net/snmp"));
    }
    for (h, c) in containers {
        t += fragments(&h.ok(&format!("berth exec {c} cat /proc/net/snmp")));
    }
    t
}

fn iperf_gbps(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
        / 1e9
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let secs: u64 = std::env::var("T")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let baseline = PathBuf::from(
        std::env::var("BASELINE")
            .unwrap_or_else(|_| "../shared/bench/dataplane-baseline.sh".into()),
    );
    let prober =
        std::fs::canonicalize("bench/overlay/prober.py").expect("run from the repository root");
    assert!(n <= 200, "N must fit a /24 with room");
    let c = match std::env::var("UNDERLAY").as_deref() {
        Ok("bridge") => Cluster::new(2),
        _ => Cluster::pair_with_data_link(),
    };
    let (a, b) = (c.host(1), c.host(2));
    a.berth_ok(&["network", "create", "-d", "overlay", "bench"]);
    let work = b.dir().join("probe");
    std::fs::create_dir_all(&work).expect("probe dir");
    b.berth_ok(&[
        "run",
        "-d",
        "--name",
        "probe",
        "--network",
        "bench",
        "python3",
        "-u",
        &prober.display().to_string(),
        &work.display().to_string(),
    ]);

    // Convergence.
    let mut ms = Vec::new();
    for i in 1..=n {
        let ip = format!("10.0.0.{}", 10 + i);
        let name = format!("s{i}");
        a.berth_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "bench",
            "--ip",
            &ip,
            "socat",
            "TCP-LISTEN:7000,fork,reuseaddr",
            "EXEC:cat",
        ]);
        let t0 = now_ns();
        std::fs::write(work.join("target"), format!("{i} {ip} 7000")).expect("write target");
        let done = work.join(format!("done-{i}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let t1 = loop {
            if let Ok(s) = std::fs::read_to_string(&done) {
                break s.trim().parse::<u128>().expect("time");
            }
            assert!(Instant::now() < deadline, "no connect to {ip} within 10 s");
            std::thread::sleep(Duration::from_micros(200));
        };
        ms.push(t1.saturating_sub(t0) as f64 / 1e6);
    }
    std::fs::write(work.join("target"), "-1 0 0").expect("stop prober");
    let mut sorted = ms.clone();
    sorted.sort_by(|x, y| x.partial_cmp(y).expect("finite"));

    // Throughput and fragments: iperf3 between containers on the two hosts.
    b.berth_ok(&[
        "run",
        "-d",
        "--name",
        "ipsrv",
        "--network",
        "bench",
        "--ip",
        "10.0.0.250",
        "iperf3",
        "-s",
    ]);
    a.berth_ok(&[
        "run",
        "-d",
        "--name",
        "ipcli",
        "--network",
        "bench",
        "sleep",
        "100000",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    // Rounds alternate overlay and reference runs (the machine is noisy); medians compared.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut overlay_runs, mut reference_runs) = (Vec::new(), Vec::new());
    let frag_before = frag_total(&[a, b], &[(a, "ipcli"), (b, "ipsrv")]);
    for _ in 0..rounds {
        let json = a.ok(&format!(
            "berth exec ipcli iperf3 -c 10.0.0.250 -t {secs} -J"
        ));
        overlay_runs.push(iperf_gbps(&json));
        reference_runs.push(run_baseline(&baseline, secs));
    }
    let frag_after = frag_total(&[a, b], &[(a, "ipcli"), (b, "ipsrv")]);
    let overlay = median(&mut overlay_runs.clone());
    let reference = median(&mut reference_runs.clone());
    let mss = a.ok("berth exec ipcli ip link show eth0");
    let mtu: u32 = mss
        .split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .expect("mtu");
    drop(c);
    let out = serde_json::json!({
        "endpoints": n,
        "convergence_ms": {
            "p50": percentile(&sorted, 0.50),
            "p99": percentile(&sorted, 0.99),
            "max": sorted[sorted.len() - 1],
            "all": ms,
        },
        "throughput_gbps": {
            "overlay": overlay,
            "bare_vxlan_reference": reference,
            "ratio": overlay / reference,
            "overlay_runs": overlay_runs,
            "reference_runs": reference_runs,
        },
        "overlay_mtu": mtu,
        "underlay": std::env::var("UNDERLAY").unwrap_or_else(|_| "direct veth".into()),
        "ip_fragments_during_streams": frag_after - frag_before,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    v[v.len() / 2]
}

/// The bare VXLAN reference, in a throwaway namespace of its own.
fn run_baseline(script: &Path, secs: u64) -> f64 {
    assert!(
        script.is_file(),
        "baseline script {} not found: set BASELINE",
        script.display()
    );
    let out = std::process::Command::new("timeout")
        .args([
            "300",
            "unshare",
            "-n",
            "-m",
            "--propagation",
            "private",
            "bash",
        ])
        .arg(script)
        .env("T", secs.to_string())
        .output()
        .expect("run the baseline");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("vxlan_gbps "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no vxlan_gbps in the baseline output: {text}"))
}
