//! Every render of every fixture topology against its golden file.
//! `UPDATE_GOLDEN=1 cargo test --test render` rewrites the golden files.

use std::path::{Path, PathBuf};

use calico_lab::render::render_all;
use calico_lab::Topology;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn check_golden(topology_file: &str) {
    let t =
        Topology::load(&fixtures().join("topologies").join(topology_file)).expect("fixture loads");
    let golden = fixtures().join("golden").join(&t.name);
    let files = render_all(&t);
    assert!(!files.is_empty());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for file in files {
        let path = golden.join(&file.path);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.contents).unwrap();
            continue;
        }
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
    assert!(
        mismatches.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn seed_renders_match_golden_files() {
    check_golden("calico-bgp-rr.yaml");
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
