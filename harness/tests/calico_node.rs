//! The emulated calico-node on the seed lab, for real: BIRD sessions to the leafs,
//! blocks in every RIB, Calico-style pods, and resources applied to a running lab.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use calico_lab::calico::ipam::node_blocks;
use calico_lab::{CalicoState, Lab, LabOptions, Target, Topology};

const BUDGET: Duration = Duration::from_secs(60);

/// Applies one of the seed's steps from `fixtures/calico/`.
async fn apply(lab: &mut Lab, name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/calico")
        .join(name);
    lab.apply_file(&path).await.unwrap()
}

/// A node's BGP sessions as `<protocol> <state>`.
async fn bgp_names(lab: &Lab, node: &str) -> Vec<String> {
    lab.sessions(node)
        .await
        .unwrap()
        .into_iter()
        .map(|(name, state)| format!("{name} {state}"))
        .collect()
}

async fn lab(name: &str, calico: CalicoState) -> Lab {
    let options = LabOptions {
        // The process id keeps concurrent test runs apart.
        name: Some(format!("t{}-{name}", std::process::id())),
        calico,
        ..LabOptions::default()
    };
    let lab = Lab::up(Topology::seed(), options).await.unwrap();
    lab.wait_for_fabric(BUDGET).await.unwrap();
    lab.wait_for_calico(BUDGET).await.unwrap();
    lab
}

/// Next hops of the kernel route to `prefix` on `device` (empty: no such route).
async fn next_hops(lab: &Lab, device: &str, prefix: &str) -> (String, BTreeSet<Ipv4Addr>) {
    let out = lab
        .exec(
            &lab.target(device).unwrap(),
            &["ip", "-4", "route", "show", prefix],
        )
        .await
        .unwrap();
    let hops = out
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .filter_map(|w| w[1].parse().ok())
        .collect();
    (out.stdout, hops)
}

/// Polls `check` (which returns what is still wrong) until it is empty.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let started = Instant::now();
    loop {
        let wrong = check().await;
        if wrong.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < BUDGET,
            "{what} after {BUDGET:?}:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_calico_seed_nodes_peer_with_their_leaf_and_blocks_reach_every_rib() {
    let lab = lab("calico-seed", CalicoState::Configured).await;
    let t = lab.topology().clone();

    for (rack, node) in t.nodes() {
        let leaf = format!(
            "Node_{} Established",
            rack.gateway.to_string().replace('.', "_")
        );
        assert_eq!(bgp_names(&lab, &node.name).await, [leaf], "{}", node.name);
    }

    let blocks = |node: &str| node_blocks(lab.calico(), node)[0].cidr.to_string();
    eventually("blocks in the leafs' and nodes' kernel tables", || async {
        let mut wrong = Vec::new();
        for rack in &t.racks {
            let spines: BTreeSet<Ipv4Addr> = t
                .bgp_neighbors(&rack.leaf)
                .iter()
                .filter(|n| !n.rr_client)
                .map(|n| n.address)
                .collect();
            for (other, node) in t.nodes() {
                let (route, hops) = next_hops(&lab, &rack.leaf, &blocks(&node.name)).await;
                let ok = if other.name == rack.name {
                    hops == BTreeSet::from([node.address])
                } else {
                    !hops.is_empty() && hops.is_subset(&spines)
                };
                if !ok {
                    wrong.push(format!("{}: {} -> {route:?}", rack.leaf, node.name));
                }
            }
        }
        for (_, node) in t.nodes() {
            let out = lab
                .exec(&Target::Node(node.name.clone()), &["ip", "-4", "route"])
                .await
                .unwrap()
                .stdout;
            let own = format!("blackhole {} proto bird", blocks(&node.name));
            if !out.contains(&own) {
                wrong.push(format!("{}: no '{own}' in\n{out}", node.name));
            }
            for (_, other) in t.nodes().filter(|(_, o)| o.name != node.name) {
                let (route, hops) = next_hops(&lab, &node.name, &blocks(&other.name)).await;
                if hops.is_empty() || !route.contains("proto bird") {
                    wrong.push(format!("{}: {} -> {route:?}", node.name, other.name));
                }
            }
        }
        wrong
    })
    .await;

    // Two pods on one node, through the node's routing table.
    let first_node = &t.racks[0].nodes[0].name;
    let on_node: Vec<_> = lab
        .pods()
        .iter()
        .filter(|p| &p.node == first_node)
        .collect();
    let [a, b] = on_node[..] else {
        panic!("two pods on {first_node}: {on_node:?}")
    };
    let ping = lab
        .exec(
            &Target::Pod(a.name.clone()),
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", &b.ip.to_string()],
        )
        .await
        .unwrap();
    assert!(
        ping.stdout.contains("3 received"),
        "{a:?} -> {b:?}: {}",
        ping.stdout
    );
    // And across racks.
    let far = lab
        .pods()
        .iter()
        .find(|p| !t.racks[0].nodes.iter().any(|n| n.name == p.node))
        .unwrap();
    let ping = lab
        .exec(
            &Target::Pod(a.name.clone()),
            &[
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                &far.ip.to_string(),
            ],
        )
        .await
        .unwrap();
    assert!(
        ping.stdout.contains("3 received"),
        "{a:?} -> {far:?}: {}",
        ping.stdout
    );
    lab.down().await.unwrap();
}

/// The seed's own order on a running lab: Calico installed (full mesh), mesh
/// disabled, then Node AS numbers and the BGPPeers; then service advertisement.
#[tokio::test(flavor = "multi_thread")]
async fn lab_calico_seed_sequence_moves_from_mesh_to_leaf_route_reflectors() {
    let mut lab = lab("calico-steps", CalicoState::Installed).await;
    let t = lab.topology().clone();
    let others = t.nodes().count() - 1;
    for (_, node) in t.nodes() {
        let names = bgp_names(&lab, &node.name).await;
        assert_eq!(names.len(), others, "{}: {names:?}", node.name);
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("Mesh_") && n.ends_with("Established")),
            "{names:?}"
        );
    }

    let changed = apply(&mut lab, "1-disable-full-mesh.yaml").await;
    assert_eq!(changed.len(), t.nodes().count(), "every node re-rendered");
    lab.wait_for_calico(BUDGET).await.unwrap();
    for (_, node) in t.nodes() {
        assert_eq!(bgp_names(&lab, &node.name).await, Vec::<String>::new());
    }

    apply(&mut lab, "2-nodes.yaml").await;
    apply(&mut lab, "3-bgppeers.yaml").await;
    lab.wait_for_calico(BUDGET).await.unwrap();
    for (rack, node) in t.nodes() {
        let names = bgp_names(&lab, &node.name).await;
        let leaf = format!(
            "Node_{} Established",
            rack.gateway.to_string().replace('.', "_")
        );
        assert_eq!(names, [leaf], "{}", node.name);
    }

    // Service CIDRs: every node advertises them, so each leaf has a path per rack node.
    apply(&mut lab, "4-service-advertisement.yaml").await;
    let services = ["10.96.0.0/16", "20.0.0.0/16", "30.0.0.0/16"];
    eventually("service CIDRs from every rack node on its leaf", || async {
        let mut wrong = Vec::new();
        for rack in &t.racks {
            for cidr in services {
                let out = lab
                    .exec(
                        &Target::Router(rack.leaf.clone()),
                        &["vtysh", "-c", &format!("show bgp ipv4 unicast {cidr} json")],
                    )
                    .await
                    .unwrap()
                    .stdout;
                let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                let peers: BTreeSet<String> = json["paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["peer"]["peerId"].as_str().map(String::from))
                    .collect();
                for node in &rack.nodes {
                    if !peers.contains(&node.address.to_string()) {
                        wrong.push(format!(
                            "{}: {cidr}: no path from {} ({peers:?})",
                            rack.leaf, node.name
                        ));
                    }
                }
            }
        }
        wrong
    })
    .await;
    // Not programmed into any node's own kernel table (kube-proxy owns service IPs).
    for (_, node) in t.nodes() {
        let routes = lab.routes(&node.name).await.unwrap();
        for cidr in services {
            assert!(
                !routes.contains_key(cidr),
                "{}: {cidr} in {routes:?}",
                node.name
            );
        }
    }
    lab.down().await.unwrap();
}

/// `calico.version` shows in the fabric: from v3.32 calico-node sets LOCAL_PREF from
/// the route's metric (2147483647 - 1024), where v3.23 leaves BGP's default 100.
#[tokio::test(flavor = "multi_thread")]
async fn lab_calico_version_decides_the_local_pref_a_leaf_sees() {
    let at = |version: &'static str, name: &'static str| async move {
        let text = calico_lab::topology::SEED_TOPOLOGY_YAML
            .replace("version: v3.23.2", &format!("version: {version}"));
        let t = Topology::from_yaml(&text, "seed").unwrap();
        assert_eq!(t.calico_version().to_string(), version);
        let options = LabOptions {
            name: Some(format!("t{}-{name}", std::process::id())),
            ..LabOptions::default()
        };
        let lab = Lab::up(t, options).await.unwrap();
        lab.converge(BUDGET).await.unwrap();
        let t = lab.topology().clone();
        let rack = &t.racks[0];
        let block = node_blocks(lab.calico(), &rack.nodes[0].name)[0].cidr;
        let table = lab.bgp_table(&rack.leaf).await.unwrap();
        let paths = table.paths(&block).to_vec();
        lab.down().await.unwrap();
        assert!(!paths.is_empty(), "{version}: {block} on {}", rack.leaf);
        paths.iter().map(|p| p.local_pref).collect::<Vec<_>>()
    };
    let (old, new) = tokio::join!(at("v3.23.2", "lp-old"), at("v3.32.1", "lp-new"));
    assert!(old.iter().all(|lp| *lp == Some(100)), "v3.23.2: {old:?}");
    assert!(
        new.iter().all(|lp| *lp == Some(2_147_482_623)),
        "v3.32.1: {new:?}"
    );
}

/// A lab declared at any supported minor version (its .0 release) comes up on
/// upstream BIRD and passes every reading scenario; the disruptive ones run at three
/// versions in CI (seed, shared-leaf, three-racks).
#[tokio::test(flavor = "multi_thread")]
async fn lab_every_calico_minor_version_comes_up_and_passes_the_reading_suite() {
    use calico_lab::calico::version::{NEWEST_MINOR, OLDEST_MINOR};
    use calico_lab::scenario::SCENARIOS;
    let suite: Vec<_> = SCENARIOS.iter().filter(|s| !s.disrupts).collect();
    let mut failures = Vec::new();
    for minor in OLDEST_MINOR..=NEWEST_MINOR {
        let version = format!("v3.{minor}.0");
        let text = calico_lab::topology::SEED_TOPOLOGY_YAML
            .replace("version: v3.23.2", &format!("version: {version}"));
        let t = Topology::from_yaml(&text, "seed").unwrap();
        let options = LabOptions {
            name: Some(format!("t{}-v{minor}", std::process::id())),
            ..LabOptions::default()
        };
        let mut lab = Lab::up(t, options).await.unwrap();
        let report = calico_lab::job::check_lab(
            &mut lab,
            &suite,
            BUDGET,
            &calico_lab::lab::Progress::default(),
        )
        .await;
        lab.down().await.unwrap();
        let report = report.unwrap();
        println!(
            "{version}: {} of {} reading scenarios passed",
            report
                .outcomes
                .iter()
                .filter(|o| o.failure.is_none())
                .count(),
            report.outcomes.len()
        );
        for o in report.outcomes.iter().filter(|o| o.failure.is_some()) {
            failures.push(format!("{version} {}: {:?}", o.name, o.failure));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
