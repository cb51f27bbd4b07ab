//! The scenarios' judgement, offline: a recording of the healthy seed lab passes
//! every scenario, and each variant broken in exactly one place fails exactly the
//! scenario that claims that property, with the diagnosis naming it. A check that
//! cannot see a device fails; it never passes on an empty observation.

use std::path::Path;

use calico_lab::backend::replay::Replay;
use calico_lab::backend::Pod;
use calico_lab::calico::emulated::{pods, starting_resources};
use calico_lab::diagnosis::{Diagnosis, Role};
use calico_lab::scenario::{self, Outcome};
use calico_lab::{CalicoState, Lab, Target, Topology};

const NODE: &str = "calico-bgp-rr-worker";
const SHOW_PROTOCOLS: &str = "birdc show protocols";
const ROUTES: &str = "ip -j -4 route";
const BGP_TABLE: &str = "vtysh -c show bgp ipv4 unicast json";

fn all_pods() -> Vec<Pod> {
    let t = Topology::seed();
    pods(
        &t,
        &starting_resources(&t, CalicoState::Configured).unwrap(),
    )
}

/// The healthy recording, on a lab holding `pods`.
fn healthy_with(pods: Vec<Pod>) -> Replay {
    let t = Topology::seed();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/calico-bgp-rr");
    Replay::new(&t, pods).from_dir(&t, &dir).unwrap()
}

fn healthy() -> Replay {
    healthy_with(all_pods())
}

/// Changes one recorded answer with `edit`.
fn edit(replay: Replay, target: Target, command: &str, edit: impl Fn(&str) -> String) -> Replay {
    let before = replay
        .recorded(&target, command)
        .unwrap_or_else(|| panic!("{target}: `{command}` is recorded"))
        .stdout
        .clone();
    let after = edit(&before);
    assert_ne!(before, after, "the edit changed nothing");
    replay.answer(target, command, &after)
}

async fn run(replay: Replay, name: &str) -> Outcome {
    let t = Topology::seed();
    let calico = starting_resources(&t, CalicoState::Configured).unwrap();
    let mut lab = Lab::with_backend("replay", t, calico, Box::new(replay))
        .await
        .unwrap();
    // Artifacts of failures go to the tests' scratch folder, not the workspace's.
    std::env::set_var("CALICO_LAB_ARTIFACTS", env!("CARGO_TARGET_TMPDIR"));
    let s = scenario::find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    scenario::run(&mut lab, s).await
}

fn failure(outcome: &Outcome) -> &Diagnosis {
    &outcome
        .failure
        .as_ref()
        .unwrap_or_else(|| {
            panic!(
                "{} passed on a broken lab: {}",
                outcome.name, outcome.report
            )
        })
        .diagnosis
}

#[tokio::test]
async fn every_scenario_passes_on_the_healthy_recording() {
    // Fault scenarios break a live lab and time its recovery: a recording cannot
    // answer them; they run on real labs (the scenario suite, broken_lab.rs).
    for s in scenario::SCENARIOS.iter().filter(|s| !s.disrupts) {
        let outcome = run(healthy(), s.name).await;
        assert!(outcome.passed(), "{}: {:?}", s.name, outcome.failure);
        assert!(
            outcome.skipped.is_none(),
            "{}: {:?}",
            s.name,
            outcome.skipped
        );
    }
}

#[tokio::test]
async fn a_node_session_not_established_is_no_session_on_that_node() {
    let broken = edit(
        healthy(),
        Target::CalicoNode(NODE.into()),
        SHOW_PROTOCOLS,
        sessions_down,
    );
    let outcome = run(broken, "bgp_neighbors_match_topology").await;
    match failure(&outcome) {
        Diagnosis::NoSession {
            device,
            session,
            state,
            ..
        } => {
            assert_eq!(device, NODE);
            assert_eq!(session, "Node_10_1_5_1");
            assert_eq!(state.as_deref(), Some("Active"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn bird_not_answering_fails_the_mesh_scenario_instead_of_counting_zero() {
    let broken = healthy().error(
        Target::CalicoNode(NODE.into()),
        SHOW_PROTOCOLS,
        "container is gone (removed)",
    );
    let outcome = run(broken, "no_node_to_node_mesh").await;
    match failure(&outcome) {
        Diagnosis::ObservationFailed(e) => assert_eq!(e.device, NODE, "{e}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn bird_running_without_its_sessions_fails_the_mesh_scenario() {
    let broken = edit(
        healthy(),
        Target::CalicoNode(NODE.into()),
        SHOW_PROTOCOLS,
        |text| {
            text.lines()
                .filter(|l| !l.starts_with("Node_"))
                .map(|l| format!("{l}\n"))
                .collect()
        },
    );
    let outcome = run(broken, "no_node_to_node_mesh").await;
    assert!(
        matches!(failure(&outcome), Diagnosis::NoSession { device, .. } if device == NODE),
        "{:?}",
        outcome.failure
    );
}

#[tokio::test]
async fn a_mesh_session_is_mesh_differs_and_an_unexpected_session() {
    let mesh = "Mesh_10_1_8_10 BGP      master   up     20:43:22    Established   \n";
    let broken = edit(
        healthy(),
        Target::CalicoNode(NODE.into()),
        SHOW_PROTOCOLS,
        |text| format!("{text}{mesh}"),
    );
    let outcome = run(broken.clone(), "no_node_to_node_mesh").await;
    match failure(&outcome) {
        Diagnosis::MeshDiffers {
            node,
            running,
            wanted,
        } => {
            assert_eq!(node, NODE);
            assert_eq!(running, &["Mesh_10_1_8_10"]);
            assert_eq!(*wanted, 0);
        }
        other => panic!("{other}"),
    }
    let outcome = run(broken, "bgp_neighbors_match_topology").await;
    assert!(
        matches!(failure(&outcome), Diagnosis::UnexpectedSession { session, .. } if session == "Mesh_10_1_8_10"),
        "{:?}",
        outcome.failure
    );
}

#[tokio::test]
async fn a_leaf_with_one_spine_next_hop_where_the_design_gives_two_fails_routes() {
    // leaf0 reaches worker3's block (rack1) over one spine only: no ECMP.
    let broken = edit(healthy(), Target::Router("leaf0".into()), ROUTES, |text| {
        let mut routes: serde_json::Value = serde_json::from_str(text).unwrap();
        for r in routes.as_array_mut().unwrap() {
            if r["dst"] == "10.244.0.192/26" {
                let first = r["nexthops"][0].clone();
                r.as_object_mut().unwrap().remove("nexthops");
                r["gateway"] = first["gateway"].clone();
                r["dev"] = first["dev"].clone();
            }
        }
        routes.to_string()
    });
    let outcome = run(broken, "routes_match_topology").await;
    match failure(&outcome) {
        Diagnosis::RouteMissing {
            role,
            device,
            prefix,
            want,
            found,
            ..
        } => {
            assert_eq!(*role, Role::Leaf);
            assert_eq!(device, "leaf0");
            assert_eq!(prefix.to_string(), "10.244.0.192/26");
            assert_eq!(want, "via 10.1.10.2 and 10.1.12.2");
            assert_eq!(found, "via 10.1.10.2");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_extra_pod_block_route_fails_routes() {
    let broken = edit(healthy(), Target::Node(NODE.into()), ROUTES, |text| {
        let mut routes: serde_json::Value = serde_json::from_str(text).unwrap();
        routes.as_array_mut().unwrap().push(serde_json::json!({
            "dst": "10.244.1.0/26", "gateway": "10.1.5.1", "dev": "net0",
            "protocol": "bird", "flags": []
        }));
        routes.to_string()
    });
    let outcome = run(broken, "routes_match_topology").await;
    match failure(&outcome) {
        Diagnosis::ExtraRoute { device, prefix, .. } => {
            assert_eq!(device, NODE);
            assert_eq!(prefix.to_string(), "10.244.1.0/26");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn routes_that_cannot_be_read_fail_routes() {
    let broken = healthy().error(Target::Router("spine1".into()), ROUTES, "not running");
    let outcome = run(broken, "routes_match_topology").await;
    assert!(
        matches!(failure(&outcome), Diagnosis::ObservationFailed(e) if e.device == "spine1"),
        "{:?}",
        outcome.failure
    );
}

/// `show protocols` with every BGP session down: each `up <since> Established`
/// line, whenever it was recorded, reads `start <since> Active`.
fn sessions_down(text: &str) -> String {
    text.lines()
        .map(|l| match l.contains("Established") {
            true => l
                .replacen("up     ", "start  ", 1)
                .replace("Established", "Active"),
            false => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect()
}

/// The command `observe::ping` runs from one pod to another.
fn ping_command(to: &str) -> String {
    format!("ping -c 3 -i 0.05 -W 1 {to}")
}

#[tokio::test]
async fn lost_packets_fail_the_ping_with_the_pair_named() {
    let pod = "calico-bgp-rr-worker-pod1";
    let to = "10.244.0.65"; // worker-pod2
    let broken = edit(
        healthy(),
        Target::Pod(pod.into()),
        &ping_command(to),
        |text| {
            text.replace(
                "3 received, 0% packet loss",
                "1 received, 66.6667% packet loss",
            )
        },
    );
    let outcome = run(broken, "same_host_ping").await;
    match failure(&outcome) {
        Diagnosis::PingFailed {
            from, to, summary, ..
        } => {
            assert_eq!(from, pod);
            assert_eq!(to, "calico-bgp-rr-worker-pod2");
            assert_eq!(summary, "1/3 received");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn cross_rack_traffic_over_one_spine_only_is_no_ecmp() {
    // Every trace from rack0 crosses spine0 (10.1.10.2) instead of spine1 (10.1.12.2).
    let mut broken = healthy();
    let t = Topology::seed();
    let all = all_pods();
    for from in all
        .iter()
        .filter(|p| t.racks[0].nodes.iter().any(|n| n.name == p.node))
    {
        for to in all
            .iter()
            .filter(|p| t.racks[1].nodes.iter().any(|n| n.name == p.node))
        {
            let command = format!("traceroute -n -w 1 -q 1 -m 10 {}", to.ip);
            let target = Target::Pod(from.name.clone());
            let text = broken.recorded(&target, &command).unwrap().stdout.clone();
            broken = broken.answer(target, &command, &text.replace("10.1.12.2", "10.1.10.2"));
        }
    }
    let outcome = run(broken, "cross_rack_path_crosses_one_spine").await;
    match failure(&outcome) {
        Diagnosis::NoEcmp {
            leaf, used, spines, ..
        } => {
            assert_eq!(leaf, "leaf0");
            assert_eq!(used, &["spine0"]);
            assert_eq!(spines, &["spine0", "spine1"]);
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_path_through_another_device_is_path_differs() {
    let from = "calico-bgp-rr-worker-pod1";
    let command = "traceroute -n -w 1 -q 1 -m 10 10.244.0.0"; // control-plane-pod1, same rack
    let broken = edit(healthy(), Target::Pod(from.into()), command, |text| {
        text.replace(" 1  10.1.5.11", " 1  10.1.5.11  0.1 ms\n 2  10.1.5.1")
    });
    let outcome = run(broken, "same_rack_path_stays_in_rack").await;
    match failure(&outcome) {
        Diagnosis::PathDiffers { from: f, got, .. } => {
            assert_eq!(f, from);
            assert!(got.contains("leaf0"), "{got}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_invalid_service_path_fails_service_advertisement() {
    let broken = edit(
        healthy(),
        Target::Router("leaf1".into()),
        BGP_TABLE,
        |text| {
            let mut table: serde_json::Value = serde_json::from_str(text).unwrap();
            for path in table["routes"]["10.96.0.0/16"].as_array_mut().unwrap() {
                path["valid"] = serde_json::Value::Bool(false);
            }
            table.to_string()
        },
    );
    let outcome = run(broken, "service_cidrs_advertised").await;
    match failure(&outcome) {
        Diagnosis::RouteMissing {
            device, prefix, of, ..
        } => {
            assert_eq!(device, "leaf1");
            assert_eq!(prefix.to_string(), "10.96.0.0/16");
            assert_eq!(of, "service CIDR");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn nothing_to_check_is_a_skip_with_its_reason_never_a_pass() {
    let one: Vec<Pod> = all_pods().into_iter().take(1).collect();
    for (name, reason) in [
        ("all_pairs_reachability", "1 pod(s)"),
        ("same_host_ping", "no same-host pod pair"),
        ("cross_rack_ping", "no cross-rack pod pair"),
    ] {
        let outcome = run(healthy_with(one.clone()), name).await;
        let skipped = outcome
            .skipped
            .as_deref()
            .unwrap_or_else(|| panic!("{name} did not skip: {:?}", outcome.failure));
        assert!(skipped.contains(reason), "{name}: {skipped}");
    }
}

#[tokio::test]
async fn a_data_path_failure_is_explained_by_the_broken_control_plane() {
    // The ping fails, and the leaf lost the node's session: the diagnosis is the
    // session, the ping is in the detail.
    let pod = "calico-bgp-rr-worker-pod1";
    let broken = edit(
        healthy(),
        Target::Pod(pod.into()),
        &ping_command("10.244.0.65"),
        |text| text.replace("3 received, 0% packet loss", "0 received, 100% packet loss"),
    );
    let broken = edit(
        broken,
        Target::CalicoNode(NODE.into()),
        SHOW_PROTOCOLS,
        sessions_down,
    );
    let outcome = run(broken, "same_host_ping").await;
    assert!(
        matches!(failure(&outcome), Diagnosis::NoSession { device, .. } if device == NODE),
        "{:?}",
        outcome.failure
    );
    let detail = &outcome.failure.as_ref().unwrap().detail;
    assert!(detail.starts_with("ping failed: "), "{detail}");
    let artifacts = outcome.artifacts.expect("artifacts written");
    assert!(artifacts.join("diagnosis.json").exists());
}

#[tokio::test]
async fn a_recording_replays_what_was_recorded_and_refuses_the_rest() {
    let replay = healthy();
    let t = Topology::seed();
    let calico = starting_resources(&t, CalicoState::Configured).unwrap();
    let lab = Lab::with_backend("replay", t, calico, Box::new(replay))
        .await
        .unwrap();
    let sessions = lab.sessions("leaf0").await.unwrap();
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    let err = lab
        .exec(
            &Target::Router("leaf0".into()),
            &["vtysh", "-c", "show version"],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing recorded"), "{err}");
}

#[tokio::test]
async fn a_service_cidr_installed_on_a_node_fails_service_advertisement() {
    let broken = edit(healthy(), Target::Node(NODE.into()), ROUTES, |text| {
        let mut routes: serde_json::Value = serde_json::from_str(text).unwrap();
        routes.as_array_mut().unwrap().push(serde_json::json!({
            "dst": "10.96.0.0/16", "type": "blackhole", "protocol": "bird", "flags": []
        }));
        routes.to_string()
    });
    let outcome = run(broken, "service_cidrs_advertised").await;
    match failure(&outcome) {
        Diagnosis::ExtraRoute {
            role,
            device,
            prefix,
            found,
        } => {
            assert_eq!(*role, Role::Node);
            assert_eq!(device, NODE);
            assert_eq!(prefix.to_string(), "10.96.0.0/16");
            assert_eq!(found, "a blackhole");
        }
        other => panic!("{other}"),
    }
}
