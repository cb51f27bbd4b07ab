//! The built-in scenarios' checks: each observes through the lab and judges against
//! the expectations derived from the topology and the cluster's Calico objects.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use ipnet::Ipv4Net;

use super::{Checked, Failure, Pass};
use crate::backend::Pod;
use crate::check::{self, Strictness};
use crate::diagnosis::{Diagnosis, Role};
use crate::expect::{self, PathClass, Via};
use crate::expect::{sampled_pairs, SAMPLE_ABOVE_PODS};
use crate::lab::Lab;
use crate::observe;

/// The first diagnosis, with all of them as detail.
fn first(diagnoses: Vec<Diagnosis>) -> Option<Failure> {
    let detail = diagnoses
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    diagnoses
        .into_iter()
        .next()
        .map(|d| Failure::new(d, detail))
}

fn observation(e: observe::ObservationError) -> Failure {
    Failure::new(Diagnosis::ObservationFailed(e), "")
}

pub async fn bgp_neighbors_match_topology(lab: &Lab) -> Checked {
    let t = lab.topology();
    let snapshot = lab.snapshot().await;
    let expected = expect::sessions(t, lab.calico());
    let broken = check::sessions(t, &expected, &snapshot.sessions, Strictness::Exact);
    if let Some(failure) = first(broken) {
        return Err(failure);
    }
    let mut report = String::new();
    for (device, seen) in &snapshot.sessions {
        for (id, state) in seen.iter().flatten() {
            let _ = writeln!(report, "{device}: {id} {state}");
        }
    }
    Ok(Pass::Report(report))
}

pub async fn no_node_to_node_mesh(lab: &Lab) -> Checked {
    let expected = expect::sessions(lab.topology(), lab.calico());
    let mut report = String::new();
    for (_, node) in lab.topology().nodes() {
        let seen = observe::sessions(lab, &node.name)
            .await
            .map_err(observation)?;
        let want: Vec<String> = expected[&node.name].iter().map(check::session_id).collect();
        // BIRD answered with the sessions it must run: the count below means something.
        for id in want.iter().filter(|id| !id.starts_with("Mesh_")) {
            if !seen.contains_key(id) {
                return Err(Failure::new(
                    Diagnosis::NoSession {
                        device: node.name.clone(),
                        session: id.clone(),
                        peer: None,
                        state: None,
                    },
                    format!("{} runs {:?}", node.name, seen.keys().collect::<Vec<_>>()),
                ));
            }
        }
        let mesh: Vec<String> = seen
            .keys()
            .filter(|p| p.starts_with("Mesh_"))
            .cloned()
            .collect();
        let wanted = want.iter().filter(|id| id.starts_with("Mesh_")).count();
        if mesh.len() != wanted {
            return Err(Failure::new(
                Diagnosis::MeshDiffers {
                    node: node.name.clone(),
                    running: mesh.clone(),
                    wanted,
                },
                format!("{mesh:?}"),
            ));
        }
        let _ = writeln!(
            report,
            "{}: {} Mesh_ sessions, {} others",
            node.name,
            mesh.len(),
            seen.len() - mesh.len()
        );
    }
    Ok(Pass::Report(report))
}

pub async fn routes_match_topology(lab: &Lab) -> Checked {
    let t = lab.topology();
    let snapshot = lab.snapshot().await;
    let expected = expect::routes(t, lab.calico());
    let pools = check::pools(lab.calico());
    let broken = check::routes(t, &expected, &snapshot.routes, &pools, Strictness::Exact);
    if let Some(failure) = first(broken) {
        return Err(failure);
    }
    let mut report = String::new();
    for (device, routes) in &expected {
        for r in routes {
            let _ = writeln!(
                report,
                "{device}: {} {}",
                r.prefix,
                check::describe_via(&r.via)
            );
        }
    }
    Ok(Pass::Report(report))
}

pub async fn pings(lab: &Lab, class: PathClass) -> Checked {
    let (pairs, sampled) = sampled_pairs(lab.topology(), lab.pods(), class, false);
    if pairs.is_empty() {
        return Ok(Pass::Skipped(format!(
            "the topology has no {class} pod pair to ping"
        )));
    }
    let mut report = sampled.map(|s| s + "\n").unwrap_or_default();
    if class == PathClass::SameHost {
        let covered: BTreeSet<&str> = pairs.iter().map(|(a, _)| a.node.as_str()).collect();
        let single: Vec<&str> = lab
            .topology()
            .nodes()
            .map(|(_, n)| n.name.as_str())
            .filter(|n| !covered.contains(n))
            .collect();
        if !single.is_empty() {
            let _ = writeln!(
                report,
                "not checked (fewer than two pods): {}",
                single.join(", ")
            );
        }
    }
    // All at once (bounded); judged in pair order, so the first failure is the
    // same as one ping after another would find.
    let results = observe::pings(lab, &pairs).await;
    for ((a, b), ping) in pairs.iter().zip(results) {
        let (result, text) = ping.map_err(observation)?;
        let summary = format!("{}/{} received", result.received, result.sent);
        let _ = writeln!(report, "{} -> {} ({}): {summary}", a.name, b.name, b.ip);
        if !result.all_received() {
            return Err(Failure::new(
                Diagnosis::PingFailed {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    class,
                    summary,
                },
                text,
            ));
        }
    }
    Ok(Pass::Report(report))
}

pub async fn paths(lab: &Lab, class: PathClass) -> Checked {
    let t = lab.topology();
    // Cross-rack: every pod pair where not sampled (ECMP shows over many flows).
    let every_pod = class == PathClass::CrossRack;
    let (pairs, sampled) = sampled_pairs(t, lab.pods(), class, every_pod);
    if pairs.is_empty() {
        return Ok(Pass::Skipped(format!(
            "the topology has no {class} pod pair to trace"
        )));
    }
    let mut report = sampled.map(|s| s + "\n").unwrap_or_default();
    let routes = expect::routes(t, lab.calico());
    // Per source leaf: the spines its pairs crossed, and those the design spreads over.
    let mut spines: BTreeMap<String, (usize, BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let traced = lab.paths(&pairs).await;
    for ((a, b), devices) in pairs.iter().zip(traced) {
        let want = expect::path(t, a, b).ok_or_else(|| {
            observation(observe::ObservationError {
                device: a.name.clone(),
                target: a.name.clone(),
                command: String::new(),
                problem: format!("{} or {} is on no node of the topology", a.name, b.name),
            })
        })?;
        let devices = devices.map_err(|e| match e {
            crate::Error::Observation(e) => observation(e),
            other => observation(observe::ObservationError {
                device: a.name.clone(),
                target: a.name.clone(),
                command: "traceroute".into(),
                problem: other.to_string(),
            }),
        })?;
        let (last, before) = devices
            .split_last()
            .map_or((None, &devices[..]), |(l, r)| (Some(l), r));
        let shown = devices.join(" > ");
        let _ = writeln!(report, "{} -> {}: {shown}", a.name, b.name);
        if last != Some(&b.name) || !expect::path_matches(t, &want, before) {
            let want_text = want
                .hops
                .iter()
                .map(|h| h.to_string())
                .chain([b.name.clone()])
                .collect::<Vec<_>>()
                .join(" > ");
            return Err(Failure::new(
                Diagnosis::PathDiffers {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    class,
                    want: want_text,
                    got: shown,
                },
                report,
            ));
        }
        if want.hops.contains(&expect::Hop::AnySpine) {
            let leaf = before.get(1).cloned().unwrap_or_default();
            let entry = spines.entry(leaf.clone()).or_default();
            entry.0 += 1;
            entry.1.extend(
                before
                    .iter()
                    .filter(|d| t.spines.iter().any(|s| &s.name == *d))
                    .cloned(),
            );
            entry.2.extend(ecmp_spines(t, &routes, &leaf, b));
        }
    }
    for (leaf, (count, used, designed)) in &spines {
        let _ = writeln!(
            report,
            "from {leaf}: {count} pairs over {}",
            used.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if used != designed {
            return Err(Failure::new(
                Diagnosis::NoEcmp {
                    leaf: leaf.clone(),
                    pairs: *count,
                    used: used.iter().cloned().collect(),
                    spines: designed.iter().cloned().collect(),
                },
                report,
            ));
        }
    }
    Ok(Pass::Report(report))
}

/// The spines a leaf's route to a pod's block spreads over, by design.
fn ecmp_spines(
    t: &crate::topology::Topology,
    routes: &BTreeMap<String, Vec<expect::ExpectedRoute>>,
    leaf: &str,
    to: &Pod,
) -> BTreeSet<String> {
    let neighbors = t.bgp_neighbors(leaf);
    routes
        .get(leaf)
        .into_iter()
        .flatten()
        .filter(|r| r.prefix.contains(&to.ip))
        .flat_map(|r| match &r.via {
            Via::Ecmp(set) => set.iter().copied().collect(),
            Via::Hop(h) => vec![*h],
            Via::Blackhole => vec![],
        })
        .filter_map(|hop| neighbors.iter().find(|n| n.address == hop))
        .map(|n| n.device.clone())
        .collect()
}

/// The pairs all-pairs reachability pings: every ordered pair, or above
/// [`SAMPLE_ABOVE_PODS`] pods, from the first pod of each node to its
/// same-host partner, to the first pod of every other node of its rack and of the
/// first node of every other rack. `true` when sampled.
pub fn reachability_pairs(t: &crate::topology::Topology, pods: &[Pod]) -> (Vec<(Pod, Pod)>, bool) {
    if pods.len() <= SAMPLE_ABOVE_PODS {
        let all = pods
            .iter()
            .flat_map(|a| {
                pods.iter()
                    .filter(move |b| b.name != a.name)
                    .map(move |b| (a.clone(), b.clone()))
            })
            .collect();
        return (all, false);
    }
    let first = |node: &str| pods.iter().find(|p| p.node == node);
    let mut pairs = Vec::new();
    for rack in &t.racks {
        for node in &rack.nodes {
            let Some(a) = first(&node.name) else { continue };
            let partner = pods
                .iter()
                .find(|p| p.node == node.name && p.name != a.name);
            let mates = rack
                .nodes
                .iter()
                .filter(|n| n.name != node.name)
                .filter_map(|n| first(&n.name));
            let far = t
                .racks
                .iter()
                .filter(|r| r.name != rack.name)
                .filter_map(|r| r.nodes.iter().find_map(|n| first(&n.name)));
            for b in partner.into_iter().chain(mates).chain(far) {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    (pairs, true)
}

pub async fn all_pairs_reachability(lab: &Lab) -> Checked {
    let t = lab.topology();
    let pods = lab.pods();
    if pods.len() < 2 {
        return Ok(Pass::Skipped(format!(
            "the lab has {} pod(s): no pair to ping",
            pods.len()
        )));
    }
    let (pairs, sampled) = reachability_pairs(t, pods);
    let results = observe::ping_pairs(lab, &pairs)
        .await
        .map_err(observation)?;
    let answered = |a: &Pod, b: &Pod| {
        results
            .get(&(a.name.clone(), b.name.clone()))
            .copied()
            .unwrap_or(false)
    };
    let failed: Vec<&(Pod, Pod)> = pairs.iter().filter(|(a, b)| !answered(a, b)).collect();
    let report = if sampled {
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (a, b) in &pairs {
            let class =
                expect::path(t, a, b).map_or("unknown".to_string(), |p| p.class.to_string());
            let entry = counts.entry(class).or_default();
            entry.0 += 1;
            if answered(a, b) {
                entry.1 += 1;
            }
        }
        let mut report = format!(
            "sampled: {} of {} pairs ({} pods, more than {SAMPLE_ABOVE_PODS}): the first pod of each node to its same-host partner, to every other node of its rack and to the first node of every other rack\n",
            pairs.len(),
            pods.len() * (pods.len() - 1),
            pods.len()
        );
        for (class, (n, ok)) in counts {
            let _ = writeln!(report, "{class}: {ok} of {n} answered");
        }
        for (a, b) in &failed {
            let _ = writeln!(report, "no answer: {} -> {}", a.name, b.name);
        }
        report
    } else {
        let width = pods.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let mut matrix = format!("{:w$} |", "from \\ to", w = width + 3);
        for (i, _) in pods.iter().enumerate() {
            let _ = write!(matrix, " {:>4}", i + 1);
        }
        matrix.push('\n');
        for (i, a) in pods.iter().enumerate() {
            let _ = write!(matrix, "{:>2} {:width$} |", i + 1, a.name, width = width);
            for b in pods {
                let cell = if a.name == b.name {
                    "-".to_string()
                } else {
                    let class = expect::path(t, a, b).map(|p| match p.class {
                        PathClass::SameHost => "host",
                        PathClass::SameRack => "rack",
                        PathClass::CrossRack => "x",
                    });
                    let ok = answered(a, b);
                    format!("{}{}", class.unwrap_or("?"), if ok { "" } else { "!" })
                };
                let _ = write!(matrix, " {cell:>4}");
            }
            matrix.push('\n');
        }
        matrix.push_str(
            "host: same host, rack: same rack, x: cross rack; ! marks a pair that did not answer\n",
        );
        matrix
    };
    match failed.first() {
        None => Ok(Pass::Report(report)),
        Some((a, b)) => Err(Failure::new(
            Diagnosis::PingFailed {
                from: a.name.clone(),
                to: b.name.clone(),
                class: expect::path(t, a, b).map_or(PathClass::CrossRack, |p| p.class),
                summary: format!("{} of {} pairs did not answer", failed.len(), pairs.len()),
            },
            report,
        )),
    }
}

pub async fn service_cidrs_advertised(lab: &Lab) -> Checked {
    let t = lab.topology();
    let cidrs: Vec<Ipv4Net> = t
        .calico
        .service_cluster_ips
        .iter()
        .chain(&t.calico.service_external_ips)
        .copied()
        .collect();
    if cidrs.is_empty() {
        return Ok(Pass::Skipped(
            "the topology advertises no service CIDRs (calico.serviceClusterIPs, serviceExternalIPs)".into(),
        ));
    }
    let mut report = String::new();
    let missing = |role, device: &str, cidr: &Ipv4Net, want: String, found: String| {
        Failure::new(
            Diagnosis::RouteMissing {
                role,
                device: device.to_string(),
                prefix: *cidr,
                of: "service CIDR".into(),
                want,
                found,
            },
            "",
        )
    };
    for (_, router) in t.routers() {
        let table = observe::bgp_table(lab, &router.name)
            .await
            .map_err(observation)?;
        let role = check::role(t, &router.name);
        for cidr in &cidrs {
            let paths = table.paths(cidr);
            if !paths.iter().any(|p| p.is_installed()) {
                return Err(missing(
                    role,
                    &router.name,
                    cidr,
                    "as a valid installed BGP path".into(),
                    format!("{} path(s), none valid and installed", paths.len()),
                ));
            }
            let from: BTreeSet<std::net::IpAddr> = paths
                .iter()
                .filter(|p| p.valid)
                .filter_map(|p| p.peer_id)
                .collect();
            for rack in t.racks.iter().filter(|r| r.leaf == router.name) {
                for node in &rack.nodes {
                    if !from.contains(&std::net::IpAddr::V4(node.address)) {
                        return Err(missing(
                            Role::Leaf,
                            &router.name,
                            cidr,
                            format!("from {} ({})", node.name, node.address),
                            format!(
                                "valid paths from {}",
                                from.iter()
                                    .map(|a| a.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            let _ = writeln!(
                report,
                "{}: {cidr}: {} valid path(s)",
                router.name,
                from.len()
            );
        }
    }
    // Calico advertises them but programs none on the nodes (kube-proxy owns them).
    for (_, node) in t.nodes() {
        let routes = observe::routes(lab, &node.name)
            .await
            .map_err(observation)?;
        for cidr in &cidrs {
            if let Some(route) = routes.get(&cidr.to_string()) {
                return Err(Failure::new(
                    Diagnosis::ExtraRoute {
                        role: Role::Node,
                        device: node.name.clone(),
                        prefix: *cidr,
                        found: check::describe_route(Some(route)),
                    },
                    "service CIDRs are advertised, never installed on the nodes",
                ));
            }
        }
    }
    let _ = writeln!(report, "no node's kernel table holds a service CIDR");
    Ok(Pass::Report(report))
}

#[cfg(test)]
mod sampling_tests {
    use super::*;
    use crate::calico::emulated::{pods, starting_resources, CalicoState};
    use crate::topology::generate::Shape;

    fn lab_pods(racks: u32, nodes: u32) -> (crate::topology::Topology, Vec<Pod>) {
        let t = Shape::leaf_spine(racks, nodes, 2).topology().unwrap();
        let calico = starting_resources(&t, CalicoState::Configured).unwrap();
        let p = pods(&t, &calico);
        (t, p)
    }

    #[test]
    fn a_small_lab_pings_every_ordered_pair() {
        let (t, p) = lab_pods(2, 4);
        assert_eq!(p.len(), 16);
        let (pairs, sampled) = reachability_pairs(&t, &p);
        assert!(!sampled);
        assert_eq!(pairs.len(), 16 * 15);
    }

    #[test]
    fn a_big_lab_samples_every_path_class_from_every_node() {
        let (t, p) = lab_pods(16, 8);
        let (pairs, sampled) = reachability_pairs(&t, &p);
        assert!(sampled);
        // Per node: its partner, 7 rack-mates, 15 other racks.
        assert_eq!(pairs.len(), 128 * (1 + 7 + 15));
        let classes: BTreeSet<String> = pairs
            .iter()
            .map(|(a, b)| expect::path(&t, a, b).unwrap().class.to_string())
            .collect();
        assert_eq!(classes.len(), 3, "{classes:?}");
        let sources: BTreeSet<&str> = pairs.iter().map(|(a, _)| a.node.as_str()).collect();
        assert_eq!(sources.len(), 128);
    }

    #[test]
    fn a_small_lab_checks_every_pair_it_always_did() {
        let (t, p) = lab_pods(2, 4);
        let (cross, sampled) = sampled_pairs(&t, &p, PathClass::CrossRack, true);
        assert!(sampled.is_none());
        assert_eq!(cross, expect::pod_pairs(&t, &p, PathClass::CrossRack, true));
        let (same, _) = sampled_pairs(&t, &p, PathClass::SameRack, false);
        assert_eq!(same, expect::pod_pairs(&t, &p, PathClass::SameRack, false));
    }

    #[test]
    fn a_big_lab_checks_from_every_node_to_every_rack_its_class_reaches() {
        let (t, p) = lab_pods(16, 8);
        let (cross, sampled) = sampled_pairs(&t, &p, PathClass::CrossRack, true);
        let sampled = sampled.expect("sampled");
        assert_eq!(cross.len(), 128 * 15);
        assert!(
            sampled.starts_with("sampled: 1920 of 61440 pairs (256 pods"),
            "{sampled}"
        );
        let rack_of = |node: &str| {
            t.nodes()
                .find(|(_, n)| n.name == node)
                .unwrap()
                .0
                .name
                .clone()
        };
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for (a, b) in &cross {
            assert_eq!(expect::path(&t, a, b).unwrap().class, PathClass::CrossRack);
            assert!(
                seen.insert((a.node.clone(), rack_of(&b.node))),
                "{} twice",
                a.node
            );
        }
        // Destinations spread: every node of the fabric is traced to.
        let targets: BTreeSet<&str> = cross.iter().map(|(_, b)| b.node.as_str()).collect();
        assert_eq!(targets.len(), 128);
        let (same, _) = sampled_pairs(&t, &p, PathClass::SameRack, false);
        assert_eq!(same.len(), 128);
        // Pings sample alike; one same-host pair per node, never sampled.
        let (pings, sampled) = sampled_pairs(&t, &p, PathClass::CrossRack, false);
        assert_eq!(pings, cross);
        assert!(sampled.unwrap().starts_with("sampled: 1920 of 15360 pairs"));
        let (host, sampled) = sampled_pairs(&t, &p, PathClass::SameHost, false);
        assert_eq!((host.len(), sampled), (128, None));
        assert!(same
            .iter()
            .all(|(a, b)| a.node != b.node && rack_of(&a.node) == rack_of(&b.node)));
    }
}
