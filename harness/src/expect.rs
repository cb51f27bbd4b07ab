//! The state a healthy lab must show, derived from the topology and the cluster's
//! Calico objects: sessions per device, routes per device, the path of every pod pair.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::backend::Pod;
use crate::calico::emulated::expected_protocols;
use crate::calico::ipam::node_blocks;
use crate::calico::Resources;
use crate::topology::Topology;

/// A BGP session a device must have Established.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Session {
    /// A node's BIRD protocol, by name (`Node_10_1_5_1`), with the peer's address.
    Bird { protocol: String, peer: Ipv4Addr },
    /// A router's FRR neighbor, by address, and the device there.
    Frr { peer: Ipv4Addr, device: String },
}

/// Every device's sessions, by device name.
pub fn sessions(t: &Topology, calico: &Resources) -> BTreeMap<String, BTreeSet<Session>> {
    let mut out = BTreeMap::new();
    for (_, node) in t.nodes() {
        let set = expected_protocols(calico, &node.name, t.calico_version())
            .into_iter()
            .filter_map(|protocol| {
                let peer = protocol_peer(&protocol)?;
                Some(Session::Bird { protocol, peer })
            })
            .collect();
        out.insert(node.name.clone(), set);
    }
    for (_, router) in t.routers() {
        let set = t
            .bgp_neighbors(&router.name)
            .into_iter()
            .map(|n| Session::Frr {
                peer: n.address,
                device: n.device,
            })
            .collect();
        out.insert(router.name.clone(), set);
    }
    out
}

/// The peer address in a Calico protocol name (`Node_10_1_5_1_port_179` -> 10.1.5.1).
pub fn protocol_peer(name: &str) -> Option<Ipv4Addr> {
    let (_, rest) = name.split_once('_')?;
    let ip = rest.split("_port_").next()?;
    ip.replace('_', ".").parse().ok()
}

/// How a route must reach a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Exactly this next hop.
    Hop(Ipv4Addr),
    /// Exactly these next hops together (ECMP over every shortest way there).
    Ecmp(BTreeSet<Ipv4Addr>),
    Blackhole,
}

/// A route a device must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRoute {
    pub prefix: Ipv4Net,
    /// Whose block it is.
    pub owner: String,
    pub via: Via,
}

/// Every node's first IPv4 block, by node, in topology order.
pub fn blocks(t: &Topology, calico: &Resources) -> Vec<(String, Ipv4Net)> {
    t.nodes()
        .filter_map(|(_, n)| {
            let block = node_blocks(calico, &n.name).into_iter().next()?;
            Some((n.name.clone(), block.cidr))
        })
        .collect()
}

/// Router hops from `from` to every router it reaches over router-to-router sessions.
fn distances(t: &Topology, from: &str) -> BTreeMap<String, usize> {
    let mut dist = BTreeMap::from([(from.to_string(), 0)]);
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    while let Some(router) = queue.pop_front() {
        let d = dist[&router];
        for n in t.bgp_neighbors(&router).iter().filter(|n| !n.rr_client) {
            if !dist.contains_key(&n.device) {
                dist.insert(n.device.clone(), d + 1);
                queue.push_back(n.device.clone());
            }
        }
    }
    dist
}

/// The block routes every device must hold. A leaf reaches its racks' nodes
/// directly; any other router reaches a block through every neighbor one hop closer
/// to the owner's leaf (eBGP picks the shortest AS path, `multipath-relax` keeps them
/// all). A node blackholes its own block, reaches its rack-mates directly (the leaf
/// reflects their routes unchanged) and the rest through its leaf.
pub fn routes(t: &Topology, calico: &Resources) -> BTreeMap<String, Vec<ExpectedRoute>> {
    let blocks = blocks(t, calico);
    let rack_of = |node: &str| t.nodes().find(|(_, n)| n.name == node);
    let leafs: BTreeSet<&str> = blocks
        .iter()
        .filter_map(|(owner, _)| Some(rack_of(owner)?.0.leaf.as_str()))
        .collect();
    let from_leaf: BTreeMap<&str, BTreeMap<String, usize>> =
        leafs.iter().map(|l| (*l, distances(t, l))).collect();
    let mut out: BTreeMap<String, Vec<ExpectedRoute>> = BTreeMap::new();
    for (_, router) in t.routers() {
        let list = blocks
            .iter()
            .filter_map(|(owner, prefix)| {
                let (rack, node) = rack_of(owner)?;
                let via = if rack.leaf == router.name {
                    Via::Hop(node.address)
                } else {
                    let dist = &from_leaf[rack.leaf.as_str()];
                    let mine = *dist.get(&router.name)?;
                    Via::Ecmp(
                        t.bgp_neighbors(&router.name)
                            .iter()
                            .filter(|n| !n.rr_client && dist.get(&n.device) == Some(&(mine - 1)))
                            .map(|n| n.address)
                            .collect(),
                    )
                };
                Some(ExpectedRoute {
                    prefix: *prefix,
                    owner: owner.clone(),
                    via,
                })
            })
            .collect();
        out.insert(router.name.clone(), list);
    }
    for (rack, node) in t.nodes() {
        let list = blocks
            .iter()
            .filter_map(|(owner, prefix)| {
                let (other_rack, other) = rack_of(owner)?;
                let via = if other.name == node.name {
                    Via::Blackhole
                } else if other_rack.name == rack.name {
                    Via::Hop(other.address)
                } else {
                    Via::Hop(rack.gateway)
                };
                Some(ExpectedRoute {
                    prefix: *prefix,
                    owner: owner.clone(),
                    via,
                })
            })
            .collect();
        out.insert(node.name.clone(), list);
    }
    out
}

/// Where two pods sit relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathClass {
    SameHost,
    SameRack,
    CrossRack,
}

impl fmt::Display for PathClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathClass::SameHost => "same-host",
            PathClass::SameRack => "same-rack",
            PathClass::CrossRack => "cross-rack",
        })
    }
}

/// One hop of a path: a device, or any spine (which one is ECMP's choice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    Device(String),
    AnySpine,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Device(d) => f.write_str(d),
            Hop::AnySpine => f.write_str("<a spine>"),
        }
    }
}

/// The expected path of a pod pair: the class and the devices traceroute must show
/// before the destination pod answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPath {
    pub class: PathClass,
    pub hops: Vec<Hop>,
}

pub fn path(t: &Topology, from: &Pod, to: &Pod) -> Option<ExpectedPath> {
    let (src_rack, _) = t.nodes().find(|(_, n)| n.name == from.node)?;
    let (dst_rack, _) = t.nodes().find(|(_, n)| n.name == to.node)?;
    let device = |d: &str| Hop::Device(d.to_string());
    Some(if from.node == to.node {
        ExpectedPath {
            class: PathClass::SameHost,
            hops: vec![device(&from.node)],
        }
    } else if src_rack.name == dst_rack.name {
        ExpectedPath {
            class: PathClass::SameRack,
            hops: vec![device(&from.node), device(&to.node)],
        }
    } else if src_rack.leaf == dst_rack.leaf {
        // Two racks of one leaf: the leaf routes between them.
        ExpectedPath {
            class: PathClass::CrossRack,
            hops: vec![device(&from.node), device(&src_rack.leaf), device(&to.node)],
        }
    } else {
        ExpectedPath {
            class: PathClass::CrossRack,
            hops: vec![
                device(&from.node),
                device(&src_rack.leaf),
                Hop::AnySpine,
                device(&dst_rack.leaf),
                device(&to.node),
            ],
        }
    })
}

/// Which device owns an address: router interfaces, node addresses, pod addresses.
pub fn address_owners(t: &Topology, pods: &[Pod]) -> BTreeMap<Ipv4Addr, String> {
    let mut out = BTreeMap::new();
    for (_, router) in t.routers() {
        for i in t.interfaces(&router.name) {
            out.insert(i.address.addr(), router.name.clone());
        }
    }
    for (_, node) in t.nodes() {
        out.insert(node.address, node.name.clone());
    }
    for pod in pods {
        out.insert(pod.ip, pod.name.clone());
    }
    out
}

/// Whether `devices` (what traceroute saw, mapped to owners) is the expected path.
pub fn path_matches(t: &Topology, expected: &ExpectedPath, devices: &[String]) -> bool {
    expected.hops.len() == devices.len()
        && expected
            .hops
            .iter()
            .zip(devices)
            .all(|(hop, seen)| match hop {
                Hop::Device(d) => d == seen,
                Hop::AnySpine => t.spines.iter().any(|s| &s.name == seen),
            })
}

/// Pod pairs of one class. Same host: the first two pods of each node. Otherwise
/// the first pods of every ordered node pair, or with `every_pod` every ordered pod
/// pair.
pub fn pod_pairs(t: &Topology, pods: &[Pod], class: PathClass, every_pod: bool) -> Vec<(Pod, Pod)> {
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
            if a.node != b.node && path(t, a, b).map(|p| p.class) == Some(class) {
                out.push(((*a).clone(), (*b).clone()));
            }
        }
    }
    out
}

/// Above this many pods, the scenarios check a sample of pod pairs by path class
/// (saying so in their reports): all of them would take hours on a big lab.
pub const SAMPLE_ABOVE_PODS: usize = 64;

/// The pairs a ping or path scenario checks: [`pod_pairs`] (with
/// `every_pod`, every ordered pod pair of the class); above [`SAMPLE_ABOVE_PODS`]
/// pods, same-host pairs still one per node, the others from the first pod of each
/// node to the first pod of one node of each rack the class reaches (the i-th node
/// of a rack picks its i-th candidate there, so destinations spread). The
/// sample's description when sampled.
pub fn sampled_pairs(
    t: &Topology,
    pods: &[Pod],
    class: PathClass,
    every_pod: bool,
) -> (Vec<(Pod, Pod)>, Option<String>) {
    let Some(pairs) = sample(t, pods, class) else {
        return (pod_pairs(t, pods, class, every_pod), None);
    };
    let every = pod_pairs(t, pods, class, every_pod).len();
    let what = format!(
        "sampled: {} of {every} pairs ({} pods, more than {SAMPLE_ABOVE_PODS}): the first pod of each node to one node of each rack {class} traffic reaches",
        pairs.len(),
        pods.len()
    );
    (pairs, Some(what))
}

/// The sample [`sampled_pairs`] takes, without counting what it leaves out; `None`
/// where it takes none.
pub fn sample(t: &Topology, pods: &[Pod], class: PathClass) -> Option<Vec<(Pod, Pod)>> {
    if pods.len() <= SAMPLE_ABOVE_PODS || class == PathClass::SameHost {
        return None;
    }
    let first = |node: &str| pods.iter().find(|p| p.node == node);
    let mut pairs = Vec::new();
    for rack in &t.racks {
        for (i, node) in rack.nodes.iter().enumerate() {
            let Some(a) = first(&node.name) else { continue };
            for other in &t.racks {
                let candidates: Vec<&Pod> = other
                    .nodes
                    .iter()
                    .filter(|n| n.name != node.name)
                    .filter_map(|n| first(&n.name))
                    .filter(|b| path(t, a, b).is_some_and(|p| p.class == class))
                    .collect();
                if !candidates.is_empty() {
                    pairs.push((a.clone(), candidates[i % candidates.len()].clone()));
                }
            }
        }
    }
    Some(pairs)
}
