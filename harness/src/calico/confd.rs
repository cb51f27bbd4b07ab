//! What calico-node's confd writes for BIRD (IPv4): `bird.cfg`, `bird_aggr.cfg` and
//! `bird_ipam.cfg`, statement for statement, Calico's BIRD fork syntax included; the
//! differences between versions are asked of [`CalicoVersion`].

use std::collections::BTreeSet;
use std::fmt::Write;

use ipnet::IpNet;

use super::ipam::node_blocks;
use super::peers::{passive, resolve, Cluster, Mesh, MeshOutcome, NodeInfo, Peer};
use super::resources::{EncapMode, Resources, SourceAddress};
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
        "prefixAdvertisements of {cidr}: community {name:?} is neither defined nor aa:nn[:mm]"
    )]
    UnknownCommunity { cidr: String, name: String },
}

/// Renders the node's files from the cluster's resources, as calico-node `version`
/// writes them.
pub fn render(
    resources: &Resources,
    node: &str,
    version: CalicoVersion,
) -> Result<BirdFiles, ConfdError> {
    let cluster = Cluster::new(resources);
    let Some(me) = cluster.nodes.get(node) else {
        let known: Vec<&str> = cluster.nodes.keys().map(String::as_str).collect();
        return Err(ConfdError::UnknownNode(node.into(), known.join(", ")));
    };
    Ok(BirdFiles {
        bird: bird_cfg(&cluster, me, version)?,
        aggr: aggr_cfg(resources, node, version),
        ipam: ipam_cfg(&cluster, me, version),
    })
}

/// Service CIDRs every node advertises (BGPConfiguration `default`), IPv4 only.
fn service_cidrs(cluster: &Cluster) -> Vec<String> {
    let Some(g) = cluster.global() else {
        return Vec::new();
    };
    let set: BTreeSet<String> = g
        .service_cluster_ips
        .iter()
        .chain(&g.service_external_ips)
        .filter_map(|c| match c.cidr {
            IpNet::V4(n) => Some(format!("{}-{}", n.network(), n.prefix_len())),
            IpNet::V6(_) => None,
        })
        .collect();
    // confd keys them `<net>-<len>` and writes them in key order.
    set.into_iter().map(|k| k.replacen('-', "/", 1)).collect()
}

fn debug_line(cluster: &Cluster, node: &str) -> Option<&'static str> {
    let level = cluster
        .resources
        .per_node(node)
        .and_then(|c| c.log_severity_screen.clone())
        .or_else(|| cluster.global().and_then(|g| g.log_severity_screen.clone()))
        .map(|l| l.to_ascii_lowercase());
    match level.as_deref() {
        Some("debug") => Some("  debug all;"),
        Some("none") => None,
        _ => Some("  debug { states };"),
    }
}

fn apply_communities(cluster: &Cluster, node: &str) -> Result<String, ConfdError> {
    let own = cluster.resources.per_node(node);
    let global = cluster.global();
    let adverts = own
        .filter(|c| !c.prefix_advertisements.is_empty())
        .or(global)
        .map(|c| c.prefix_advertisements.as_slice())
        .unwrap_or_default();
    let mut out = String::from("function apply_communities ()\n{\n");
    for advert in adverts {
        let IpNet::V4(cidr) = advert.cidr else {
            continue;
        };
        let mut values = BTreeSet::new();
        for name in &advert.communities {
            let defined = [own, global]
                .into_iter()
                .flatten()
                .flat_map(|c| &c.communities)
                .find(|c| &c.name == name)
                .map(|c| c.value.clone());
            let value = match defined {
                Some(v) => v,
                None if super::resources::is_community(name) => name.clone(),
                None => {
                    return Err(ConfdError::UnknownCommunity {
                        cidr: cidr.to_string(),
                        name: name.clone(),
                    });
                }
            };
            values.insert(value);
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
    Ok(out)
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
    version: CalicoVersion,
) -> Result<String, ConfdError> {
    let debug = debug_line(cluster, &me.name);
    let debug = debug.map(|d| format!("{d}\n")).unwrap_or_default();
    let mut out = apply_communities(cluster, &me.name)?;
    out.push_str(
        "\n# Generated by confd\ninclude \"bird_aggr.cfg\";\ninclude \"bird_ipam.cfg\";\n\n",
    );
    let Some(ip) = me.ip() else {
        // calico-node without an IPv4 address runs no IPv4 BGP.
        out.push_str("# IPv4 disabled on this node.\n");
        return Ok(out);
    };
    let _ = writeln!(out, "router id {ip};");
    let bind = cluster
        .global()
        .and_then(|g| g.bind_mode.as_deref())
        .is_some_and(|m| m == "NodeIP");
    let address = if bind {
        format!(" address {ip}")
    } else {
        String::new()
    };
    let node_port = cluster
        .resources
        .per_node(&me.name)
        .and_then(|c| c.listen_port);
    let global_port = cluster.global().and_then(|g| g.listen_port);
    match (node_port, global_port) {
        (Some(p), _) => {
            let _ = writeln!(out, "# Set node listen_port\nlisten bgp{address} port {p};");
        }
        (None, Some(p)) => {
            let _ = writeln!(
                out,
                "# Set global listen_port\nlisten bgp{address} port {p};"
            );
        }
        (None, None) if bind => {
            let _ = writeln!(out, "listen bgp{address};");
        }
        _ => {}
    }
    out.push_str(KERNEL_DEVICE);
    out.push_str(&debug);
    out.push_str("  scan time 2;    # Scan interfaces every 2 seconds\n}\n\nprotocol direct {\n");
    out.push_str(&debug);
    out.push_str(
        "  interface -\"cali*\", -\"kube-ipvs*\", \"*\"; # Exclude cali* and kube-ipvs* but\n                                          # include everything else.\n}\n",
    );

    let services = service_cidrs(cluster);
    if !services.is_empty() {
        out.push_str("\n# Service CIDRs this node advertises.\nprotocol static static_routes {\n");
        for cidr in &services {
            let _ = writeln!(out, "  route {cidr} blackhole;");
        }
        out.push_str("}\n");
    }

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
        out.push_str(
            "\n# -------------- BGP Filters ------------------\n# No v4 BGPFilters configured\n",
        );
    }
    let peers = resolve(cluster, &me.name).unwrap_or_else(no_peers);
    if version.metric_local_pref() {
        out.push_str(&peer_list(&peers, me, ip, version));
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
                    MeshOutcome::Peer(p) => out.push_str(&protocol(p, me, ip, version)),
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
            let _ = writeln!(out, "\n# For peer {prefix}/{key}");
            match &p.skip {
                Some(why) => {
                    let _ = writeln!(out, "# {why}");
                }
                None => out.push_str(&protocol(p, me, ip, version)),
            }
        }
    }
    Ok(out)
}

/// v3.32's peer section: every peer the node runs, mesh first, then global, then
/// node-specific; skipped ones leave nothing.
fn peer_list(
    peers: &super::peers::NodePeers,
    me: &NodeInfo,
    ip: std::net::Ipv4Addr,
    version: CalicoVersion,
) -> String {
    let all = peers.running();
    if all.is_empty() {
        return "# No BGP peers configured for this node\n".into();
    }
    let mut out = String::from("# BGP Protocol Configurations\n");
    for p in all {
        out.push_str(&protocol(p, me, ip, version));
    }
    out
}

/// v3.32's import filter: routes with a high LOCAL_PREF (a low metric) win.
const METRIC_IMPORT: &str = "  import filter {\n    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then\n      preference = 200;\n    accept;\n  };\n";

/// v3.32's export filter head: LOCAL_PREF from the kernel metric (or back).
const METRIC_EXPORT: &str = "  export filter {\n    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {\n      krt_metric = 2147483647 - bgp_local_pref;\n    } else {\n      if (!defined(krt_metric)) then { krt_metric = 1024; }\n      bgp_local_pref = 2147483647 - krt_metric;\n    }\n";

fn no_peers() -> super::peers::NodePeers {
    super::peers::NodePeers {
        mesh: Mesh::Disabled,
        global: Default::default(),
        node_specific: Default::default(),
    }
}

/// A mesh peer's import and export from v3.26 on.
const MESH_FILTERS: &str = "  import all;        # Import all routes, since we don't know what the upstream\n                     # topology is and therefore have to trust the ToR/RR.\n  export filter {\n    calico_export_to_bgp_peers();\n    reject;\n  };  # Only want to export routes for workloads.\n";

/// Any other peer's import and export filters from v3.26 on (no BGPFilter applied).
const PEER_FILTERS: &str = "  import filter {\n    accept; # Prior to introduction of BGP Filters we used \"import all\" so use default accept behaviour on import\n  };\n  export filter {\n    calico_export_to_bgp_peers();\n    reject; # Prior to introduction of BGP Filters anything not explicitly exported through calico_export_to_bgp_peers()\n            # was rejected so use default reject behaviour on export\n  };  # Only want to export routes for workloads.\n";

/// One `protocol bgp` block, statements in the template's order.
fn protocol(p: &Peer, me: &NodeInfo, my_ip: std::net::Ipv4Addr, version: CalicoVersion) -> String {
    let mesh = p.kind == super::peers::PeerType::Mesh;
    let mut out = format!("protocol bgp {} from bgp_template {{\n", p.protocol_name());
    if version.metric_local_pref() {
        return protocol_v32(p, me, my_ip, mesh);
    }
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
    out.push_str(&peer_address(p, my_ip));
    if version.per_peer_filters() {
        let filters = if mesh { MESH_FILTERS } else { PEER_FILTERS };
        let call = if version.tunnel_route_filter() {
            format!("calico_export_to_bgp_peers({});", mesh || p.asn == me.asn)
        } else {
            "calico_export_to_bgp_peers();".to_string()
        };
        out.push_str(&filters.replace("calico_export_to_bgp_peers();\n", &format!("{call}\n")));
    }
    if passive(p, my_ip) {
        let why = if mesh {
            "Mesh is unidirectional"
        } else {
            "Peering is unidirectional"
        };
        let _ = writeln!(out, "  passive on; # {why}, peer will connect to us.");
    }
    out.push_str(&peer_options(p, me));
    out
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

/// The statements that end every `protocol bgp` block, and its closing brace:
/// restart time, route reflection, next hop, local AS.
fn peer_options(p: &Peer, me: &NodeInfo) -> String {
    let mut out = String::new();
    if let Some(t) = p.restart_time {
        let _ = writeln!(out, "  graceful restart time {t};");
    }
    if let Some(cid) = me
        .rr_cluster_id
        .as_ref()
        .filter(|cid| p.asn == me.asn && &p.rr_cluster_id != *cid)
    {
        let _ = writeln!(out, "  rr client;\n  rr cluster id {cid};");
    }
    if p.keep_next_hop && p.asn != me.asn {
        out.push_str("  next hop keep;\n");
    }
    if let Some(n) = p.allow_local_as {
        let _ = writeln!(out, "  allow local as {n};");
    }
    out.push_str("}\n");
    out
}

/// One `protocol bgp` block as v3.32 writes it.
fn protocol_v32(p: &Peer, me: &NodeInfo, my_ip: std::net::Ipv4Addr, mesh: bool) -> String {
    let mut out = format!("protocol bgp {} from bgp_template {{\n", p.protocol_name());
    match (mesh, p.ttl_security) {
        (true, _) => {}
        (false, Some(hops)) => {
            let _ = writeln!(out, "  ttl security on;\n  multihop {hops};");
        }
        (false, None) => out.push_str("  ttl security off;\n  multihop;\n"),
    }
    out.push_str(&peer_address(p, my_ip));
    out.push_str(METRIC_IMPORT);
    out.push_str(METRIC_EXPORT);
    let _ = writeln!(
        out,
        "    calico_export_to_bgp_peers({});\n    reject;\n  }};  # Only want to export routes for workloads.",
        mesh || p.asn == me.asn
    );
    if passive(p, my_ip) {
        out.push_str("  passive on;\n");
    }
    out.push_str(&peer_options(p, me));
    out
}

fn aggr_cfg(resources: &Resources, node: &str, version: CalicoVersion) -> String {
    let mut blocks = node_blocks(resources, node);
    if version.skips_pending_blocks() {
        blocks.retain(|b| b.state != "pending");
    }
    let mut out =
        String::from("# Generated by confd\n\nprotocol static {\n   # IP blocks for this host.\n");
    // v3.23 writes no blackhole for /32 blocks (Calico's confd test data).
    for b in blocks.iter().filter(|b| b.cidr.prefix_len() < 32) {
        let _ = writeln!(out, "   route {} blackhole;", b.cidr);
    }
    out.push_str("}\n\n\n# Aggregation of routes on this host; export the block, nothing beneath it.\nfunction calico_aggr ()\n{\n");
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

/// v3.32's `bird_ipam.cfg`: pool filters from Go, one line each.
fn ipam_cfg_v32(
    pools: &[(String, &super::resources::IpPoolSpec)],
    services: &[String],
    me: &NodeInfo,
) -> String {
    let cidr = |key: &str| key.replacen('-', "/", 1);
    let mut out = String::from("# Generated by confd\n\nfunction reject_tunnel_routes () {\n  # Don't export tunnel routes to other nodes, Felix programs them.\n  # IPIP routes are handled by Bird, and it does not re-advertise them.\n  if (defined(ifname)) then {\n     if ((ifname ~ \"*.cali\") || (ifname ~ \"*.calico\")) then {\n        reject;\n     }\n  }\n}\n\nfunction reject_local_routes () {\n  # Don't export local routes learned via BPF as they should never leave the node.\n  if (defined(ifname)) then {\n     if (ifname ~ \"bpf*.cali\") then {\n        reject;\n     }\n  }\n}\n\nfunction calico_export_to_bgp_peers(bool internal_peer) {\n  # filter code terminates when it calls `accept;` or `reject;`,\n\n");
    for (key, _) in pools.iter().filter(|(_, p)| p.disable_bgp_export) {
        let _ = writeln!(
            out,
            "  if (net ~ {}) then {{ reject; }} # BGP export is disabled.",
            cidr(key)
        );
    }
    out.push_str("  if (internal_peer) then {\n    reject_tunnel_routes();\n  }\n  reject_local_routes();\n  apply_communities();\n  calico_aggr();\n");
    if !services.is_empty() {
        out.push_str("\n  # Export static routes.\n");
        for s in services {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ accept; }}");
        }
    }
    for (key, _) in pools.iter().filter(|(_, p)| !p.disable_bgp_export) {
        let _ = writeln!(out, "  if (net ~ {}) then {{ accept; }}", cidr(key));
    }
    out.push_str("}\n\nfilter calico_kernel_programming {\n");
    if !services.is_empty() {
        out.push_str("\n  # Don't program static routes into kernel.\n");
        for s in services {
            let _ = writeln!(out, "  if ( net ~ {s} ) then {{ reject; }}");
        }
    }
    out.push_str("  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {\n      krt_metric = 1024;\n      if (defined(bgp_local_pref)) then {\n          krt_metric = 2147483647 - bgp_local_pref;\n      }\n      if (krt_metric < 1024) then {\n          preference = 200;\n      }\n  }\n");
    if let Some(network) = me.ipv4 {
        for (key, p) in pools {
            let net = cidr(key);
            let tunnel = if p.ipip_mode == EncapMode::Never {
                ""
            } else {
                "tunl0"
            };
            let _ = if p.vxlan_mode != EncapMode::Never {
                writeln!(
                    out,
                    "  if (net ~ {net}) then {{ reject; }} # VXLAN routes are handled by Felix."
                )
            } else if p.ipip_mode == EncapMode::CrossSubnet {
                writeln!(
                    out,
                    "  if (net ~ {net}) then {{ if (defined(bgp_next_hop)&&(bgp_next_hop ~ {})) then krt_tunnel=\"\"; else krt_tunnel=\"{tunnel}\"; accept; }}",
                    network.trunc()
                )
            } else if p.ipip_mode == EncapMode::Always {
                writeln!(
                    out,
                    "  if (net ~ {net}) then {{ krt_tunnel=\"{tunnel}\"; accept; }}"
                )
            } else {
                writeln!(out, "  if (net ~ {net}) then {{ accept; }}")
            };
        }
    }
    out.push_str("  accept;\n}\n");
    out
}

fn ipam_cfg(cluster: &Cluster, me: &NodeInfo, version: CalicoVersion) -> String {
    let mut pools: Vec<(String, &super::resources::IpPoolSpec)> = cluster
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
        return ipam_cfg_v32(&pools, &service_cidrs(cluster), me);
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
    let services = service_cidrs(cluster);
    if !services.is_empty() {
        out.push_str("\n  # Export static routes.\n");
        for s in &services {
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
    if !services.is_empty() {
        out.push_str("  # Don't program static routes into kernel.\n");
        for s in &services {
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
