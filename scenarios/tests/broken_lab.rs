//! A lab broken on purpose must fail its scenario with the exact diagnosis, both
//! broken sides in the detail, and artifacts holding what the devices said: the
//! harness's failure path, checked for real.

use calico_lab::diagnosis::Diagnosis;
use calico_lab::scenario;
use calico_lab::{PathClass, Target};
use calico_lab_scenarios::{owned_lab, OwnedLab};
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn wrong_peer_as_on_a_leaf_is_diagnosed_as_no_session(#[future(awt)] owned_lab: OwnedLab) {
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let rack = &t.racks[0];
    let node = &rack.nodes[0];
    let (_, leaf) = t.router(&rack.leaf).expect("the rack's leaf");
    let wrong_as = leaf.asn + 1;
    // The leaf now expects the node in an AS it is not in: the session cannot come up.
    let out = lab
        .exec(
            &Target::Router(leaf.name.clone()),
            &[
                "vtysh",
                "-c",
                "configure terminal",
                "-c",
                &format!("router bgp {}", leaf.asn),
                "-c",
                // FRR resets the session itself when the remote AS changes.
                &format!("neighbor {} remote-as {wrong_as}", node.address),
            ],
        )
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");

    let bgp = scenario::find("bgp_neighbors_match_topology").unwrap();
    let outcome = scenario::run(&mut lab, bgp).await;
    let failure = outcome
        .failure
        .clone()
        .expect("the scenario fails on a broken lab");
    // Nodes come first in traffic order: the node's side is the diagnosis...
    let node_session = format!("Node_{}", rack.gateway.to_string().replace('.', "_"));
    match &failure.diagnosis {
        Diagnosis::NoSession {
            device,
            session,
            state,
            ..
        } => {
            assert_eq!(device, &node.name, "{failure:?}");
            assert_eq!(session, &node_session, "{failure:?}");
            assert_ne!(state.as_deref(), Some("Established"), "{failure:?}");
        }
        other => panic!("not a missing session: {other}"),
    }
    assert!(failure.diagnosis.to_string().starts_with("no session: "));
    // ...and the leaf's side is in the detail.
    assert!(
        failure.detail.contains(&format!(
            "no session: {}: session {} ({})",
            leaf.name, node.address, node.name
        )),
        "{}",
        failure.detail
    );

    let dir = outcome.artifacts.expect("an artifact folder");
    assert!(
        dir.ends_with(format!(
            "calico-lab/artifacts/{}/bgp_neighbors_match_topology",
            lab.name()
        )),
        "{}",
        dir.display()
    );
    let read = |path: &str| std::fs::read_to_string(dir.join(path)).unwrap();
    assert_eq!(read("diagnosis.txt").trim(), failure.diagnosis.to_string());
    // What the device says, not what was rendered: the wrong remote-as is there.
    let config = read(&format!("{}/running-config.txt", leaf.name));
    assert!(
        config.contains(&format!("neighbor {} remote-as {wrong_as}", node.address)),
        "{config}"
    );
    let frr = read(&format!("{}/frr.conf", leaf.name));
    assert!(frr.starts_with("$ cat /etc/frr/frr.conf\n"), "{frr}");
    let summary = read(&format!("{}/bgp-summary.json", leaf.name));
    assert!(summary.contains(&node.address.to_string()), "{summary}");
    let protocols = read(&format!("{}/bird-protocols.txt", node.name));
    assert!(protocols.contains(&node_session), "{protocols}");
    for file in ["bird.cfg", "ip-route.txt", "container.log"] {
        assert!(dir.join(&node.name).join(file).exists(), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs a vtysh configuration on a router and insists it worked.
async fn configure(lab: &OwnedLab, router: &str, lines: &[&str]) {
    let mut cmd = vec!["vtysh", "-c", "configure terminal"];
    for line in lines {
        cmd.extend(["-c", line]);
    }
    let out = lab
        .exec(&Target::Router(router.into()), &cmd)
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
}

/// Polls until `done` holds (a broken lab settles), at most 30 s.
async fn settle<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what} did not happen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_block_is_route_missing_on_the_first_leaf(#[future(awt)] owned_lab: OwnedLab) {
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let last_rack = t.racks.last().unwrap();
    let node = last_rack.nodes.last().unwrap().name.clone();
    // The block's static protocol (bird_aggr.cfg) stops: BIRD withdraws the block.
    let out = lab.birdc(&node, &["disable", "static1"]).await.unwrap();
    assert!(out.stdout.contains("disabled"), "{out:?}");
    let first_leaf = t.leafs[0].name.clone();
    let block = calico_lab::expect::blocks(&t, lab.calico())
        .into_iter()
        .find(|(owner, _)| owner == &node)
        .unwrap()
        .1;
    settle("the block leaves the first leaf", || async {
        !lab.routes(&first_leaf)
            .await
            .unwrap()
            .contains_key(&block.to_string())
    })
    .await;
    let routes = scenario::find("routes_match_topology").unwrap();
    let outcome = scenario::run(&mut lab, routes).await;
    match outcome.failure.expect("fails").diagnosis {
        Diagnosis::RouteMissing {
            device,
            prefix,
            found,
            ..
        } => {
            assert_eq!(device, first_leaf);
            assert_eq!(prefix, block);
            assert_eq!(found, "no route");
        }
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_interface_down_is_ping_failed_for_that_pair(#[future(awt)] owned_lab: OwnedLab) {
    let mut lab = owned_lab;
    let (from, to) = lab.pod_pairs(PathClass::SameHost)[0].clone();
    let veth = calico_lab::calico::emulated::veth_name(&to.name);
    let out = lab
        .exec(
            &Target::Node(to.node.clone()),
            &["ip", "link", "set", &veth, "down"],
        )
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let pings = scenario::find("same_host_ping").unwrap();
    let outcome = scenario::run(&mut lab, pings).await;
    match outcome.failure.expect("fails").diagnosis {
        Diagnosis::PingFailed {
            from: f,
            to: t,
            summary,
            ..
        } => {
            assert_eq!(f, from.name);
            assert_eq!(t, to.name);
            assert_eq!(summary, "0/3 received");
        }
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_leaf_forced_through_one_spine_is_diagnosed_on_that_leaf(
    #[future(awt)] owned_lab: OwnedLab,
) {
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let leaf = t.leafs[0].clone();
    configure(
        &lab,
        &leaf.name,
        &[
            &format!("router bgp {}", leaf.asn),
            // One best path per prefix, and the same spine's for every prefix
            // (without this the oldest path wins, which may differ per prefix).
            "bgp bestpath compare-routerid",
            "address-family ipv4 unicast",
            "maximum-paths 1",
        ],
    )
    .await;
    let remote = calico_lab::expect::blocks(&t, lab.calico())
        .into_iter()
        .find(|(owner, _)| {
            t.nodes()
                .any(|(r, n)| &n.name == owner && r.leaf != leaf.name)
        })
        .unwrap()
        .1;
    settle("one next hop left on the leaf", || async {
        lab.routes(&leaf.name)
            .await
            .unwrap()
            .get(&remote.to_string())
            .is_some_and(|r| r.gateways.len() == 1)
    })
    .await;
    let paths = scenario::find("cross_rack_path_crosses_one_spine").unwrap();
    let outcome = scenario::run(&mut lab, paths).await;
    let failure = outcome.failure.expect("fails");
    // The traces show no ECMP from that leaf; the first broken link is its routes.
    assert!(
        failure.detail.starts_with("path differs: "),
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains(&format!("from {}", leaf.name)),
        "{}",
        failure.detail
    );
    match failure.diagnosis {
        Diagnosis::RouteMissing { device, found, .. } => {
            assert_eq!(device, leaf.name);
            assert!(!found.contains(" and ") && !found.contains(','), "{found}");
        }
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_mesh_the_calico_objects_do_not_ask_for_is_mesh_differs(
    #[future(awt)] owned_lab: OwnedLab,
) {
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let node = t.racks[0].nodes[0].name.clone();
    // BIRD on one node runs the full mesh behind the cluster's back.
    let mut mesh = lab.calico().clone();
    mesh.apply(
        calico_lab::calico::resources::parse(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: true}\n",
            "mesh-on",
        )
        .unwrap(),
    )
    .unwrap();
    let files = calico_lab::calico::bird::upstream(
        &calico_lab::calico::confd::render(&mesh, &node, t.calico_version()).unwrap(),
    );
    let (_, bird_cfg) = files
        .files()
        .into_iter()
        .find(|(n, _)| *n == "bird.cfg")
        .unwrap();
    let write = format!(
        "cat > {}/bird.cfg <<'CALICO_LAB_EOF'\n{bird_cfg}\nCALICO_LAB_EOF",
        calico_lab::calico::bird::CONFIG_DIR
    );
    let out = lab
        .exec(&Target::Node(node.clone()), &["sh", "-c", &write])
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let out = lab.birdc(&node, &["configure"]).await.unwrap();
    assert!(out.stdout.contains("Reconfigur"), "{out:?}");
    let mesh_scenario = scenario::find("no_node_to_node_mesh").unwrap();
    let outcome = scenario::run(&mut lab, mesh_scenario).await;
    match outcome.failure.expect("fails").diagnosis {
        Diagnosis::MeshDiffers {
            node: n,
            running,
            wanted,
        } => {
            assert_eq!(n, node);
            assert_eq!(running.len(), t.nodes().count() - 1, "{running:?}");
            assert_eq!(wanted, 0);
        }
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}

/// A leaf whose other uplink is already cut has nowhere to go when the first spine
/// stops: the spine scenario must fail, never pass.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_spine_failure_without_a_second_path_fails(#[future(awt)] owned_lab: OwnedLab) {
    use calico_lab::fault::Fault;
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let cut = lab
        .fault(Fault::LinkDown {
            a: t.leafs[0].name.clone(),
            b: t.spines[1].name.clone(),
        })
        .await
        .unwrap()
        .leave_in_force();
    let spine = scenario::find("spine_failure_keeps_cross_rack_traffic").unwrap();
    let outcome = scenario::run(&mut lab, spine).await;
    lab.restore(&cut).await.unwrap();
    let failure = outcome
        .failure
        .expect("the spine scenario fails without a second path");
    // The leaf never holds the routes the design gives it through the other spine
    // (or, explained by the control plane, what that leaves behind).
    match &failure.diagnosis {
        Diagnosis::NotConverged { last, .. } => assert!(
            matches!(
                **last,
                Diagnosis::RouteMissing { .. } | Diagnosis::ExtraRoute { .. }
            ),
            "{last}\n{}",
            failure.detail
        ),
        Diagnosis::TrafficLost { .. }
        | Diagnosis::RouteMissing { .. }
        | Diagnosis::NoSession { .. } => {}
        other => panic!("not a broken path: {other}\n{}", failure.detail),
    }
}

/// A leaf that does not help a restarting node (graceful restart off) withdraws its
/// block at once: the calico-node restart scenario must say so.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_leaf_without_graceful_restart_fails_the_restart_scenario(
    #[future(awt)] owned_lab: OwnedLab,
) {
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    for (_, leaf) in t
        .routers()
        .filter(|(_, r)| t.leafs.iter().any(|l| l.name == r.name))
    {
        let out = lab
            .exec(
                &Target::Router(leaf.name.clone()),
                &[
                    "vtysh",
                    "-c",
                    "configure terminal",
                    "-c",
                    &format!("router bgp {}", leaf.asn),
                    "-c",
                    "bgp graceful-restart-disable",
                    "-c",
                    "end",
                    "-c",
                    "clear bgp *",
                ],
            )
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
    }
    lab.converge(calico_lab_scenarios::wait_budget().unwrap())
        .await
        .unwrap();
    let restart = scenario::find("calico_node_restart_keeps_routes").unwrap();
    let outcome = scenario::run(&mut lab, restart).await;
    let failure = outcome
        .failure
        .expect("the restart scenario fails without graceful restart");
    match &failure.diagnosis {
        Diagnosis::RouteMissing { of, .. } => assert!(of.contains("restarts"), "{of}"),
        other => panic!(
            "not the leaf withdrawing the block: {other}\n{}",
            failure.detail
        ),
    }
}

/// Two neighbours in a rack that cannot peer: the full mesh never comes up, so the
/// switch scenario fails (it never passes on a mesh it did not see), and the lab is
/// put back as designed.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_mesh_that_cannot_come_up_fails_the_switch_and_the_lab_returns_to_its_design(
    #[future(awt)] owned_lab: OwnedLab,
) {
    use calico_lab::fault::Fault;
    let mut lab = owned_lab;
    // The mesh never comes up: the switch's wait fails at its budget, however long.
    lab.set_wait_budget(std::time::Duration::from_secs(10));
    let t = lab.topology().clone();
    let rack = t
        .racks
        .iter()
        .find(|r| r.nodes.len() >= 2)
        .expect("a rack of two nodes");
    // Harmless by design (nodes peer only with their leaf), fatal to a mesh.
    let blocked = lab
        .fault(Fault::SessionBlocked {
            device: rack.nodes[0].name.clone(),
            peer: rack.nodes[1].address,
        })
        .await
        .unwrap()
        .leave_in_force();
    let switch = scenario::find("mesh_to_route_reflector_switch_keeps_traffic").unwrap();
    let outcome = scenario::run(&mut lab, switch).await;
    let failure = outcome.failure.expect("the switch fails without a mesh");
    match &failure.diagnosis {
        Diagnosis::NotConverged { wait, seconds, .. } => {
            assert!(wait.contains("calico-node"), "{wait}\n{}", failure.detail);
            assert_eq!(*seconds, 10, "the lab's budget");
        }
        other => panic!("{other}\n{}", failure.detail),
    }
    lab.restore(&blocked).await.unwrap();
    assert!(!lab.calico().bgp_peers.is_empty(), "the BGPPeers are back");
    lab.converge(std::time::Duration::from_secs(60))
        .await
        .expect("the lab is as designed again");
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}

/// The upgrade gate never passes on a lab broken before it starts: one node's
/// session to its leaf is blocked, and the gate fails saying so.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_gate_fails_on_a_lab_broken_before_it(#[future(awt)] owned_lab: OwnedLab) {
    use calico_lab::fault::Fault;
    let mut lab = owned_lab;
    let t = lab.topology().clone();
    let rack = &t.racks[0];
    lab.fault(Fault::SessionBlocked {
        device: rack.leaf.clone(),
        peer: rack.nodes[0].address,
    })
    .await
    .unwrap()
    .leave_in_force();
    // The session goes when its hold timer runs out.
    let started = std::time::Instant::now();
    while lab.diagnose().await.is_empty() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the blocked session never went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // A version other than the lab's, so that the gate has an upgrade to judge.
    let to = if t.calico_version() == calico_lab::calico::CalicoVersion::NEWEST {
        calico_lab::calico::CalicoVersion::SEED
    } else {
        calico_lab::calico::CalicoVersion::NEWEST
    };
    std::env::set_var(scenario::TO_VARIABLE, to.to_string());
    let gate = scenario::find(scenario::UPGRADE).unwrap();
    let outcome = scenario::run(&mut lab, gate).await;
    assert_eq!(outcome.skipped, None);
    let failure = outcome.failure.expect("the gate fails on a broken lab");
    assert!(
        failure.detail.contains("not healthy before the upgrade"),
        "{}\n{}",
        failure.diagnosis,
        failure.detail
    );
    let _ = std::fs::remove_dir_all(outcome.artifacts.unwrap());
}
