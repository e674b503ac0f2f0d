//! `berth stats`: counters read from the kernel grow by at least what a test sends, the
//! table redraws in place, `--no-stream` prints once.

use berth_tests::Sandbox;
use serde_json::Value;

const SENT: u64 = 300_000;

fn counter(rows: &Value, container: &str, field: &str) -> u64 {
    rows.as_array()
        .expect("stats JSON is a list")
        .iter()
        .find(|r| r["Container"] == container && r["Interface"] == "eth0")
        .unwrap_or_else(|| panic!("no eth0 row for {container}: {rows}"))[field]
        .as_u64()
        .expect("counter is a number")
}

#[test]
fn counters_grow_by_at_least_the_bytes_sent_between_two_containers() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "sink",
        "--network",
        "front",
        "sh",
        "-c",
        "exec socat -u TCP-LISTEN:80,fork,reuseaddr OPEN:/dev/null",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "source",
        "--network",
        "front",
        "sleep",
        "100000",
    ]);
    let sink = sb.ip("sink", "front");
    let before = sb
        .berth(&["stats", "--no-stream", "--format", "json", "sink", "source"])
        .json();
    let mut sent = false;
    for _ in 0..20 {
        let out = sb.sh(&format!(
            "head -c {SENT} /dev/zero | berth exec source timeout 5 socat -u - TCP:{sink}:80,connect-timeout=2"
        ));
        if out.code == 0 {
            sent = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    assert!(sent, "the sink must accept the bytes");
    let after = sb
        .berth(&["stats", "--no-stream", "--format", "json", "sink", "source"])
        .json();
    let grew = |c: &str, f: &str| counter(&after, c, f) - counter(&before, c, f);
    assert!(
        grew("sink", "RxBytes") >= SENT,
        "sink received {}",
        grew("sink", "RxBytes")
    );
    assert!(
        grew("source", "TxBytes") >= SENT,
        "source sent {}",
        grew("source", "TxBytes")
    );
    assert!(grew("sink", "RxPackets") > 0 && grew("source", "TxPackets") > 0);
    let row = after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Container"] == "sink")
        .unwrap();
    assert_eq!(row["Network"], "front");
    for f in [
        "RxErrors",
        "TxErrors",
        "RxDropped",
        "TxDropped",
        "RxRate",
        "TxRate",
    ] {
        assert!(row[f].is_number(), "{f} in {row}");
    }
    // The table prints once, with one row per container interface.
    let table = sb.berth_ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID") && lines[0].contains("RX / TX RATE"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    assert!(!table.contains('\x1b'), "--no-stream does not redraw");
}

#[test]
fn the_live_table_redraws_in_place_until_stopped() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "one", "sleep", "100000"]);
    let out = sb.sh("timeout 3 berth stats one; echo rc=$?");
    let redraws = out.stdout.matches("\x1b[H\x1b[J").count();
    assert!(redraws >= 2, "{} redraws: {:?}", redraws, out.stdout);
    assert_eq!(out.stdout.matches("CONTAINER ID").count(), redraws);
    assert!(
        out.stdout.trim_end().ends_with("rc=124"),
        "runs until stopped"
    );
    let missing = sb.berth(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .starts_with("Error: container nosuch not found"),
        "{missing:?}"
    );
}
