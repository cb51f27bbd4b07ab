//! A lab broken on purpose must fail its scenario with the exact diagnosis, both
//! broken sides in the detail, and artifacts holding what the devices said: the
//! harness's failure path, checked for real.

use calico_lab::diagnosis::Diagnosis;
use calico_lab::scenario;
use calico_lab::Target;
use calico_lab_scenarios::{owned_lab, OwnedLab};
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn wrong_peer_as_on_a_leaf_is_diagnosed_as_no_session(#[future(awt)] owned_lab: OwnedLab) {
    let lab = owned_lab;
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
    let outcome = scenario::run(&lab, bgp).await;
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
