//! The emulated calico-node without Docker: resources, peer resolution, IPAM and the
//! BIRD render for the seed lab, each golden file checked by BIRD itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use calico_lab::calico::bird::upstream;
use calico_lab::calico::confd::render;
use calico_lab::calico::emulated::{
    expected_protocols, installed, pods, starting_resources, CalicoState,
};
use calico_lab::calico::peers::{resolve, Cluster, Mesh, MeshOutcome};
use calico_lab::calico::resources::{load, parse, Resource};
use calico_lab::calico::Resources;
use calico_lab::Topology;

/// The version the seed runs and these tests render for.
const V: calico_lab::calico::CalicoVersion = calico_lab::calico::CalicoVersion::SEED;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seed_fixture(name: &str) -> Vec<Resource> {
    load(&root().join("fixtures/calico").join(name)).unwrap()
}

fn cluster(yaml: &str) -> Resources {
    let mut r = Resources::default();
    r.apply(parse(yaml, "test").unwrap()).unwrap();
    r
}

#[test]
fn every_seed_resource_form_parses() {
    let list = seed_fixture("1-disable-full-mesh.yaml");
    assert!(
        matches!(&list[..], [Resource::BgpConfiguration(n, s)] if n == "default" && s.node_to_node_mesh_enabled == Some(false))
    );
    for file in ["2-nodes.yaml", "2-nodes-long.yaml"] {
        let nodes = seed_fixture(file);
        assert_eq!(nodes.len(), 4, "{file}");
        let Resource::Node(meta, spec) = &nodes[0] else {
            panic!("{file}: not a Node")
        };
        assert_eq!(meta.labels["rack"], "rack0");
        let bgp = spec.bgp.as_ref().unwrap();
        assert_eq!(
            (bgp.as_number.unwrap().0, bgp.ipv4_address.as_deref()),
            (65005, Some("10.1.5.10/24"))
        );
    }
    assert_eq!(seed_fixture("3-bgppeers.yaml").len(), 2);
    assert_eq!(seed_fixture("4-service-advertisement.yaml").len(), 1);
}

#[test]
fn bad_resources_are_clear_errors() {
    let cases = [
        ("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: x}\n", "unknown kind \"GlobalNetworkPolicy\""),
        ("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 1, colour: red}\n", "spec.colour: unknown field `colour`"),
        ("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: -4}\n", "spec.asNumber"),
        ("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/33}\n", "spec.cidr"),
        ("apiVersion: projectcalico.org/v2\nkind: BGPPeer\nmetadata: {name: p}\n", "unsupported apiVersion"),
        ("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nspec: {}\n", "metadata.name: missing"),
        ("apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec: {exportV4: [{action: Maybe}]}\n", "spec.exportV4[0].action"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '***'}\n", "not base64"),
        ("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n", "kubernetes.io/service-name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "unknown kind \"ConfigMap\""),
    ];
    for (yaml, want) in cases {
        let err = parse(yaml, "bad.yaml").unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml: document 1"), "{err}");
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
    let applied = [
        (
            "spec: {peerIP: 10.0.0.1:99999, asNumber: 1}",
            "is not ip, ip:port",
        ),
        (
            "spec: {peerIP: 10.0.0.1, asNumber: 1, peerSelector: all()}",
            "cannot both be set",
        ),
        ("spec: {peerSelector: \"rack == 'a\"}", "unterminated"),
        (
            "spec: {asNumber: 1}",
            "one of peerIP, peerSelector or localWorkloadSelector",
        ),
        (
            "spec: {peerSelector: all(), asNumber: 65001}",
            "asNumber must be empty when peerSelector is set",
        ),
        (
            "spec: {peerIP: 10.0.0.1, asNumber: 1, localWorkloadSelector: all()}",
            "must be empty when localWorkloadSelector",
        ),
        (
            "spec: {peerIP: 10.0.0.1, asNumber: 1, reachableBy: 'fd00::1'}",
            "address family mismatched",
        ),
        ("spec: {peerIP: 10.0.0.1, keepaliveTime: soon}", "duration"),
    ];
    let filters = [
        (
            "spec: {exportV4: [{action: Accept, cidr: 10.0.0.0/8}]}",
            "cidr and matchOperator go together",
        ),
        (
            "spec: {importV4: [{action: Accept, communities: {values: ['65000:x']}}]}",
            "is not a BGP community",
        ),
        (
            "spec: {importV4: [{action: Accept, operations: [{}]}]}",
            "exactly one of addCommunity",
        ),
    ];
    let refused_named = |kind: &str, name: &str, spec: &str, want: &str| {
        let yaml = format!(
            "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: {name}}}\n{spec}\n"
        );
        let err = Resources::default()
            .apply(parse(&yaml, "t").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
    };
    let refused = |kind: &str, spec: &str, want: &str| refused_named(kind, "x", spec, want);
    for (spec, want) in filters {
        refused("BGPFilter", spec, want);
    }
    // What would reach BIRD as a value it refuses, or as configuration of its own.
    for (kind, spec, want) in [
        ("BGPFilter", "spec: {exportV4: [{action: Accept, matchOperator: In, cidr: 10.0.0.0/16, prefixLength: {min: 30, max: 20}}]}", "prefixLength 30 to 20"),
        ("BGPFilter", "spec: {exportV4: [{action: Accept, matchOperator: In, cidr: 10.1.2.3/8}]}", "host bits"),
        ("BGPFilter", "spec: {exportV4: [{action: Accept, matchOperator: In, cidr: 'fd00::/8'}]}", "an IPv4 rule matches fd00::/8"),
        ("BGPFilter", "spec: {exportV4: [{action: Accept, interface: 'eth\"0'}]}", "not an interface name"),
        ("BGPFilter", "spec: {exportV4: [{action: Accept, prefixLength: {max: 24}}]}", "prefixLength needs a cidr"),
        ("BGPFilter", "spec: {importV4: [{action: Accept, priority: 0}]}", "priority 0"),
        ("BGPConfiguration", "spec: {asNumber: 0}", "spec.asNumber: 0"),
        ("BGPConfiguration", "spec: {bindMode: Bogus}", "spec.bindMode"),
        ("BGPConfiguration", "spec: {ignoredInterfaces: ['eth\"0']}", "spec.ignoredInterfaces"),
        ("BGPConfiguration", "spec: {nodeMeshMaxRestartTime: 2562048h}", "65535 s"),
        ("BGPConfiguration", "spec: {localWorkloadPeeringIPV4: foo}", "localWorkloadPeeringIPV4"),
        ("BGPPeer", "spec: {peerIP: 0.0.0.0, asNumber: 1}", "cannot be a BGP peer"),
        ("BGPPeer", "spec: {peerIP: 10.0.0.1, asNumber: 1, maxRestartTime: 100000h}", "spec.maxRestartTime"),
        ("BGPPeer", "spec: {peerIP: 10.0.0.1, asNumber: 1, localASNumber: 0}", "spec.localASNumber: 0"),
        ("Node", "spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: foo}}", "not an IPv4 address"),
        ("Node", "spec: {bgp: {ipv4Address: 10.0.0.1/24, asNumber: 0}}", "spec.bgp.asNumber: 0"),
        ("IPPool", "spec: {cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: Always}", "cannot both be enabled"),
        ("IPPool", "spec: {cidr: 10.0.0.1/16}", "host bits"),
    ] {
        refused(kind, spec, want);
    }
    // Names reach BIRD's comments and symbols: a line break would end a comment.
    for name in ["a b", "\"evil\\nprotocol static x {}\"", "Upper", "-a"] {
        refused_named(
            "BGPPeer",
            name,
            "spec: {peerIP: 10.0.0.1, asNumber: 1}",
            "must be a Kubernetes name",
        );
    }
    for (spec, want) in applied {
        refused("BGPPeer", spec, want);
    }
}

const NODES: &str = "
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a, labels: {rack: r0}}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: b, labels: {rack: r0}}
spec: {bgp: {ipv4Address: 10.0.0.2/24, asNumber: 65001}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: c, labels: {rack: r1, rr: 'yes'}}
spec: {bgp: {ipv4Address: 10.0.0.3/24, routeReflectorClusterID: 1.1.1.1}}
";

/// (extra resources, node, expected protocols in render order)
#[test]
fn peer_resolution_table() {
    let mesh_off = "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 65000}\n";
    let peer = |spec: &str| {
        format!("---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p{}}}\nspec: {spec}\n", spec.len())
    };
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        // Mesh on by default, route reflectors left out of it.
        (String::new(), "a", vec!["Mesh_10_0_0_2"]),
        (String::new(), "c", vec![]),
        (mesh_off.to_string(), "a", vec![]),
        // Global peer on every node, ports named.
        (
            format!(
                "{mesh_off}{}",
                peer("{peerIP: '10.9.0.1:1790', asNumber: 1}")
            ),
            "b",
            vec!["Global_10_9_0_1_port_1790"],
        ),
        // By node and by nodeSelector.
        (
            format!(
                "{mesh_off}{}",
                peer("{peerIP: 10.9.0.1, asNumber: 1, node: a}")
            ),
            "a",
            vec!["Node_10_9_0_1"],
        ),
        (
            format!(
                "{mesh_off}{}",
                peer("{peerIP: 10.9.0.1, asNumber: 1, node: a}")
            ),
            "b",
            vec![],
        ),
        (
            format!(
                "{mesh_off}{}",
                peer("{peerIP: 10.9.0.1, asNumber: 1, nodeSelector: \"rack == 'r0'\"}")
            ),
            "b",
            vec!["Node_10_9_0_1"],
        ),
        (
            format!(
                "{mesh_off}{}",
                peer("{peerIP: 10.9.0.1, asNumber: 1, nodeSelector: \"rack == 'r0'\"}")
            ),
            "c",
            vec![],
        ),
        // peerSelector peers both ways: a and b with the reflector c, and c back.
        (
            format!(
                "{mesh_off}{}",
                peer("{nodeSelector: \"rack == 'r0'\", peerSelector: has(rr)}")
            ),
            "a",
            vec!["Node_10_0_0_3"],
        ),
        (
            format!(
                "{mesh_off}{}",
                peer("{nodeSelector: \"rack == 'r0'\", peerSelector: has(rr)}")
            ),
            "c",
            vec!["Node_10_0_0_1", "Node_10_0_0_2"],
        ),
        // A node-specific peer with a global peer's address is skipped.
        (
            format!(
                "{mesh_off}{}{}",
                peer("{peerIP: 10.9.0.1, asNumber: 1}"),
                peer("{peerIP: 10.9.0.1, asNumber: 1, node: a}")
            ),
            "a",
            vec!["Global_10_9_0_1"],
        ),
        // A peer at our own address is skipped.
        (
            format!("{mesh_off}{}", peer("{peerIP: 10.0.0.1, asNumber: 1}")),
            "a",
            vec![],
        ),
    ];
    for (extra, node, want) in cases {
        let r = cluster(&format!("{NODES}{extra}"));
        assert_eq!(
            expected_protocols(&r, node, V),
            want,
            "node {node} with:{extra}"
        );
    }
}

#[test]
fn asn_fallbacks_route_reflection_and_passive_side() {
    let r = cluster(NODES);
    let c = Cluster::new(&r);
    // Node's own AS, else BGPConfiguration's, else 64512.
    assert_eq!((c.nodes["a"].asn, c.nodes["b"].asn), (64512, 65001));
    let r2 = cluster(&format!("{NODES}---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec: {{asNumber: 65000}}\n"));
    assert_eq!(Cluster::new(&r2).nodes["a"].asn, 65000);
    // a (10.0.0.1) listens for b (10.0.0.2): the greater address connects.
    let Mesh::Enabled(entries) = resolve(&c, "a", V).unwrap().mesh else {
        panic!("mesh")
    };
    assert!(matches!(entries[0].outcome, MeshOutcome::Ourselves));
    assert!(matches!(entries[2].outcome, MeshOutcome::RouteReflector(ref id) if id == "1.1.1.1"));
    let a = render(&r, "a", V).unwrap().bird;
    assert!(a.contains("neighbor 10.0.0.2 as 65001;\n  source address 10.0.0.1;  # The local address we use for the TCP connection\n  passive on;"), "{a}");
    // The reflector's same-AS clients get `rr client`.
    let rr = cluster(&format!("{NODES}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{nodeSelector: all(), peerSelector: has(rr)}}\n"));
    let c_cfg = render(&rr, "c", V).unwrap().bird;
    assert!(c_cfg.contains("protocol bgp Node_10_0_0_1 from bgp_template {\n  neighbor 10.0.0.1 as 64512;\n  source address 10.0.0.3;  # The local address we use for the TCP connection\n  rr client;\n  rr cluster id 1.1.1.1;"), "{c_cfg}");
    assert!(!c_cfg.contains("Node_10_0_0_2 from bgp_template {\n  neighbor 10.0.0.2 as 65001;\n  source address 10.0.0.3;  # The local address we use for the TCP connection\n  rr client"), "different AS: no rr client");
}

fn seed() -> Topology {
    Topology::seed()
}

#[test]
fn seed_steps_give_the_topologys_configuration() {
    let t = seed();
    let mut by_steps = Resources::default();
    by_steps.apply(installed(&t)).unwrap();
    for step in [
        "1-disable-full-mesh.yaml",
        "2-nodes.yaml",
        "3-bgppeers.yaml",
        "4-service-advertisement.yaml",
    ] {
        by_steps.apply(seed_fixture(step)).unwrap();
    }
    let configured = starting_resources(&t, CalicoState::Configured).unwrap();
    by_steps.block_affinities = configured.block_affinities.clone();
    for (_, node) in t.nodes() {
        assert_eq!(
            render(&by_steps, &node.name, V).unwrap(),
            render(&configured, &node.name, V).unwrap(),
            "{}",
            node.name
        );
    }
}

#[test]
fn seed_nodes_peer_only_with_their_leaf_and_pods_sit_in_their_block() {
    let t = seed();
    let r = starting_resources(&t, CalicoState::Configured).unwrap();
    for (rack, node) in t.nodes() {
        assert_eq!(
            expected_protocols(&r, &node.name, V),
            [format!(
                "Node_{}",
                rack.gateway.to_string().replace('.', "_")
            )]
        );
    }
    let fresh = starting_resources(&t, CalicoState::Installed).unwrap();
    assert_eq!(
        expected_protocols(&fresh, "calico-bgp-rr-worker", V).len(),
        3,
        "full mesh to the 3 others"
    );
    let pods = pods(&t, &r);
    assert_eq!(pods.len(), 8);
    for p in &pods {
        let block = calico_lab::calico::ipam::node_blocks(&r, &p.node)[0].cidr;
        assert!(block.contains(&p.ip), "{p:?} outside {block}");
    }
}

/// Golden upstream-BIRD files for the seed's four nodes, each parsed by `bird -p`.
#[test]
fn seed_bird_files_match_golden_and_bird_accepts_them() {
    let t = seed();
    let r = starting_resources(&t, CalicoState::Configured).unwrap();
    let golden = root().join("fixtures/golden/calico-bgp-rr/bird");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (_, node) in t.nodes() {
        let files = upstream(&render(&r, &node.name, V).unwrap());
        let dir = golden.join(&node.name);
        for (name, text) in files.files() {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, text).unwrap();
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                text,
                want,
                "{} differs (UPDATE_GOLDEN=1 rewrites it)",
                path.display()
            );
        }
        bird_accepts(&dir);
    }
}

/// Calico's exact form (with `krt_tunnel`) is what upstream BIRD rejects; the
/// adaptation is what makes it load.
#[test]
fn upstream_bird_rejects_calicos_fork_syntax_only() {
    let t = seed();
    let r = starting_resources(&t, CalicoState::Configured).unwrap();
    let exact = render(&r, "calico-bgp-rr-worker", V).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in exact.files() {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = bird_parse(dir.path());
    assert!(!out.status.success(), "bird accepted krt_tunnel");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bird_ipam.cfg"),
        "{out:?}"
    );
}

fn bird_parse(dir: &Path) -> std::process::Output {
    Command::new("bird")
        .args(["-p", "-c", "bird.cfg"])
        .current_dir(dir)
        .output()
        .expect("`bird` (Debian package bird, installed by ci/bootstrap) runs")
}

fn bird_accepts(dir: &Path) {
    let out = bird_parse(dir);
    assert!(
        out.status.success(),
        "bird -p rejected {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A field a version does not have is refused for that version, naming the first
/// version with it; the same resources render on that version.
#[test]
fn fields_newer_than_the_version_are_refused_naming_the_first_with_them() {
    let peer = |extra: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: a}}\nspec: {{bgp: {{ipv4Address: 10.0.0.1/24}}}}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{peerIP: 10.0.0.9, asNumber: 65001, {extra}}}\n"
        )
    };
    let v = |s: &str| s.parse::<calico_lab::calico::CalicoVersion>().unwrap();
    for (extra, since) in [
        ("ttlSecurity: 1", "v3.25.0"),
        ("reachableBy: 10.0.0.254", "v3.25.0"),
        ("filters: [f]", "v3.26.0"),
        ("nextHopMode: Self", "v3.30.0"),
        ("reversePeering: Manual", "v3.30.0"),
        ("localASNumber: 65009", "v3.31.0"),
        ("keepaliveTime: 30s", "v3.32.0"),
    ] {
        let r = cluster(&peer(extra));
        let before = v(since);
        let older = calico_lab::calico::CalicoVersion {
            minor: before.minor - 1,
            patch: 9,
        };
        let err = render(&r, "a", older).unwrap_err().to_string();
        let field = extra.split(':').next().unwrap();
        assert!(
            err.contains(field) && err.contains(&format!("v3.{}", before.minor)),
            "{extra} at {older}: {err}"
        );
        render(&r, "a", before).unwrap_or_else(|e| panic!("{extra} at {before}: {e}"));
    }
    // BGPFilter itself came with v3.26, its `interface` match with v3.27.
    let filter = |rule: &str| {
        cluster(&format!(
            "{}---\napiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {{name: f}}\nspec: {{exportV4: [{{{rule}}}]}}\n",
            peer("filters: [f]")
        ))
    };
    let r = filter("action: Accept, matchOperator: In, cidr: 10.0.0.0/8");
    assert!(render(&r, "a", v("v3.25.2")).is_err());
    let bird = render(&r, "a", v("v3.26.5")).unwrap().bird;
    assert!(
        bird.contains("function 'bgp_f_exportFilterV4'()")
            && bird.contains("'bgp_f_exportFilterV4'();"),
        "{bird}"
    );
    let r = filter("action: Reject, interface: \"eth*\"");
    let err = render(&r, "a", v("v3.26.5")).unwrap_err().to_string();
    assert!(err.contains("interface") && err.contains("v3.27"), "{err}");
    assert!(render(&r, "a", v("v3.27.5"))
        .unwrap()
        .bird
        .contains("if (((defined(ifname))&&(ifname ~ \"eth*\"))) then { reject; }"));
    // A field parsed but not rendered yet is refused, not ignored.
    let r = cluster("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: a}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {ipv4NormalRoutePriority: 512}\n");
    let err = render(&r, "a", v("v3.32.1")).unwrap_err().to_string();
    assert!(err.contains("not emulated"), "{err}");
}

/// calico-node's environment: CALICO_ROUTER_ID as an address or `hash`; any other
/// key is refused naming the one it reads.
#[test]
fn router_id_from_the_environment_and_unknown_keys_refused() {
    use calico_lab::calico::confd::{hashed_router_id, render_with, NodeEnv};
    let r = cluster("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: kube-master}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n");
    let at = |pairs: &[&str]| {
        let env = NodeEnv::parse(pairs.iter().copied()).unwrap();
        render_with(&r, "kube-master", V, &env).unwrap().bird
    };
    assert!(at(&[]).contains("router id 10.0.0.1;"));
    assert!(at(&["CALICO_ROUTER_ID=10.10.10.10"]).contains("router id 10.10.10.10;"));
    let hashed = hashed_router_id("kube-master", V);
    assert!(at(&["CALICO_ROUTER_ID=hash"]).contains(&format!("router id {hashed};")));
    // SHA-256("node-18") starts 245.194.139.227: v3.25 on keeps it below 224.
    let v = |s: &str| s.parse::<calico_lab::calico::CalicoVersion>().unwrap();
    assert_eq!(
        hashed_router_id("node-18", v("v3.24.6")).to_string(),
        "245.194.139.227"
    );
    assert_eq!(
        hashed_router_id("node-18", v("v3.25.2")).to_string(),
        "213.194.139.227"
    );
    let err = NodeEnv::parse(["NODENAME=x"]).unwrap_err().to_string();
    assert!(err.contains("CALICO_ROUTER_ID"), "{err}");
    assert!(NodeEnv::parse(["CALICO_ROUTER_ID"]).is_err());
}

/// Details of confd the suites' cases do not pin: v3.32 sorts every peer by its
/// protocol name; `:179` is BGP's own port (one key with the bare address); Go
/// durations round to whole seconds; log levels other than debug and info are none.
#[test]
fn peer_order_ports_durations_and_log_levels_as_confd_has_them() {
    let v32 = "v3.32.1"
        .parse::<calico_lab::calico::CalicoVersion>()
        .unwrap();
    let base = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: a}\nspec: {bgp: {ipv4Address: 10.0.0.9/24}}\n---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: b}\nspec: {bgp: {ipv4Address: 10.0.0.10/24}}\n";
    let peer = |name: &str, spec: &str| {
        format!("---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {spec}\n")
    };
    let r = cluster(&format!(
        "{base}{}",
        peer("tor", "{peerIP: 10.0.0.1, asNumber: 65001}")
    ));
    let bird = render(&r, "a", v32).unwrap().bird;
    let names: Vec<&str> = bird
        .lines()
        .filter_map(|l| l.strip_prefix("protocol bgp "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["Global_10_0_0_1", "Mesh_10_0_0_10"], "{bird}");
    // Before v3.32: mesh first, then global peers.
    let bird = render(&r, "a", V).unwrap().bird;
    let first = bird.find("protocol bgp Mesh_").unwrap();
    assert!(first < bird.find("protocol bgp Global_").unwrap(), "{bird}");

    // `10.0.0.1:179` and `10.0.0.1` are one key: the first (by name) wins.
    let r = cluster(&format!(
        "{base}{}{}",
        peer("p1", "{peerIP: '10.0.0.1:179', asNumber: 65001}"),
        peer("p2", "{peerIP: 10.0.0.1, asNumber: 65002}")
    ));
    let bird = render(&r, "a", V).unwrap().bird;
    assert_eq!(bird.matches("neighbor 10.0.0.1 ").count(), 1, "{bird}");
    assert!(
        bird.contains("neighbor 10.0.0.1 port 179 as 65001;"),
        "{bird}"
    );

    // 500 ms rounds up to a second, 2m30.6s to 151.
    let r = cluster(&format!(
        "{base}{}{}",
        peer(
            "p1",
            "{peerIP: 10.0.0.1, asNumber: 65001, maxRestartTime: 500ms}"
        ),
        peer(
            "p2",
            "{peerIP: 10.0.0.2, asNumber: 65001, maxRestartTime: 2m30.6s}"
        )
    ));
    let bird = render(&r, "a", V).unwrap().bird;
    assert!(bird.contains("graceful restart time 1;"), "{bird}");
    assert!(bird.contains("graceful restart time 151;"), "{bird}");

    // logSeverityScreen: BIRD logs at debug, info, or not at all.
    for (level, want) in [
        ("Debug", Some("debug all;")),
        ("Info", Some("debug { states };")),
        ("Warning", None),
        ("Error", None),
    ] {
        let r = cluster(&format!(
            "{base}---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec: {{logSeverityScreen: {level}}}\n"
        ));
        let bird = render(&r, "a", V).unwrap().bird;
        match want {
            Some(line) => assert!(bird.contains(line), "{level}: {bird}"),
            None => assert!(!bird.contains("debug"), "{level}: {bird}"),
        }
    }
}

/// What BIRD would refuse, or take as configuration of its own, is refused at render:
/// a password it cannot quote, a peering without an AS number, a node without a
/// router id, a router id that is not an address; a listen port of 0 is none.
#[test]
fn renders_bird_would_refuse_are_refused() {
    use calico_lab::calico::confd::{render_with, NodeEnv};
    let node = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: a}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n";
    let with = |extra: &str| cluster(&format!("{node}---\n{extra}"));
    let secret = |value: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: kube-system}}\nstringData: {{k: '{value}'}}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{peerIP: 10.0.0.9, asNumber: 65001, password: {{secretKeyRef: {{name: s, key: k}}}}}}\n")
    };
    let ok = render(&with(&secret("good-one")), "a", V).unwrap().bird;
    assert!(ok.contains("password \"good-one\";"), "{ok}");
    for bad in [
        "a\"; } protocol static evil { route 6.6.6.0/24 blackhole; } #",
        "back\\slash",
    ] {
        let err = render(&with(&secret(bad)), "a", V).unwrap_err().to_string();
        assert!(err.contains("BGP password for 10.0.0.9"), "{bad}: {err}");
    }
    let err = render(
        &with("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.9}\n"),
        "a",
        V,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no AS number"), "{err}");
    let bare =
        cluster("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: b}\nspec: {}\n");
    let err = render(&bare, "b", V).unwrap_err().to_string();
    assert!(err.contains("CALICO_ROUTER_ID"), "{err}");
    let env = NodeEnv::parse(["CALICO_ROUTER_ID=hash"]).unwrap();
    assert!(render_with(&bare, "b", V, &env).is_ok());
    let err = NodeEnv::parse(["CALICO_ROUTER_ID=1.2.3.4;\nprotocol static x {}"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an IPv4 address"), "{err}");
    let bird = render(
        &with("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 0}\n"),
        "a",
        V,
    )
    .unwrap()
    .bird;
    assert!(!bird.contains("listen bgp"), "{bird}");
}
