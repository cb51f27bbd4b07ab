//! A lab broken on purpose must fail its scenario with the right diagnosis and leave
//! an artifact folder: the harness's failure path, checked for real.

use calico_lab::scenario;
use calico_lab_scenarios::{fresh_lab, TestLab};
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn wrong_peer_as_on_a_leaf_is_diagnosed_as_no_session(#[future(awt)] fresh_lab: TestLab) {
    let lab = fresh_lab;
    let t = lab.lab.topology().clone();
    let rack = &t.racks[0];
    let node = &rack.nodes[0];
    let (_, leaf) = t.router(&rack.leaf).expect("the rack's leaf");
    // The leaf now expects the node in an AS it is not in: the session cannot come up.
    let out = lab
        .lab
        .exec(
            &leaf.name,
            &[
                "vtysh",
                "-c",
                "configure terminal",
                "-c",
                &format!("router bgp {}", leaf.asn),
                "-c",
                // FRR resets the session itself when the remote AS changes.
                &format!("neighbor {} remote-as {}", node.address, leaf.asn + 1),
            ],
        )
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");

    let outcome = scenario::run(&lab.lab, "bgp_neighbors_match_topology").await;
    let failure = outcome
        .failure
        .clone()
        .expect("the scenario fails on a broken lab");
    assert!(failure.diagnosis.starts_with("no session: "), "{failure:?}");
    assert!(
        failure.diagnosis.contains(&node.address.to_string())
            || failure.diagnosis.contains(&node.name),
        "{failure:?}"
    );
    let dir = outcome.artifacts.expect("an artifact folder");
    assert!(
        dir.ends_with("calico-lab/artifacts/bgp_neighbors_match_topology"),
        "{}",
        dir.display()
    );
    let diagnosis = std::fs::read_to_string(dir.join("diagnosis.txt")).unwrap();
    assert_eq!(diagnosis.trim(), failure.diagnosis);
    for file in ["bgp-summary.json", "bgp-ipv4-unicast.json", "frr.conf"] {
        assert!(dir.join(&leaf.name).join(file).exists(), "{file}");
    }
    for file in ["bird-protocols.txt", "bird.cfg", "ip-route.txt"] {
        assert!(dir.join(&node.name).join(file).exists(), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
