//! Expectations derived from the topology, on the seed and on the second topology:
//! nothing may assume the seed's names or numbers.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use calico_lab::calico::emulated::{pods, starting_resources, CalicoState};
use calico_lab::expect::{self, Hop, PathClass, Session, Via};
use calico_lab::Topology;

fn three_racks() -> Topology {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/topologies/three-racks.yaml");
    Topology::load(&path).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn sessions_nodes_their_leaf_leafs_their_nodes_and_spines_spines_every_leaf() {
    for t in [Topology::seed(), three_racks()] {
        let calico = starting_resources(&t, CalicoState::Configured).unwrap();
        let sessions = expect::sessions(&t, &calico);
        for rack in &t.racks {
            for node in &rack.nodes {
                let want = BTreeSet::from([Session::Bird {
                    protocol: format!("Node_{}", rack.gateway.to_string().replace('.', "_")),
                    peer: rack.gateway,
                }]);
                assert_eq!(sessions[&node.name], want, "{}", node.name);
            }
            let leaf: BTreeSet<String> = sessions[&rack.leaf]
                .iter()
                .map(|s| match s {
                    Session::Frr { device, .. } => device.clone(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let want: BTreeSet<String> = rack
                .nodes
                .iter()
                .map(|n| n.name.clone())
                .chain(t.spines.iter().map(|s| s.name.clone()))
                .collect();
            assert_eq!(leaf, want, "{}", rack.leaf);
        }
        for spine in &t.spines {
            assert_eq!(sessions[&spine.name].len(), t.leafs.len(), "{}", spine.name);
        }
    }
}

#[test]
fn routes_on_the_second_topology() {
    let t = three_racks();
    let calico = starting_resources(&t, CalicoState::Configured).unwrap();
    let routes = expect::routes(&t, &calico);
    let blocks = expect::blocks(&t, &calico);
    assert_eq!(blocks.len(), 6);
    assert_eq!(blocks[0].1.to_string(), "192.168.128.0/27");
    // tor1: its three nodes directly, the rest via both spines.
    let tor1 = &routes["tor1"];
    assert_eq!(tor1.len(), 6);
    assert_eq!(tor1[1].via, Via::Hop(ip("172.20.1.22")));
    assert_eq!(
        tor1[3].via,
        Via::Ecmp(BTreeSet::from([ip("172.31.0.2"), ip("172.31.0.6")]))
    );
    // sp-b reaches r3's block through tor3 only.
    let spb = &routes["sp-b"];
    assert_eq!(spb[5].owner, "three-racks-worker5");
    assert_eq!(spb[5].via, Via::Ecmp(BTreeSet::from([ip("172.31.0.21")])));
    // A node: blackhole for its own, rack-mates directly, others through its leaf.
    let w = &routes["three-racks-worker"];
    assert_eq!(w[1].via, Via::Blackhole);
    assert_eq!(w[0].via, Via::Hop(ip("172.20.1.21")));
    assert_eq!(w[4].via, Via::Hop(ip("172.20.1.254")));
}

#[test]
fn paths_by_class_with_their_hops() {
    let t = three_racks();
    let calico = starting_resources(&t, CalicoState::Configured).unwrap();
    let pods = pods(&t, &calico);
    assert_eq!(pods.len(), 12);
    let pod = |name: &str| pods.iter().find(|p| p.name == name).unwrap();
    let same_host = expect::path(&t, pod("web-1"), pod("db-1")).unwrap();
    assert_eq!(same_host.class, PathClass::SameHost);
    assert_eq!(same_host.hops, [Hop::Device("three-racks-worker".into())]);
    let same_rack = expect::path(&t, pod("web-1"), pod("three-racks-worker2-pod1")).unwrap();
    assert_eq!(same_rack.class, PathClass::SameRack);
    assert_eq!(same_rack.hops.len(), 2);
    let cross = expect::path(&t, pod("edge-1"), pod("web-1")).unwrap();
    assert_eq!(cross.class, PathClass::CrossRack);
    assert_eq!(
        cross.hops,
        [
            Hop::Device("three-racks-worker5".into()),
            Hop::Device("tor3".into()),
            Hop::AnySpine,
            Hop::Device("tor1".into()),
            Hop::Device("three-racks-worker".into()),
        ]
    );
    let seen = [
        "three-racks-worker5",
        "tor3",
        "sp-b",
        "tor1",
        "three-racks-worker",
    ]
    .map(String::from);
    assert!(expect::path_matches(&t, &cross, &seen));
    let via_leaf = [
        "three-racks-worker5",
        "tor3",
        "tor2",
        "tor1",
        "three-racks-worker",
    ]
    .map(String::from);
    assert!(
        !expect::path_matches(&t, &cross, &via_leaf),
        "a leaf is no spine"
    );
    let owners = expect::address_owners(&t, &pods);
    assert_eq!(owners[&ip("172.31.0.18")], "sp-a");
    assert_eq!(owners[&pod("edge-1").ip], "edge-1");
}

#[test]
fn protocol_names_give_their_peer() {
    assert_eq!(expect::protocol_peer("Node_10_1_5_1"), Some(ip("10.1.5.1")));
    assert_eq!(
        expect::protocol_peer("Global_10_0_0_1_port_1790"),
        Some(ip("10.0.0.1"))
    );
    assert_eq!(expect::protocol_peer("static1"), None);
}

#[test]
fn two_racks_of_one_leaf_route_through_that_leaf_and_no_spine() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/topologies/shared-leaf.yaml");
    let t = Topology::load(&path).unwrap();
    let calico = starting_resources(&t, CalicoState::Configured).unwrap();
    let pods = pods(&t, &calico);
    let pod = |name: &str| pods.iter().find(|p| p.name == name).unwrap();
    let between = expect::path(
        &t,
        pod("shared-leaf-worker-pod1"),
        pod("shared-leaf-worker2-pod1"),
    )
    .unwrap();
    assert_eq!(between.class, PathClass::CrossRack);
    assert_eq!(
        between.hops,
        [
            Hop::Device("shared-leaf-worker".into()),
            Hop::Device("leaf-a".into()),
            Hop::Device("shared-leaf-worker2".into()),
        ]
    );
    // rb's nodes reach ra's blocks through leaf-a's address on rb, rack-mates directly.
    let routes = expect::routes(&t, &calico);
    let w2 = &routes["shared-leaf-worker2"];
    let via = |owner: &str| &w2.iter().find(|r| r.owner == owner).unwrap().via;
    assert_eq!(via("shared-leaf-worker"), &Via::Hop(ip("10.30.2.1")));
    assert_eq!(via("shared-leaf-worker3"), &Via::Hop(ip("10.30.2.11")));
    assert_eq!(via("shared-leaf-worker4"), &Via::Hop(ip("10.30.2.1")));
    // leaf-a holds both its racks' blocks directly, leaf-b's over both spines.
    let leaf_a = &routes["leaf-a"];
    let via = |owner: &str| &leaf_a.iter().find(|r| r.owner == owner).unwrap().via;
    assert_eq!(via("shared-leaf-worker2"), &Via::Hop(ip("10.30.2.10")));
    assert_eq!(
        via("shared-leaf-worker4"),
        &Via::Ecmp(BTreeSet::from([ip("10.31.1.2"), ip("10.31.2.2")]))
    );
}
