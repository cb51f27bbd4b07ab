//! Which BGP peerings a node gets, resolved from Calico resources as confd resolves them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;

use super::resources::{
    go_duration_seconds, split_peer_ip, AsNumber, BgpConfigurationSpec, BgpPeerSpec, NextHopMode,
    Resources, ReversePeering, SourceAddress,
};
use super::selector::Selector;
use super::version::CalicoVersion;

/// Calico's AS number when neither the Node nor BGPConfiguration sets one.
pub const DEFAULT_AS: u32 = 64512;

/// A Calico node as the BGP render sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.bgp.ipv4Address`: the address and its subnet.
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Addr>,
    /// The node's AS: its own, else the global one.
    pub asn: u32,
    /// The node's own AS number (`spec.bgp.asNumber`), if it has one.
    pub own_asn: Option<u32>,
    pub rr_cluster_id: Option<String>,
    /// The listen port of the node's own BGPConfiguration `node.<name>`.
    pub node_listen_port: Option<u16>,
}

impl NodeInfo {
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.ipv4.map(|n| n.addr())
    }

    /// The port the node's BIRD listens on: its own BGPConfiguration's, else the
    /// global one, else BGP's (`None`).
    pub fn listen_port(&self, cluster: &Cluster) -> Option<u16> {
        self.node_listen_port.or(cluster.global_listen_port)
    }
}

/// The cluster-wide view: every node's effective BGP settings.
#[derive(Debug, Clone)]
pub struct Cluster<'a> {
    pub resources: &'a Resources,
    pub nodes: BTreeMap<String, NodeInfo>,
    pub global_as: u32,
    pub global_listen_port: Option<u16>,
}

impl<'a> Cluster<'a> {
    pub fn new(resources: &'a Resources) -> Self {
        let global = resources.global();
        let global_as = global.and_then(|g| g.as_number).map_or(DEFAULT_AS, |a| a.0);
        let global_port = global.and_then(|g| g.listen_port).filter(|p| *p != 0);
        let nodes = resources
            .nodes
            .iter()
            .map(|(name, (_, spec))| {
                let bgp = spec.bgp.clone().unwrap_or_default();
                let ipv4 = bgp.ipv4_address.as_deref().and_then(parse_v4_with_len);
                let ipv6 = bgp.ipv6_address.as_deref().and_then(|a| {
                    let addr = a.split('/').next().unwrap_or(a);
                    addr.parse::<Ipv6Addr>().ok()
                });
                let info = NodeInfo {
                    name: name.clone(),
                    labels: resources.node_labels(name),
                    ipv4,
                    ipv6,
                    asn: bgp.as_number.map_or(global_as, |a| a.0),
                    own_asn: bgp.as_number.map(|a| a.0),
                    rr_cluster_id: bgp.route_reflector_cluster_id.filter(|c| !c.is_empty()),
                    node_listen_port: resources
                        .per_node(name)
                        .and_then(|c| c.listen_port)
                        .filter(|p| *p != 0),
                };
                (name.clone(), info)
            })
            .collect();
        Cluster {
            resources,
            nodes,
            global_as,
            global_listen_port: global_port,
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

    /// The nodes a BGPPeer's `peerIP` points at, by name, as confd matches them: the
    /// node's IPv4 or IPv6 address, its AS (the global one when neither says), and,
    /// when the peerIP has a port, its listen port (confd's own quirk kept: a node
    /// whose own port matches is still left out when a different global port is set).
    fn nodes_at(&self, ip: IpAddr, asn: Option<AsNumber>, port: Option<u16>) -> Vec<String> {
        let asn = asn.filter(|a| a.0 != 0).map_or(self.global_as, |a| a.0);
        self.nodes
            .values()
            .filter(|n| match ip {
                IpAddr::V4(ip) => n.ip() == Some(ip),
                IpAddr::V6(ip) => n.ipv6 == Some(ip),
            })
            .filter(|n| n.asn == asn)
            .filter(|n| match port {
                None => true,
                Some(port) => {
                    n.node_listen_port.is_none_or(|p| p == port)
                        && self.global_listen_port.is_none_or(|p| p == port)
                }
            })
            .map(|n| n.name.clone())
            .collect()
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
    /// mesh, global, global workload peers, node-specific, node-specific workload
    /// peers; skipped ones (ourselves, route reflectors) left out.
    pub fn running<'a>(&'a self) -> Vec<&'a Peer> {
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
        let running = |peers: &'a BTreeMap<String, Peer>, local: bool| {
            peers
                .values()
                .filter(move |p| p.skip.is_none() && p.local_workload == local)
        };
        mesh.into_iter()
            .chain(running(&self.global, false))
            .chain(running(&self.global, true))
            .chain(running(&self.node_specific, false))
            .chain(running(&self.node_specific, true))
            .collect()
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
    /// The peer's AS (0 when a BGPPeer by address leaves `asNumber` out, as confd
    /// passes it on).
    pub asn: u32,
    /// `localASNumber` (v3.31): the AS this node presents to the peer.
    pub local_asn: Option<u32>,
    pub source: SourceAddress,
    /// The peer's own route reflector cluster id (`""` for non-Calico peers).
    pub rr_cluster_id: String,
    /// The peer's address is a Calico node's, as confd marks it: every mesh peer, and
    /// a BGPPeer by address that is a node's (peers chosen by selector are not
    /// marked).
    pub calico_node: bool,
    pub keep_next_hop: bool,
    pub next_hop_mode: Option<NextHopMode>,
    pub allow_local_as: Option<u32>,
    pub restart_time: Option<u64>,
    pub keepalive_time: Option<u64>,
    /// GTSM hop limit (`ttlSecurity`).
    pub ttl_security: Option<u8>,
    /// The gateway the peer is reached through (`reachableBy`).
    pub reachable_by: Option<String>,
    pub filters: Vec<String>,
    pub password: Option<String>,
    /// A workload on this node that peers with it (`localWorkloadSelector`): it
    /// connects to us, and its protocol is named `Local_Workload_...`.
    pub local_workload: bool,
    /// Why the protocol is not written (`None`: it is).
    pub skip: Option<String>,
}

impl Peer {
    fn new(kind: PeerType, ip: Ipv4Addr) -> Peer {
        Peer {
            kind,
            ip,
            port: None,
            asn: 0,
            local_asn: None,
            source: SourceAddress::UseNodeIp,
            rr_cluster_id: String::new(),
            calico_node: false,
            keep_next_hop: false,
            next_hop_mode: None,
            allow_local_as: None,
            restart_time: None,
            keepalive_time: None,
            ttl_security: None,
            reachable_by: None,
            filters: Vec::new(),
            password: None,
            local_workload: false,
            skip: None,
        }
    }

    /// BIRD protocol name: `Mesh_10_1_5_11`, `Node_10_1_5_1`, `Global_10_0_0_1_port_166`.
    pub fn protocol_name(&self) -> String {
        let id = self.ip.to_string().replace('.', "_");
        let prefix = if self.local_workload {
            "Local_Workload"
        } else {
            self.kind.prefix()
        };
        match (self.kind, self.port) {
            (PeerType::Mesh, _) | (_, None) => format!("{prefix}_{id}"),
            (_, Some(port)) => format!("{prefix}_{id}_port_{port}"),
        }
    }

    /// confd's key for the peering: `<ip>`, or `<ip>-<port>` for a port other than
    /// BGP's own (179); listings sort by it.
    fn key(&self) -> String {
        match self.port {
            Some(port) if port != 179 => format!("{}-{port}", self.ip),
            _ => self.ip.to_string(),
        }
    }
}

/// Resolves `node`'s peers. `None` when the node is unknown.
pub fn resolve(cluster: &Cluster, node: &str, version: CalicoVersion) -> Option<NodePeers> {
    let me = cluster.nodes.get(node)?;
    let my_ip = me.ip();
    let mesh = if let Some(cid) = &me.rr_cluster_id {
        Mesh::RouteReflector(cid.clone())
    } else if !cluster.mesh_enabled() {
        Mesh::Disabled
    } else {
        let global = cluster.global();
        let restart_time = global
            .and_then(|g| g.node_mesh_max_restart_time.as_deref())
            .and_then(|d| go_duration_seconds(d).ok());
        let password = global
            .and_then(|g| g.node_mesh_password.as_ref())
            .and_then(|p| cluster.resources.password(p));
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
                            port: other.listen_port(cluster),
                            // v3.32's Go falls back to this node's AS, the
                            // templates before it to the global one.
                            asn: match other.own_asn {
                                Some(asn) => asn,
                                None if version.metric_local_pref() => me.asn,
                                None => other.asn,
                            },
                            calico_node: true,
                            restart_time,
                            password: password.clone(),
                            ..Peer::new(PeerType::Mesh, ip)
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

    // confd's passes: global peerings first, then node-specific ones, then the
    // reverse of each peering between Calico nodes; the first peering emitted under a
    // key wins, and a node-specific one is dropped where a global one has its key.
    let mut global: BTreeMap<String, Peer> = BTreeMap::new();
    let mut node_specific: BTreeMap<String, Peer> = BTreeMap::new();
    let peers = &cluster.resources.bgp_peers;
    for global_pass in [true, false] {
        for (name, spec) in peers {
            let is_global = spec.node.is_none() && spec.node_selector.is_none();
            if is_global != global_pass {
                continue;
            }
            if !global_pass && !local_nodes(cluster, spec).iter().any(|n| n == node) {
                continue;
            }
            for peer in forward_peers(cluster, node, name, spec, version) {
                if global_pass {
                    global.entry(peer.key()).or_insert(peer);
                } else if !global.contains_key(&peer.key()) {
                    node_specific.entry(peer.key()).or_insert(peer);
                }
            }
        }
    }
    for spec in peers.values() {
        if spec.reverse_peering == Some(ReversePeering::Manual)
            || spec.local_workload_selector.is_some()
        {
            continue;
        }
        let reversed_to: Vec<String> = match (&spec.peer_selector, &spec.peer_ip) {
            (Some(sel), _) => cluster
                .matching(sel)
                .iter()
                .map(|n| n.name.clone())
                .collect(),
            (None, Some(text)) => match split_peer_ip(text) {
                // From v3.24 a peering by IPv6 address reverses over IPv6 only:
                // nothing here.
                Ok((IpAddr::V6(_), _)) if version.reverse_peering_by_family() => Vec::new(),
                Ok((ip, port)) => cluster.nodes_at(ip, spec.as_number, port),
                Err(_) => Vec::new(),
            },
            (None, None) => Vec::new(),
        };
        if !reversed_to.iter().any(|n| n == node) {
            continue;
        }
        let peer_nodes: Vec<&NodeInfo> = match (&spec.node, &spec.node_selector) {
            (_, Some(sel)) => cluster.matching(sel),
            (Some(name), None) => cluster.nodes.get(name).into_iter().collect(),
            (None, None) => cluster.nodes.values().collect(),
        };
        for n in peer_nodes {
            if let Some(peer) = node_as_peer(cluster, n, spec, version) {
                if !global.contains_key(&peer.key()) {
                    node_specific.entry(peer.key()).or_insert(peer);
                }
            }
        }
    }
    for (kind, peers) in [
        (PeerType::Global, &mut global),
        (PeerType::NodeSpecific, &mut node_specific),
    ] {
        for peer in peers.values_mut() {
            peer.kind = kind;
            if Some(peer.ip) == my_ip {
                peer.skip = Some(format!("Skipping ourselves ({})", peer.ip));
            }
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

/// The nodes a BGPPeer's `node` or `nodeSelector` names (none for a global peer).
fn local_nodes(cluster: &Cluster, spec: &BgpPeerSpec) -> Vec<String> {
    match (&spec.node, &spec.node_selector) {
        (_, Some(sel)) => cluster
            .matching(sel)
            .iter()
            .map(|n| n.name.clone())
            .collect(),
        (Some(name), None) => vec![name.clone()],
        (None, None) => Vec::new(),
    }
}

/// The peers a BGPPeer names: the workloads on `node` that Felix says peer through
/// it (`localWorkloadSelector`), the nodes its `peerSelector` selects, or its
/// `peerIP`.
fn forward_peers(
    cluster: &Cluster,
    node: &str,
    name: &str,
    spec: &BgpPeerSpec,
    version: CalicoVersion,
) -> Vec<Peer> {
    if spec.local_workload_selector.is_some() {
        let statuses = cluster.resources.endpoint_status.get(node);
        return statuses
            .into_iter()
            .flat_map(|s| s.values())
            .filter(|s| s.bgp_peer_name == name)
            .filter_map(|s| {
                let net = s.ipv4_nets.first()?;
                let ip = net.split('/').next()?.parse::<Ipv4Addr>().ok()?;
                Some(Peer {
                    asn: spec.as_number.map_or(0, |a| a.0),
                    local_asn: spec
                        .local_as_number
                        .filter(|_| version.local_as_numbers())
                        .map(|a| a.0),
                    filters: filters(spec, version),
                    source: SourceAddress::None,
                    local_workload: true,
                    ..Peer::new(PeerType::Global, ip)
                })
            })
            .collect();
    }
    if let Some(sel) = &spec.peer_selector {
        return cluster
            .matching(sel)
            .into_iter()
            .filter_map(|n| node_as_peer(cluster, n, spec, version))
            .collect();
    }
    let Some(Ok((IpAddr::V4(ip), port))) = spec.peer_ip.as_deref().map(split_peer_ip) else {
        return Vec::new(); // IPv6 peers belong to bird6.cfg, not rendered here.
    };
    // Without a port, a peer at a Calico node's address is reached on its listen port.
    let port = port.or_else(|| {
        let nodes = cluster.nodes_at(IpAddr::V4(ip), spec.as_number, None);
        nodes
            .first()
            .and_then(|n| cluster.nodes.get(n))
            .and_then(|n| n.listen_port(cluster))
    });
    if version.ttl_security_per_peer() {
        if let Some(via) = &spec.reachable_by {
            // confd drops a peering whose gateway is not an address of its family.
            if via.parse::<Ipv4Addr>().is_err() {
                return Vec::new();
            }
        }
    }
    let (keep_next_hop, next_hop_mode) = next_hop(spec, version);
    let mut peer = Peer {
        port,
        asn: spec.as_number.map_or(0, |a| a.0),
        local_asn: spec
            .local_as_number
            .filter(|_| version.local_as_numbers())
            .map(|a| a.0),
        calico_node: cluster.nodes.values().any(|n| n.ip() == Some(ip)),
        keep_next_hop,
        next_hop_mode,
        allow_local_as: spec.num_allowed_local_as_numbers.filter(|n| *n > 0),
        ..Peer::new(PeerType::Global, ip)
    };
    peer_config(cluster, spec, version, &mut peer);
    vec![peer]
}

/// A Calico node as the peer of a BGPPeer (by selector, or the reverse direction).
fn node_as_peer(
    cluster: &Cluster,
    n: &NodeInfo,
    spec: &BgpPeerSpec,
    version: CalicoVersion,
) -> Option<Peer> {
    let (keep_next_hop, next_hop_mode) = if version.next_hop_modes() {
        next_hop(spec, version)
    } else {
        (false, None)
    };
    let mut peer = Peer {
        port: n.listen_port(cluster),
        asn: n.asn,
        rr_cluster_id: n.rr_cluster_id.clone().unwrap_or_default(),
        keep_next_hop,
        next_hop_mode,
        ..Peer::new(PeerType::Global, n.ip()?)
    };
    peer_config(cluster, spec, version, &mut peer);
    Some(peer)
}

/// What every peering of a BGPPeer with a node carries: GTSM, the gateway, filters,
/// password, source address, timers.
fn peer_config(cluster: &Cluster, spec: &BgpPeerSpec, version: CalicoVersion, peer: &mut Peer) {
    peer.ttl_security = spec
        .ttl_security
        .filter(|t| *t > 0 && version.ttl_security_per_peer());
    peer.reachable_by = spec
        .reachable_by
        .clone()
        .filter(|_| version.ttl_security_per_peer());
    peer.filters = filters(spec, version);
    peer.password = spec
        .password
        .as_ref()
        .and_then(|p| cluster.resources.password(p));
    peer.source = spec.source_address.unwrap_or(SourceAddress::UseNodeIp);
    peer.restart_time = spec
        .max_restart_time
        .as_deref()
        .and_then(|d| go_duration_seconds(d).ok());
    peer.keepalive_time = spec
        .keepalive_time
        .as_deref()
        .filter(|_| version.keepalive_times())
        .and_then(|d| go_duration_seconds(d).ok());
}

/// `keepOriginalNextHop`, unless `nextHopMode` (v3.30) is set, which overrides it.
fn next_hop(spec: &BgpPeerSpec, version: CalicoVersion) -> (bool, Option<NextHopMode>) {
    match spec.next_hop_mode.filter(|_| version.next_hop_modes()) {
        Some(mode) => (false, Some(mode)),
        None => (spec.keep_original_next_hop, None),
    }
}

fn filters(spec: &BgpPeerSpec, version: CalicoVersion) -> Vec<String> {
    if version.per_peer_filters() {
        spec.filters.clone()
    } else {
        Vec::new()
    }
}
