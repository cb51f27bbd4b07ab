//! Unit tests of the lab engine's pure parts: wiring plan, member names, run ids,
//! keep policy, image recipe and mirror discovery, FRR output parsing.

use std::collections::BTreeMap;

use calico_lab::backend::emulated::members;
use calico_lab::backend::image::{image_tag, mirror_from_deb822, mirror_from_one_line};
use calico_lab::backend::ownership::RunId;
use calico_lab::backend::MemberRole;
use calico_lab::wiring::{WiringPlan, FABRIC_DEVICE};
use calico_lab::{KeepPolicy, Topology};

#[test]
fn wiring_plan_links_every_router_pair_and_every_rack_member() {
    let t = Topology::seed();
    let plan = WiringPlan::new(&t);
    let pairs: Vec<String> = plan
        .veths
        .iter()
        .map(|(a, b)| format!("{}:{}={}:{}", a.device, a.interface, b.device, b.interface))
        .collect();
    for expected in [
        "fabric:br-leaf0-net0=calico-bgp-rr-control-plane:net0",
        "fabric:br-leaf0-net1=calico-bgp-rr-worker:net0",
        "fabric:br-leaf0-net2=leaf0:eth3",
        "fabric:br-leaf1-net2=leaf1:eth3",
        "leaf0:eth1=spine0:eth1",
        "leaf0:eth2=spine1:eth1",
        "leaf1:eth1=spine0:eth2",
        "leaf1:eth2=spine1:eth2",
    ] {
        assert!(
            pairs.contains(&expected.to_string()),
            "{expected} missing from {pairs:?}"
        );
    }
    assert_eq!(
        pairs.len(),
        4 + 3 + 3,
        "4 links + (2 nodes + 1 leaf) per rack"
    );

    let leaf0 = &plan.setup["leaf0"];
    assert!(
        leaf0.contains(&"addr add 10.1.5.1/24 dev eth3".to_string()),
        "{leaf0:?}"
    );
    assert!(leaf0.contains(&"link set eth1 mtu 1500 up".to_string()));
    let node = &plan.setup["calico-bgp-rr-worker3"];
    assert_eq!(
        node,
        &vec![
            "link set lo up".to_string(),
            "addr add 10.1.8.11/24 dev net0".into(),
            "link set net0 up".into(),
            "route replace default via 10.1.8.1 dev net0".into(),
        ]
    );
    let fabric = &plan.setup[FABRIC_DEVICE];
    assert!(fabric.contains(&"link add br-leaf1 type bridge".to_string()));
    assert!(fabric.contains(&"link set br-leaf1-net1 master br-leaf1".to_string()));
}

#[test]
fn wiring_script_uses_each_devices_pid_and_needs_them_all() {
    let t = Topology::seed();
    let plan = WiringPlan::new(&t);
    let mut pids: BTreeMap<String, u32> = plan.devices().cloned().zip(100..).collect();
    let script = plan.script(&pids).unwrap();
    assert!(script.starts_with("set -eu\n"));
    let leaf0 = pids["leaf0"];
    let spine0 = pids["spine0"];
    assert!(
        script.contains(&format!(
            "ip link add name eth1 netns {leaf0} type veth peer name eth1 netns {spine0}\n"
        )),
        "{script}"
    );
    assert!(script.contains(&format!("nsenter -t {leaf0} -n ip -batch - <<'EOF'\n")));
    // Every veth is created before any namespace is configured.
    let last_veth = script.rfind("ip link add").unwrap();
    let first_setup = script.find("nsenter").unwrap();
    assert!(last_veth < first_setup);

    pids.remove("spine1");
    let err = plan.script(&pids).unwrap_err();
    assert!(err.contains("spine1"), "{err}");
}

#[test]
fn members_are_named_after_the_lab_and_nodes_as_kind_names_them() {
    let t = Topology::seed();
    let default: Vec<(String, MemberRole)> = members(&t, &t.name)
        .into_iter()
        .map(|m| (m.container, m.role))
        .collect();
    assert!(default.contains(&("calico-bgp-rr-spine0".into(), MemberRole::Router)));
    assert!(default.contains(&("calico-bgp-rr-worker2".into(), MemberRole::Node)));
    assert!(default.contains(&("calico-bgp-rr-fabric".into(), MemberRole::Fabric)));
    assert_eq!(default.len(), 1 + 4 + 4);

    let other: Vec<String> = members(&t, "other")
        .into_iter()
        .map(|m| m.container)
        .collect();
    assert!(
        other.contains(&"other-control-plane".to_string()),
        "{other:?}"
    );
    assert!(other.contains(&"other-leaf1".to_string()));
    assert!(other.iter().all(|c| c.starts_with("other-")));
}

#[test]
fn run_ids_tell_live_owners_from_dead_ones() {
    let a = RunId::current();
    let b = RunId::current();
    assert_ne!(a, b, "two labs of one process have their own runs");
    assert!(a.is_alive(), "this process owns {a:?}");
    let host = a.0.rsplitn(4, '-').last().unwrap();
    let pid = std::process::id();
    assert!(
        !RunId(format!("{host}-4194303-1-0")).is_alive(),
        "no such process"
    );
    assert!(
        !RunId(format!("{host}-{pid}-1-0")).is_alive(),
        "a recycled PID has another start time"
    );
    assert!(!RunId("garbage".into()).is_alive());
    assert!(
        RunId::detached().is_alive(),
        "detached labs live until `down`"
    );
    assert!(
        RunId("some-other-host-1-1-0".into()).is_alive(),
        "other hosts' runs are not ours to judge"
    );
}

#[test]
fn keep_policy_parses_its_three_values_only() {
    assert_eq!("never".parse::<KeepPolicy>().unwrap(), KeepPolicy::Never);
    assert_eq!(
        "on-failure".parse::<KeepPolicy>().unwrap(),
        KeepPolicy::OnFailure
    );
    assert_eq!("always".parse::<KeepPolicy>().unwrap(), KeepPolicy::Always);
    let err = "sometimes".parse::<KeepPolicy>().unwrap_err();
    assert!(
        err.exit_code() == 2 && err.to_string().contains("sometimes"),
        "{err}"
    );
}

#[test]
fn image_tag_is_a_hash_of_the_recipe_and_changes_with_it() {
    use calico_lab::backend::image::{recipe_tag, DEBIAN_SUITE, FILES, PACKAGES};
    let tag = image_tag();
    assert_eq!(tag, recipe_tag(DEBIAN_SUITE, PACKAGES, FILES));
    let mut more = PACKAGES.to_vec();
    more.push("curl");
    for other in [
        recipe_tag("trixie", PACKAGES, FILES),
        recipe_tag(DEBIAN_SUITE, &more, FILES),
        recipe_tag(DEBIAN_SUITE, PACKAGES, &[("etc/frr/daemons", "bgpd=no\n")]),
    ] {
        assert_ne!(other, tag, "a changed recipe keeps the tag");
    }
    let (repo, hash) = tag.split_once(':').unwrap();
    assert_eq!(repo, "calico-lab/emulated");
    assert_eq!(hash.len(), 12);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    let dockerfile = calico_lab::backend::image::dockerfile();
    assert!(dockerfile.starts_with("FROM debian:bookworm-slim\n"));
    for package in [
        "frr",
        "bird",
        "iproute2",
        "iputils-ping",
        "traceroute",
        "tcpdump",
    ] {
        assert!(
            dockerfile.contains(&format!(" {package} ")),
            "{package} in {dockerfile}"
        );
    }
}

#[test]
fn debian_mirror_comes_from_apt_sources_in_both_formats() {
    let deb822 = "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n";
    assert_eq!(
        mirror_from_deb822(deb822, "bookworm").as_deref(),
        Some("http://deb.example/debian")
    );
    assert_eq!(mirror_from_deb822(deb822, "trixie"), None);
    let deb_src_only = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n";
    assert_eq!(mirror_from_deb822(deb_src_only, "bookworm"), None);

    let one_line = "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://deb.example/debian bookworm main\n";
    assert_eq!(
        mirror_from_one_line(one_line, "bookworm").as_deref(),
        Some("http://deb.example/debian")
    );
    assert_eq!(
        mirror_from_one_line("deb http://a.example/debian bullseye main", "bookworm"),
        None
    );
}

/// The neighbour entries a lab may need, counted from its shape: the seed's two
/// racks of two nodes and a leaf (2 x 3 x 2), four uplinks (2 x 4), eight pods
/// (2 x 8); a generated 16 x 8 fabric needs more than a stock kernel's 1024.
#[test]
fn neighbour_entries_follow_the_topology() {
    use calico_lab::topology::generate::Shape;
    let t = Topology::seed();
    assert_eq!(calico_lab::wiring::neighbour_entries(&t, 8), 12 + 8 + 16);
    let big = Shape::leaf_spine(16, 8, 2).topology().unwrap();
    assert_eq!(
        calico_lab::wiring::neighbour_entries(&big, 256),
        16 * 9 * 8 + 2 * 32 + 2 * 256
    );
}
