//! Checks that a parsed topology holds together, before anything is built from it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Problem, Topology};
use crate::calico::selector::Selector;

/// Linux's limit on interface names (IFNAMSIZ - 1).
pub const MAX_INTERFACE_NAME: usize = 15;

/// Names the harness itself uses for containers of a lab.
pub const RESERVED_DEVICE_NAMES: &[&str] = &["fabric"];

/// Interface names a namespace has already (`lo`), the kernel refuses (`.`, `..`) or
/// that `/proc/sys/net/ipv4/conf/` uses for itself (`all`, `default`).
pub const RESERVED_INTERFACE_NAMES: &[&str] = &["lo", ".", "..", "all", "default"];

/// AS numbers BGP reserves: 0 (RFC 7607), AS_TRANS 23456 (RFC 6793), 65535 and
/// 4294967295 (RFC 7300). A session with one never comes up.
pub const RESERVED_ASNS: &[u32] = &[0, 23456, 65535, 4_294_967_295];

/// How a reserved AS number is explained.
fn reserved_asn(asn: u32) -> Option<String> {
    RESERVED_ASNS.contains(&asn).then(|| {
        let why = match asn {
            0 => "RFC 7607",
            23456 => "AS_TRANS, RFC 6793",
            _ => "the last AS of its range, RFC 7300",
        };
        format!("AS number {asn} is reserved ({why}); BGP refuses sessions with it")
    })
}

/// Every problem of the topology, in file order; empty when it is valid.
pub fn problems(t: &Topology) -> Vec<Problem> {
    let mut c = Checker::default();
    c.names(t);
    c.racks(t);
    c.links(t);
    c.unique_addresses(t);
    c.unique_router_ids(t);
    c.disjoint_subnets(t);
    c.reachability(t);
    c.calico(t);
    c.problems
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn interface_name(&mut self, path: String, name: &str) {
        if RESERVED_INTERFACE_NAMES.contains(&name) {
            self.report(
                path,
                format!("interface name '{name}' is reserved (lo, ., .., all, default are the kernel's)"),
            );
        } else if name.is_empty() || name.len() > MAX_INTERFACE_NAME {
            self.report(
                path,
                format!(
                    "interface name '{name}' has {} characters; Linux allows 1 to {MAX_INTERFACE_NAME}",
                    name.len()
                ),
            );
        } else if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            self.report(
                path,
                format!("interface name '{name}' may only hold letters, digits, '-', '_' and '.'"),
            );
        }
    }

    fn names(&mut self, t: &Topology) {
        if !is_dns_label(&t.name) {
            self.report(
                "name",
                format!("lab name '{}' must be lower-case letters, digits and '-' (at most 40), starting with a letter or digit", t.name),
            );
        }
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        let routers = t
            .spines
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("spines[{i}].name"), &r.name))
            .chain(
                t.leafs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("leafs[{i}].name"), &r.name)),
            );
        let nodes = t.racks.iter().enumerate().flat_map(|(i, rack)| {
            rack.nodes
                .iter()
                .enumerate()
                .map(move |(j, n)| (format!("racks[{i}].nodes[{j}].name"), &n.name))
        });
        for (path, name) in routers.chain(nodes) {
            if !is_dns_label(name) {
                self.report(&path, format!("device name '{name}' must be lower-case letters, digits and '-' (at most 40), starting with a letter or digit"));
            } else if RESERVED_DEVICE_NAMES.contains(&name.as_str()) {
                self.report(
                    &path,
                    format!("device name '{name}' is reserved for the harness"),
                );
            }
            if let Some(first) = seen.get(name.as_str()) {
                self.report(
                    &path,
                    format!("device name '{name}' is already used at {first}"),
                );
            } else {
                seen.insert(name, path);
            }
        }
        // Containers are named `<lab>-<device>`, nodes without the topology's name
        // as prefix (as kind names them): two members must not get one name.
        let prefix = format!("{}-", t.name);
        let mut containers: BTreeMap<String, String> = BTreeMap::from([(
            FABRIC_CONTAINER.to_string(),
            "the harness's fabric container".to_string(),
        )]);
        let members = t
            .routers()
            .map(|(_, r)| (r.name.as_str(), r.name.as_str()))
            .chain(t.nodes().map(|(_, n)| {
                (
                    n.name.as_str(),
                    n.name.strip_prefix(&prefix).unwrap_or(&n.name),
                )
            }));
        for (name, suffix) in members {
            if suffix == FABRIC_CONTAINER || suffix.starts_with("wiring-") {
                if name != suffix {
                    self.report(
                        device_path(t, name),
                        format!("node '{name}' would be named <lab>-{suffix}, a name the harness uses for itself"),
                    );
                }
                continue;
            }
            match containers.get(suffix) {
                Some(other) if other != name => self.report(
                    device_path(t, name),
                    format!("'{name}' and '{other}' would both get the container name <lab>-{suffix} (nodes drop the prefix '{prefix}')"),
                ),
                Some(_) => {}
                None => {
                    containers.insert(suffix.to_string(), name.to_string());
                }
            }
        }
        for (i, r) in t.routers().map(|(_, r)| r).enumerate() {
            if let Some(why) = reserved_asn(r.asn) {
                self.report(router_path(t, i, "asn"), why);
            }
        }
    }

    /// Every rack's leaf reaches every other rack's leaf over router links, and no
    /// two of those leafs share an AS (each would drop the other's routes as an
    /// AS-path loop).
    fn reachability(&mut self, t: &Topology) {
        let mut leafs: Vec<&str> = t.racks.iter().map(|r| r.leaf.as_str()).collect();
        leafs.sort();
        leafs.dedup();
        let Some(first) = leafs.first() else { return };
        let mut reached = BTreeSet::from([first.to_string()]);
        let mut queue = vec![first.to_string()];
        while let Some(router) = queue.pop() {
            for link in &t.links {
                let [a, b] = &link.endpoints;
                for (from, to) in [(a, b), (b, a)] {
                    if from.device == router && reached.insert(to.device.clone()) {
                        queue.push(to.device.clone());
                    }
                }
            }
        }
        for leaf in leafs.iter().filter(|l| !reached.contains(**l)) {
            self.report(
                device_path(t, leaf),
                format!("{leaf} cannot reach {first} over any link: their racks cannot reach each other (add a spine and links)"),
            );
        }
        let mut by_asn: BTreeMap<u32, &str> = BTreeMap::new();
        for leaf in &leafs {
            let Some((_, router)) = t.router(leaf) else {
                continue;
            };
            match by_asn.get(&router.asn) {
                Some(other) => self.report(
                    format!("{}.asn", device_path(t, leaf).trim_end_matches(".name")),
                    format!("AS {} is also {other}'s: each leaf would drop the other's routes as an AS-path loop; give every leaf its own AS", router.asn),
                ),
                None => {
                    by_asn.insert(router.asn, leaf);
                }
            }
        }
    }

    fn racks(&mut self, t: &Topology) {
        let mut rack_names = BTreeSet::new();
        let mut bridges = BTreeSet::new();
        for (i, rack) in t.racks.iter().enumerate() {
            let at = format!("racks[{i}]");
            if !rack_names.insert(&rack.name) {
                self.report(
                    format!("{at}.name"),
                    format!("rack name '{}' is used twice", rack.name),
                );
            }
            match t.router(&rack.leaf) {
                None => self.report(
                    format!("{at}.leaf"),
                    format!("'{}' is not a device of this topology", rack.leaf),
                ),
                Some((super::RouterRole::Spine, _)) => self.report(
                    format!("{at}.leaf"),
                    format!("'{}' is a spine; a rack hangs off a leaf", rack.leaf),
                ),
                Some(_) => {}
            }
            self.interface_name(format!("{at}.leafInterface"), &rack.leaf_interface);
            self.interface_name(format!("{at}.bridge"), &rack.bridge);
            if !bridges.insert(&rack.bridge) {
                self.report(
                    format!("{at}.bridge"),
                    format!("bridge '{}' is used by another rack", rack.bridge),
                );
            }
            let clashes = t.racks.iter().any(|other| {
                (0..=other.nodes.len()).any(|k| bridge_port_name(&other.bridge, k) == rack.bridge)
            });
            if clashes {
                self.report(
                    format!("{at}.bridge"),
                    format!(
                        "bridge '{}' has the name of another rack's bridge port",
                        rack.bridge
                    ),
                );
            }
            // The bridge's ports are named after it: the longest must fit too.
            let last_port = bridge_port_name(&rack.bridge, rack.nodes.len());
            if rack.bridge.len() <= MAX_INTERFACE_NAME && last_port.len() > MAX_INTERFACE_NAME {
                self.report(format!("{at}.bridge"), format!("bridge '{}' gives port name '{last_port}' ({} characters); Linux allows {MAX_INTERFACE_NAME}", rack.bridge, last_port.len()));
            }
            if !host_address_in(rack.gateway, rack.subnet) {
                self.report(
                    format!("{at}.gateway"),
                    not_a_host(rack.gateway, rack.subnet),
                );
            }
            if rack.subnet != rack.subnet.trunc() {
                self.report(
                    format!("{at}.subnet"),
                    format!(
                        "{} has host bits set; did you mean {}?",
                        rack.subnet,
                        rack.subnet.trunc()
                    ),
                );
            }
            if rack.nodes.is_empty() {
                self.report(format!("{at}.nodes"), "a rack needs at least one node");
            }
            for (j, node) in rack.nodes.iter().enumerate() {
                let at = format!("{at}.nodes[{j}]");
                if !host_address_in(node.address, rack.subnet) {
                    self.report(
                        format!("{at}.address"),
                        not_a_host(node.address, rack.subnet),
                    );
                }
                self.interface_name(format!("{at}.interface"), &node.interface);
            }
        }
        if !t
            .nodes()
            .any(|(_, n)| n.role == super::NodeRole::ControlPlane)
        {
            self.report("racks", "the cluster needs a node with role control-plane");
        }
    }

    fn links(&mut self, t: &Topology) {
        // (device, interface) -> where it was first named
        let mut interfaces: BTreeMap<(String, String), String> = BTreeMap::new();
        for (i, r) in t.racks.iter().enumerate() {
            let at = format!("racks[{i}].leafInterface");
            let key = (r.leaf.clone(), r.leaf_interface.clone());
            if let Some(first) = interfaces.get(&key) {
                self.report(
                    &at,
                    format!("{}:{} is already used at {first}", r.leaf, r.leaf_interface),
                );
            } else {
                interfaces.insert(key, at);
            }
        }
        for (i, link) in t.links.iter().enumerate() {
            let [a, b] = &link.endpoints;
            for (k, end) in link.endpoints.iter().enumerate() {
                let at = format!("links[{i}].endpoints[{k}]");
                if t.router(&end.device).is_none() {
                    let hint = if t.nodes().any(|(_, n)| n.name == end.device) {
                        " (nodes attach through their rack, not through links)"
                    } else {
                        ""
                    };
                    self.report(
                        format!("{at}.device"),
                        format!("'{}' is not a router of this topology{hint}", end.device),
                    );
                }
                self.interface_name(format!("{at}.interface"), &end.interface);
                if let Some(first) = interfaces.insert(
                    (end.device.clone(), end.interface.clone()),
                    format!("{at}.interface"),
                ) {
                    self.report(
                        format!("{at}.interface"),
                        format!(
                            "{}:{} is already used at {first}",
                            end.device, end.interface
                        ),
                    );
                }
                if !host_address_in(end.address.addr(), end.address) {
                    self.report(
                        format!("{at}.address"),
                        format!("{} is not a host address of its subnet", end.address),
                    );
                }
            }
            if a.device == b.device {
                self.report(
                    format!("links[{i}].endpoints"),
                    format!("both ends are on '{}'", a.device),
                );
            }
            if a.address.trunc() != b.address.trunc() {
                self.report(
                    format!("links[{i}].endpoints[1].address"),
                    format!("{} and {} are not in one subnet", a.address, b.address),
                );
            }
            if !(68..=65535).contains(&link.mtu) {
                self.report(
                    format!("links[{i}].mtu"),
                    format!("MTU {} is outside 68..65535", link.mtu),
                );
            }
        }
    }

    fn unique_addresses(&mut self, t: &Topology) {
        let mut seen: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        for (path, addr) in addresses(t) {
            if let Some(first) = seen.get(&addr) {
                self.report(&path, format!("address {addr} is already used at {first}"));
            } else {
                seen.insert(addr, path);
            }
        }
    }

    fn unique_router_ids(&mut self, t: &Topology) {
        let mut seen: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let routers = t
            .routers()
            .enumerate()
            .map(|(i, (_, r))| (router_path(t, i, "routerId"), &r.name, r.router_id));
        // calico-node uses the node address as BIRD's router id.
        let nodes = t.racks.iter().enumerate().flat_map(|(i, rack)| {
            rack.nodes
                .iter()
                .enumerate()
                .map(move |(j, n)| (format!("racks[{i}].nodes[{j}].address"), &n.name, n.address))
        });
        let mut owner: BTreeMap<Ipv4Addr, &String> = BTreeMap::new();
        for (path, device, id) in routers.chain(nodes) {
            match seen.get(&id) {
                Some(first) if owner.get(&id) != Some(&device) => {
                    self.report(
                        &path,
                        format!(
                            "router id {id} is also the router id of {} (at {first})",
                            owner[&id]
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert(id, path);
                    owner.insert(id, device);
                }
            }
        }
    }

    fn disjoint_subnets(&mut self, t: &Topology) {
        let mut subnets: Vec<(String, Ipv4Net)> = Vec::new();
        subnets.extend(
            t.racks
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("racks[{i}].subnet"), r.subnet.trunc())),
        );
        subnets.extend(t.links.iter().enumerate().map(|(i, l)| {
            (
                format!("links[{i}].endpoints[0].address"),
                l.endpoints[0].address.trunc(),
            )
        }));
        subnets.push(("calico.podCidr".into(), t.calico.pod_cidr.trunc()));
        subnets.extend(
            t.calico
                .service_cluster_ips
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("calico.serviceClusterIPs[{i}]"), n.trunc())),
        );
        subnets.extend(
            t.calico
                .service_external_ips
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("calico.serviceExternalIPs[{i}]"), n.trunc())),
        );
        for (k, (path, net)) in subnets.iter().enumerate() {
            if let Some((first, other)) = subnets[..k]
                .iter()
                .find(|(_, o)| o.contains(net) || net.contains(o))
            {
                self.report(path, format!("subnet {net} overlaps {other} at {first}"));
            }
        }
    }

    fn calico(&mut self, t: &Topology) {
        let c = &t.calico;
        if let Err(e) = c.version.parse::<crate::calico::CalicoVersion>() {
            self.report("calico.version", e.to_string());
        }
        if !(c.pod_cidr.prefix_len()..=32).contains(&c.block_size) || c.block_size < 20 {
            self.report(
                "calico.blockSize",
                format!(
                    "block size /{} must be between /20 and /32 and no larger than the pool {}",
                    c.block_size, c.pod_cidr
                ),
            );
        }
        for (field, mode) in [("ipipMode", &c.ipip_mode), ("vxlanMode", &c.vxlan_mode)] {
            if !["Never", "Always", "CrossSubnet"].contains(&mode.as_str()) {
                self.report(
                    format!("calico.{field}"),
                    format!("'{mode}' is not one of Never, Always, CrossSubnet"),
                );
            }
        }
        if let Some(why) = c.as_number.and_then(reserved_asn) {
            self.report("calico.asNumber", why);
        }
        let nodes = t.nodes().count();
        let blocks = 1u64
            << (u32::from(c.block_size.min(32))
                .saturating_sub(u32::from(c.pod_cidr.prefix_len()))
                .min(63));
        if c.block_size >= c.pod_cidr.prefix_len() && (nodes as u64) > blocks {
            self.report(
                "calico.podCidr",
                format!(
                    "{} holds {blocks} block(s) of /{}, too few for {nodes} nodes (each node gets one)",
                    c.pod_cidr, c.block_size
                ),
            );
        }
        let router_addresses: BTreeMap<Ipv4Addr, &str> = t
            .routers()
            .flat_map(|(_, r)| {
                t.interfaces(&r.name)
                    .into_iter()
                    .map(move |i| (i.address.addr(), r.name.as_str()))
            })
            .collect();
        let mut names = BTreeSet::new();
        for (i, peer) in c.bgp_peers.iter().enumerate() {
            let at = format!("calico.bgpPeers[{i}]");
            if !names.insert(&peer.name) {
                self.report(
                    format!("{at}.name"),
                    format!("BGPPeer name '{}' is used twice", peer.name),
                );
            }
            match router_addresses
                .get(&peer.peer_ip)
                .and_then(|name| t.router(name))
            {
                None => self.report(
                    format!("{at}.peerIP"),
                    format!("{} is not an address of any router", peer.peer_ip),
                ),
                Some((_, router)) if router.asn != peer.as_number => self.report(
                    format!("{at}.asNumber"),
                    format!(
                        "AS {} does not match {}'s AS {} (peer {})",
                        peer.as_number, router.name, router.asn, peer.peer_ip
                    ),
                ),
                Some((_, router)) if t.rack_of_leaf(&router.name).next().is_none() => self.report(
                    format!("{at}.peerIP"),
                    format!(
                        "{} is {}, which has no rack and so no sessions to nodes",
                        peer.peer_ip, router.name
                    ),
                ),
                Some(_) => {}
            }
            if let Some(node) = &peer.node {
                let peer_router = router_addresses.get(&peer.peer_ip);
                match t.nodes().find(|(_, n)| &n.name == node) {
                    None => self.report(
                        format!("{at}.node"),
                        format!("'{node}' is not a node of this topology"),
                    ),
                    Some((rack, _)) if peer_router.is_some_and(|r| *r != rack.leaf) => self.report(
                        format!("{at}.node"),
                        format!(
                            "'{node}' is in rack {}, whose leaf {} is not {}",
                            rack.name, rack.leaf, peer.peer_ip
                        ),
                    ),
                    Some(_) => {}
                }
            }
            if let Some(text) = &peer.node_selector {
                // A peer that is no leaf of a rack is reported above.
                let leaf = router_addresses
                    .get(&peer.peer_ip)
                    .copied()
                    .filter(|r| t.rack_of_leaf(r).next().is_some());
                self.node_selector(t, &at, text, leaf, peer.peer_ip);
            }
            if peer.node.is_some() && peer.node_selector.is_some() {
                self.report(at, "set node or nodeSelector, not both");
            }
        }
        self.pods(t);
    }

    /// A selector must parse, and every node it selects must sit in a rack of the
    /// peer's leaf: the leaf has sessions configured for its racks' nodes only.
    fn node_selector(
        &mut self,
        t: &Topology,
        at: &str,
        text: &str,
        leaf: Option<&str>,
        peer_ip: Ipv4Addr,
    ) {
        let selector = match Selector::parse(text) {
            Ok(s) => s,
            Err(e) => return self.report(format!("{at}.nodeSelector"), e.to_string()),
        };
        let selected: Vec<_> = t
            .nodes()
            .filter(|(rack, node)| selector.matches(&t.node_labels(rack, node)))
            .collect();
        if selected.is_empty() {
            self.report(
                format!("{at}.nodeSelector"),
                format!("'{text}' selects no node"),
            );
        }
        if let Some(leaf) = leaf {
            let strays: Vec<String> = selected
                .iter()
                .filter(|(rack, _)| rack.leaf != leaf)
                .map(|(rack, node)| {
                    format!("{} in rack {} (leaf {})", node.name, rack.name, rack.leaf)
                })
                .collect();
            if !strays.is_empty() {
                self.report(
                    format!("{at}.nodeSelector"),
                    format!(
                        "'{text}' selects {}; {leaf} has sessions for its own racks' nodes only",
                        strays.join(", ")
                    ),
                );
                return;
            }
            // Sessions are direct: the peer must sit on each selected node's rack subnet
            // (a leaf serving several racks has one address per rack).
            let off_subnet: Vec<String> = selected
                .iter()
                .filter(|(rack, _)| !rack.subnet.contains(&peer_ip))
                .map(|(rack, node)| {
                    format!("{} in rack {} ({})", node.name, rack.name, rack.subnet)
                })
                .collect();
            if !off_subnet.is_empty() {
                self.report(
                    format!("{at}.nodeSelector"),
                    format!(
                        "'{text}' selects {}, whose subnet does not hold {peer_ip}; peer with the leaf's address on that rack",
                        off_subnet.join(", ")
                    ),
                );
            }
        }
    }

    fn pods(&mut self, t: &Topology) {
        let capacity = 1usize << (32 - u32::from(t.calico.block_size.min(32)));
        let mut seen = BTreeSet::new();
        // A node named twice is reported already; its pods would only repeat that.
        let mut names = BTreeSet::new();
        let twice: BTreeSet<&str> = t
            .nodes()
            .filter(|(_, n)| !names.insert(n.name.as_str()))
            .map(|(_, n)| n.name.as_str())
            .collect();
        for (i, rack) in t.racks.iter().enumerate() {
            for (j, node) in rack.nodes.iter().enumerate() {
                let at = format!("racks[{i}].nodes[{j}].pods");
                let pods = node.pod_names();
                if pods.len() > capacity {
                    self.report(
                        at.clone(),
                        format!(
                            "{} pods do not fit a /{} block",
                            pods.len(),
                            t.calico.block_size
                        ),
                    );
                }
                for (k, pod) in pods.iter().enumerate() {
                    if !is_pod_name(pod) {
                        self.report(
                            format!("{at}[{k}]"),
                            format!("pod name '{pod}' must be lower-case letters, digits and '-' (at most 63)"),
                        );
                    } else if !seen.insert(pod.clone()) && !twice.contains(node.name.as_str()) {
                        self.report(
                            format!("{at}[{k}]"),
                            format!("pod name '{pod}' is used twice"),
                        );
                    }
                }
            }
        }
    }
}

/// Every interface address in the topology with its path.
fn addresses(t: &Topology) -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    for (i, link) in t.links.iter().enumerate() {
        for (k, end) in link.endpoints.iter().enumerate() {
            out.push((
                format!("links[{i}].endpoints[{k}].address"),
                end.address.addr(),
            ));
        }
    }
    for (i, rack) in t.racks.iter().enumerate() {
        out.push((format!("racks[{i}].gateway"), rack.gateway));
        for (j, node) in rack.nodes.iter().enumerate() {
            out.push((format!("racks[{i}].nodes[{j}].address"), node.address));
        }
    }
    out
}

/// The path of field `field` of the `i`-th router in `Topology::routers` order.
fn router_path(t: &Topology, i: usize, field: &str) -> String {
    if i < t.spines.len() {
        format!("spines[{i}].{field}")
    } else {
        format!("leafs[{}].{field}", i - t.spines.len())
    }
}

/// Why `addr` is no host address of rack subnet `net`.
fn not_a_host(addr: Ipv4Addr, net: Ipv4Net) -> String {
    let net = net.trunc();
    if !net.contains(&addr) {
        format!("{addr} is outside rack subnet {net}")
    } else if addr == net.broadcast() {
        format!("{addr} is the broadcast address of rack subnet {net}")
    } else {
        format!("{addr} is the network address of rack subnet {net}")
    }
}

/// Where a device is named in the file (`spines[0].name`, `racks[1].nodes[0].name`).
fn device_path(t: &Topology, name: &str) -> String {
    if let Some(i) = t.spines.iter().position(|r| r.name == name) {
        return format!("spines[{i}].name");
    }
    if let Some(i) = t.leafs.iter().position(|r| r.name == name) {
        return format!("leafs[{i}].name");
    }
    for (i, rack) in t.racks.iter().enumerate() {
        if let Some(j) = rack.nodes.iter().position(|n| n.name == name) {
            return format!("racks[{i}].nodes[{j}].name");
        }
    }
    name.to_string()
}

/// The container-name suffix of the lab's fabric member.
const FABRIC_CONTAINER: &str = "fabric";

/// A usable host address of `net` (not its network or broadcast address).
fn host_address_in(addr: Ipv4Addr, net: Ipv4Net) -> bool {
    let net = net.trunc();
    net.contains(&addr)
        && (net.prefix_len() >= 31 || (addr != net.network() && addr != net.broadcast()))
}

/// A Kubernetes node name, hostname and container-name part.
/// A Kubernetes pod name; the harness also names the pod's network namespace so.
fn is_pod_name(name: &str) -> bool {
    is_label(name, 63)
}

pub fn is_dns_label(name: &str) -> bool {
    is_label(name, 40)
}

fn is_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The name of the bridge port that leads to the `index`-th member of a rack segment
/// (nodes first, the leaf last), as containerlab names them.
pub fn bridge_port_name(bridge: &str, index: usize) -> String {
    format!("{bridge}-net{index}")
}
