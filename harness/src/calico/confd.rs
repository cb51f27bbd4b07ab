//! What calico-node's confd writes for BIRD (IPv4): `bird.cfg`, `bird_aggr.cfg` and
//! `bird_ipam.cfg`, statement for statement, Calico's BIRD fork syntax included; the
//! differences between versions are asked of [`CalicoVersion`].

use std::collections::BTreeSet;
use std::fmt::Write;

use ipnet::IpNet;

use super::ipam::node_blocks;
use super::peers::{passive, resolve, Cluster, Mesh, MeshOutcome, NodeInfo, Peer};
use super::resources::{EncapMode, IpPoolSpec, NextHopMode, Resources, SourceAddress};
use super::services::ServiceRoutes;
use super::version::CalicoVersion;

/// The three files, named as calico-node names them in /etc/calico/confd/config/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdFiles {
    pub bird: String,
    pub aggr: String,
    pub ipam: String,
}

impl BirdFiles {
    pub const NAMES: [&'static str; 3] = ["bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"];

    pub fn files(&self) -> [(&'static str, &str); 3] {
        [
            (Self::NAMES[0], &self.bird),
            (Self::NAMES[1], &self.aggr),
            (Self::NAMES[2], &self.ipam),
        ]
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfdError {
    #[error("no Calico Node named {0:?} (known: {1})")]
    UnknownNode(String, String),
    #[error(
        "{kind} {name:?}: {field} needs Calico v3.{since} or later; this render is for {version}"
    )]
    TooNew {
        kind: &'static str,
        name: String,
        field: &'static str,
        since: u16,
        version: CalicoVersion,
    },
    #[error("{kind} {name:?}: {field} is not emulated yet")]
    NotEmulated {
        kind: &'static str,
        name: String,
        field: &'static str,
    },
    #[error("environment {0:?}: not KEY=VALUE")]
    BadEnvironment(String),
    #[error("CALICO_ROUTER_ID={0:?}: not an IPv4 address or `hash`")]
    BadRouterId(String),
    #[error("Calico Node {0:?} has no IPv4 address: BIRD needs a router id (set CALICO_ROUTER_ID to an address or `hash`)")]
    NoRouterId(String),
    #[error("the peering with {0} has no AS number (a BGPPeer by peerIP needs asNumber)")]
    PeerWithoutAs(std::net::Ipv4Addr),
    #[error(
        "the BGP password for {0}: BIRD takes 1 to 80 printable characters without '\"' or '\\'"
    )]
    BadPassword(String),
    #[error("environment {0:?}: the emulated calico-node reads only {known}", known = NodeEnv::KNOWN.join(", "))]
    UnknownEnvironment(String),
}

/// The environment variables of calico-node that change what confd writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEnv {
    /// `CALICO_ROUTER_ID`: an IPv4 address, or `hash` (one derived from the node name).
    pub router_id: Option<String>,
}

impl NodeEnv {
    pub const KNOWN: [&'static str; 1] = ["CALICO_ROUTER_ID"];

    /// Reads `KEY=VALUE` pairs; a key calico-node's confd does not read is an error.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<NodeEnv, ConfdError> {
        let mut env = NodeEnv::default();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfdError::BadEnvironment(pair.into()))?;
            match key {
                "CALICO_ROUTER_ID" => {
                    if !(value.is_empty()
                        || value == "hash"
                        || value.parse::<std::net::Ipv4Addr>().is_ok())
                    {
                        return Err(ConfdError::BadRouterId(value.into()));
                    }
                    env.router_id = Some(value.to_string()).filter(|v| !v.is_empty());
                }
                _ => return Err(ConfdError::UnknownEnvironment(key.into())),
            }
        }
        Ok(env)
    }
}

/// Renders the node's files from the cluster's resources, as calico-node `version`
/// writes them.
pub fn render(
    resources: &Resources,
    node: &str,
    version: CalicoVersion,
) -> Result<BirdFiles, ConfdError> {
    render_with(resources, node, version, &NodeEnv::default())
}

/// [`render`] for a calico-node with that environment.
pub fn render_with(
    resources: &Resources,
    node: &str,
    version: CalicoVersion,
    env: &NodeEnv,
) -> Result<BirdFiles, ConfdError> {
    super::version::check_fields(resources, version)?;
    let cluster = Cluster::new(resources);
    let (Some(me), Some(peers)) = (cluster.nodes.get(node), resolve(&cluster, node, version))
    else {
        let known: Vec<&str> = cluster.nodes.keys().map(String::as_str).collect();
        return Err(ConfdError::UnknownNode(node.into(), known.join(", ")));
    };
    check_peers(&peers)?;
    let services = super::services::routes(&cluster, node, version);
    Ok(BirdFiles {
        bird: bird_cfg(&cluster, me, &peers, version, env)?,
        aggr: aggr_cfg(&cluster, node, &peers, &services, version),
        ipam: ipam_cfg(&cluster, me, &services, version),
    })
}

/// What BIRD would refuse in the peerings confd writes: a peer without an AS number,
/// a password it cannot quote.
fn check_peers(peers: &super::peers::NodePeers) -> Result<(), ConfdError> {
    for p in peers.running() {
        if p.asn == 0 {
            return Err(ConfdError::PeerWithoutAs(p.ip));
        }
        if let Some(pw) = &p.password {
            let quotable =
                pw.len() <= 80 && pw.chars().all(|c| !c.is_control() && c != '"' && c != '\\');
            if !quotable {
                return Err(ConfdError::BadPassword(p.ip.to_string()));
            }
        }
    }
    Ok(())
}

/// `CALICO_ROUTER_ID=hash`: the first four bytes of the node name's SHA-256, as
/// confd computes it (from v3.25 the first kept below 224: no multicast or reserved
/// router ids).
pub fn hashed_router_id(node: &str, version: CalicoVersion) -> std::net::Ipv4Addr {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(node.as_bytes());
    let first = if hash[0] > 223 && version.router_id_below_multicast() {
        hash[0] - 32
    } else {
        hash[0]
    };
    std::net::Ipv4Addr::new(first, hash[1], hash[2], hash[3])
}

fn debug_line(cluster: &Cluster, node: &str) -> Option<&'static str> {
    let level = cluster
        .resources
        .per_node(node)
        .and_then(|c| c.log_severity_screen.clone())
        .or_else(|| cluster.global().and_then(|g| g.log_severity_screen.clone()))
        .map(|l| l.to_ascii_lowercase());
    // BIRD logs at debug, info or not at all: confd takes any other level as none.
    match level.as_deref() {
        Some("debug") => Some("  debug all;"),
        None | Some("info") => Some("  debug { states };"),
        Some(_) => None,
    }
}

/// The node's own BGPConfiguration's `prefixAdvertisements` when it has the field
/// (even empty), else the global one's; a community name is looked up in that same
/// BGPConfiguration, and one it does not define is dropped, as confd drops it.
fn apply_communities(cluster: &Cluster, node: &str) -> String {
    let config = cluster
        .resources
        .per_node(node)
        .filter(|c| c.prefix_advertisements.is_some())
        .or(cluster.global());
    let adverts = config
        .and_then(|c| c.prefix_advertisements.as_deref())
        .unwrap_or_default();
    let mut out = String::from("function apply_communities ()\n{\n");
    for advert in adverts {
        let IpNet::V4(cidr) = advert.cidr else {
            continue;
        };
        let mut values = BTreeSet::new();
        for name in &advert.communities {
            let value = if super::resources::is_community(name) {
                Some(name.clone())
            } else {
                config
                    .into_iter()
                    .flat_map(|c| &c.communities)
                    .find(|c| &c.name == name)
                    .map(|c| c.value.clone())
            };
            values.extend(value);
        }
        let _ = writeln!(out, "      if ( net ~ {cidr} ) then {{");
        for v in values {
            let parts: Vec<&str> = v.split(':').collect();
            if parts.len() == 3 {
                let _ = writeln!(
                    out,
                    "          bgp_large_community.add(({}, {}, {}));",
                    parts[0], parts[1], parts[2]
                );
            } else {
                let _ = writeln!(
                    out,
                    "          bgp_community.add(({}, {}));",
                    parts[0], parts[1]
                );
            }
        }
        out.push_str("      }\n");
    }
    out.push_str("}\n");
    out
}

const KERNEL_DEVICE: &str = r#"
# Configure synchronization between routing tables and kernel.
protocol kernel {
  learn;             # Learn all alien routes from the kernel
  persist;           # Don't remove routes on bird shutdown
  scan time 2;       # Scan kernel routing table every 2 seconds
  import all;
  export filter calico_kernel_programming; # Default is export none
  graceful restart;  # Turn on graceful restart to reduce potential flaps in
                     # routes when reloading BIRD configuration.
  merge paths on;    # Allow export multipath routes (ECMP)
}

# Watch interface up/down events.
protocol device {
"#;

fn bird_cfg(
    cluster: &Cluster,
    me: &NodeInfo,
    peers: &super::peers::NodePeers,
    version: CalicoVersion,
    env: &NodeEnv,
) -> Result<String, ConfdError> {
    let debug = debug_line(cluster, &me.name);
    let debug = debug.map(|d| format!("{d}\n")).unwrap_or_default();
    let mut out = apply_communities(cluster, &me.name);
    out.push_str(
        "\n# Generated by confd\ninclude \"bird_aggr.cfg\";\ninclude \"bird_ipam.cfg\";\n\n",
    );
    let ip = me.ip();
    let router_id = match (env.router_id.as_deref(), ip) {
        (Some("hash"), _) => hashed_router_id(&me.name, version).to_string(),
        (Some(id), _) => id.to_string(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => return Err(ConfdError::NoRouterId(me.name.clone())),
    };
    let _ = writeln!(out, "router id {router_id};");
    let own = cluster.resources.per_node(&me.name);
    let global = cluster.global();
    let bind = own
        .and_then(|c| c.bind_mode.as_deref())
        .or_else(|| global.and_then(|g| g.bind_mode.as_deref()))
        .is_some_and(|m| m == "NodeIP");
    let address = match ip {
        Some(ip) if bind => format!(" address {ip}"),
        _ => String::new(),
    };
    // Port 0 is no port: confd leaves it unset.
    let node_port = own.and_then(|c| c.listen_port).filter(|p| *p != 0);
    let global_port = global.and_then(|g| g.listen_port).filter(|p| *p != 0);
    let port = node_port
        .or(global_port)
        .map(|p| format!(" port {p}"))
        .unwrap_or_default();
    if !address.is_empty() || !port.is_empty() {
        let _ = writeln!(out, "listen bgp{address}{port};");
    }
    out.push_str(KERNEL_DEVICE);
    out.push_str(&debug);
    out.push_str("  scan time 2;    # Scan interfaces every 2 seconds\n}\n\nprotocol direct {\n");
    out.push_str(&debug);
    let ignored: Vec<&String> = own
        .filter(|c| !c.ignored_interfaces.is_empty())
        .or(global)
        .map(|c| c.ignored_interfaces.iter().collect())
        .unwrap_or_default();
    if ignored.is_empty() {
        out.push_str("  interface -\"cali*\", -\"kube-ipvs*\", \"*\"; # Exclude cali* and kube-ipvs* but\n                                          # include everything else.\n}\n");
    } else {
        out.push_str("  interface ");
        for i in ignored {
            let _ = write!(out, "-\"{i}\", ");
        }
        out.push_str("-\"cali*\", -\"kube-ipvs*\", \"*\";\n}\n");
    }
    let Some(ip) = ip else {
        // calico-node without an IPv4 address runs no IPv4 BGP.
        out.push_str("\n# IPv4 disabled on this node.\n");
        return Ok(out);
    };

    let template_filters = if version.per_peer_filters() {
        ""
    } else {
        "  import all;        # Import all routes, since we don't know what the upstream\n                     # topology is and therefore have to trust the ToR/RR.\n  export filter calico_export_to_bgp_peers;  # Only want to export routes for workloads.\n"
    };
    let template_multihop = if version.ttl_security_per_peer() {
        ""
    } else {
        "  multihop;\n"
    };
    let _ = write!(
        out,
        "\n\n# Template for all BGP clients\ntemplate bgp bgp_template {{\n{debug}  description \"Connection to BGP peer\";\n  local as {};\n{template_multihop}  gateway recursive; # This should be the default, but just in case.\n{template_filters}  add paths on;\n  graceful restart;  # See comment in kernel section about graceful restart.\n  connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n}}\n",
        me.asn
    );

    if version.per_peer_filters() {
        out.push_str("\n# -------------- BGP Filters ------------------\n");
        for line in super::filters::functions(cluster.resources, version) {
            let _ = writeln!(out, "{line}");
        }
    }
    if version.metric_local_pref() {
        out.push_str(&peer_list(cluster.resources, peers, me, ip, version));
        return Ok(out);
    }
    out.push_str("\n# ------------- Node-to-node mesh -------------\n");
    match &peers.mesh {
        Mesh::RouteReflector(cid) => {
            let _ = writeln!(
                out,
                "# This node ({}) is configured as a route reflector with cluster ID {cid};\n# ignore node-to-node mesh setting.",
                me.name
            );
        }
        Mesh::Disabled => out.push_str("\n# Node-to-node mesh disabled\n"),
        Mesh::Enabled(entries) => {
            for e in entries {
                let _ = writeln!(out, "\n# For peer /host/{}/ip_addr_v4", e.node);
                match &e.outcome {
                    MeshOutcome::Ourselves => {
                        let _ = writeln!(out, "# Skipping ourselves ({ip})");
                    }
                    MeshOutcome::RouteReflector(cid) => {
                        let _ = writeln!(
                            out,
                            "# Skipping {} ({}) as it is a route reflector with cluster ID {cid}",
                            e.ip, e.node
                        );
                    }
                    MeshOutcome::Peer(p) => {
                        out.push_str(&protocol(cluster.resources, p, me, ip, version))
                    }
                }
            }
        }
    }

    for (title, none, prefix, peers) in [
        (
            "Global peers",
            "# No global peers configured.",
            "/global/peer_v4".to_string(),
            &peers.global,
        ),
        (
            "Node-specific peers",
            "# No node-specific peers configured.",
            format!("/host/{}/peer_v4", me.name),
            &peers.node_specific,
        ),
    ] {
        let _ = writeln!(out, "\n\n# ------------- {title} -------------");
        if peers.is_empty() {
            let _ = writeln!(out, "{none}");
        }
        for (key, p) in peers {
            if p.local_workload {
                let _ = writeln!(out, "\n# Skipping local bgp peer ({})", p.ip);
                continue;
            }
            let _ = writeln!(out, "\n# For peer {prefix}/{key}");
            match &p.skip {
                Some(why) => {
                    let _ = writeln!(out, "# {why}");
                }
                None => out.push_str(&protocol(cluster.resources, p, me, ip, version)),
            }
        }
        // Workloads peering with this node, after the section's other peers.
        let mut locals = peers.iter().filter(|(_, p)| p.local_workload).peekable();
        if locals.peek().is_some() {
            let _ = writeln!(
                out,
                "\n# ------------- {title}: local workload peers -------------"
            );
        }
        for (key, p) in locals {
            let _ = writeln!(out, "# For peer {prefix}/{key}");
            out.push_str(&protocol(cluster.resources, p, me, ip, version));
        }
    }
    Ok(out)
}

/// v3.32's peer section: every peer the node runs, mesh first, then global, then
/// node-specific; skipped ones leave nothing.
fn peer_list(
    resources: &Resources,
    peers: &super::peers::NodePeers,
    me: &NodeInfo,
    ip: std::net::Ipv4Addr,
    version: CalicoVersion,
) -> String {
    // Sorted by protocol name, as v3.32's Go sorts them.
    let mut all = peers.running();
    all.sort_by_key(|p| p.protocol_name());
    if all.is_empty() {
        return "# No BGP peers configured for this node\n".into();
    }
    let mut out = String::from("# BGP Protocol Configurations\n");
    for p in all {
        out.push_str(&protocol(resources, p, me, ip, version));
    }
    out
}

/// v3.32's import filter: routes with a high LOCAL_PREF (a low metric) win.
const METRIC_IMPORT: &str = "    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then\n      preference = 200;\n    accept;\n  };\n";

/// v3.32's export filter head: LOCAL_PREF from the kernel metric (or back).
const METRIC_EXPORT: &str = "  export filter {\n    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {\n      krt_metric = 2147483647 - bgp_local_pref;\n    } else {\n      if (!defined(krt_metric)) then { krt_metric = 1024; }\n      bgp_local_pref = 2147483647 - krt_metric;\n    }\n";

/// A mesh peer's import and export from v3.26 on.
const MESH_FILTERS: &str = "  import all;        # Import all routes, since we don't know what the upstream\n                     # topology is and therefore have to trust the ToR/RR.\n  export filter {\n    calico_export_to_bgp_peers();\n    reject;\n  };  # Only want to export routes for workloads.\n";

/// Any other peer's import and export filters from v3.26 on: its BGPFilters' calls,
/// then the default of before BGPFilters (import all, export workloads only).
fn peer_filters(calls: (Vec<String>, Vec<String>), export_call: &str) -> String {
    let mut out = String::from("  import filter {\n");
    for c in &calls.0 {
        let _ = writeln!(out, "    {c}");
    }
    out.push_str("    accept; # Prior to introduction of BGP Filters we used \"import all\" so use default accept behaviour on import\n  };\n  export filter {\n");
    for c in &calls.1 {
        let _ = writeln!(out, "    {c}");
    }
    let _ = writeln!(out, "    {export_call}");
    out.push_str("    reject; # Prior to introduction of BGP Filters anything not explicitly exported through calico_export_to_bgp_peers()\n            # was rejected so use default reject behaviour on export\n  };  # Only want to export routes for workloads.\n");
    out
}

/// The calls a peer's BGPFilters add to its import and export filters.
fn filter_calls(resources: &Resources, p: &Peer, same_as: bool) -> (Vec<String>, Vec<String>) {
    use super::filters::{calls, Direction};
    (
        calls(resources, &p.filters, Direction::Import, same_as),
        calls(resources, &p.filters, Direction::Export, same_as),
    )
}

/// One `protocol bgp` block, statements in the template's order.
fn protocol(
    resources: &Resources,
    p: &Peer,
    me: &NodeInfo,
    my_ip: std::net::Ipv4Addr,
    version: CalicoVersion,
) -> String {
    let mesh = p.kind == super::peers::PeerType::Mesh;
    if version.metric_local_pref() {
        return protocol_v32(resources, p, me, my_ip, mesh);
    }
    let mut out = format!("protocol bgp {} from bgp_template {{\n", p.protocol_name());
    // The AS this node presents to the peer (`localASNumber`, v3.31).
    let local_as = p.local_asn.unwrap_or(me.asn);
    if version.ttl_security_per_peer() {
        match (mesh, p.ttl_security) {
            (true, _) if version.per_peer_filters() => {}
            (true, _) => out.push_str("  multihop;\n  ttl security off;\n"),
            (false, Some(hops)) => {
                let _ = writeln!(out, "  ttl security on;\n  multihop {hops};");
            }
            (false, None) => out.push_str("  ttl security off;\n  multihop;\n"),
        }
    }
    if let Some(asn) = p.local_asn {
        let _ = writeln!(out, "  local as {asn};");
    }
    out.push_str(&peer_address(p, my_ip));
    if version.per_peer_filters() {
        let same_as = mesh || p.asn == local_as;
        let call = if version.tunnel_route_filter() {
            format!("calico_export_to_bgp_peers({same_as});")
        } else {
            "calico_export_to_bgp_peers();".to_string()
        };
        if mesh {
            out.push_str(&MESH_FILTERS.replace("calico_export_to_bgp_peers();", &call));
        } else {
            out.push_str(&peer_filters(filter_calls(resources, p, same_as), &call));
        }
    }
    if passive(p, my_ip) {
        let why = if mesh {
            "Mesh is unidirectional"
        } else {
            "Peering is unidirectional"
        };
        let _ = writeln!(out, "  passive on; # {why}, peer will connect to us.");
    }
    if let Some(t) = p.restart_time {
        let _ = writeln!(out, "  graceful restart time {t};");
    }
    if mesh {
        // The mesh's password follows its restart time.
        if let Some(pw) = &p.password {
            let _ = writeln!(out, "  password \"{pw}\";");
        }
        out.push_str("}\n");
        return out;
    }
    if let Some(cid) = rr_client_of(p, me, local_as) {
        let _ = writeln!(out, "  rr client;\n  rr cluster id {cid};");
    }
    if let Some(pw) = &p.password {
        let _ = writeln!(out, "  password \"{pw}\";");
    }
    if p.keep_next_hop && p.asn != local_as {
        out.push_str("  next hop keep;\n");
    }
    match p.next_hop_mode {
        Some(NextHopMode::SelfHop) => out.push_str("  next hop self;\n"),
        Some(NextHopMode::Keep) => out.push_str("  next hop keep;\n"),
        Some(NextHopMode::Auto) | None => {}
    }
    if let Some(n) = p.allow_local_as {
        let _ = writeln!(out, "  allow local as {n};");
    }
    if p.local_workload {
        out.push_str("  passive on;\n");
    }
    out.push_str("}\n");
    out
}

/// The cluster id to reflect to `p` with: this node is a route reflector, the peer is
/// in the AS it presents, and not in its cluster.
fn rr_client_of<'a>(p: &Peer, me: &'a NodeInfo, local_as: u32) -> Option<&'a String> {
    me.rr_cluster_id
        .as_ref()
        .filter(|cid| p.asn == local_as && &p.rr_cluster_id != *cid)
}

/// The neighbor statement and, where the peer wants it, the source address.
fn peer_address(p: &Peer, my_ip: std::net::Ipv4Addr) -> String {
    let port = p
        .port
        .map(|port| format!(" port {port}"))
        .unwrap_or_default();
    let mut out = format!("  neighbor {}{port} as {};\n", p.ip, p.asn);
    if p.source == SourceAddress::UseNodeIp {
        let _ = writeln!(
            out,
            "  source address {my_ip};  # The local address we use for the TCP connection"
        );
    }
    out
}

/// One `protocol bgp` block as v3.32 writes it (from Go, not a template).
fn protocol_v32(
    resources: &Resources,
    p: &Peer,
    me: &NodeInfo,
    my_ip: std::net::Ipv4Addr,
    mesh: bool,
) -> String {
    let mut out = format!("protocol bgp {} from bgp_template {{\n", p.protocol_name());
    let local_as = p.local_asn.unwrap_or(me.asn);
    match (mesh, p.ttl_security) {
        (true, _) => {}
        (false, Some(hops)) => {
            let _ = writeln!(out, "  ttl security on;\n  multihop {hops};");
        }
        (false, None) => out.push_str("  ttl security off;\n  multihop;\n"),
    }
    if let Some(asn) = p.local_asn {
        let _ = writeln!(out, "  local as {asn};");
    }
    out.push_str(&peer_address(p, my_ip));
    // v3.32 compares AS numbers for mesh peers too (a mesh across AS numbers is eBGP).
    let same_as = p.asn == local_as;
    let (imports, exports) = filter_calls(resources, p, same_as);
    out.push_str("  import filter {\n");
    for c in &imports {
        let _ = writeln!(out, "    {c}");
    }
    out.push_str(METRIC_IMPORT);
    out.push_str(METRIC_EXPORT);
    for c in &exports {
        let _ = writeln!(out, "    {c}");
    }
    let _ = writeln!(
        out,
        "    calico_export_to_bgp_peers({same_as});\n    reject;\n  }};  # Only want to export routes for workloads."
    );
    if p.local_workload || passive(p, my_ip) {
        out.push_str("  passive on;\n");
    }
    if let Some(t) = p.restart_time {
        let _ = writeln!(out, "  graceful restart time {t};");
    }
    if let Some(t) = p.keepalive_time {
        let _ = writeln!(out, "  keepalive time {t};");
    }
    if let Some(cid) = rr_client_of(p, me, local_as).filter(|_| !mesh) {
        let _ = writeln!(out, "  rr client;\n  rr cluster id {cid};");
    }
    if let Some(pw) = &p.password {
        let _ = writeln!(out, "  password \"{pw}\";");
    }
    let keep = p.next_hop_mode == Some(NextHopMode::Keep) || (p.keep_next_hop && p.asn != local_as);
    if keep {
        out.push_str("  next hop keep;\n");
    }
    if p.next_hop_mode == Some(NextHopMode::SelfHop) {
        out.push_str("  next hop self;\n");
    }
    if let Some(n) = p.allow_local_as {
        let _ = writeln!(out, "  allow local as {n};");
    }
    out.push_str("}\n");
    out
}

fn aggr_cfg(
    cluster: &Cluster,
    node: &str,
    peers: &super::peers::NodePeers,
    services: &ServiceRoutes,
    version: CalicoVersion,
) -> String {
    let mut blocks = node_blocks(cluster.resources, node);
    if version.skips_pending_blocks() {
        blocks.retain(|b| b.state != "pending");
    }
    let mut routes = String::new();
    if !blocks.is_empty() {
        routes.push_str("   # IP blocks for this host.\n");
        // No blackhole for /32 blocks.
        for b in blocks.iter().filter(|b| b.cidr.prefix_len() < 32) {
            let _ = writeln!(routes, "   route {} blackhole;", b.cidr);
        }
    }
    if !services.advertised.is_empty() {
        routes.push_str("   # Static routes.\n");
        for cidr in &services.advertised {
            let _ = writeln!(routes, "   route {cidr} blackhole;");
        }
    }
    if version.ttl_security_per_peer() {
        // reachableBy: a route to the peer through its gateway.
        for (title, peers) in [
            ("global BGP peers", &peers.global),
            ("node specific BGP peers", &peers.node_specific),
        ] {
            let mut first = true;
            for p in peers.values() {
                let Some(via) = &p.reachable_by else { continue };
                if std::mem::take(&mut first) {
                    let _ = writeln!(routes, "   # Static routes needed for {title}.");
                }
                let _ = writeln!(routes, "   route {}/32 via {via};", p.ip);
            }
        }
    }
    let mut out = String::from("# Generated by confd\n\n");
    if routes.is_empty() && !version.ttl_security_per_peer() {
        out.push_str("# No IP blocks or static routes for this host.\n");
    } else {
        out.push_str("protocol static {\n");
        out.push_str(&routes);
        if routes.is_empty() {
            out.push_str("   # No IP blocks or static routes for this host.\n");
        }
        out.push_str("}\n");
    }
    out.push_str("\n\n# Aggregation of routes on this host; export the block, nothing beneath it.\nfunction calico_aggr ()\n{\n");
    for b in &blocks {
        let state = match b.state.as_str() {
            "" => "is implicitly confirmed.",
            "confirmed" => "is confirmed",
            other => {
                // Pending blocks are not exported yet.
                let _ = writeln!(out, "      # Block {} is {other}", b.cidr);
                continue;
            }
        };
        let _ = writeln!(out, "      # Block {} {state}", b.cidr);
        let _ = writeln!(out, "      if ( net = {} ) then {{ accept; }}", b.cidr);
        if version.metric_local_pref() {
            // A route inside the block with a better metric than normal: export it.
            let _ = writeln!(
                out,
                "      if ( net ~ {} && krt_metric < 1024 ) then {{ accept; }}",
                b.cidr
            );
        }
        let _ = writeln!(out, "      if ( net ~ {} ) then {{ reject; }}", b.cidr);
    }
    out.push_str("}\n");
    out
}

/// v3.32's `bird_ipam.cfg`: pool filters from Go, one line each, sorted.
fn ipam_cfg_v32(
    cluster: &Cluster,
    pools: &[(String, &IpPoolSpec)],
    me: &NodeInfo,
    services: &ServiceRoutes,
) -> String {
    // Felix programs cluster routes when BGPConfiguration says so; BIRD then leaves
    // them out of the kernel.
    let bird_programs_cluster_routes = cluster
        .global()
        .and_then(|g| g.program_cluster_routes.as_deref())
        != Some("Disabled");
    let cidr = |key: &str| key.replacen('-', "/", 1);
    let statement = |net: &str, extra: &str, action: &str, comment: &str| {
        let comment = if comment.is_empty() {
            String::new()
        } else {
            format!(" # {comment}")
        };
        format!("  if (net ~ {net}) then {{ {extra}{action}; }}{comment}")
    };
    let mut disabled = Vec::new();
    let mut enabled = Vec::new();
    let mut kernel = Vec::new();
    for (key, p) in pools {
        let net = cidr(key);
        if p.disable_bgp_export {
            disabled.push(statement(&net, "", "reject", "BGP export is disabled."));
        } else {
            enabled.push(statement(&net, "", "accept", ""));
        }
        let Some(network) = me.ipv4 else { continue };
        kernel.push(if p.vxlan_mode != EncapMode::Never {
            statement(&net, "", "reject", "VXLAN routes are handled by Felix.")
        } else if !bird_programs_cluster_routes {
            statement(&net, "", "reject", "Cluster routes are handled by Felix.")
        } else {
            let tunnel = match p.ipip_mode {
                EncapMode::Never => String::new(),
                EncapMode::Always => "krt_tunnel=\"tunl0\"; ".into(),
                EncapMode::CrossSubnet => format!(
                    "if (defined(bgp_next_hop)&&(bgp_next_hop ~ {})) then krt_tunnel=\"\"; else krt_tunnel=\"tunl0\"; ",
                    network.trunc()
                ),
            };
            statement(&net, &tunnel, "accept", "")
        });
    }
    for list in [&mut disabled, &mut enabled, &mut kernel] {
        list.sort();
    }
    let mut out = String::from("# Generated by confd\n\nfunction reject_tunnel_routes () {\n  # Don't export tunnel routes to other nodes, Felix programs them.\n  # IPIP routes are handled by Bird, and it does not re-advertise them.\n  if (defined(ifname)) then {\n     if ((ifname ~ \"*.cali\") || (ifname ~ \"*.calico\")) then {\n        reject;\n     }\n  }\n}\n\nfunction reject_local_routes () {\n  # Don't export local routes learned via BPF as they should never leave the node.\n  if (defined(ifname)) then {\n     if (ifname ~ \"bpf*.cali\") then {\n        reject;\n     }\n  }\n}\n\nfunction calico_export_to_bgp_peers(bool internal_peer) {\n  # filter code terminates when it calls `accept;` or `reject;`,\n\n");
    for line in &disabled {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("  if (internal_peer) then {\n    reject_tunnel_routes();\n  }\n  reject_local_routes();\n  apply_communities();\n  calico_aggr();\n");
    out.push_str(&exported_services(cluster, me, services));
    for line in &enabled {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("}\n\nfilter calico_kernel_programming {\n");
    if !services.rejected.is_empty() {
        out.push_str("\n  # Don't program static routes into kernel.\n");
        for s in &services.rejected {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ reject; }}");
        }
    }
    out.push_str("  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {\n      krt_metric = 1024;\n      if (defined(bgp_local_pref)) then {\n          krt_metric = 2147483647 - bgp_local_pref;\n      }\n      if (krt_metric < 1024) then {\n          preference = 200;\n      }\n  }\n");
    for line in &kernel {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("  accept;\n}\n");
    out
}

/// The service routes a node exports, and, on a route reflector (v3.27), every
/// route inside the configured LoadBalancer ranges (which it reflects).
fn exported_services(cluster: &Cluster, me: &NodeInfo, services: &ServiceRoutes) -> String {
    let mut out = String::new();
    if !services.advertised.is_empty() {
        out.push_str("\n  # Export static routes.\n");
        for s in &services.advertised {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ accept; }}");
        }
    }
    let lb: Vec<IpNet> = cluster
        .global()
        .map(|g| {
            g.service_load_balancer_ips
                .iter()
                .filter_map(|c| c.cidr)
                .collect()
        })
        .unwrap_or_default();
    if me.rr_cluster_id.is_some() && !lb.is_empty() {
        out.push_str(
            "\n  # Configured as a RR - accept any routes within configured LB service IP ranges\n",
        );
        for net in lb.iter().filter(|n| n.addr().is_ipv4()) {
            let _ = writeln!(out, "  if ( net ~ {net} ) then {{ accept; }}");
        }
    }
    out
}

fn ipam_cfg(
    cluster: &Cluster,
    me: &NodeInfo,
    services: &ServiceRoutes,
    version: CalicoVersion,
) -> String {
    let mut pools: Vec<(String, &IpPoolSpec)> = cluster
        .resources
        .ip_pools
        .values()
        .filter_map(|p| match p.cidr {
            IpNet::V4(c) => Some((format!("{}-{}", c.network(), c.prefix_len()), p)),
            IpNet::V6(_) => None,
        })
        .collect();
    pools.sort_by(|a, b| a.0.cmp(&b.0));
    if version.metric_local_pref() {
        return ipam_cfg_v32(cluster, &pools, me, services);
    }
    let cidr = |key: &str| key.replacen('-', "/", 1);

    let mut out = String::from("# Generated by confd\nfunction reject_disabled_pools ()\n{\n");
    for (key, p) in &pools {
        if p.disable_bgp_export {
            let _ = writeln!(out, "  if ( net ~ {} ) then {{ reject; }}", cidr(key));
        }
    }
    if version.tunnel_route_filter() {
        out.push_str("}\n\nfunction reject_tunnel_routes () {\n  # Don't export tunnel routes to other nodes, Felix programs them.\n  # IPIP routes are handled by Bird, and it does not re-advertise them.\n  if (defined(ifname)) then {\n     if ((ifname ~ \"*.cali\") || (ifname ~ \"*.calico\")) then {\n        reject;\n     }\n  }\n}\n");
        if version.local_route_filter() {
            out.push_str("\nfunction reject_local_routes () {\n  # Don't export local routes learned via BPF as they should never leave the node.\n  if (defined(ifname)) then {\n     if (ifname ~ \"bpf*.cali\") then {\n        reject;\n     }\n  }\n}\n");
        }
        out.push_str("\nfunction calico_export_to_bgp_peers(bool internal_peer) {\n  # filter code terminates when it calls `accept;` or `reject;`,\n  # call reject_disabled_pools() first, then reject_tunnel_routes(),\n  # then apply_communities() and then calico_aggr()\n  reject_disabled_pools();\n  if (internal_peer) then {\n    reject_tunnel_routes();\n  }\n");
        if version.local_route_filter() {
            out.push_str("  reject_local_routes();\n");
        }
        out.push_str("  apply_communities();\n  calico_aggr();\n");
    } else {
        out.push_str(if version.per_peer_filters() {
            "}\n\nfunction calico_export_to_bgp_peers () {\n"
        } else {
            "}\n\nfilter calico_export_to_bgp_peers {\n"
        });
        out.push_str("  # filter code terminates when it calls `accept;` or `reject;`, call reject_disabled_pools() first, then apply_communities() and then calico_aggr()\n  reject_disabled_pools();\n  apply_communities();\n  calico_aggr();\n");
    }
    if version.tunnel_route_filter() {
        out.push_str(&exported_services(cluster, me, services));
    } else if !services.advertised.is_empty() {
        out.push_str("\n  # Export static routes.\n");
        for s in &services.advertised {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ accept; }}");
        }
    }
    for (key, p) in &pools {
        if p.disable_bgp_export {
            let _ = writeln!(
                out,
                "  # Skip {} as BGP export is disabled for it",
                cidr(key)
            );
        } else {
            let _ = writeln!(
                out,
                "\n  if ( net ~ {} ) then {{\n    accept;\n  }}",
                cidr(key)
            );
        }
    }
    if !version.per_peer_filters() {
        out.push_str("  reject;\n");
    }
    out.push_str("}\n\n\nfilter calico_kernel_programming {\n");
    if !services.rejected.is_empty() {
        out.push_str("  # Don't program static routes into kernel.\n");
        for s in &services.rejected {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ reject; }}");
        }
    }
    // Pools are written only once the node has an IPv4 address (`network_v4`).
    if let Some(network) = me.ipv4 {
        for (key, p) in &pools {
            let _ = writeln!(out, "\n  if ( net ~ {} ) then {{", cidr(key));
            let tunnel = if p.ipip_mode == EncapMode::Never {
                ""
            } else {
                "tunl0"
            };
            if p.vxlan_mode != EncapMode::Never {
                out.push_str("    # Don't program VXLAN routes into the kernel - these are handled by Felix.\n    reject;\n  }\n");
                continue;
            }
            if p.ipip_mode == EncapMode::CrossSubnet {
                // Same subnet: no tunnel; across subnets: IPIP.
                let _ = writeln!(
                    out,
                    "    if defined(bgp_next_hop) && ( bgp_next_hop ~ {} ) then\n      krt_tunnel = \"\";\n    else\n      krt_tunnel = \"{tunnel}\";",
                    network.trunc()
                );
            } else {
                let _ = writeln!(out, "    krt_tunnel = \"{tunnel}\";");
            }
            out.push_str("    accept;\n  }\n");
        }
    }
    out.push_str("\n  accept;\n}\n");
    out
}

/// The tokens of a BIRD file, comments (`#` to end of line) removed: BIRD's grammar
/// ignores whitespace and line breaks, so two files with equal tokens configure the
/// same thing.
pub fn normalize(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(str::split_whitespace)
        .map(String::from)
        .collect()
}
