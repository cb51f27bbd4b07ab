//! The topology file's types, exactly as written in YAML.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A leaf/spine fabric with a Kubernetes cluster running Calico: the one model
/// from which every config, wiring step and expectation is derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topology {
    /// Lab name: the kind cluster name and the default prefix of container names.
    pub name: String,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    pub calico: Calico,
    pub spines: Vec<Router>,
    pub leafs: Vec<Router>,
    pub racks: Vec<Rack>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// What runs the routers on the kind flavor (the emulated flavor runs FRR).
    #[serde(default)]
    pub routers: RouterRuntime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kubernetes {
    /// kind node image (kind flavor only).
    #[serde(default = "default_node_image")]
    pub node_image: String,
    /// The test pods' image (kind flavor only): it needs iputils `ping` and
    /// `traceroute`, as the seed's does.
    #[serde(default = "default_pod_image")]
    pub pod_image: String,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self {
            node_image: default_node_image(),
            pod_image: default_pod_image(),
        }
    }
}

fn default_node_image() -> String {
    "kindest/node:v1.27.3".to_string()
}

fn default_pod_image() -> String {
    "burlyluo/nettool:latest".to_string()
}

/// The router implementation and image on the kind flavor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterRuntime {
    /// `vyos` (the seed's) or `frr`; `--routers` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RouterKind>,
    /// The image; by default the seed's VyOS image or the public FRR image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// What runs a router: both answer `vtysh ... json`, so probes stay shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    #[default]
    Frr,
    Vyos,
}

impl std::str::FromStr for RouterKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "frr" => Ok(RouterKind::Frr),
            "vyos" => Ok(RouterKind::Vyos),
            other => Err(format!(
                "unknown router kind '{other}' (expected frr or vyos)"
            )),
        }
    }
}

impl RouterKind {
    /// The image used when the topology names none.
    pub fn default_image(self) -> &'static str {
        match self {
            RouterKind::Vyos => "burlyluo/vyos:1.4.9",
            RouterKind::Frr => "quay.io/frrouting/frr:10.2.1",
        }
    }
}

/// Calico's settings for the cluster, named as Calico's resources name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Calico {
    /// Calico release, e.g. `v3.23.2` (the kind flavor applies its manifest).
    pub version: String,
    /// Where the kind flavor downloads the Calico manifest; by default the release's
    /// own (see `backend::kind::manifest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_url: Option<String>,
    /// The manifest's expected sha256 (hex): a download that differs is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// The IPv4 pool; also kind's `podSubnet`.
    pub pod_cidr: Ipv4Net,
    #[serde(default = "default_block_size")]
    pub block_size: u8,
    #[serde(default = "never")]
    pub ipip_mode: String,
    #[serde(default = "never")]
    pub vxlan_mode: String,
    /// Calico's default is a full mesh; route-reflector labs turn it off.
    #[serde(default = "yes")]
    pub node_to_node_mesh_enabled: bool,
    /// BGPConfiguration `asNumber`: nodes whose rack leaf gives none fall back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
    #[serde(default = "info")]
    pub log_severity_screen: String,
    #[serde(default, rename = "serviceClusterIPs")]
    pub service_cluster_ips: Vec<Ipv4Net>,
    #[serde(default, rename = "serviceExternalIPs")]
    pub service_external_ips: Vec<Ipv4Net>,
    #[serde(default)]
    pub bgp_peers: Vec<BgpPeer>,
}

fn default_block_size() -> u8 {
    26
}
fn never() -> String {
    "Never".to_string()
}
fn yes() -> bool {
    true
}
fn info() -> String {
    "Info".to_string()
}

/// A Calico BGPPeer: which nodes peer with which router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpPeer {
    pub name: String,
    #[serde(rename = "peerIP")]
    pub peer_ip: Ipv4Addr,
    pub as_number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A spine or leaf switch (FRR on the emulated flavor, VyOS on kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Router {
    pub name: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
}

/// One L2 segment behind a leaf: the leaf's gateway address and the Kubernetes
/// nodes on a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rack {
    pub name: String,
    /// The leaf (ToR) that routes this rack and reflects its nodes' routes.
    pub leaf: String,
    /// The leaf's interface on the rack bridge.
    pub leaf_interface: String,
    /// The leaf's address on the rack segment: the nodes' default gateway.
    pub gateway: Ipv4Addr,
    pub subnet: Ipv4Net,
    /// The Linux bridge that carries the segment.
    pub bridge: String,
    /// Kubernetes labels every node of the rack carries (BGPPeer selectors use them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub nodes: Vec<Node>,
}

/// A Kubernetes node (a kind node, or an emulated calico-node container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    pub name: String,
    pub role: NodeRole,
    pub address: Ipv4Addr,
    /// The node's interface on the rack bridge.
    #[serde(default = "default_node_interface")]
    pub interface: String,
    /// Labels added to the rack's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Pods placed on the node; absent: two, named after the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<String>>,
}

impl Node {
    /// The node's pods: as listed, or `<node>-pod1` and `<node>-pod2`.
    pub fn pod_names(&self) -> Vec<String> {
        self.pods
            .clone()
            .unwrap_or_else(|| (1..=2).map(|k| format!("{}-pod{k}", self.name)).collect())
    }
}

fn default_node_interface() -> String {
    "net0".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    ControlPlane,
    Worker,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::ControlPlane => "control-plane",
            NodeRole::Worker => "worker",
        }
    }
}

/// A point-to-point link between two routers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Link {
    pub endpoints: [Endpoint; 2],
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    pub device: String,
    pub interface: String,
    pub address: Ipv4Net,
}
