//! Which BGP peerings a node gets, resolved from Calico resources as confd resolves them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::resources::{
    go_duration_seconds, split_peer_ip, BgpConfigurationSpec, BgpPeerSpec, Resources, SourceAddress,
};
use super::selector::Selector;

/// Calico's AS number when neither the Node nor BGPConfiguration sets one.
pub const DEFAULT_AS: u32 = 64512;

/// A Calico node as the BGP render sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.bgp.ipv4Address`: the address and its subnet.
    pub ipv4: Option<Ipv4Net>,
    pub asn: u32,
    pub rr_cluster_id: Option<String>,
    pub listen_port: Option<u16>,
}

impl NodeInfo {
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.ipv4.map(|n| n.addr())
    }
}

/// The cluster-wide view: every node's effective BGP settings.
#[derive(Debug, Clone)]
pub struct Cluster<'a> {
    pub resources: &'a Resources,
    pub nodes: BTreeMap<String, NodeInfo>,
    pub global_as: u32,
}

impl<'a> Cluster<'a> {
    pub fn new(resources: &'a Resources) -> Self {
        let global = resources.global();
        let global_as = global.and_then(|g| g.as_number).map_or(DEFAULT_AS, |a| a.0);
        let global_port = global.and_then(|g| g.listen_port);
        let nodes = resources
            .nodes
            .iter()
            .map(|(name, (labels, spec))| {
                let bgp = spec.bgp.clone().unwrap_or_default();
                let ipv4 = bgp.ipv4_address.as_deref().and_then(parse_v4_with_len);
                let info = NodeInfo {
                    name: name.clone(),
                    labels: labels.clone(),
                    ipv4,
                    asn: bgp.as_number.map_or(global_as, |a| a.0),
                    rr_cluster_id: bgp.route_reflector_cluster_id.filter(|c| !c.is_empty()),
                    listen_port: resources
                        .per_node(name)
                        .and_then(|c| c.listen_port)
                        .or(global_port),
                };
                (name.clone(), info)
            })
            .collect();
        Cluster {
            resources,
            nodes,
            global_as,
        }
    }

    pub fn global(&self) -> Option<&BgpConfigurationSpec> {
        self.resources.global()
    }

    pub fn mesh_enabled(&self) -> bool {
        self.global()
            .and_then(|g| g.node_to_node_mesh_enabled)
            .unwrap_or(true)
    }

    /// Nodes whose labels match `selector`, by name. Calico's own validation rejects
    /// bad selectors on apply, so one that does not parse matches nothing here.
    fn matching(&self, selector: &str) -> Vec<&NodeInfo> {
        match Selector::parse(selector) {
            Ok(s) => self
                .nodes
                .values()
                .filter(|n| s.matches(&n.labels))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn node_with_ip(&self, ip: Ipv4Addr) -> Option<&NodeInfo> {
        self.nodes.values().find(|n| n.ip() == Some(ip))
    }
}

fn parse_v4_with_len(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>()
        .ok()
        .or_else(|| text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

/// The three sections of a node's peers, in the order confd writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePeers {
    pub mesh: Mesh,
    /// Keyed as confd keys them (`<ip>` or `<ip>-<port>`), so iteration is its order.
    pub global: BTreeMap<String, Peer>,
    pub node_specific: BTreeMap<String, Peer>,
}

impl NodePeers {
    /// Every peer the node runs a protocol for, in the order confd writes them:
    /// mesh, global, node-specific; skipped ones (ourselves, route reflectors) left out.
    pub fn running(&self) -> Vec<&Peer> {
        let mesh = match &self.mesh {
            Mesh::Enabled(entries) => entries
                .iter()
                .filter_map(|e| match &e.outcome {
                    MeshOutcome::Peer(p) => Some(p),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let explicit = self
            .global
            .values()
            .chain(self.node_specific.values())
            .filter(|p| p.skip.is_none());
        mesh.into_iter().chain(explicit).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mesh {
    /// This node is a route reflector: the mesh setting does not apply to it.
    RouteReflector(String),
    Disabled,
    Enabled(Vec<MeshEntry>),
}

/// One other node in the mesh section, by name order.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshEntry {
    pub node: String,
    pub ip: Ipv4Addr,
    pub outcome: MeshOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MeshOutcome {
    Ourselves,
    /// The other node is a route reflector (its cluster id); it is not meshed.
    RouteReflector(String),
    Peer(Peer),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerType {
    Mesh,
    Global,
    NodeSpecific,
}

impl PeerType {
    pub fn prefix(self) -> &'static str {
        match self {
            PeerType::Mesh => "Mesh",
            PeerType::Global => "Global",
            PeerType::NodeSpecific => "Node",
        }
    }
}

/// One BGP peering of the node, with everything its BIRD protocol needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub kind: PeerType,
    pub ip: Ipv4Addr,
    pub port: Option<u16>,
    pub asn: u32,
    pub source: SourceAddress,
    /// The peer's own route reflector cluster id (`""` for non-Calico peers).
    pub rr_cluster_id: String,
    /// The peer is a Calico node (by selector, or its peerIP is a node's address).
    pub calico_node: bool,
    pub keep_next_hop: bool,
    pub allow_local_as: Option<u32>,
    pub restart_time: Option<u64>,
    /// GTSM hop limit (`ttlSecurity`).
    pub ttl_security: Option<u8>,
    /// Why the protocol is not written (`None`: it is).
    pub skip: Option<String>,
}

impl Peer {
    /// BIRD protocol name: `Mesh_10_1_5_11`, `Node_10_1_5_1`, `Global_10_0_0_1_port_166`.
    pub fn protocol_name(&self) -> String {
        let id = self.ip.to_string().replace('.', "_");
        match (self.kind, self.port) {
            (PeerType::Mesh, _) | (_, None) => format!("{}_{id}", self.kind.prefix()),
            (_, Some(port)) => format!("{}_{id}_port_{port}", self.kind.prefix()),
        }
    }
}

/// Resolves `node`'s peers. `None` when the node is unknown.
pub fn resolve(cluster: &Cluster, node: &str) -> Option<NodePeers> {
    let me = cluster.nodes.get(node)?;
    let my_ip = me.ip();
    let mesh = if let Some(cid) = &me.rr_cluster_id {
        Mesh::RouteReflector(cid.clone())
    } else if !cluster.mesh_enabled() {
        Mesh::Disabled
    } else {
        Mesh::Enabled(
            cluster
                .nodes
                .values()
                .filter_map(|other| {
                    let ip = other.ip()?;
                    let outcome = if Some(ip) == my_ip {
                        MeshOutcome::Ourselves
                    } else if let Some(cid) = &other.rr_cluster_id {
                        MeshOutcome::RouteReflector(cid.clone())
                    } else {
                        MeshOutcome::Peer(Peer {
                            kind: PeerType::Mesh,
                            ip,
                            port: other.listen_port,
                            asn: other.asn,
                            source: SourceAddress::UseNodeIp,
                            rr_cluster_id: String::new(),
                            calico_node: true,
                            keep_next_hop: false,
                            allow_local_as: None,
                            restart_time: None,
                            ttl_security: None,
                            skip: None,
                        })
                    };
                    Some(MeshEntry {
                        node: other.name.clone(),
                        ip,
                        outcome,
                    })
                })
                .collect(),
        )
    };

    let mut global = BTreeMap::new();
    let mut node_specific = BTreeMap::new();
    for spec in cluster.resources.bgp_peers.values() {
        for (local, peer) in peerings(cluster, spec) {
            let (map, kind) = match &local {
                Local::Global => (&mut global, PeerType::Global),
                Local::Node(name) if name == node => (&mut node_specific, PeerType::NodeSpecific),
                Local::Node(_) => continue,
            };
            let mut peer = Peer { kind, ..peer };
            let key = match peer.port {
                Some(port) => format!("{}-{port}", peer.ip),
                None => peer.ip.to_string(),
            };
            if Some(peer.ip) == my_ip {
                peer.skip = Some(format!("Skipping ourselves ({})", peer.ip));
            }
            map.entry(key).or_insert(peer);
        }
    }
    // Two sessions to one address cannot both come up; the global peer wins.
    for peer in node_specific.values_mut() {
        if peer.skip.is_none() && global.values().any(|g: &Peer| g.ip == peer.ip) {
            peer.skip = Some(format!("Skipping {} as it is also a global peer", peer.ip));
        }
    }
    Some(NodePeers {
        mesh,
        global,
        node_specific,
    })
}

/// Whether this side of a peering only listens: between two Calico nodes (mesh, or a
/// global peer at a node's address) the one with the greater address string, compared
/// as text as confd's template compares it. Node-specific peers always connect.
pub fn passive(peer: &Peer, my_ip: Ipv4Addr) -> bool {
    match peer.kind {
        PeerType::Mesh | PeerType::Global => {
            peer.calico_node && peer.ip.to_string() > my_ip.to_string()
        }
        PeerType::NodeSpecific => false,
    }
}

#[derive(Clone)]
enum Local {
    Global,
    Node(String),
}

/// Every (local side, peer) pair one BGPPeer creates, peerSelector's reverse
/// direction included (the selected nodes peer back with the local nodes).
fn peerings(cluster: &Cluster, spec: &BgpPeerSpec) -> Vec<(Local, Peer)> {
    let global = cluster.global();
    let base = Peer {
        kind: PeerType::Global,
        ip: Ipv4Addr::UNSPECIFIED,
        port: None,
        asn: 0,
        source: spec.source_address.unwrap_or(SourceAddress::UseNodeIp),
        rr_cluster_id: String::new(),
        calico_node: false,
        keep_next_hop: spec.keep_original_next_hop,
        allow_local_as: spec.num_allowed_local_as_numbers.filter(|n| *n > 0),
        restart_time: spec
            .max_restart_time
            .as_deref()
            .and_then(|d| go_duration_seconds(d).ok()),
        ttl_security: spec.ttl_security.filter(|t| *t > 0),
        skip: None,
    };
    let locals: Vec<Local> = if let Some(node) = &spec.node {
        vec![Local::Node(node.clone())]
    } else if let Some(sel) = &spec.node_selector {
        cluster
            .matching(sel)
            .into_iter()
            .map(|n| Local::Node(n.name.clone()))
            .collect()
    } else {
        vec![Local::Global]
    };
    let as_peer = |n: &NodeInfo| -> Option<Peer> {
        Some(Peer {
            ip: n.ip()?,
            port: n.listen_port,
            asn: n.asn,
            rr_cluster_id: n.rr_cluster_id.clone().unwrap_or_default(),
            calico_node: true,
            ..base.clone()
        })
    };

    let mut out = Vec::new();
    if let Some(sel) = &spec.peer_selector {
        let selected = cluster.matching(sel);
        for local in &locals {
            for n in &selected {
                if let Some(p) = as_peer(n) {
                    out.push((local.clone(), p));
                }
            }
        }
        // The reverse direction: each selected node peers with the local nodes.
        let local_nodes: Vec<&NodeInfo> = match (&spec.node, &spec.node_selector) {
            (Some(node), _) => cluster.nodes.get(node).into_iter().collect(),
            (None, Some(sel)) => cluster.matching(sel),
            (None, None) => cluster.nodes.values().collect(),
        };
        for n in &selected {
            for l in &local_nodes {
                if let Some(p) = as_peer(l) {
                    out.push((Local::Node(n.name.clone()), p));
                }
            }
        }
    } else if let Some(text) = &spec.peer_ip {
        let Ok((IpAddr::V4(ip), port)) = split_peer_ip(text) else {
            return out; // IPv6 peers belong to bird6.cfg, not rendered here.
        };
        let peer = Peer {
            ip,
            port: port.or(global.and_then(|g| g.listen_port)),
            asn: spec.as_number.map_or(cluster.global_as, |a| a.0),
            calico_node: cluster.node_with_ip(ip).is_some(),
            ..base.clone()
        };
        for local in &locals {
            out.push((local.clone(), peer.clone()));
        }
    }
    out
}
