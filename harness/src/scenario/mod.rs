//! The named scenarios: each checks one claim of the seed lab, on any topology and any
//! flavor, against expectations derived from the topology.

mod observe;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::calico::emulated::Pod;
use crate::expect::{self, ExpectedRoute, PathClass, Session, Via};
use crate::lab::Lab;

pub use observe::diagnose;

/// A scenario: its name (also its test's name) and the claim it proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub proves: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario { name: "bgp_neighbors_match_topology", proves: "every device has exactly the BGP sessions the topology calls for, all Established (nodes: their leaf, node specific)" },
    Scenario { name: "no_node_to_node_mesh", proves: "no node runs a Mesh_ session the Calico configuration does not ask for" },
    Scenario { name: "routes_match_topology", proves: "every leaf, spine and node holds every pod block with the next hops the fabric design gives" },
    Scenario { name: "same_host_ping", proves: "pods on one node reach each other through the node's routing table" },
    Scenario { name: "same_rack_ping", proves: "pods on two nodes of one rack reach each other" },
    Scenario { name: "cross_rack_ping", proves: "pods in different racks reach each other" },
    Scenario { name: "same_rack_path_stays_in_rack", proves: "same-rack traffic goes node to node across the bridge: no leaf, no spine" },
    Scenario { name: "cross_rack_path_crosses_one_spine", proves: "cross-rack traffic goes node, leaf, one spine, leaf, node; across all pairs every spine carries some (ECMP)" },
    Scenario { name: "all_pairs_reachability", proves: "every pod reaches every other pod (the matrix shows each pair's path class)" },
    Scenario { name: "service_cidrs_advertised", proves: "the service CIDRs reach every leaf from every node of its racks" },
];

/// Why a scenario failed: a one-line diagnosis of the first broken link, and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub diagnosis: String,
    pub detail: String,
}

impl Failure {
    fn new(diagnosis: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            diagnosis: diagnosis.into(),
            detail: detail.into(),
        }
    }
}

/// A scenario's result, as reports show it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub duration: Duration,
    /// What the scenario saw (a matrix, the pairs checked), pass or fail.
    pub report: String,
    pub failure: Option<Failure>,
    pub artifacts: Option<PathBuf>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs one scenario by name; on failure, diagnoses the lab and writes its artifacts.
pub async fn run(lab: &Lab, name: &str) -> Outcome {
    let started = Instant::now();
    let result = match name {
        "bgp_neighbors_match_topology" => bgp_neighbors_match_topology(lab).await,
        "no_node_to_node_mesh" => no_node_to_node_mesh(lab).await,
        "routes_match_topology" => routes_match_topology(lab).await,
        "same_host_ping" => pings(lab, PathClass::SameHost).await,
        "same_rack_ping" => pings(lab, PathClass::SameRack).await,
        "cross_rack_ping" => pings(lab, PathClass::CrossRack).await,
        "same_rack_path_stays_in_rack" => paths(lab, PathClass::SameRack).await,
        "cross_rack_path_crosses_one_spine" => paths(lab, PathClass::CrossRack).await,
        "all_pairs_reachability" => all_pairs_reachability(lab).await,
        "service_cidrs_advertised" => service_cidrs_advertised(lab).await,
        other => Err(Failure::new(
            format!("no scenario named '{other}'"),
            format!(
                "known: {}",
                SCENARIOS
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    };
    let duration = started.elapsed();
    match result {
        Ok(report) => Outcome {
            name: name.into(),
            duration,
            report,
            failure: None,
            artifacts: None,
        },
        Err(mut failure) => {
            // A data-path symptom is explained by the first broken control-plane link.
            if let Some(cause) = diagnose(lab).await {
                failure.detail = format!("{}\n{}", failure.diagnosis, failure.detail);
                failure.diagnosis = cause;
            }
            let artifacts = crate::artifacts::collect(lab, name, &failure.diagnosis).await;
            let artifacts = match artifacts {
                Ok(dir) => Some(dir),
                Err(e) => {
                    failure
                        .detail
                        .push_str(&format!("\n(artifacts not written: {e})"));
                    None
                }
            };
            Outcome {
                name: name.into(),
                duration,
                report: String::new(),
                failure: Some(failure),
                artifacts,
            }
        }
    }
}

/// Polls until every device holds the sessions and routes the topology calls for, or
/// `budget` runs out; the error shows the last broken link seen.
pub async fn wait_until_converged(lab: &Lab, budget: Duration) -> crate::Result<Duration> {
    let started = Instant::now();
    loop {
        let Some(broken) = diagnose(lab).await else {
            return Ok(started.elapsed());
        };
        if started.elapsed() >= budget {
            return Err(crate::Error::Timeout {
                wait: format!(
                    "lab {}: every session Established and every route installed",
                    lab.name()
                ),
                seconds: budget.as_secs_f64(),
                last: broken,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

type Checked = Result<String, Failure>;

async fn bgp_neighbors_match_topology(lab: &Lab) -> Checked {
    let t = lab.topology();
    let expected = expect::sessions(t, lab.calico());
    let mut report = String::new();
    let mut wrong = Vec::new();
    // In the order traffic leans on them: nodes, then leafs, then spines.
    let order = t
        .nodes()
        .map(|(_, n)| &n.name)
        .chain(t.leafs.iter().map(|r| &r.name))
        .chain(t.spines.iter().map(|r| &r.name));
    for (device, want) in order.filter_map(|d| expected.get_key_value(d)) {
        let seen = observe::sessions(lab, device).await;
        let want_ids: BTreeSet<String> = want.iter().map(session_id).collect();
        for (id, state) in &seen {
            let _ = writeln!(report, "{device}: {id} {state}");
            if !want_ids.contains(id) {
                wrong.push(format!("{device}: unexpected session {id} ({state})"));
            }
        }
        for id in &want_ids {
            match seen.get(id).map(String::as_str) {
                Some("Established") => {}
                Some(state) => wrong.push(format!("{device}: session {id} is {state}")),
                None => wrong.push(format!("{device}: no session {id}")),
            }
        }
    }
    match wrong.first() {
        None => Ok(report),
        Some(first) => Err(Failure::new(
            format!("no session: {first}"),
            wrong.join("\n"),
        )),
    }
}

/// How a session is named on both sides of the comparison.
fn session_id(s: &Session) -> String {
    match s {
        Session::Bird { protocol, .. } => protocol.clone(),
        Session::Frr { peer, .. } => peer.to_string(),
    }
}

async fn no_node_to_node_mesh(lab: &Lab) -> Checked {
    let expected = expect::sessions(lab.topology(), lab.calico());
    let mut report = String::new();
    for (_, node) in lab.topology().nodes() {
        let seen = observe::sessions(lab, &node.name).await;
        let mesh: Vec<&String> = seen.keys().filter(|p| p.starts_with("Mesh_")).collect();
        let wanted = expected[&node.name]
            .iter()
            .filter(|s| session_id(s).starts_with("Mesh_"))
            .count();
        if mesh.len() != wanted {
            return Err(Failure::new(
                format!("mesh differs: {} runs {} Mesh_ sessions, the Calico configuration calls for {wanted}", node.name, mesh.len()),
                format!("{mesh:?}"),
            ));
        }
        let _ = writeln!(report, "{}: {} Mesh_ sessions", node.name, mesh.len());
    }
    Ok(report)
}

async fn routes_match_topology(lab: &Lab) -> Checked {
    let t = lab.topology();
    let expected = expect::routes(t, lab.calico());
    let order = t
        .leafs
        .iter()
        .chain(&t.spines)
        .map(|r| r.name.clone())
        .chain(t.nodes().map(|(_, n)| n.name.clone()));
    let mut report = String::new();
    for device in order {
        let seen = observe::routes(lab, &device)
            .await
            .map_err(|e| Failure::new(format!("no routes from {device}: {e}"), ""))?;
        for want in expected.get(&device).into_iter().flatten() {
            let got = seen.get(&want.prefix.to_string());
            if !route_ok(want, got) {
                let role = if t.leafs.iter().any(|l| l.name == device) {
                    "leaf"
                } else if t.spines.iter().any(|s| s.name == device) {
                    "spine"
                } else {
                    "node"
                };
                return Err(Failure::new(
                    format!(
                        "route missing on {role} {device}: {} ({}'s block) {}, found {}",
                        want.prefix,
                        want.owner,
                        describe_via(&want.via),
                        describe_got(got)
                    ),
                    String::new(),
                ));
            }
            let _ = writeln!(
                report,
                "{device}: {} {}",
                want.prefix,
                describe_via(&want.via)
            );
        }
    }
    Ok(report)
}

fn route_ok(want: &ExpectedRoute, got: Option<&observe::Route>) -> bool {
    let Some(got) = got else { return false };
    match &want.via {
        Via::Blackhole => got.blackhole,
        Via::Hop(hop) => !got.blackhole && got.gateways == BTreeSet::from([*hop]),
        Via::AnyOf(set) => {
            !got.blackhole && !got.gateways.is_empty() && got.gateways.is_subset(set)
        }
    }
}

fn describe_via(via: &Via) -> String {
    match via {
        Via::Blackhole => "as blackhole".into(),
        Via::Hop(h) => format!("via {h}"),
        Via::AnyOf(set) => format!(
            "via {}",
            set.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
}

fn describe_got(got: Option<&observe::Route>) -> String {
    match got {
        None => "no route".into(),
        Some(r) if r.blackhole => "a blackhole".into(),
        Some(r) => format!(
            "via {}",
            r.gateways
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The pod pairs of one class: on one node its first two pods; otherwise the first
/// pods of every ordered node pair, or with `every_pod` every ordered pod pair.
fn pairs(lab: &Lab, class: PathClass, every_pod: bool) -> Vec<(Pod, Pod)> {
    let t = lab.topology();
    let pods = lab.pods();
    let mut by_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        by_node.entry(p.node.as_str()).or_default().push(p);
    }
    if class == PathClass::SameHost {
        return by_node
            .values()
            .filter_map(|list| match list[..] {
                [a, b, ..] => Some((a.clone(), b.clone())),
                _ => None,
            })
            .collect();
    }
    let candidates: Vec<&Pod> = if every_pod {
        pods.iter().collect()
    } else {
        by_node.values().map(|list| list[0]).collect()
    };
    let mut out = Vec::new();
    for a in &candidates {
        for b in &candidates {
            if a.node != b.node && expect::path(t, a, b).map(|p| p.class) == Some(class) {
                out.push(((*a).clone(), (*b).clone()));
            }
        }
    }
    out
}

async fn pings(lab: &Lab, class: PathClass) -> Checked {
    let pairs = pairs(lab, class, false);
    if pairs.is_empty() {
        return Err(Failure::new(
            format!("the topology has no {class} pod pair to ping"),
            "",
        ));
    }
    let mut report = String::new();
    for (a, b) in &pairs {
        let result = observe::ping(lab, a, b).await;
        let _ = writeln!(
            report,
            "{} -> {} ({}): {}",
            a.name, b.name, b.ip, result.summary
        );
        if !result.ok {
            return Err(Failure::new(
                format!(
                    "ping failed: {} -> {} ({class}): {}",
                    a.name, b.name, result.summary
                ),
                result.text,
            ));
        }
    }
    Ok(report)
}

async fn paths(lab: &Lab, class: PathClass) -> Checked {
    let t = lab.topology();
    let owners = expect::address_owners(t, lab.pods());
    let pairs = pairs(lab, class, class == PathClass::CrossRack);
    if pairs.is_empty() {
        return Err(Failure::new(
            format!("the topology has no {class} pod pair to trace"),
            "",
        ));
    }
    let mut report = String::new();
    let mut spines_seen = BTreeSet::new();
    for (a, b) in &pairs {
        let want = expect::path(t, a, b).ok_or_else(|| {
            Failure::new(
                format!("{} or {} is on no node of the topology", a.name, b.name),
                "",
            )
        })?;
        let hops = observe::trace(lab, a, b).await;
        let devices: Vec<String> = hops
            .iter()
            .map(|h| {
                h.and_then(|ip| owners.get(&ip).cloned())
                    .unwrap_or_else(|| h.map_or("*".into(), |ip| ip.to_string()))
            })
            .collect();
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
                format!(
                    "path differs: {} -> {} ({class}): want {want_text}, got {shown}",
                    a.name, b.name
                ),
                String::new(),
            ));
        }
        spines_seen.extend(
            before
                .iter()
                .filter(|d| t.spines.iter().any(|s| &s.name == *d))
                .cloned(),
        );
    }
    if class == PathClass::CrossRack {
        let all: BTreeSet<String> = t.spines.iter().map(|s| s.name.clone()).collect();
        let _ = writeln!(
            report,
            "spines carrying traffic: {}",
            spines_seen.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if spines_seen != all {
            return Err(Failure::new(
                format!("path differs: across {} cross-rack pairs only {spines_seen:?} of the spines {all:?} carried traffic (no ECMP)", pairs.len()),
                report,
            ));
        }
    }
    Ok(report)
}

async fn all_pairs_reachability(lab: &Lab) -> Checked {
    let t = lab.topology();
    let pods = lab.pods();
    let results = observe::ping_all(lab).await;
    let mut failed = Vec::new();
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
                let ok = results
                    .get(&(a.name.clone(), b.name.clone()))
                    .copied()
                    .unwrap_or(false);
                if !ok {
                    failed.push(format!("{} -> {}", a.name, b.name));
                }
                format!("{}{}", class.unwrap_or("?"), if ok { "" } else { "!" })
            };
            let _ = write!(matrix, " {cell:>4}");
        }
        matrix.push('\n');
    }
    matrix.push_str(
        "host: same host, rack: same rack, x: cross rack; ! marks a pair that did not answer\n",
    );
    if failed.is_empty() {
        Ok(matrix)
    } else {
        Err(Failure::new(
            format!(
                "ping failed: {} of {} pairs, first {}",
                failed.len(),
                pods.len() * pods.len().saturating_sub(1),
                failed[0]
            ),
            matrix,
        ))
    }
}

async fn service_cidrs_advertised(lab: &Lab) -> Checked {
    let t = lab.topology();
    let cidrs: Vec<ipnet::Ipv4Net> = t
        .calico
        .service_cluster_ips
        .iter()
        .chain(&t.calico.service_external_ips)
        .copied()
        .collect();
    if cidrs.is_empty() {
        return Err(Failure::new("the topology advertises no service CIDRs (calico.serviceClusterIPs, serviceExternalIPs)", ""));
    }
    let mut report = String::new();
    for rack in &t.racks {
        for cidr in &cidrs {
            let peers = observe::bgp_paths_from(lab, &rack.leaf, cidr).await;
            for node in &rack.nodes {
                if !peers.contains(&node.address) {
                    return Err(Failure::new(
                        format!("route missing on leaf {}: service CIDR {cidr} has no path from {} ({})", rack.leaf, node.name, node.address),
                        format!("paths from {peers:?}"),
                    ));
                }
            }
            let _ = writeln!(
                report,
                "{}: {cidr} from {} nodes",
                rack.leaf,
                rack.nodes.len()
            );
        }
    }
    Ok(report)
}
