//! Calico's own confd test cases (v3.23.2): our render must produce every statement
//! calico-node writes, in order, for each case and each step.

use std::path::{Path, PathBuf};

use calico_lab::calico::confd::{normalize, render, BirdFiles};
use calico_lab::calico::resources::load;
use calico_lab::calico::Resources;

/// Calico's suite renders for this node.
const NODE: &str = "kube-master";

fn suite() -> PathBuf {
    std::env::var_os("CALICO_LAB_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/conformance/calico-confd-v3.23.2")
        })
}

/// Renders `case` (and its `step2`, when present) and compares every file.
fn check(case: &str) {
    let root = suite();
    let dir = root.join(case);
    assert!(
        dir.join("input.yaml").exists(),
        "no case at {}",
        dir.display()
    );
    let mut resources = Resources::default();
    let mut failures = Vec::new();
    for step in [dir.clone(), dir.join("step2")] {
        if !step.join("input.yaml").exists() {
            continue;
        }
        if step == dir {
            resources
                .apply(load(&root.join("kdd/ipam.yaml")).unwrap())
                .unwrap();
        }
        resources
            .apply(load(&step.join("input.yaml")).unwrap())
            .unwrap();
        let files = render(&resources, NODE).unwrap();
        for (name, got) in files.files() {
            let expected = std::fs::read_to_string(step.join(format!("expected-{name}"))).unwrap();
            let (want, got) = (normalize(&expected), normalize(got));
            if want != got {
                let at = want
                    .iter()
                    .zip(&got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                failures.push(format!(
                    "{}: {name}: first difference at statement {at}:\n  want: {:?}\n  got:  {:?}",
                    step.display(),
                    want.get(at),
                    got.get(at)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! cases {
    ($($name:ident => $path:literal),* $(,)?) => {
        $( #[test] fn $name() { check($path); } )*
        const LISTED: &[&str] = &[$($path),*];
    };
}

cases! {
    mesh_bgp_export => "mesh/bgp-export",
    mesh_communities => "mesh/communities",
    mesh_ipip_always => "mesh/ipip-always",
    mesh_ipip_off => "mesh/ipip-off",
    mesh_route_reflector_mesh_enabled => "mesh/route-reflector-mesh-enabled",
    explicit_peering_global => "explicit_peering/global",
    explicit_peering_keepnexthop => "explicit_peering/keepnexthop",
    explicit_peering_local_as => "explicit_peering/local-as",
    explicit_peering_selectors => "explicit_peering/selectors",
    explicit_peering_specific_node => "explicit_peering/specific_node",
}

/// A case added to the suite without a test of its own still runs here.
#[test]
fn every_case_in_the_suite_is_listed_and_passes() {
    let root = suite();
    let mut found = Vec::new();
    for group in std::fs::read_dir(&root).unwrap() {
        let group = group.unwrap().path();
        for case in std::fs::read_dir(&group).into_iter().flatten() {
            let case = case.unwrap().path();
            if case.join("input.yaml").exists() {
                found.push(case.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    assert!(
        found.len() >= LISTED.len(),
        "suite at {} looks incomplete",
        root.display()
    );
    for case in &found {
        if !LISTED.contains(&case.as_str()) {
            check(case);
        }
    }
}

/// Every case holds an expected file for each file the render writes, so no file
/// of the render goes unchecked.
#[test]
fn every_rendered_file_has_its_expected_file_in_every_case() {
    let root = suite();
    let mut checked = 0;
    for group in std::fs::read_dir(&root).unwrap() {
        for case in std::fs::read_dir(group.unwrap().path())
            .into_iter()
            .flatten()
        {
            let case = case.unwrap().path();
            if !case.join("input.yaml").exists() {
                continue;
            }
            for name in BirdFiles::NAMES {
                assert!(
                    case.join(format!("expected-{name}")).exists(),
                    "{}: no expected-{name}",
                    case.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
}
