//! The seed scenario: two containers on the default bridge talk over TCP.

use berth_tests::Sandbox;

#[test]
fn second_container_gets_its_line_echoed_by_the_first() {
    let sb = Sandbox::new();
    let id = sb.echo_server("echo", &[], 8080);
    assert_eq!(id.len(), 64, "run -d prints the container id: {id}");
    assert_eq!(sb.ip("echo", "bridge"), "172.17.0.2");
    let out = sb.ok("echo 'hello from another container!' | \
         berth run --rm socat - TCP:172.17.0.2:8080,retry=20,interval=0.1");
    assert_eq!(out, "hello from another container!\n");
    // --rm removed the client; the server is still listed.
    let ps = sb.berth_ok(&["ps", "-a", "--format", "json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let names: Vec<_> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo"]);
}

#[test]
fn the_readme_seed_script_prints_the_reply() {
    let sb = Sandbox::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/seed.sh");
    let out = sb.ok(&format!("bash {script}"));
    assert!(
        out.lines().any(|l| l == "hello from another container!"),
        "seed script output: {out}"
    );
}
