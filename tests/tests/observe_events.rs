//! `berth events`: a scripted scenario's events come back in order, with `--since`,
//! `--until`, JSON, following new events, and the agent's firewall repair.

use berth_tests::Sandbox;
use serde_json::Value;
use std::time::{Duration, Instant};

fn events(sb: &Sandbox, args: &str) -> Vec<Value> {
    sb.ok(&format!("berth events --format json {args}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn summary(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| {
            let mut s = format!(
                "{} {} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap(),
                e["Actor"]["Name"].as_str().unwrap()
            );
            if let Some(c) = e["Actor"]["Attributes"]["container"].as_str() {
                s.push_str(&format!(" {c}"));
            }
            s
        })
        .collect()
}

#[test]
fn a_scripted_scenario_comes_back_in_order() {
    let sb = Sandbox::new();
    sb.ok("export BERTH_NO_AGENT=1; \
           berth network create front && berth network create back && \
           berth run -d --name web --network front sleep 100000 && \
           berth network connect back web && berth network disconnect back web && \
           berth stop -t 1 web && berth rm web && berth network rm back");
    let evs = events(&sb, "--since 0 --until 0s");
    assert_eq!(
        summary(&evs),
        [
            "network create front",
            "network create back",
            "container create web",
            "network connect front web",
            "container start web",
            "network connect back web",
            "network disconnect back web",
            "container die web",
            "container stop web",
            "network disconnect front web",
            "container remove web",
            "network remove back",
        ]
    );
    let times: Vec<i64> = evs
        .iter()
        .map(|e| e["timeNano"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timestamps in order: {times:?}"
    );
    assert!(evs[2]["Time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(evs[2]["Actor"]["Attributes"]["networks"], "front");

    // --since cuts at a time: from the first disconnect on.
    let cut = evs[6]["Time"].as_str().unwrap();
    let later = events(&sb, &format!("--since {cut} --until 0s"));
    assert_eq!(summary(&later), summary(&evs[6..]));
    // The table form: one line per event, time first.
    let table = sb.ok("berth events --since 0 --until 0s");
    assert_eq!(table.lines().count(), evs.len());
    assert!(
        table.lines().nth(2).unwrap().contains(" container create "),
        "{table}"
    );
    let bad = sb.berth(&["events", "--since", "yesterday"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.starts_with("Error: invalid time \"yesterday\""),
        "{bad:?}"
    );
}

#[test]
fn a_follower_sees_new_events_and_the_agents_firewall_repair() {
    let sb = Sandbox::new();
    let log = sb.root().join("follow.log");
    std::fs::create_dir_all(sb.root()).unwrap();
    sb.berth_ok(&["network", "create", "before"]);
    sb.spawn(&format!(
        "exec berth events --format json > {}",
        log.display()
    ));
    // The follower starts from now: wait until it runs, then act.
    std::thread::sleep(Duration::from_millis(500));
    sb.berth_ok(&[
        "run", "-d", "--name", "web", "-p", "8080:80", "sleep", "100000",
    ]);
    sb.ok("nft flush ruleset");
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let evs: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if summary(&evs).iter().any(|s| s == "firewall repair berth") || Instant::now() > deadline {
            break evs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let s = summary(&got);
    assert!(
        !s.iter().any(|e| e.contains("before")),
        "only new events: {s:?}"
    );
    assert_eq!(
        &s[..3],
        [
            "container create web",
            "network connect bridge web",
            "container start web"
        ],
        "{s:?}"
    );
    assert!(s.contains(&"firewall repair berth".to_string()), "{s:?}");
    // The repair really happened.
    assert!(sb.ok("nft list table inet berth").contains("8080"));
}
