//! Unit tests of topology loading and validation.
//!
//! Every invalid case starts from the seed topology's text with a string replaced;
//! `mutate` insists the replaced text occurs exactly once, so a change to the
//! fixture makes a test fail loudly instead of silently testing nothing.

use std::net::Ipv4Addr;
use std::path::Path;

use calico_lab::topology::{Problem, Topology, TopologyError, SEED_TOPOLOGY_YAML};
use ipnet::Ipv4Net;

const FILE: &str = "lab.yaml";

/// The seed text with each `(from, to)` applied in order; each `from` must occur
/// exactly once, both in the seed and in the text it is applied to.
fn mutate_many(edits: &[(&str, &str)]) -> String {
    let mut text = SEED_TOPOLOGY_YAML.to_string();
    for (from, to) in edits {
        assert_eq!(
            SEED_TOPOLOGY_YAML.matches(from).count(),
            1,
            "{from:?} must occur exactly once in the seed topology"
        );
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} must occur exactly once after the earlier edits"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

/// The seed text with `from` (which must occur exactly once) replaced by `to`.
fn mutate(from: &str, to: &str) -> String {
    mutate_many(&[(from, to)])
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The problems of a topology that must be rejected by validation (not parsing),
/// with the error's full message.
fn invalid(text: &str) -> (String, Vec<Problem>) {
    match Topology::from_yaml(text, FILE) {
        Ok(_) => panic!("the topology was accepted:\n{text}"),
        Err(err) => {
            let message = err.to_string();
            match err {
                TopologyError::Invalid { file, problems } => {
                    assert_eq!(file, FILE);
                    assert!(
                        message.starts_with("lab.yaml: invalid topology ("),
                        "{message}"
                    );
                    (message, problems)
                }
                other => panic!("expected TopologyError::Invalid, got {other:?}: {message}"),
            }
        }
    }
}

/// Asserts the message names `lab.yaml`, `path` and a problem at `path` whose reason
/// holds `reason`.
fn assert_problem(message: &str, problems: &[Problem], path: &str, reason: &str) {
    assert!(
        message.contains(&format!("lab.yaml: {path}: ")),
        "the error does not name lab.yaml and {path}:\n{message}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.path == path && p.reason.contains(reason)),
        "no problem at {path} with reason containing {reason:?}:\n{message}"
    );
    assert!(message.contains(reason), "{message}");
}

/// Asserts the topology is rejected with exactly one problem, at `path`, naming `reason`.
fn assert_only_problem(text: &str, path: &str, reason: &str) {
    let (message, problems) = invalid(text);
    assert_eq!(problems.len(), 1, "expected one problem:\n{message}");
    assert!(message.contains("(1 problem)"), "{message}");
    assert_problem(&message, &problems, path, reason);
}

/// Asserts the topology is rejected with (at least) a problem at `path` naming `reason`.
fn assert_has_problem(text: &str, path: &str, reason: &str) {
    let (message, problems) = invalid(text);
    assert_problem(&message, &problems, path, reason);
}

/// The parts of a `TopologyError::Parse`, with its message.
fn parse_error(text: &str) -> (String, u64, u64, String, String) {
    match Topology::from_yaml(text, FILE) {
        Ok(_) => panic!("the topology was accepted:\n{text}"),
        Err(err) => {
            let display = err.to_string();
            match err {
                TopologyError::Parse {
                    file,
                    line,
                    column,
                    path,
                    message,
                } => {
                    assert_eq!(file, FILE);
                    assert!(line > 0, "line is 0: {display}");
                    assert!(column > 0, "column is 0: {display}");
                    assert!(
                        display.starts_with(&format!("lab.yaml:{line}:{column}: {path}: ")),
                        "{display}"
                    );
                    (display, line, column, path, message)
                }
                other => panic!("expected TopologyError::Parse, got {other:?}: {display}"),
            }
        }
    }
}

/// The 1-based line of the seed on which `needle` (which must be unique) starts.
fn seed_line_of(needle: &str) -> u64 {
    assert_eq!(SEED_TOPOLOGY_YAML.matches(needle).count(), 1, "{needle:?}");
    let offset = SEED_TOPOLOGY_YAML.find(needle).unwrap();
    SEED_TOPOLOGY_YAML[..offset].matches('\n').count() as u64 + 1
}

// ---------------------------------------------------------------------------
// The seed lab
// ---------------------------------------------------------------------------

#[test]
fn seed_loads_with_its_facts() {
    let t = Topology::from_yaml(SEED_TOPOLOGY_YAML, FILE).expect("the seed is valid");
    assert_eq!(t, Topology::seed());
    assert_eq!(t.name, "calico-bgp-rr");

    let spines: Vec<_> = t.spines.iter().map(|r| (r.name.as_str(), r.asn)).collect();
    assert_eq!(spines, [("spine0", 500), ("spine1", 800)]);
    let leafs: Vec<_> = t.leafs.iter().map(|r| (r.name.as_str(), r.asn)).collect();
    assert_eq!(leafs, [("leaf0", 65005), ("leaf1", 65008)]);

    let racks: Vec<_> = t.racks.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(racks, ["rack0", "rack1"]);
    let nodes: Vec<_> = t
        .nodes()
        .map(|(rack, n)| (rack.name.as_str(), n.name.as_str(), n.address))
        .collect();
    assert_eq!(
        nodes,
        [
            ("rack0", "calico-bgp-rr-control-plane", ip("10.1.5.10")),
            ("rack0", "calico-bgp-rr-worker", ip("10.1.5.11")),
            ("rack1", "calico-bgp-rr-worker2", ip("10.1.8.10")),
            ("rack1", "calico-bgp-rr-worker3", ip("10.1.8.11")),
        ]
    );

    assert_eq!(t.calico.pod_cidr, net("10.244.0.0/16"));
    assert!(!t.calico.node_to_node_mesh_enabled);
    assert_eq!(t.calico.bgp_peers.len(), 2);
    let peers: Vec<_> = t
        .calico
        .bgp_peers
        .iter()
        .map(|p| (p.name.as_str(), p.peer_ip, p.as_number))
        .collect();
    assert_eq!(
        peers,
        [
            ("rack0-to-leaf0", ip("10.1.5.1"), 65005),
            ("rack1-to-leaf1", ip("10.1.8.1"), 65008),
        ]
    );
}

#[test]
fn seed_leaf0_bgp_neighbors() {
    let t = Topology::seed();
    let neighbors: Vec<_> = t
        .bgp_neighbors("leaf0")
        .into_iter()
        .map(|n| (n.device, n.address, n.asn, n.rr_client))
        .collect();
    let expect = |device: &str, address: &str, asn: u32, rr_client: bool| {
        (device.to_string(), ip(address), asn, rr_client)
    };
    assert_eq!(
        neighbors,
        [
            expect("spine0", "10.1.10.2", 500, false),
            expect("spine1", "10.1.12.2", 800, false),
            expect("calico-bgp-rr-control-plane", "10.1.5.10", 65005, true),
            expect("calico-bgp-rr-worker", "10.1.5.11", 65005, true),
        ]
    );
}

#[test]
fn seed_leaf0_interfaces() {
    let t = Topology::seed();
    let interfaces: Vec<_> = t
        .interfaces("leaf0")
        .into_iter()
        .map(|i| (i.name, i.address))
        .collect();
    assert_eq!(
        interfaces,
        [
            ("eth1".to_string(), net("10.1.10.1/24")),
            ("eth2".to_string(), net("10.1.12.1/24")),
            ("eth3".to_string(), net("10.1.5.1/24")),
        ]
    );
}

#[test]
fn seed_spine0_announced_networks() {
    let t = Topology::seed();
    assert_eq!(
        t.announced_networks("spine0"),
        [net("10.1.10.0/24"), net("10.1.34.0/24")]
    );
}

#[test]
fn hash_is_stable_for_equal_models_and_changes_with_a_field() {
    let a = Topology::seed();
    let b = Topology::from_yaml(SEED_TOPOLOGY_YAML, FILE).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash(), a.clone().hash());
    assert_eq!(a.hash().len(), 12);
    assert!(a.hash().chars().all(|c| c.is_ascii_hexdigit()));

    // The same model written differently (a comment) hashes the same.
    let commented = format!("# another comment\n{SEED_TOPOLOGY_YAML}");
    assert_eq!(
        Topology::from_yaml(&commented, FILE).unwrap().hash(),
        a.hash()
    );

    let mut changed = a.clone();
    changed.links[0].mtu = 9000;
    assert_ne!(changed.hash(), a.hash());

    let mut changed = a.clone();
    changed.calico.node_to_node_mesh_enabled = true;
    assert_ne!(changed.hash(), a.hash());

    let edited = Topology::from_yaml(&mutate("asn: 800", "asn: 801"), FILE).unwrap();
    assert_ne!(edited.hash(), a.hash());
}

// ---------------------------------------------------------------------------
// Parse errors
// ---------------------------------------------------------------------------

#[test]
fn unparsable_yaml_is_a_parse_error_with_line_and_column() {
    let text = mutate(
        "{ name: calico-bgp-rr-worker, role: worker, address: 10.1.5.11 }",
        "{ name: calico-bgp-rr-worker, role: worker, address: 10.1.5.11",
    );
    let (display, line, _column, path, _message) = parse_error(&text);
    // The scanner reads on inside the unclosed mapping and stumbles at or after it
    // (saphyr reports the next `-` it cannot take, in rack1's nodes).
    let unclosed = seed_line_of("{ name: calico-bgp-rr-worker,");
    assert!(line >= unclosed, "{display}");
    assert!(path.starts_with("racks[0].nodes"), "{display}");
}

#[test]
fn unknown_field_names_where() {
    let text = mutate(
        "  - name: spine1\n    asn: 800\n",
        "  - name: spine1\n    asn: 800\n    colour: red\n",
    );
    let (display, line, column, path, message) = parse_error(&text);
    assert_eq!(path, "spines[1].colour", "{display}");
    assert!(message.contains("unknown field `colour`"), "{display}");
    // The line of the added field, at its key.
    assert_eq!(
        (line, column),
        (seed_line_of("  - name: spine1") + 2, 5),
        "{display}"
    );
}

#[test]
fn wrong_type_names_the_field() {
    let text = mutate("asn: 800", "asn: \"abc\"");
    let (display, line, column, path, message) = parse_error(&text);
    assert_eq!(path, "spines[1].asn", "{display}");
    assert!(message.contains("u32"), "{display}");
    // At the value: `    asn: ` is 9 characters.
    assert_eq!((line, column), (seed_line_of("asn: 800"), 10), "{display}");
}

// ---------------------------------------------------------------------------
// Validation errors
// ---------------------------------------------------------------------------

#[test]
fn duplicate_address() {
    let text = mutate("address: 10.1.5.11", "address: 10.1.5.10");
    assert_has_problem(
        &text,
        "racks[0].nodes[1].address",
        "address 10.1.5.10 is already used at racks[0].nodes[0].address",
    );
}

#[test]
fn duplicate_link_address() {
    // spine1's end of the leaf1 link takes spine0's address on the same link subnet.
    let text = mutate(
        "{ device: spine1, interface: eth2, address: 10.1.11.2/24 }",
        "{ device: spine1, interface: eth2, address: 10.1.11.1/24 }",
    );
    assert_only_problem(
        &text,
        "links[3].endpoints[1].address",
        "address 10.1.11.1 is already used at links[3].endpoints[0].address",
    );
}

#[test]
fn duplicate_router_id() {
    // The original lab's bug: spine1 took leaf1's router id.
    let text = mutate("routerId: 10.1.12.2", "routerId: 10.1.8.1");
    let (message, problems) = invalid(&text);
    assert_eq!(problems.len(), 1, "{message}");
    assert_problem(
        &message,
        &problems,
        "leafs[1].routerId",
        "router id 10.1.8.1 is also the router id of spine1 (at spines[1].routerId)",
    );
}

#[test]
fn router_id_equal_to_a_node_address() {
    // calico-node uses its address as router id.
    let text = mutate("routerId: 10.1.12.2", "routerId: 10.1.8.10");
    assert_only_problem(
        &text,
        "racks[1].nodes[0].address",
        "router id 10.1.8.10 is also the router id of spine1",
    );
}

#[test]
fn node_address_outside_rack_subnet() {
    let text = mutate("address: 10.1.5.11", "address: 10.1.6.11");
    assert_only_problem(
        &text,
        "racks[0].nodes[1].address",
        "10.1.6.11 is outside rack subnet 10.1.5.0/24",
    );
}

#[test]
fn link_endpoint_names_unknown_device() {
    let text = mutate(
        "{ device: spine1, interface: eth2, address: 10.1.11.2/24 }",
        "{ device: spine9, interface: eth2, address: 10.1.11.2/24 }",
    );
    assert_only_problem(
        &text,
        "links[3].endpoints[1].device",
        "'spine9' is not a router of this topology",
    );
}

#[test]
fn link_endpoint_names_a_node() {
    let text = mutate(
        "{ device: spine1, interface: eth2, address: 10.1.11.2/24 }",
        "{ device: calico-bgp-rr-worker3, interface: eth2, address: 10.1.11.2/24 }",
    );
    assert_has_problem(
        &text,
        "links[3].endpoints[1].device",
        "nodes attach through their rack, not through links",
    );
}

#[test]
fn interface_name_over_15_characters() {
    let text = mutate(
        "leafInterface: eth3\n    gateway: 10.1.5.1",
        "leafInterface: eth3-0123456789a\n    gateway: 10.1.5.1",
    );
    assert_only_problem(
        &text,
        "racks[0].leafInterface",
        "interface name 'eth3-0123456789a' has 16 characters; Linux allows 1 to 15",
    );
}

#[test]
fn link_interface_name_over_15_characters() {
    let text = mutate(
        "{ device: leaf1, interface: eth2,",
        "{ device: leaf1, interface: eth2-0123456789a,",
    );
    assert_only_problem(
        &text,
        "links[3].endpoints[0].interface",
        "has 16 characters; Linux allows 1 to 15",
    );
}

#[test]
fn interface_name_of_exactly_15_characters_is_accepted() {
    let text = mutate(
        "leafInterface: eth3\n    gateway: 10.1.5.1",
        "leafInterface: eth3-0123456789\n    gateway: 10.1.5.1",
    );
    let t = Topology::from_yaml(&text, FILE).expect("a 15-character name fits");
    assert_eq!(t.racks[0].leaf_interface.len(), 15);
}

#[test]
fn link_ends_not_in_one_subnet() {
    let text = mutate("address: 10.1.11.2/24", "address: 10.1.13.2/24");
    assert_only_problem(
        &text,
        "links[3].endpoints[1].address",
        "10.1.11.1/24 and 10.1.13.2/24 are not in one subnet",
    );
}

#[test]
fn pod_cidr_overlaps_a_rack_subnet() {
    let text = mutate("podCidr: 10.244.0.0/16", "podCidr: 10.1.0.0/16");
    assert_only_problem(
        &text,
        "calico.podCidr",
        "subnet 10.1.0.0/16 overlaps 10.1.5.0/24 at racks[0].subnet",
    );
}

#[test]
fn two_links_in_one_subnet() {
    let text = mutate(
        "address: 10.1.11.1/24 }\n      - { device: spine1, interface: eth2, address: 10.1.11.2/24 }",
        "address: 10.1.34.5/24 }\n      - { device: spine1, interface: eth2, address: 10.1.34.6/24 }",
    );
    assert_only_problem(
        &text,
        "links[3].endpoints[0].address",
        "subnet 10.1.34.0/24 overlaps 10.1.34.0/24 at links[2].endpoints[0].address",
    );
}

#[test]
fn bgp_peer_as_number_does_not_match_the_router() {
    let text = mutate("asNumber: 65008", "asNumber: 65009");
    assert_only_problem(
        &text,
        "calico.bgpPeers[1].asNumber",
        "AS 65009 does not match leaf1's AS 65008 (peer 10.1.8.1)",
    );
}

#[test]
fn bgp_peer_ip_is_no_router_address() {
    // A node's address, not a router's.
    let text = mutate("peerIP: 10.1.8.1", "peerIP: 10.1.8.10");
    assert_only_problem(
        &text,
        "calico.bgpPeers[1].peerIP",
        "10.1.8.10 is not an address of any router",
    );
}

#[test]
fn rack_leaf_names_a_spine() {
    let text = mutate("leaf: leaf1\n", "leaf: spine1\n");
    assert_has_problem(
        &text,
        "racks[1].leaf",
        "'spine1' is a spine; a rack hangs off a leaf",
    );
}

#[test]
fn rack_leaf_names_an_unknown_device() {
    let text = mutate("leaf: leaf1\n", "leaf: leaf7\n");
    assert_has_problem(
        &text,
        "racks[1].leaf",
        "'leaf7' is not a device of this topology",
    );
}

#[test]
fn duplicate_device_name_node_and_router() {
    let text = mutate("name: calico-bgp-rr-worker3", "name: leaf0");
    assert_only_problem(
        &text,
        "racks[1].nodes[1].name",
        "device name 'leaf0' is already used at leafs[0].name",
    );
}

#[test]
fn duplicate_device_name_two_nodes() {
    let text = mutate("name: calico-bgp-rr-worker3", "name: calico-bgp-rr-worker2");
    assert_only_problem(
        &text,
        "racks[1].nodes[1].name",
        "device name 'calico-bgp-rr-worker2' is already used at racks[1].nodes[0].name",
    );
}

#[test]
fn bridge_port_name_over_15_characters() {
    // Two nodes and the leaf: the last port is `<bridge>-net2`, 5 characters more.
    let text = mutate("bridge: br-leaf0", "bridge: br-leaf0-r0");
    assert_only_problem(
        &text,
        "racks[0].bridge",
        "bridge 'br-leaf0-r0' gives port name 'br-leaf0-r0-net2' (16 characters); Linux allows 15",
    );
}

#[test]
fn bridge_port_name_of_exactly_15_characters_is_accepted() {
    let text = mutate("bridge: br-leaf0", "bridge: br-leaf0-0");
    let t = Topology::from_yaml(&text, FILE).expect("a 15-character port name fits");
    assert_eq!(t.racks[0].bridge, "br-leaf0-0");
}

#[test]
fn several_problems_are_all_reported() {
    let text = mutate_many(&[
        ("routerId: 10.1.12.2", "routerId: 10.1.8.1"),
        ("address: 10.1.5.11", "address: 10.1.6.11"),
        (
            "{ device: spine1, interface: eth2, address: 10.1.11.2/24 }",
            "{ device: spine9, interface: eth2, address: 10.1.11.2/24 }",
        ),
        ("asNumber: 65008", "asNumber: 65009"),
    ]);
    let (message, problems) = invalid(&text);
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "racks[0].nodes[1].address",
            "links[3].endpoints[1].device",
            "leafs[1].routerId",
            "calico.bgpPeers[1].asNumber",
        ],
        "{message}"
    );
    assert!(message.contains("(4 problems)"), "{message}");
    assert_eq!(message.lines().count(), 5, "{message}");
    assert_problem(
        &message,
        &problems,
        "racks[0].nodes[1].address",
        "outside rack subnet",
    );
    assert_problem(
        &message,
        &problems,
        "links[3].endpoints[1].device",
        "'spine9'",
    );
    assert_problem(
        &message,
        &problems,
        "leafs[1].routerId",
        "router id 10.1.8.1",
    );
    assert_problem(
        &message,
        &problems,
        "calico.bgpPeers[1].asNumber",
        "AS 65009",
    );
}

// ---------------------------------------------------------------------------
// Reading files
// ---------------------------------------------------------------------------

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-topology.yaml");
    match Topology::load(&path) {
        Err(err @ TopologyError::Read { .. }) => {
            let message = err.to_string();
            let TopologyError::Read { file, source } = err else {
                unreachable!()
            };
            assert_eq!(file, path.display().to_string());
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            assert!(
                message.starts_with(&format!("{}: cannot read: ", path.display())),
                "{message}"
            );
        }
        other => panic!("expected TopologyError::Read, got {other:?}"),
    }
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, SEED_TOPOLOGY_YAML).unwrap();
    assert_eq!(Topology::load(&good).unwrap(), Topology::seed());

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, mutate("asNumber: 65008", "asNumber: 65009")).unwrap();
    let message = Topology::load(Path::new(&bad)).unwrap_err().to_string();
    assert!(
        message.contains(&format!("{}: calico.bgpPeers[1].asNumber: ", bad.display())),
        "{message}"
    );
}

#[test]
fn leaf_interface_used_by_two_racks() {
    // rack1 moves to leaf0 (with its peer's AS), both on leaf0:eth3.
    let text = mutate_many(&[
        ("leaf: leaf1\n", "leaf: leaf0\n"),
        ("asNumber: 65008", "asNumber: 65005"),
    ]);
    assert_has_problem(
        &text,
        "racks[1].leafInterface",
        "leaf0:eth3 is already used at racks[0].leafInterface",
    );
}

#[test]
fn bridge_named_like_another_racks_port() {
    let text = mutate("bridge: br-leaf1", "bridge: br-leaf0-net0");
    assert_has_problem(
        &text,
        "racks[1].bridge",
        "has the name of another rack's bridge port",
    );
}

#[test]
fn bgp_peer_to_a_spine_has_no_session_on_the_other_side() {
    let text = mutate_many(&[
        ("peerIP: 10.1.8.1", "peerIP: 10.1.34.2"),
        ("asNumber: 65008", "asNumber: 500"),
    ]);
    assert_only_problem(
        &text,
        "calico.bgpPeers[1].peerIP",
        "10.1.34.2 is spine0, which has no rack and so no sessions to nodes",
    );
}

#[test]
fn bgp_peer_node_selector_that_does_not_parse() {
    let text = mutate(
        "nodeSelector: rack == 'rack1'",
        "nodeSelector: rack == 'rack1",
    );
    assert_only_problem(
        &text,
        "calico.bgpPeers[1].nodeSelector",
        "unterminated string",
    );
}

#[test]
fn bgp_peer_node_selector_reaching_another_leafs_rack() {
    let text = mutate("nodeSelector: rack == 'rack1'", "nodeSelector: has(rack)");
    assert_only_problem(
        &text,
        "calico.bgpPeers[1].nodeSelector",
        "selects calico-bgp-rr-control-plane in rack rack0 (leaf leaf0), calico-bgp-rr-worker in rack rack0 (leaf leaf0); leaf1 has sessions for its own racks' nodes only",
    );
}

#[test]
fn bgp_peer_node_selector_that_selects_nothing() {
    let text = mutate(
        "nodeSelector: rack == 'rack1'",
        "nodeSelector: rack == 'rack9'",
    );
    assert_only_problem(&text, "calico.bgpPeers[1].nodeSelector", "selects no node");
}

#[test]
fn pods_named_twice_or_badly() {
    let text = mutate(
        "address: 10.1.8.11 }",
        "address: 10.1.8.11, pods: [calico-bgp-rr-worker2-pod1, Web_1] }",
    );
    let (message, problems) = invalid(&text);
    assert_eq!(problems.len(), 2, "{message}");
    assert_problem(
        &message,
        &problems,
        "racks[1].nodes[1].pods[0]",
        "'calico-bgp-rr-worker2-pod1' is used twice",
    );
    assert_problem(
        &message,
        &problems,
        "racks[1].nodes[1].pods[1]",
        "must be lower-case",
    );
}

#[test]
fn pods_default_to_two_named_after_the_node_and_may_be_listed() {
    let t = Topology::seed();
    assert_eq!(
        t.racks[0].nodes[1].pod_names(),
        ["calico-bgp-rr-worker-pod1", "calico-bgp-rr-worker-pod2"]
    );
    let text = mutate(
        "address: 10.1.8.11 }",
        "address: 10.1.8.11, pods: [web, db, cache] }",
    );
    let t = Topology::from_yaml(&text, "lab.yaml").unwrap();
    assert_eq!(t.racks[1].nodes[1].pod_names(), ["web", "db", "cache"]);
}

// ---------------------------------------------------------------------------
// Topologies that validated but could not work (issue 14)
// ---------------------------------------------------------------------------

#[test]
fn interface_and_bridge_names_the_kernel_reserves_are_refused() {
    for name in ["lo", ".", "..", "all", "default"] {
        assert_has_problem(
            &mutate(
                "leafInterface: eth3\n    gateway: 10.1.5.1",
                &format!("leafInterface: \"{name}\"\n    gateway: 10.1.5.1"),
            ),
            "racks[0].leafInterface",
            &format!("interface name '{name}' is reserved"),
        );
        assert_has_problem(
            &mutate("bridge: br-leaf1", &format!("bridge: \"{name}\"")),
            "racks[1].bridge",
            &format!("interface name '{name}' is reserved"),
        );
    }
}

#[test]
fn a_node_whose_container_name_is_another_members_is_refused() {
    // Nodes drop the topology's name as prefix: this node's container would be
    // <lab>-leaf0, the router's.
    assert_has_problem(
        &mutate("name: calico-bgp-rr-worker3,", "name: calico-bgp-rr-leaf0,"),
        "racks[1].nodes[1].name",
        "'calico-bgp-rr-leaf0' and 'leaf0' would both get the container name <lab>-leaf0",
    );
    assert_has_problem(
        &mutate(
            "name: calico-bgp-rr-worker3,",
            "name: calico-bgp-rr-fabric,",
        ),
        "racks[1].nodes[1].name",
        "would be named <lab>-fabric, a name the harness uses for itself",
    );
}

#[test]
fn reserved_as_numbers_are_refused() {
    for (asn, why) in [
        ("23456", "AS_TRANS"),
        ("65535", "RFC 7300"),
        ("4294967295", "RFC 7300"),
    ] {
        let text = mutate("asn: 500", &format!("asn: {asn}"));
        assert_has_problem(
            &text,
            "spines[0].asn",
            &format!("AS number {asn} is reserved ("),
        );
        assert_has_problem(&text, "spines[0].asn", why);
    }
}

#[test]
fn racks_that_cannot_reach_each_other_are_refused() {
    // No spine at all: two leafs and no link between them.
    let text = SEED_TOPOLOGY_YAML;
    let links = text.find("\nlinks:").unwrap();
    let spines = text.find("\nspines:").unwrap();
    let leafs = text.find("\nleafs:").unwrap();
    let no_spines =
        format!("{}\nlinks: []\n", &text[..links]).replace(&text[spines..leafs], "\nspines: []");
    assert_has_problem(
        &no_spines,
        "leafs[1].name",
        "leaf1 cannot reach leaf0 over any link",
    );
}

#[test]
fn two_leafs_in_one_as_are_refused() {
    let text = mutate_many(&[
        (
            "asn: 65008\n    routerId: 10.1.8.1",
            "asn: 65005\n    routerId: 10.1.8.1",
        ),
        ("asNumber: 65008", "asNumber: 65005"),
    ]);
    assert_only_problem(
        &text,
        "leafs[1].asn",
        "AS 65005 is also leaf0's: each leaf would drop the other's routes as an AS-path loop",
    );
}

#[test]
fn a_pool_too_small_for_the_nodes_blocks_names_the_pod_cidr() {
    assert_only_problem(
        &mutate("podCidr: 10.244.0.0/16", "podCidr: 10.244.0.0/25"),
        "calico.podCidr",
        "10.244.0.0/25 holds 2 block(s) of /26, too few for 4 nodes",
    );
}

#[test]
fn the_broadcast_and_network_addresses_are_named_as_such() {
    assert_only_problem(
        &mutate("address: 10.1.8.11 }", "address: 10.1.8.255 }"),
        "racks[1].nodes[1].address",
        "10.1.8.255 is the broadcast address of rack subnet 10.1.8.0/24",
    );
    assert_only_problem(
        &mutate("address: 10.1.8.11 }", "address: 10.1.8.0 }"),
        "racks[1].nodes[1].address",
        "10.1.8.0 is the network address of rack subnet 10.1.8.0/24",
    );
}

#[test]
fn an_endless_or_huge_file_is_refused_before_it_fills_memory() {
    let err = Topology::load(Path::new("/dev/zero")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/dev/zero: cannot read: larger than 8 MiB"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(9 << 20)).unwrap();
    let err = Topology::load(&big).unwrap_err();
    assert!(err.to_string().contains("larger than 8 MiB"), "{err}");
}

#[test]
fn a_peer_off_the_selected_nodes_rack_subnet_is_refused() {
    // On a leaf serving two racks, rack rb's nodes must peer with the leaf's address
    // on rb, not on ra: sessions are direct.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/topologies/shared-leaf.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(Topology::from_yaml(&text, FILE).is_ok());
    let broken = text.replacen(
        "peerIP: 10.30.2.1, asNumber: 65201",
        "peerIP: 10.30.1.1, asNumber: 65201",
        1,
    );
    assert_ne!(broken, text);
    assert_only_problem(
        &broken,
        "calico.bgpPeers[1].nodeSelector",
        "selects shared-leaf-worker2 in rack rb (10.30.2.0/24), shared-leaf-worker3 in rack rb (10.30.2.0/24), whose subnet does not hold 10.30.1.1",
    );
}

#[test]
fn an_unsupported_calico_version_is_refused_naming_the_range() {
    for version in ["v3.22.0", "v4.0.0", "latest"] {
        assert_only_problem(
            &mutate("version: v3.23.2", &format!("version: {version}")),
            "calico.version",
            "supported: v3.23.0 to v3.32.x",
        );
    }
    let t = Topology::from_yaml(&mutate("version: v3.23.2", "version: v3.32.1"), FILE).unwrap();
    assert_eq!(t.calico_version().to_string(), "v3.32.1");
}
