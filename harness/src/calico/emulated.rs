//! What the emulated flavor's node containers need: the Calico objects a cluster
//! starts with, pod placement, Calico-style pod wiring, and BIRD's protocol table.

use std::fmt::Write;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::ipam::{allocate, node_blocks, pod_address};
use super::peers::{resolve, Cluster};
use super::resources::{
    parse, CalicoError, EncapMode, IpPoolSpec, Metadata, NodeBgp, NodeSpec, Resource, Resources,
};
use crate::backend::docker::ICMP_UNLIMITED;
use crate::backend::Pod;
use crate::render::calico_resources;
use crate::topology::Topology;

/// The objects calico-node and the v3.23 manifest create by themselves: the default
/// IPv4 pool and one Node per Kubernetes node with its labels and autodetected
/// address, no AS number (a fresh install runs the full mesh).
pub fn installed(t: &Topology) -> Vec<Resource> {
    let c = &t.calico;
    let mode = |m: &str| match m {
        "Always" => EncapMode::Always,
        "CrossSubnet" => EncapMode::CrossSubnet,
        _ => EncapMode::Never,
    };
    let mut out = vec![Resource::IpPool(
        "default-ipv4-ippool".into(),
        IpPoolSpec {
            cidr: IpNet::V4(c.pod_cidr),
            block_size: Some(c.block_size),
            ipip_mode: mode(&c.ipip_mode),
            vxlan_mode: mode(&c.vxlan_mode),
            nat_outgoing: true,
            ..IpPoolSpec::default()
        },
    )];
    for (rack, node) in t.nodes() {
        let mut labels = t.node_labels(rack, node);
        labels.insert("kubernetes.io/hostname".into(), node.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        out.push(Resource::Node(
            Metadata {
                name: node.name.clone(),
                labels,
            },
            NodeSpec {
                bgp: Some(NodeBgp {
                    ipv4_address: Some(format!("{}/{}", node.address, rack.subnet.prefix_len())),
                    ..NodeBgp::default()
                }),
                ..NodeSpec::default()
            },
        ));
    }
    out
}

/// The objects the topology applies on top (BGPConfiguration, Nodes with AS numbers,
/// BGPPeers): the same YAML `calico-lab render` writes for calicoctl.
pub fn configured(t: &Topology) -> Result<Vec<Resource>, CalicoError> {
    parse(&calico_resources(t), "topology's Calico resources")
}

/// Which Calico objects the nodes start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CalicoState {
    /// The topology's own: mesh as it says, Node AS numbers, BGPPeers to the leafs.
    #[default]
    Configured,
    /// As right after installing Calico: the default pool and bare Nodes, so the full
    /// mesh; the seed's later steps are then applied with `Lab::apply`.
    Installed,
}

impl CalicoState {
    pub fn as_str(self) -> &'static str {
        match self {
            CalicoState::Configured => "configured",
            CalicoState::Installed => "installed",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "configured" => Some(CalicoState::Configured),
            "installed" => Some(CalicoState::Installed),
            _ => None,
        }
    }
}

/// The cluster's Calico objects at start, with a block allocated to every node in
/// topology order.
pub fn starting_resources(t: &Topology, state: CalicoState) -> Result<Resources, CalicoError> {
    let mut objects = installed(t);
    if state == CalicoState::Configured {
        objects.extend(configured(t)?);
    }
    let mut resources = Resources::default();
    resources.apply(objects)?;
    let nodes: Vec<&str> = t.nodes().map(|(_, n)| n.name.as_str()).collect();
    let blocks = allocate(&resources, &nodes)?;
    resources.apply(blocks)?;
    Ok(resources)
}

/// Every pod of the topology (a network namespace in its node's container, wired as
/// Calico's CNI does) with its address from its node's first block, in
/// topology order. A node without a block gets no pods.
pub fn pods(t: &Topology, resources: &Resources) -> Vec<Pod> {
    let mut out = Vec::new();
    for (_, node) in t.nodes() {
        let Some(block) = node_blocks(resources, &node.name).into_iter().next() else {
            continue;
        };
        for (k, name) in node.pod_names().into_iter().enumerate() {
            if let Some(ip) = pod_address(block.cidr, k) {
                out.push(Pod {
                    name,
                    node: node.name.clone(),
                    ip,
                });
            }
        }
    }
    out
}

/// Calico names the host side after a hash of the workload: `cali` + 11 hex digits.
pub fn veth_name(pod: &str) -> String {
    let digest = Sha256::digest(format!("default.{pod}").as_bytes());
    format!("cali{}", &hex::encode(digest)[..11])
}

/// Shell commands that create `pods` in their node, as the CNI plugin and Felix wire
/// them: a /32 on the pod's eth0, the 169.254.1.1 gateway the host answers by proxy
/// ARP, and a /32 route to the pod on the host. One `ip` for the host's side and
/// one per pod, sysctls written by the shell: a process each costs more than the
/// change it makes, and a big lab wires thousands of pods.
pub fn pod_script(pods: &[&Pod], metric: Option<u32>) -> String {
    let metric = metric.map(|m| format!(" metric {m}")).unwrap_or_default();
    let mut s = String::from("set -e\nip -batch - <<'EOF'\n");
    for p in pods {
        let (n, v, ip) = (&p.name, veth_name(&p.name), p.ip);
        let _ = write!(
            s,
            "netns add {n}\n\
             link add {v} type veth peer name eth0 netns {n}\n\
             link set {v} address ee:ee:ee:ee:ee:ee up\n\
             route add {ip}/32 dev {v} scope link{metric}\n"
        );
    }
    s.push_str("EOF\n");
    for p in pods {
        let (n, v, ip) = (&p.name, veth_name(&p.name), p.ip);
        for (key, value) in [
            (format!("net.ipv4.conf.{v}.proxy_arp"), "1"),
            (format!("net.ipv4.neigh.{v}.proxy_delay"), "0"),
            (format!("net.ipv4.conf.{v}.forwarding"), "1"),
            (format!("net.ipv4.conf.{v}.rp_filter"), "0"),
        ] {
            let _ = writeln!(s, "echo {value} >{}", sysctl_path(&key));
        }
        // /proc/sys/net is the namespace of the process that opens it.
        let icmp: Vec<String> = ICMP_UNLIMITED
            .iter()
            .map(|(key, value)| format!("echo {value} >{}", sysctl_path(key)))
            .collect();
        let _ = write!(
            s,
            "nsenter --net=/run/netns/{n} sh -c 'set -e; {}; exec ip -batch -' <<'EOF'\n\
             link set lo up\n\
             link set eth0 up\n\
             addr add {ip}/32 dev eth0\n\
             route add 169.254.1.1 dev eth0 scope link\n\
             route add default via 169.254.1.1 dev eth0\n\
             EOF\n",
            icmp.join("; ")
        );
    }
    s
}

/// Where `key` (`net.ipv4.conf.x.y`) is under /proc/sys.
fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// The BGP protocols `node` must run, by BIRD name: what its render writes.
pub fn expected_protocols(
    resources: &Resources,
    node: &str,
    version: super::CalicoVersion,
) -> Vec<String> {
    let cluster = Cluster::new(resources);
    let Some(peers) = resolve(&cluster, node, version) else {
        return Vec::new();
    };
    peers
        .running()
        .into_iter()
        .map(|p| p.protocol_name())
        .collect()
}

/// Shell commands that give each pod's route on its node the metric Felix of another
/// version gives it (what a calico-node upgrade reprograms).
pub fn pod_route_script(pods: &[&Pod], metric: Option<u32>) -> String {
    let metric = metric.map(|m| format!(" metric {m}")).unwrap_or_default();
    pods.iter()
        .map(|p| {
            let v = veth_name(&p.name);
            format!(
                "ip route flush {ip}/32 dev {v}; ip route add {ip}/32 dev {v} scope link{metric}\n",
                ip = p.ip
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_are_stable() {
        let v = veth_name("calico-bgp-rr-worker-pod1");
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("cali"));
        assert_eq!(v, veth_name("calico-bgp-rr-worker-pod1"));
        assert_ne!(v, veth_name("calico-bgp-rr-worker-pod2"));
    }
}
