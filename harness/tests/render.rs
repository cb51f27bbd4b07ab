//! Every render of every fixture topology against its golden file.
//! `UPDATE_GOLDEN=1 cargo test --test render` rewrites the golden files.

use std::path::{Path, PathBuf};

use calico_lab::render::render_all;
use calico_lab::Topology;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// What differs between every render of a fixture topology and its golden files,
/// a golden file no longer rendered included. With `update`, rewrites them instead.
fn check_golden(topology_file: &Path, update: bool) -> Vec<String> {
    let t = Topology::load(topology_file).expect("fixture loads");
    let golden = fixtures().join("golden").join(&t.name);
    let files = render_all(&t);
    assert!(!files.is_empty());
    if update {
        for path in files_below(&golden) {
            std::fs::remove_file(path).unwrap();
        }
        for file in &files {
            let path = golden.join(&file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.contents).unwrap();
        }
        return vec![format!("rewrote {}", golden.display())];
    }
    let mut mismatches = Vec::new();
    for file in &files {
        let path = golden.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == file.contents => {}
            Ok(expected) => mismatches.push(format!(
                "{} differs from its render; first differing line: {:?}",
                path.display(),
                expected
                    .lines()
                    .zip(file.contents.lines())
                    .find(|(a, b)| a != b)
            )),
            Err(e) => mismatches.push(format!("{}: {e}", path.display())),
        }
    }
    let rendered: std::collections::BTreeSet<PathBuf> =
        files.iter().map(|f| golden.join(&f.path)).collect();
    for path in files_below(&golden) {
        if !rendered.contains(&path) {
            mismatches.push(format!("{} is no longer rendered", path.display()));
        }
    }
    mismatches
}

/// Every file below `dir` (the render goldens; BIRD goldens have their own test).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bird") {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// With `UPDATE_GOLDEN=1` the files are rewritten and the test fails anyway, so an
/// update never passes as a check.
#[test]
fn every_fixture_topology_renders_its_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures().join("topologies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            problems.extend(check_golden(&path, update));
            checked += 1;
        }
    }
    assert!(checked >= 3, "fixture topologies found: {checked}");
    assert!(
        problems.is_empty(),
        "{}\n{}",
        if update {
            "golden files rewritten; review the diff and run again without UPDATE_GOLDEN:"
        } else {
            "golden mismatches (UPDATE_GOLDEN=1 rewrites them):"
        },
        problems.join("\n")
    );
}

#[test]
fn seed_kind_cluster_and_calico_resources_hold_the_seed_facts() {
    let files = render_all(&Topology::seed());
    let text = |name: &str| {
        files
            .iter()
            .find(|f| f.path == Path::new(name))
            .map(|f| f.contents.clone())
            .unwrap_or_else(|| panic!("{name} is rendered"))
    };
    let kind = text("kind-cluster.yaml");
    for line in [
        "name: calico-bgp-rr",
        "  disableDefaultCNI: true",
        "  podSubnet: \"10.244.0.0/16\"",
        "- role: control-plane",
        "        node-ip: 10.1.8.11",
        "        node-labels: \"rack=rack1\"",
    ] {
        assert!(
            kind.lines().any(|l| l == line),
            "kind-cluster.yaml lacks {line:?}"
        );
    }
    assert_eq!(kind.matches("- role: worker").count(), 3);
    let calico = text("calico-resources.yaml");
    for line in [
        "kind: BGPConfiguration",
        "  nodeToNodeMeshEnabled: false",
        "  - cidr: 10.96.0.0/16",
        "  name: rack0-to-leaf0",
        "  peerIP: 10.1.5.1",
        "  nodeSelector: rack == 'rack1'",
        "    asNumber: 65008",
        "    ipv4Address: 10.1.8.11/24",
    ] {
        assert!(
            calico.lines().any(|l| l == line),
            "calico-resources.yaml lacks {line:?}"
        );
    }
    assert_eq!(calico.matches("kind: BGPPeer").count(), 2);
    assert_eq!(calico.matches("kind: Node\n").count(), 4);
}

#[test]
fn a_leaf_serving_two_racks_rewrites_next_hops_from_outside_each_rack() {
    let t = Topology::load(&fixtures().join("topologies/shared-leaf.yaml")).unwrap();
    let conf = calico_lab::render::frr_conf(&t, "leaf-a");
    for line in [
        " bgp route-reflector allow-outbound-policy",
        "  neighbor 10.30.1.10 route-map RACK0-OUT out",
        "  neighbor 10.30.2.11 route-map RACK1-OUT out",
        "ip prefix-list RACK1-SUBNET seq 5 permit 10.30.2.0/24 le 32",
        " match ip next-hop prefix-list RACK1-SUBNET",
        " set ip next-hop peer-address",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "leaf-a lacks {line:?}:\n{conf}"
        );
    }
    // A leaf with one rack needs none of it.
    let single = calico_lab::render::frr_conf(&t, "leaf-b");
    assert!(!single.contains("route-map"), "{single}");
    let boot = calico_lab::render::vyos_config_boot(&t, "leaf-a");
    for part in [
        "route-reflector-allow-outbound-policy",
        "prefix \"10.30.2.0/24\"",
        "ip-next-hop \"peer-address\"",
        "export \"RACK1-OUT\"",
    ] {
        assert!(boot.contains(part), "leaf-a config.boot lacks {part:?}");
    }
}

#[test]
fn seed_frr_leaf_reflects_its_rack_and_peers_with_both_spines() {
    let conf = calico_lab::render::frr_conf(&Topology::seed(), "leaf1");
    for line in [
        "router bgp 65008",
        " bgp router-id 10.1.8.1",
        " bgp bestpath as-path multipath-relax",
        " neighbor 10.1.8.10 remote-as 65008",
        " neighbor 10.1.8.11 remote-as 65008",
        " neighbor 10.1.34.2 remote-as 500",
        " neighbor 10.1.11.2 remote-as 800",
        "  network 10.1.8.0/24",
        "  network 10.1.11.0/24",
        "  network 10.1.34.0/24",
        "  neighbor 10.1.8.10 route-reflector-client",
        "  neighbor 10.1.8.11 next-hop-self",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "leaf1 frr.conf lacks {line:?}:\n{conf}"
        );
    }
    assert!(
        !conf.contains("neighbor 10.1.34.2 route-reflector-client"),
        "a spine is no RR client"
    );
}

#[test]
fn vyos_config_keeps_the_reference_structure() {
    let rendered = calico_lab::render::vyos_config_boot(&Topology::seed(), "leaf0");
    assert!(rendered.ends_with("// Release version: 1.4-rolling-202307070317\n"));
    assert!(rendered.contains("// vyos-config-version: \"bgp@4:"));
    assert!(rendered.contains("    host-name \"leaf0\"\n"));
    // Identical to the original lab's leaf0 but for its MTU 9000 and its masquerade
    // to the internet.
    let reference = fixtures().join("reference/original-lab/leaf0-boot.cfg");
    let reference = std::fs::read_to_string(&reference).expect("the reference config is a fixture");
    let without_nat = |s: &str| match (s.find("nat {\n"), s.find("protocols {\n")) {
        (Some(start), Some(end)) => format!("{}{}", &s[..start], &s[end..]),
        _ => s.to_string(),
    };
    assert_eq!(
        without_nat(&reference.replace("mtu \"9000\"", "mtu \"1500\"")),
        rendered
    );
}

#[test]
fn kind_names_match_the_seed_node_names() {
    let t = Topology::seed();
    let names: Vec<String> = t.nodes().map(|(_, n)| n.name.clone()).collect();
    assert_eq!(calico_lab::render::kind_assigned_names(&t), names);
}

#[test]
fn render_writes_every_file() {
    let out = tempfile::tempdir().unwrap();
    let written = calico_lab::render::write_all(&Topology::seed(), out.path()).unwrap();
    assert_eq!(written.len(), 4 * 2 + 2);
    assert!(out.path().join("frr/spine0.conf").is_file());
    assert!(out.path().join("vyos/leaf1/config.boot").is_file());
    assert!(out.path().join("kind-cluster.yaml").is_file());
    assert!(out.path().join("calico-resources.yaml").is_file());
}
