//! The kind flavor short of the external tools: its bring-up plan derived from each
//! fixture topology, the dry run against golden files, and the topology checks.
//! `UPDATE_GOLDEN=1` rewrites the dry-run goldens (and fails, to be looked at).

use std::path::{Path, PathBuf};

use calico_lab::backend::kind::plan::{Plan, Step, Wait};
use calico_lab::backend::kind::{check_topology, dry_run, settings, starting_objects};
use calico_lab::backend::RouterKind;
use calico_lab::lab::CalicoState;
use calico_lab::Topology;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn topology(name: &str) -> Topology {
    Topology::load(&fixtures().join(format!("topologies/{name}.yaml"))).unwrap()
}

fn plan(t: &Topology, routers: RouterKind) -> Plan {
    let s = settings(t, &t.name, routers, PathBuf::from("/state"));
    Plan::new(t, &s, starting_objects(t, CalicoState::Configured).unwrap())
}

/// Index of the first step matching `f`.
fn position(plan: &Plan, f: impl Fn(&Step) -> bool) -> usize {
    plan.steps.iter().position(f).expect("step present")
}

#[test]
fn dry_runs_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differ = Vec::new();
    for (name, routers) in [
        ("calico-bgp-rr", RouterKind::Vyos),
        ("three-racks", RouterKind::Frr),
    ] {
        let t = topology(name);
        let text = dry_run(
            &t,
            &t.name,
            Some(routers),
            CalicoState::Configured,
            PathBuf::from("/state/kind").join(&t.name),
        )
        .unwrap();
        let path = fixtures().join(format!("dry-run/{name}-{routers:?}.txt").to_lowercase());
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            differ.push(format!("rewrote {}", path.display()));
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        if golden != text {
            differ.push(format!(
                "{} differs (UPDATE_GOLDEN=1 rewrites it); first differing line: {:?}",
                path.display(),
                golden.lines().zip(text.lines()).find(|(a, b)| a != b)
            ));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

#[test]
fn bring_up_follows_the_seeds_order() {
    for name in ["calico-bgp-rr", "three-racks", "shared-leaf"] {
        let t = topology(name);
        for routers in [RouterKind::Vyos, RouterKind::Frr] {
            let p = plan(&t, routers);
            // The fabric container claims the lab name before anything else exists.
            assert!(matches!(&p.steps[0], Step::Container(c) if c.device == "fabric"));
            let create = position(
                &p,
                |s| matches!(s, Step::Kind { args, .. } if args[..2] == ["create", "cluster"]),
            );
            let load = position(&p, |s| matches!(s, Step::LoadImages { .. }));
            // A router's namespace exists before the wiring (VyOS: an empty holder;
            // FRR: the router itself); a VyOS router starts only once wired.
            let first_netns = position(
                &p,
                |s| matches!(s, Step::Container(c) if c.device != "fabric"),
            );
            let last_router = p
                .steps
                .iter()
                .rposition(|s| matches!(s, Step::Container(c) if c.device != "fabric" && !c.name.ends_with("-netns")))
                .unwrap();
            let wire = position(&p, |s| matches!(s, Step::Wire(_)));
            let routers_up = position(&p, |s| {
                matches!(
                    s,
                    Step::Wait {
                        what: Wait::RoutersConfigured(_),
                        ..
                    }
                )
            });
            let manifest = position(&p, |s| matches!(s, Step::ApplyManifest));
            let crds = position(&p, |s| {
                matches!(
                    s,
                    Step::Wait {
                        what: Wait::CrdsEstablished(_),
                        ..
                    }
                )
            });
            let calico = position(
                &p,
                |s| matches!(s, Step::Apply { objects, .. } if objects.iter().any(|o| o["kind"] == "BGPPeer")),
            );
            let rollout = position(&p, |s| {
                matches!(
                    s,
                    Step::Wait {
                        what: Wait::Rollout { .. },
                        ..
                    }
                )
            });
            let pods = position(
                &p,
                |s| matches!(s, Step::Apply { objects, .. } if objects.iter().any(|o| o["kind"] == "Pod")),
            );
            let running = position(&p, |s| {
                matches!(
                    s,
                    Step::Wait {
                        what: Wait::PodsRunning { .. },
                        ..
                    }
                )
            });
            let order = [
                create,
                load,
                first_netns,
                wire,
                routers_up,
                manifest,
                crds,
                calico,
                rollout,
                pods,
                running,
            ];
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{name}: {order:?}");
            match routers {
                RouterKind::Vyos => assert!(wire < last_router && last_router < routers_up),
                RouterKind::Frr => assert!(last_router < wire),
            }
            // Images are in the nodes before wiring takes their way out.
            assert!(load < wire);
            // Every router (with its namespace holder on VyOS), and every pod of
            // the topology, once.
            let containers: Vec<_> = p
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Container(c) => Some(c.name.clone()),
                    _ => None,
                })
                .collect();
            let per_router = if routers == RouterKind::Vyos { 2 } else { 1 };
            assert_eq!(
                containers.len(),
                1 + per_router * t.routers().count(),
                "{name}"
            );
            let unique: std::collections::BTreeSet<_> = containers.iter().collect();
            assert_eq!(unique.len(), containers.len(), "{name}: {containers:?}");
            let Step::Wait {
                what: Wait::PodsRunning { names, .. },
                ..
            } = &p.steps[running]
            else {
                unreachable!()
            };
            let want: Vec<String> = t.nodes().flat_map(|(_, n)| n.pod_names()).collect();
            assert_eq!(names, &want);
        }
    }
}

#[test]
fn vyos_and_frr_routers_differ_only_where_they_must() {
    let t = topology("calico-bgp-rr");
    let router = |p: &Plan| {
        p.steps
            .iter()
            .find_map(|s| match s {
                Step::Container(c) if c.device == "leaf0" && !c.name.ends_with("-netns") => {
                    Some(c.clone())
                }
                _ => None,
            })
            .unwrap()
    };
    let wiring = |p: &Plan| {
        p.steps
            .iter()
            .find_map(|s| match s {
                Step::Wire(w) => Some(w.clone()),
                _ => None,
            })
            .unwrap()
    };
    let vyos = plan(&t, RouterKind::Vyos);
    let leaf = router(&vyos);
    assert!(leaf.privileged);
    assert_eq!(leaf.image, "burlyluo/vyos:1.4.9");
    assert_eq!(leaf.files[0].path, "/opt/vyatta/etc/config/config.boot");
    assert!(leaf.files[0].contents.contains("address \"10.1.5.1/24\""));
    // VyOS configures its own addresses; the veths are the same.
    assert!(!wiring(&vyos).setup.contains_key("leaf0"));
    // It boots in the namespace the wiring filled.
    assert_eq!(
        leaf.network_of.as_deref(),
        Some("calico-bgp-rr-leaf0-netns")
    );

    let frr = plan(&t, RouterKind::Frr);
    let leaf = router(&frr);
    assert!(!leaf.privileged);
    assert!(leaf.cmd.is_none(), "the FRR image's own start script");
    let paths: Vec<_> = leaf.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/etc/frr/frr.conf", "/etc/frr/daemons"]);
    assert!(leaf.files[1].contents.contains("bgpd=yes"));
    assert!(wiring(&frr).setup["leaf0"]
        .iter()
        .any(|l| l == "addr add 10.1.5.1/24 dev eth3"));
    assert!(leaf.network_of.is_none());
    assert_eq!(wiring(&vyos).veths, wiring(&frr).veths);
}

#[test]
fn a_fresh_install_applies_no_calico_objects() {
    let t = topology("calico-bgp-rr");
    assert!(starting_objects(&t, CalicoState::Installed)
        .unwrap()
        .is_empty());
    let configured = starting_objects(&t, CalicoState::Configured).unwrap();
    let kinds: Vec<_> = configured
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "BGPConfiguration",
            "Node",
            "Node",
            "Node",
            "Node",
            "BGPPeer",
            "BGPPeer"
        ]
    );
}

#[test]
fn kind_needs_its_own_node_names_and_the_topologys_lab_name() {
    let t = topology("calico-bgp-rr");
    check_topology(&t, "calico-bgp-rr").unwrap();
    let err = check_topology(&t, "other").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("differs from the topology's name"),
        "{err}"
    );
    let mut renamed = t.clone();
    renamed.racks[1].nodes[0].name = "node-a".into();
    let err = check_topology(&renamed, "calico-bgp-rr")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node node-a would be named calico-bgp-rr-worker2"),
        "{err}"
    );
}
