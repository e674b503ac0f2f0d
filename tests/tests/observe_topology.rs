//! `berth topology`: with three networks, the JSON matches the store (`inspect`) and the
//! kernel (`ip -j`); the SVG parses as SVG and renders to a non-empty PNG.

use berth_tests::Sandbox;
use serde_json::Value;

fn three_networks(sb: &Sandbox) {
    sb.berth_ok(&["network", "create", "front"]);
    sb.berth_ok(&["network", "create", "--internal", "back"]);
    sb.berth_ok(&["network", "create", "-o", "icc=false", "quiet"]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "-p",
        "8080:80",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "front",
        "--network",
        "back",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "lone",
        "--network",
        "quiet",
        "sleep",
        "100000",
    ]);
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {list}"))
}

#[test]
fn json_matches_the_store_and_the_kernel_for_three_networks() {
    let sb = Sandbox::new();
    three_networks(&sb);
    // Take one endpoint down behind berth's back: the topology must show the kernel's view.
    let api_back = sb.inspect("api")["Networks"]["back"]["HostInterface"]
        .as_str()
        .unwrap()
        .to_string();
    sb.ok(&format!("ip link set {api_back} down"));
    let t: Value = serde_json::from_str(&sb.berth_ok(&["topology", "--format", "json"])).unwrap();
    assert_eq!(t["hosts"].as_array().unwrap().len(), 1);

    for name in ["front", "back", "quiet"] {
        let store = &sb
            .ok(&format!("berth network inspect {name}"))
            .parse::<Value>()
            .unwrap()[0];
        let n = by_name(&t["networks"], name);
        assert_eq!(n["id"], store["Id"]);
        assert_eq!(n["subnets"][0], store["Subnets"][0]["Subnet"]);
        assert_eq!(n["gateways"][0], store["Subnets"][0]["Gateway"]);
        assert_eq!(n["internal"], store["Internal"]);
        assert_eq!(
            n["icc"].to_string(),
            store["Options"]["icc"].as_str().unwrap()
        );
        assert!(
            n["vni"].is_null() && n["vxlan"].is_null(),
            "bridge networks have no VXLAN"
        );
        let br = store["Options"]["bridge_name"].as_str().unwrap();
        assert_eq!(n["bridge"]["name"], br);
        let link: Value = sb.ok(&format!("ip -j link show {br}")).parse().unwrap();
        assert_eq!(n["bridge"]["present"], true);
        assert_eq!(
            n["bridge"]["up"],
            link[0]["flags"].as_array().unwrap().contains(&"UP".into())
        );
        assert_eq!(n["bridge"]["mtu"], link[0]["mtu"]);
    }
    assert_eq!(
        by_name(&t["networks"], "bridge")["bridge"]["present"],
        false,
        "berth0 has no endpoints"
    );

    let mut edges = 0;
    for c in ["web", "api", "db", "lone"] {
        let ins = sb.inspect(c);
        let node = by_name(&t["containers"], c);
        assert_eq!(node["id"], ins["Id"]);
        assert_eq!(node["state"], "running");
        let eps = node["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), ins["Networks"].as_object().unwrap().len(), "{c}");
        for ep in eps {
            let net = ep["network"].as_str().unwrap();
            let want = &ins["Networks"][net];
            assert_eq!(ep["ifname"], want["Interface"]);
            assert_eq!(ep["host_ifname"], want["HostInterface"]);
            assert_eq!(ep["mac"], want["MacAddress"]);
            assert_eq!(
                ep["addresses"][0],
                format!(
                    "{}/{}",
                    want["IPAddress"].as_str().unwrap(),
                    want["IPPrefixLen"]
                )
            );
            let inside: Value = sb
                .ok(&format!(
                    "berth exec {c} ip -j addr show {}",
                    want["Interface"].as_str().unwrap()
                ))
                .parse()
                .unwrap();
            let kernel: Vec<String> = inside[0]["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            assert_eq!(
                ep["kernel_addresses"],
                serde_json::json!(kernel),
                "{c} on {net}"
            );
            let host: Value = sb
                .ok(&format!(
                    "ip -j link show {}",
                    want["HostInterface"].as_str().unwrap()
                ))
                .parse()
                .unwrap();
            let up = host[0]["operstate"] != "DOWN"
                && host[0]["flags"].as_array().unwrap().contains(&"UP".into());
            assert_eq!(ep["host_link_up"], up, "{c} on {net}");
            let master = host[0]["master"].as_str().unwrap_or_default();
            assert_eq!(
                ep["attached"],
                master == by_name(&t["networks"], net)["bridge"]["name"]
            );
            edges += 1;
        }
    }
    assert_eq!(t["links"].as_array().unwrap().len(), edges);
    let api = by_name(&t["containers"], "api");
    let down = api["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["network"] == "back")
        .unwrap();
    assert_eq!(
        down["host_link_up"], false,
        "the veth taken down shows down"
    );
    let web = by_name(&t["containers"], "web");
    assert_eq!(web["ports"][0]["host_port"], 8080);
    assert_eq!(web["ports"][0]["container_port"], 80);
    assert_eq!(web["ports"][0]["protocol"], "tcp");
}

#[test]
fn text_dot_and_svg_render_and_the_svg_becomes_a_png() {
    let sb = Sandbox::new();
    for (tool, package) in [("dot", "graphviz"), ("rsvg-convert", "librsvg2-bin")] {
        let found = sb.sh(&format!("command -v {tool}")).code == 0;
        assert!(
            found,
            "{tool} not found: install {package} (scripts/deps.sh does)"
        );
    }
    three_networks(&sb);
    let text = sb.berth_ok(&["topology"]);
    for want in [
        "network front (bridge",
        "internal",
        "icc off",
        "web [running] eth0",
        "ports 0.0.0.0:8080->80/tcp",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let dot = sb.berth_ok(&["topology", "--format", "dot"]);
    assert!(
        dot.starts_with("digraph berth {") && dot.contains("\"net:back\" -> \"ctr:db\""),
        "{dot}"
    );
    let dir = sb.root();
    let svg = dir.join("t.svg");
    let png = dir.join("t.png");
    sb.ok(&format!("berth topology --format svg > {}", svg.display()));
    // Parses as XML whose root element is <svg>, and names the containers.
    let parsed = sb.ok(&format!(
        "python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.tag); print(\" \".join(t.text or \"\" for t in r.iter()))' {}",
        svg.display()
    ));
    assert_eq!(
        parsed.lines().next(),
        Some("{http://www.w3.org/2000/svg}svg"),
        "{parsed}"
    );
    for name in ["web", "api", "db", "lone", "front", "quiet"] {
        assert!(parsed.contains(name), "{name} in the SVG text");
    }
    sb.ok(&format!(
        "rsvg-convert {} -o {}",
        svg.display(),
        png.display()
    ));
    let bytes = std::fs::read(&png).expect("PNG written");
    assert!(bytes.len() > 1000, "PNG of {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(width > 100 && height > 100, "{width}x{height}");
    // Without graphviz, SVG is refused with what to install.
    let out = sb.sh("BERTH_DOT=/nonexistent/dot berth topology --format svg");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("install graphviz"), "{out:?}");
}

/// 50 containers on 5 networks (created, not started: the picture needs no processes).
fn fifty_containers(sb: &Sandbox) -> Vec<String> {
    let mut script = String::from("export BERTH_NO_AGENT=1; set -e\n");
    for n in ["web", "api", "data", "jobs", "admin"] {
        script.push_str(&format!("berth network create {n} >/dev/null\n"));
    }
    let mut names = Vec::new();
    for i in 0..50 {
        let net = ["web", "api", "data", "jobs", "admin"][i % 5];
        let name = format!("{net}-{:02}", i / 5 + 1);
        script.push_str(&format!(
            "berth create --name {name} --network {net} sleep 1 >/dev/null\n"
        ));
        names.push(name);
    }
    sb.ok(&script);
    names
}

#[test]
fn fifty_containers_on_five_networks_render_to_svg_and_png() {
    let sb = Sandbox::new();
    let names = fifty_containers(&sb);
    let dir = sb.root();
    let (svg, png) = (dir.join("50.svg"), dir.join("50.png"));
    sb.ok(&format!("berth topology --format svg > {}", svg.display()));
    let parsed = sb.ok(&format!(
        "python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.tag); print(\"\\n\".join(t.text or \"\" for t in r.iter()))' {}",
        svg.display()
    ));
    let mut lines = parsed.lines();
    assert_eq!(lines.next(), Some("{http://www.w3.org/2000/svg}svg"));
    let texts: Vec<&str> = lines.collect();
    for name in &names {
        assert!(texts.contains(&name.as_str()), "{name} in the SVG");
    }
    sb.ok(&format!(
        "rsvg-convert {} -o {}",
        svg.display(),
        png.display()
    ));
    let bytes = std::fs::read(&png).expect("PNG written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        bytes.len() > 10_000 && width > 300 && height > 300,
        "{width}x{height}"
    );
    if let Some(out) = std::env::var_os("BERTH_KEEP_SVG") {
        std::fs::copy(&svg, out).expect("copy the SVG");
    }
}
