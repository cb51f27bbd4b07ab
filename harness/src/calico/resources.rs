//! Calico resources as `calicoctl apply` takes them, and the set a cluster holds.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use super::selector::{Selector, SelectorError};

/// Why a set of Calico resources could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CalicoError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: document {document}: {message}")]
    Document {
        file: String,
        document: usize,
        message: String,
    },
    /// `object` reads like `BGPPeer "rack0-to-leaf0"`.
    #[error("{file}: document {document} ({object}): {path}: {message}")]
    Field {
        file: String,
        document: usize,
        object: String,
        path: String,
        message: String,
    },
    #[error("{kind} {name:?}: {message}")]
    Invalid {
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error("{kind} {name:?}: {source}")]
    Selector {
        kind: &'static str,
        name: String,
        #[source]
        source: Box<SelectorError>,
    },
    #[error(transparent)]
    Confd(#[from] super::confd::ConfdError),
    #[error(transparent)]
    Ipam(#[from] super::ipam::IpamError),
}

/// Kubernetes object metadata: the name and labels matter, the rest (annotations,
/// creationTimestamp, resourceVersion, ...) is accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default, deserialize_with = "labels")]
    pub labels: BTreeMap<String, String>,
}

/// Label values are strings, but YAML writes `routeReflector: true` unquoted.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Bool(b) => Ok((k, b.to_string())),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Null => Ok((k, String::new())),
            other => Err(de::Error::custom(format!(
                "label {k:?} must be a string, not {other}"
            ))),
        })
        .collect()
}

/// An AS number written as a number or a string (`numorstring.ASNumber`), `a.b` dotted
/// form included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AsNumber(pub u32);

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => match s.split_once('.') {
                Some((hi, lo)) => match (hi.parse::<u16>(), lo.parse::<u16>()) {
                    (Ok(hi), Ok(lo)) => Some((u32::from(hi) << 16) | u32::from(lo)),
                    _ => None,
                },
                None => s.parse().ok(),
            },
            _ => None,
        };
        parsed
            .map(AsNumber)
            .ok_or_else(|| de::Error::custom(format!("{v} is not an AS number (0 to 4294967295)")))
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cidr {
    /// Calico takes an empty entry (`{}`) and ignores it.
    pub cidr: Option<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    pub cidr: IpNet,
    #[serde(default)]
    pub communities: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpConfigurationSpec {
    pub as_number: Option<AsNumber>,
    pub node_to_node_mesh_enabled: Option<bool>,
    pub log_severity_screen: Option<String>,
    pub listen_port: Option<u16>,
    pub bind_mode: Option<String>,
    #[serde(default, rename = "serviceClusterIPs")]
    pub service_cluster_ips: Vec<Cidr>,
    #[serde(default, rename = "serviceExternalIPs")]
    pub service_external_ips: Vec<Cidr>,
    #[serde(default)]
    pub communities: Vec<Community>,
    /// Set (even empty), it replaces the global list for that node.
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    #[serde(default, rename = "serviceLoadBalancerIPs")]
    pub service_load_balancer_ips: Vec<Cidr>,
    /// A Go duration: the graceful restart time of mesh sessions.
    pub node_mesh_max_restart_time: Option<String>,
    pub node_mesh_password: Option<Password>,
    /// Interface name globs BIRD's `direct` and `device` protocols leave out (v3.25).
    #[serde(default)]
    pub ignored_interfaces: Vec<String>,
    #[serde(rename = "localWorkloadPeeringIPV4")]
    pub local_workload_peering_ipv4: Option<String>,
    #[serde(rename = "localWorkloadPeeringIPV6")]
    pub local_workload_peering_ipv6: Option<String>,
    pub service_load_balancer_aggregation: Option<String>,
    pub ipv4_normal_route_priority: Option<u32>,
    pub ipv6_normal_route_priority: Option<u32>,
    pub program_cluster_routes: Option<String>,
}

/// BGPFilter (v3.26): rules applied to the routes a peer imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpFilterSpec {
    #[serde(default, rename = "importV4")]
    pub import_v4: Vec<FilterRule>,
    #[serde(default, rename = "exportV4")]
    pub export_v4: Vec<FilterRule>,
    /// IPv6 rules are read (and checked) but belong to `bird6.cfg`.
    #[serde(default, rename = "importV6")]
    pub import_v6: Vec<FilterRule>,
    #[serde(default, rename = "exportV6")]
    pub export_v6: Vec<FilterRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterRule {
    pub action: FilterAction,
    pub match_operator: Option<MatchOperator>,
    pub cidr: Option<IpNet>,
    /// v3.29: the prefix lengths matched inside `cidr`.
    pub prefix_length: Option<PrefixLength>,
    /// v3.27: `RemotePeers` (routes learned over BGP).
    pub source: Option<FilterSource>,
    /// v3.27: an interface name glob.
    pub interface: Option<String>,
    /// v3.32: the rule applies to iBGP or eBGP peers only.
    pub peer_type: Option<PeerKind>,
    /// v3.32: a community the route carries.
    pub communities: Option<CommunityMatch>,
    /// v3.32: AS numbers the route's AS path starts with.
    #[serde(default, rename = "asPathPrefix")]
    pub as_path_prefix: Vec<AsNumber>,
    /// v3.32: the route's priority (a LOCAL_PREF of 2^31-1 minus it).
    pub priority: Option<u32>,
    /// v3.32: what to do to a matching route before the action.
    #[serde(default)]
    pub operations: Vec<FilterOperation>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum FilterAction {
    #[default]
    Accept,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FilterSource {
    RemotePeers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PeerKind {
    #[serde(rename = "iBGP")]
    Ibgp,
    #[serde(rename = "eBGP")]
    Ebgp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixLength {
    pub min: Option<u8>,
    pub max: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityMatch {
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterOperation {
    pub add_community: Option<CommunityValue>,
    #[serde(rename = "prependASPath")]
    pub prepend_as_path: Option<AsPathPrefix>,
    pub set_priority: Option<PriorityValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityValue {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsPathPrefix {
    pub prefix: Vec<AsNumber>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityValue {
    pub value: u32,
}

/// A BGP password, read from a Kubernetes Secret in calico-node's namespace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Password {
    pub secret_key_ref: Option<SecretKeyRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
    #[serde(default)]
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpPeerSpec {
    /// `ip`, `ip:port` or `[ipv6]:port`.
    #[serde(rename = "peerIP")]
    pub peer_ip: Option<String>,
    pub as_number: Option<AsNumber>,
    pub node: Option<String>,
    pub node_selector: Option<String>,
    pub peer_selector: Option<String>,
    pub source_address: Option<SourceAddress>,
    #[serde(default)]
    pub keep_original_next_hop: bool,
    /// A Go duration (`120s`, `2m`).
    pub max_restart_time: Option<String>,
    #[serde(rename = "numAllowedLocalASNumbers")]
    pub num_allowed_local_as_numbers: Option<u32>,
    /// GTSM: the most hops away the peer may be (v3.25 on).
    pub ttl_security: Option<u8>,
    pub password: Option<Password>,
    /// The gateway through which the peer is reached (a static route to it).
    pub reachable_by: Option<String>,
    /// BGPFilter names, applied in order.
    #[serde(default)]
    pub filters: Vec<String>,
    pub local_workload_selector: Option<String>,
    #[serde(rename = "localASNumber")]
    pub local_as_number: Option<AsNumber>,
    pub next_hop_mode: Option<NextHopMode>,
    pub reverse_peering: Option<ReversePeering>,
    /// A Go duration.
    pub keepalive_time: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NextHopMode {
    Auto,
    #[serde(rename = "Self")]
    SelfHop,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ReversePeering {
    Auto,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SourceAddress {
    #[serde(rename = "UseNodeIP")]
    UseNodeIp,
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeBgp {
    pub as_number: Option<AsNumber>,
    /// The node's address with its subnet length (`10.1.5.10/24`).
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    #[serde(rename = "routeReflectorClusterID")]
    pub route_reflector_cluster_id: Option<String>,
    #[serde(rename = "ipv4IPIPTunnelAddr")]
    pub ipv4_ipip_tunnel_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrchRef {
    pub node_name: Option<String>,
    pub orchestrator: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    pub bgp: Option<NodeBgp>,
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
    #[serde(default)]
    pub orch_refs: Vec<OrchRef>,
    #[serde(rename = "ipv4VXLANTunnelAddr")]
    pub ipv4_vxlan_tunnel_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpPoolSpec {
    pub cidr: IpNet,
    pub block_size: Option<u8>,
    #[serde(default)]
    pub ipip_mode: EncapMode,
    #[serde(default)]
    pub vxlan_mode: EncapMode,
    #[serde(default)]
    pub nat_outgoing: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, rename = "disableBGPExport")]
    pub disable_bgp_export: bool,
    pub node_selector: Option<String>,
}

impl IpPoolSpec {
    /// Calico's defaults: /26 blocks for IPv4, /122 for IPv6.
    pub fn block_size(&self) -> u8 {
        self.block_size.unwrap_or(match self.cidr {
            IpNet::V4(_) => 26,
            IpNet::V6(_) => 122,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EncapMode {
    #[default]
    Never,
    Always,
    CrossSubnet,
}

/// An IPAM block affine to a node (group crd.projectcalico.org/v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockAffinitySpec {
    pub node: String,
    pub cidr: IpNet,
    /// `""` (implicitly confirmed), `confirmed`, `pending` or `pendingDeletion`.
    #[serde(default)]
    pub state: String,
    /// `"true"` while the affinity is being deleted.
    #[serde(default, deserialize_with = "stringly")]
    pub deleted: String,
    /// `host` (a node's block) or `virtual` (v3.30: LoadBalancer addresses, held
    /// by a pseudo node).
    #[serde(default, rename = "type")]
    pub kind: String,
}

fn stringly<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// One Calico object, named.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    BgpConfiguration(String, BgpConfigurationSpec),
    BgpPeer(String, BgpPeerSpec),
    BgpFilter(String, BgpFilterSpec),
    Node(Metadata, NodeSpec),
    IpPool(String, IpPoolSpec),
    BlockAffinity(String, BlockAffinitySpec),
    /// A Kubernetes Node (v1): labels and the `projectcalico.org/*` annotations
    /// calico-node writes, read as the Calico Node.
    KubeNode(Metadata, NodeSpec),
    /// Kubernetes objects calico-node reads: BGP passwords, and the Services whose
    /// addresses it advertises with where their endpoints run.
    Secret(Namespaced, BTreeMap<String, String>),
    Service(Namespaced, ServiceSpec),
    /// Endpoints or an EndpointSlice: the service they belong to and the nodes their
    /// endpoints run on.
    Endpoints(Namespaced, EndpointsOf),
}

/// A namespaced Kubernetes object's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Namespaced {
    pub namespace: String,
    pub name: String,
}

/// What calico-node reads of a Service: its kind, addresses and traffic policy
/// (`status` is not written by `kubectl apply`, so it is not read).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Vec<String>,
    #[serde(default, rename = "externalIPs")]
    pub external_ips: Vec<String>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    pub external_traffic_policy: Option<String>,
    /// Without one, Kubernetes mirrors the Service's Endpoints into EndpointSlices.
    pub selector: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointsOf {
    /// An EndpointSlice (v3.31 on reads these) rather than an Endpoints object.
    pub slice: bool,
    pub service: String,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: Option<String>,
    pub ipv6: bool,
    pub ready: bool,
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::BgpConfiguration(..) => "BGPConfiguration",
            Resource::BgpPeer(..) => "BGPPeer",
            Resource::BgpFilter(..) => "BGPFilter",
            Resource::Node(..) | Resource::KubeNode(..) => "Node",
            Resource::IpPool(..) => "IPPool",
            Resource::BlockAffinity(..) => "BlockAffinity",
            Resource::Secret(..) => "Secret",
            Resource::Service(..) => "Service",
            Resource::Endpoints(_, e) if e.slice => "EndpointSlice",
            Resource::Endpoints(..) => "Endpoints",
        }
    }

    /// The namespace of a namespaced Kubernetes object.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Resource::Secret(n, _) | Resource::Service(n, _) | Resource::Endpoints(n, _) => {
                Some(&n.namespace)
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::BgpConfiguration(n, _)
            | Resource::BgpPeer(n, _)
            | Resource::BgpFilter(n, _)
            | Resource::IpPool(n, _)
            | Resource::BlockAffinity(n, _) => n,
            Resource::Node(m, _) | Resource::KubeNode(m, _) => &m.name,
            Resource::Secret(n, _) | Resource::Service(n, _) | Resource::Endpoints(n, _) => &n.name,
        }
    }
}

const V3: &str = "projectcalico.org/v3";
const CRD: &str = "crd.projectcalico.org/v1";

/// Parses a multi-document YAML stream of Calico objects (`*List` forms included).
/// `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Resource>, CalicoError> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| CalicoError::Yaml {
            file: file.to_string(),
            message: crate::topology::plain_yaml_message(&e.to_string()),
        })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let Some(doc) = doc else { continue };
        parse_object(doc, file, i + 1, &mut out)?;
    }
    Ok(out)
}

/// Reads and parses one file.
pub fn load(path: &Path) -> Result<Vec<Resource>, CalicoError> {
    let file = path.display().to_string();
    let text = crate::topology::read_input(path).map_err(|source| CalicoError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

fn parse_object(
    doc: Value,
    file: &str,
    document: usize,
    out: &mut Vec<Resource>,
) -> Result<(), CalicoError> {
    let doc_error = |message: String| CalicoError::Document {
        file: file.to_string(),
        document,
        message,
    };
    let Value::Object(mut map) = doc else {
        return Err(doc_error("expected a Calico object (a mapping)".into()));
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = text(map.get("apiVersion"));
    let kind = text(map.get("kind"));
    if kind.ends_with("List") {
        let items = match map.remove("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(doc_error(format!("{kind}: items must be a list"))),
        };
        for item in items {
            parse_object(item, file, document, out)?;
        }
        return Ok(());
    }
    if let Some(object) = parse_kubernetes(&kind, &api_version, &map) {
        out.push(object.map_err(doc_error)?);
        return Ok(());
    }
    let known = [
        "BGPConfiguration",
        "BGPPeer",
        "BGPFilter",
        "Node",
        "IPPool",
        "BlockAffinity",
    ];
    if !known.contains(&kind.as_str()) {
        return Err(doc_error(format!(
            "unknown kind {kind:?} (this harness reads {}, and Kubernetes {})",
            known.join(", "),
            KUBERNETES_KINDS.join(", ")
        )));
    }
    let group_ok = match kind.as_str() {
        "BlockAffinity" => api_version == CRD,
        _ => api_version == V3 || api_version == CRD,
    };
    if !group_ok {
        return Err(doc_error(format!(
            "{kind}: unsupported apiVersion {api_version:?} (expected {})",
            if kind == "BlockAffinity" { CRD } else { V3 }
        )));
    }
    for key in map.keys() {
        if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
            return Err(doc_error(format!(
                "{kind}: unknown top-level field {key:?}"
            )));
        }
    }
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let field_error = |path: String, message: String| CalicoError::Field {
        file: file.to_string(),
        document,
        object: format!("{kind} {name:?}"),
        path,
        message,
    };
    if name.is_empty() {
        return Err(field_error("metadata.name".into(), "missing".into()));
    }
    let metadata: Metadata = typed(map.remove("metadata"), "metadata", &field_error)?;
    let spec = map.remove("spec").filter(|s| !s.is_null());
    let spec_or_empty = || spec.clone().unwrap_or(Value::Object(Default::default()));
    let resource = match kind.as_str() {
        "BGPConfiguration" => {
            Resource::BgpConfiguration(name.clone(), typed(spec, "spec", &field_error)?)
        }
        "BGPPeer" => Resource::BgpPeer(name.clone(), typed(spec, "spec", &field_error)?),
        "BGPFilter" => Resource::BgpFilter(name.clone(), typed(spec, "spec", &field_error)?),
        "Node" => Resource::Node(metadata, typed(spec, "spec", &field_error)?),
        "IPPool" => Resource::IpPool(
            name.clone(),
            typed(Some(spec_or_empty()), "spec", &field_error)?,
        ),
        _ => Resource::BlockAffinity(
            name.clone(),
            typed(Some(spec_or_empty()), "spec", &field_error)?,
        ),
    };
    out.push(resource);
    Ok(())
}

/// The Kubernetes kinds calico-node reads.
const KUBERNETES_KINDS: [&str; 5] = ["Node", "Secret", "Service", "Endpoints", "EndpointSlice"];

/// A Kubernetes object (`v1` or `discovery.k8s.io/v1`), or `None` for anything else.
/// Only what calico-node reads is kept; the rest of a Kubernetes object is its own
/// business, so other fields are accepted.
fn parse_kubernetes(
    kind: &str,
    api_version: &str,
    map: &serde_json::Map<String, Value>,
) -> Option<Result<Resource, String>> {
    let core = api_version == "v1";
    let discovery = api_version == "discovery.k8s.io/v1";
    if !(core && KUBERNETES_KINDS.contains(&kind) || discovery && kind == "EndpointSlice") {
        return None;
    }
    let meta = map.get("metadata");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let name = text(meta.and_then(|m| m.get("name")));
    if name.is_empty() {
        return Some(Err(format!("{kind}: metadata.name is missing")));
    }
    let namespace = match text(meta.and_then(|m| m.get("namespace"))) {
        ns if ns.is_empty() => "default".to_string(),
        ns => ns,
    };
    let id = Namespaced { namespace, name };
    let strings = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(match kind {
        "Node" => {
            let labels = strings(meta.and_then(|m| m.get("labels")));
            let notes = strings(meta.and_then(|m| m.get("annotations")));
            let note = |k: &str| notes.get(&format!("projectcalico.org/{k}")).cloned();
            let asn = match note("ASNumber") {
                Some(a) => match serde_json::from_value::<AsNumber>(Value::String(a.clone())) {
                    Ok(a) => Some(a),
                    Err(_) => return Some(Err(format!("Node {:?}: annotation projectcalico.org/ASNumber {a:?} is not an AS number", id.name))),
                },
                None => None,
            };
            let bgp = NodeBgp {
                as_number: asn,
                ipv4_address: note("IPv4Address"),
                ipv6_address: note("IPv6Address"),
                route_reflector_cluster_id: note("RouteReflectorClusterID"),
                ipv4_ipip_tunnel_addr: note("IPv4IPIPTunnelAddr"),
            };
            let spec = NodeSpec {
                bgp: (bgp != NodeBgp::default()).then_some(bgp),
                ipv4_vxlan_tunnel_addr: note("IPv4VXLANTunnelAddr"),
                ..NodeSpec::default()
            };
            Ok(Resource::KubeNode(
                Metadata {
                    name: id.name,
                    labels,
                },
                spec,
            ))
        }
        "Secret" => {
            let mut data = BTreeMap::new();
            for (k, v) in strings(map.get("data")) {
                match base64_decode(&v) {
                    Some(plain) => data.insert(k, plain),
                    None => {
                        return Some(Err(format!("Secret {:?}: data.{k} is not base64", id.name)))
                    }
                };
            }
            data.extend(strings(map.get("stringData")));
            Ok(Resource::Secret(id, data))
        }
        "Service" => {
            let spec = map.get("spec").cloned().unwrap_or(Value::Null);
            match serde_json::from_value::<Option<ServiceSpec>>(spec) {
                Ok(spec) => Ok(Resource::Service(id, spec.unwrap_or_default())),
                Err(e) => Err(format!("Service {:?}: spec: {e}", id.name)),
            }
        }
        "Endpoints" => {
            // Ready addresses only: subsets[].addresses[] {ip, nodeName}.
            let endpoints = map
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|s| {
                    s.get("addresses")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|a| Endpoint {
                    node: a.get("nodeName").and_then(Value::as_str).map(String::from),
                    ipv6: text(a.get("ip")).contains(':'),
                    ready: true,
                })
                .collect();
            let service = id.name.clone();
            Ok(Resource::Endpoints(
                id,
                EndpointsOf {
                    slice: false,
                    service,
                    endpoints,
                },
            ))
        }
        _ => {
            // EndpointSlice: the service by label, endpoints[] {nodeName, conditions}.
            let labels = strings(meta.and_then(|m| m.get("labels")));
            let Some(service) = labels.get("kubernetes.io/service-name").cloned() else {
                return Some(Err(format!(
                    "EndpointSlice {:?}: no kubernetes.io/service-name label",
                    id.name
                )));
            };
            let ipv6 = text(map.get("addressType")) == "IPv6";
            let endpoints = map
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| Endpoint {
                    node: e.get("nodeName").and_then(Value::as_str).map(String::from),
                    ipv6,
                    ready: e
                        .get("conditions")
                        .and_then(|c| c.get("ready"))
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                })
                .collect();
            Ok(Resource::Endpoints(
                id,
                EndpointsOf {
                    slice: true,
                    service,
                    endpoints,
                },
            ))
        }
    })
}

/// Standard base64 (a Secret's `data`), `None` when it is not, or not text.
fn base64_decode(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Deserialises `value` (absent or null means the type's default) with the failing path.
fn typed<T: serde::de::DeserializeOwned + Default>(
    value: Option<Value>,
    prefix: &str,
    error: &dyn Fn(String, String) -> CalicoError,
) -> Result<T, CalicoError>
where
{
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(T::default());
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            prefix.to_string()
        } else {
            format!("{prefix}.{path}")
        };
        error(path, e.into_inner().to_string())
    })
}

// `typed` needs a Default. IPPool and BlockAffinity are always parsed from a spec (an
// empty one when absent), so a missing spec fails on their required fields instead of
// reaching these placeholders.
impl Default for IpPoolSpec {
    fn default() -> Self {
        IpPoolSpec {
            cidr: IpNet::V4(Default::default()),
            block_size: None,
            ipip_mode: EncapMode::Never,
            vxlan_mode: EncapMode::Never,
            nat_outgoing: false,
            disabled: false,
            disable_bgp_export: false,
            node_selector: None,
        }
    }
}

impl Default for BlockAffinitySpec {
    fn default() -> Self {
        BlockAffinitySpec {
            node: String::new(),
            cidr: IpNet::V4(Default::default()),
            state: String::new(),
            deleted: String::new(),
            kind: String::new(),
        }
    }
}

/// The Calico objects a cluster holds, by kind and name; `apply` replaces an object
/// of the same kind and name, as `calicoctl apply` does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub bgp_configurations: BTreeMap<String, BgpConfigurationSpec>,
    pub bgp_peers: BTreeMap<String, BgpPeerSpec>,
    pub bgp_filters: BTreeMap<String, BgpFilterSpec>,
    pub nodes: BTreeMap<String, (BTreeMap<String, String>, NodeSpec)>,
    pub ip_pools: BTreeMap<String, IpPoolSpec>,
    pub block_affinities: BTreeMap<String, BlockAffinitySpec>,
    /// The labels of each Kubernetes Node; a Calico Node's labels add to them.
    pub kube_node_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<Namespaced, BTreeMap<String, String>>,
    pub services: BTreeMap<Namespaced, ServiceSpec>,
    /// Endpoints and EndpointSlices (`true`), which may share a name.
    pub endpoints: BTreeMap<(Namespaced, bool), EndpointsOf>,
    /// Felix's endpoint status files, by node and file name.
    pub endpoint_status: BTreeMap<String, BTreeMap<String, WorkloadStatus>>,
}

/// What Felix writes about a workload on its node (`endpoint-status/<name>`, JSON),
/// as far as confd reads it: a workload that peers with its node names its BGPPeer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    #[serde(default)]
    pub ipv4_nets: Vec<String>,
    #[serde(default)]
    pub bgp_peer_name: String,
}

/// The namespace calico-node runs in, where it reads BGP passwords.
pub const CALICO_NAMESPACE: &str = "kube-system";

impl Resources {
    /// Applies objects in order, checking each (selectors, addresses) first so a bad
    /// object changes nothing.
    pub fn apply(&mut self, objects: Vec<Resource>) -> Result<(), CalicoError> {
        for object in &objects {
            check(object)?;
        }
        for object in objects {
            match object {
                Resource::BgpConfiguration(n, s) => {
                    self.bgp_configurations.insert(n, s);
                }
                Resource::BgpPeer(n, s) => {
                    self.bgp_peers.insert(n, s);
                }
                Resource::BgpFilter(n, s) => {
                    self.bgp_filters.insert(n, s);
                }
                Resource::Node(m, s) => {
                    self.nodes.insert(m.name, (m.labels, s));
                }
                Resource::IpPool(n, s) => {
                    self.ip_pools.insert(n, s);
                }
                Resource::BlockAffinity(n, s) => {
                    self.block_affinities.insert(n, s);
                }
                Resource::KubeNode(m, s) => {
                    // The Calico Node is the Kubernetes node: labels from it, BGP
                    // settings from its annotations when it has them.
                    let entry = self.nodes.entry(m.name.clone()).or_default();
                    if s.bgp.is_some() {
                        entry.1 = s;
                    }
                    self.kube_node_labels.insert(m.name, m.labels);
                }
                Resource::Secret(n, data) => {
                    self.secrets.insert(n, data);
                }
                Resource::Service(n, s) => {
                    self.services.insert(n, s);
                }
                Resource::Endpoints(n, e) => {
                    self.endpoints.insert((n, e.slice), e);
                }
            }
        }
        Ok(())
    }

    /// Every (kind, object name, field) of the version-dependent fields an object
    /// sets (see `version::check_fields`).
    pub fn fields_set(&self) -> Vec<(&'static str, &str, &'static str)> {
        let mut out = Vec::new();
        for (name, p) in &self.bgp_peers {
            for (field, set) in [
                ("ttlSecurity", p.ttl_security.is_some()),
                ("reachableBy", p.reachable_by.is_some()),
                ("filters", !p.filters.is_empty()),
                ("localWorkloadSelector", p.local_workload_selector.is_some()),
                ("nextHopMode", p.next_hop_mode.is_some()),
                ("reversePeering", p.reverse_peering.is_some()),
                ("localASNumber", p.local_as_number.is_some()),
                ("keepaliveTime", p.keepalive_time.is_some()),
            ] {
                if set {
                    out.push(("BGPPeer", name.as_str(), field));
                }
            }
        }
        for (name, f) in &self.bgp_filters {
            out.push(("BGPFilter", name.as_str(), "BGPFilter"));
            let rules = || {
                f.import_v4
                    .iter()
                    .chain(&f.export_v4)
                    .chain(&f.import_v6)
                    .chain(&f.export_v6)
            };
            for (field, set) in [
                ("source", rules().any(|r| r.source.is_some())),
                ("interface", rules().any(|r| r.interface.is_some())),
                ("prefixLength", rules().any(|r| r.prefix_length.is_some())),
                ("peerType", rules().any(|r| r.peer_type.is_some())),
                ("communities", rules().any(|r| r.communities.is_some())),
                (
                    "asPathPrefix",
                    rules().any(|r| !r.as_path_prefix.is_empty()),
                ),
                ("priority", rules().any(|r| r.priority.is_some())),
                ("operations", rules().any(|r| !r.operations.is_empty())),
                ("a rule without cidr", rules().any(|r| r.cidr.is_none())),
            ] {
                if set {
                    out.push(("BGPFilter", name.as_str(), field));
                }
            }
        }
        for (name, c) in &self.bgp_configurations {
            for (field, set) in [
                ("ignoredInterfaces", !c.ignored_interfaces.is_empty()),
                (
                    "localWorkloadPeeringIPV4",
                    c.local_workload_peering_ipv4.is_some(),
                ),
                (
                    "localWorkloadPeeringIPV6",
                    c.local_workload_peering_ipv6.is_some(),
                ),
                (
                    "serviceLoadBalancerAggregation",
                    c.service_load_balancer_aggregation.is_some(),
                ),
                (
                    "ipv4NormalRoutePriority",
                    c.ipv4_normal_route_priority.is_some(),
                ),
                (
                    "ipv6NormalRoutePriority",
                    c.ipv6_normal_route_priority.is_some(),
                ),
                ("programClusterRoutes", c.program_cluster_routes.is_some()),
            ] {
                if set {
                    out.push(("BGPConfiguration", name.as_str(), field));
                }
            }
        }
        out
    }

    /// Records an endpoint status file Felix wrote on `node` (its JSON text).
    pub fn set_endpoint_status(
        &mut self,
        node: &str,
        file: &str,
        json: &str,
    ) -> Result<(), CalicoError> {
        let status: WorkloadStatus =
            serde_json::from_str(json).map_err(|e| CalicoError::Invalid {
                kind: "endpoint status",
                name: file.to_string(),
                message: e.to_string(),
            })?;
        self.endpoint_status
            .entry(node.to_string())
            .or_default()
            .insert(file.to_string(), status);
        Ok(())
    }

    /// A node's labels as selectors see them: its Kubernetes node's, then its own.
    pub fn node_labels(&self, node: &str) -> BTreeMap<String, String> {
        let mut labels = self.kube_node_labels.get(node).cloned().unwrap_or_default();
        if let Some((own, _)) = self.nodes.get(node) {
            labels.extend(own.clone());
        }
        labels
    }

    /// A BGP password from its Secret in calico-node's namespace (`None` when the
    /// Secret or its key is missing: the session then runs without one, as confd's).
    pub fn password(&self, password: &Password) -> Option<String> {
        let r = password.secret_key_ref.as_ref()?;
        let id = Namespaced {
            namespace: CALICO_NAMESPACE.into(),
            name: r.name.clone(),
        };
        // An empty password is none: the templates write none for it.
        self.secrets
            .get(&id)?
            .get(&r.key)
            .filter(|p| !p.is_empty())
            .cloned()
    }

    /// Deletes one object by kind (as `calicoctl`/`kubectl delete <kind> <name>` take
    /// it, any case, singular) and name; `false` when there was none.
    pub fn delete_named(&mut self, kind: &str, name: &str, namespace: Option<&str>) -> bool {
        let id = Namespaced {
            namespace: namespace.unwrap_or("default").to_string(),
            name: name.to_string(),
        };
        match kind.to_ascii_lowercase().as_str() {
            "bgpconfiguration" | "bgpconfig" => self.bgp_configurations.remove(name).is_some(),
            "bgppeer" => self.bgp_peers.remove(name).is_some(),
            "bgpfilter" => self.bgp_filters.remove(name).is_some(),
            "node" => {
                let kube = self.kube_node_labels.remove(name).is_some();
                self.nodes.remove(name).is_some() || kube
            }
            "ippool" => self.ip_pools.remove(name).is_some(),
            "secret" => self.secrets.remove(&id).is_some(),
            "service" => self.services.remove(&id).is_some(),
            "endpoints" => self.endpoints.remove(&(id, false)).is_some(),
            "endpointslice" => self.endpoints.remove(&(id, true)).is_some(),
            _ => false,
        }
    }

    /// Deletes objects by kind and name, as `calicoctl delete -f` does: all or
    /// nothing. Only BGPConfigurations, BGPPeers and BGPFilters go: a Node leaves
    /// with its Kubernetes node, a pool or block with Calico's IPAM.
    pub fn delete(&mut self, objects: &[Resource]) -> Result<(), CalicoError> {
        for object in objects {
            let present =
                match object {
                    Resource::BgpConfiguration(n, _) => self.bgp_configurations.contains_key(n),
                    Resource::BgpPeer(n, _) => self.bgp_peers.contains_key(n),
                    Resource::BgpFilter(n, _) => self.bgp_filters.contains_key(n),
                    _ => return Err(CalicoError::Invalid {
                        kind: object.kind(),
                        name: object.name().to_string(),
                        message:
                            "the harness deletes only BGPConfigurations, BGPPeers and BGPFilters"
                                .into(),
                    }),
                };
            if !present {
                return Err(CalicoError::Invalid {
                    kind: object.kind(),
                    name: object.name().to_string(),
                    message: "resource does not exist".into(),
                });
            }
        }
        for object in objects {
            match object {
                Resource::BgpConfiguration(n, _) => {
                    self.bgp_configurations.remove(n);
                }
                Resource::BgpPeer(n, _) => {
                    self.bgp_peers.remove(n);
                }
                Resource::BgpFilter(n, _) => {
                    self.bgp_filters.remove(n);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// BGPConfiguration `default`.
    pub fn global(&self) -> Option<&BgpConfigurationSpec> {
        self.bgp_configurations.get("default")
    }

    /// BGPConfiguration `node.<name>`.
    pub fn per_node(&self, node: &str) -> Option<&BgpConfigurationSpec> {
        self.bgp_configurations.get(&format!("node.{node}"))
    }
}

/// Validation calicoctl would do before accepting an object.
fn check(object: &Resource) -> Result<(), CalicoError> {
    let invalid = |message: String| CalicoError::Invalid {
        kind: object.kind(),
        name: object.name().to_string(),
        message,
    };
    // Names end up in BIRD comments and symbols: Kubernetes names only.
    if !is_object_name(object.name()) {
        return Err(invalid(
            "metadata.name must be a Kubernetes name: 1 to 253 of a-z, 0-9, '-' and '.', starting and ending with a letter or digit".into(),
        ));
    }
    let selector = |text: &Option<String>| -> Result<(), CalicoError> {
        match text {
            Some(text) => Selector::parse(text)
                .map(drop)
                .map_err(|source| CalicoError::Selector {
                    kind: object.kind(),
                    name: object.name().to_string(),
                    source: Box::new(source),
                }),
            None => Ok(()),
        }
    };
    match object {
        Resource::BgpPeer(_, spec) => {
            selector(&spec.node_selector)?;
            selector(&spec.peer_selector)?;
            if spec.node.is_some() && spec.node_selector.is_some() {
                return Err(invalid("node and nodeSelector cannot both be set".into()));
            }
            if spec.local_workload_selector.is_some() {
                if spec.peer_ip.is_some() || spec.peer_selector.is_some() {
                    return Err(invalid(
                        "peerIP and peerSelector must be empty when localWorkloadSelector is set"
                            .into(),
                    ));
                }
                if spec.as_number.is_none_or(|a| a.0 == 0) {
                    return Err(invalid(
                        "asNumber is required with localWorkloadSelector".into(),
                    ));
                }
            }
            match (&spec.peer_ip, &spec.peer_selector) {
                (Some(_), Some(_)) => {
                    return Err(invalid("peerIP and peerSelector cannot both be set".into()));
                }
                (None, None) if spec.local_workload_selector.is_none() => {
                    return Err(invalid(
                        "one of peerIP, peerSelector or localWorkloadSelector is required".into(),
                    ))
                }
                (None, None) => {}
                (Some(ip), None) => {
                    let (peer, _) =
                        split_peer_ip(ip).map_err(|e| invalid(format!("spec.peerIP: {e}")))?;
                    if peer.is_unspecified() {
                        return Err(invalid(format!("spec.peerIP: {peer} cannot be a BGP peer")));
                    }
                    if let Some(via) = &spec.reachable_by {
                        match via.parse::<IpAddr>() {
                            Ok(via) if via.is_ipv4() == peer.is_ipv4() => {}
                            Ok(_) => {
                                return Err(invalid(
                                    "reachableBy and peerIP address family mismatched".into(),
                                ))
                            }
                            Err(_) => {
                                return Err(invalid(format!(
                                    "reachableBy {via:?} is not an IP address"
                                )))
                            }
                        }
                    }
                }
                (None, Some(_)) => {
                    if spec.as_number.is_some_and(|a| a.0 != 0) {
                        return Err(invalid(
                            "asNumber must be empty when peerSelector is set".into(),
                        ));
                    }
                    if spec.reachable_by.is_some() {
                        return Err(invalid(
                            "reachableBy must be empty when peerIP is empty".into(),
                        ));
                    }
                }
            }
            selector(&spec.local_workload_selector)?;
            for (field, d) in [
                ("maxRestartTime", &spec.max_restart_time),
                ("keepaliveTime", &spec.keepalive_time),
            ] {
                if let Some(d) = d {
                    bird_seconds(d).map_err(|e| invalid(format!("spec.{field}: {e}")))?;
                }
            }
            if spec.local_as_number.is_some_and(|a| a.0 == 0) {
                return Err(invalid(
                    "spec.localASNumber: 0 is not an AS number BGP can use".into(),
                ));
            }
        }
        Resource::Node(_, spec) | Resource::KubeNode(_, spec) => {
            if let Some(bgp) = &spec.bgp {
                if bgp.as_number.is_some_and(|a| a.0 == 0) {
                    return Err(invalid(
                        "spec.bgp.asNumber: 0 is not an AS number BGP can use".into(),
                    ));
                }
                if let Some(id) = &bgp.route_reflector_cluster_id {
                    if !id.is_empty() && id.parse::<std::net::Ipv4Addr>().is_err() {
                        return Err(invalid(format!(
                            "spec.bgp.routeReflectorClusterID: {id:?} is not an IPv4 address"
                        )));
                    }
                }
                for (field, value, v4) in [
                    ("ipv4Address", &bgp.ipv4_address, true),
                    ("ipv6Address", &bgp.ipv6_address, false),
                ] {
                    if let Some(value) = value {
                        let ok = match value.parse::<IpNet>() {
                            Ok(net) => net.addr().is_ipv4() == v4,
                            Err(_) => value.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4() == v4),
                        };
                        if !ok {
                            return Err(invalid(format!(
                                "spec.bgp.{field}: {value:?} is not an IPv{} address",
                                if v4 { 4 } else { 6 }
                            )));
                        }
                    }
                }
            }
        }
        Resource::IpPool(_, spec) => {
            let max = if spec.cidr.addr().is_ipv4() { 32 } else { 128 };
            let size = spec.block_size();
            if size < spec.cidr.prefix_len() || size > max {
                return Err(invalid(format!(
                    "blockSize {size} does not fit in {}",
                    spec.cidr
                )));
            }
            selector(&spec.node_selector)?;
            if spec.ipip_mode != EncapMode::Never && spec.vxlan_mode != EncapMode::Never {
                return Err(invalid(
                    "ipipMode and vxlanMode cannot both be enabled".into(),
                ));
            }
            if spec.cidr.trunc() != spec.cidr {
                return Err(invalid(format!(
                    "cidr {} has host bits set (the network is {})",
                    spec.cidr,
                    spec.cidr.trunc()
                )));
            }
        }
        Resource::BgpConfiguration(_, spec) => {
            if let Some(d) = &spec.node_mesh_max_restart_time {
                bird_seconds(d)
                    .map_err(|e| invalid(format!("spec.nodeMeshMaxRestartTime: {e}")))?;
            }
            if spec.as_number.is_some_and(|a| a.0 == 0) {
                return Err(invalid(
                    "spec.asNumber: 0 is not an AS number BGP can use".into(),
                ));
            }
            for (field, value, allowed) in [
                ("bindMode", &spec.bind_mode, &["None", "NodeIP"][..]),
                (
                    "logSeverityScreen",
                    &spec.log_severity_screen,
                    &["Debug", "Info", "Warning", "Error", "Fatal", "None"][..],
                ),
                (
                    "programClusterRoutes",
                    &spec.program_cluster_routes,
                    &["Enabled", "Disabled"][..],
                ),
                (
                    "serviceLoadBalancerAggregation",
                    &spec.service_load_balancer_aggregation,
                    &["Enabled", "Disabled"][..],
                ),
            ] {
                if let Some(v) = value {
                    // Calico lower-cases the log level; its other enums are exact.
                    let matches = |a: &&str| match field {
                        "logSeverityScreen" => a.eq_ignore_ascii_case(v),
                        _ => a == v,
                    };
                    if !allowed.iter().any(matches) {
                        return Err(invalid(format!(
                            "spec.{field}: {v:?} is not one of {}",
                            allowed.join(", ")
                        )));
                    }
                }
            }
            for (field, value) in [
                (
                    "localWorkloadPeeringIPV4",
                    &spec.local_workload_peering_ipv4,
                ),
                (
                    "localWorkloadPeeringIPV6",
                    &spec.local_workload_peering_ipv6,
                ),
            ] {
                if let Some(v) = value {
                    if v.parse::<IpAddr>().is_err() {
                        return Err(invalid(format!("spec.{field}: {v:?} is not an IP address")));
                    }
                }
            }
            for i in &spec.ignored_interfaces {
                if !is_interface_glob(i) {
                    return Err(invalid(format!(
                        "spec.ignoredInterfaces: {i:?} is not an interface name or glob"
                    )));
                }
            }
            for advert in spec.prefix_advertisements.iter().flatten() {
                if advert.cidr.trunc() != advert.cidr {
                    return Err(invalid(format!(
                        "spec.prefixAdvertisements: {} has host bits set",
                        advert.cidr
                    )));
                }
            }
            for advert in spec.prefix_advertisements.iter().flatten() {
                for c in &advert.communities {
                    if !spec.communities.iter().any(|d| &d.name == c) && !is_community(c) {
                        // A name may be defined in BGPConfiguration `default` instead,
                        // so only literal-looking values are checked here.
                        if c.contains(':') {
                            return Err(invalid(format!("{c:?} is not a BGP community")));
                        }
                    }
                }
            }
            for d in &spec.communities {
                if !is_community(&d.value) {
                    return Err(invalid(format!(
                        "community {:?}: {:?} is not aa:nn or aa:nn:mm",
                        d.name, d.value
                    )));
                }
            }
        }
        Resource::BgpFilter(_, spec) => {
            let v4 = spec.import_v4.iter().chain(&spec.export_v4);
            let v6 = spec.import_v6.iter().chain(&spec.export_v6);
            for (rule, want_v4) in v4.map(|r| (r, true)).chain(v6.map(|r| (r, false))) {
                if rule.cidr.is_some_and(|c| c.addr().is_ipv4() != want_v4) {
                    return Err(invalid(format!(
                        "an IPv{} rule matches {}",
                        if want_v4 { 4 } else { 6 },
                        rule.cidr.map(|c| c.to_string()).unwrap_or_default()
                    )));
                }
            }
            for rule in spec
                .import_v4
                .iter()
                .chain(&spec.export_v4)
                .chain(&spec.import_v6)
                .chain(&spec.export_v6)
            {
                if rule.cidr.is_some() != rule.match_operator.is_some() {
                    return Err(invalid(
                        "cidr and matchOperator go together in a BGPFilter rule".into(),
                    ));
                }
                if let Some(cidr) = rule.cidr {
                    if cidr.trunc() != cidr {
                        return Err(invalid(format!("cidr {cidr} has host bits set")));
                    }
                }
                if let Some(p) = rule.prefix_length {
                    let Some(cidr) = rule.cidr else {
                        return Err(invalid("prefixLength needs a cidr".into()));
                    };
                    let (min, max) = (
                        p.min.unwrap_or(cidr.prefix_len()),
                        p.max.unwrap_or(cidr.max_prefix_len()),
                    );
                    if min < cidr.prefix_len() || max > cidr.max_prefix_len() || min > max {
                        return Err(invalid(format!(
                            "prefixLength {min} to {max} does not fit {cidr} (from {} to {})",
                            cidr.prefix_len(),
                            cidr.max_prefix_len()
                        )));
                    }
                }
                if let Some(i) = &rule.interface {
                    if !is_interface_glob(i) {
                        return Err(invalid(format!(
                            "interface {i:?} is not an interface name or glob"
                        )));
                    }
                }
                let priorities = rule.priority.into_iter().chain(
                    rule.operations
                        .iter()
                        .filter_map(|o| o.set_priority.as_ref().map(|p| p.value)),
                );
                for p in priorities {
                    if p == 0 || p > 2_147_483_646 {
                        return Err(invalid(format!(
                            "priority {p} is not within 1 to 2147483646"
                        )));
                    }
                }
                let values = rule.communities.iter().flat_map(|c| &c.values).chain(
                    rule.operations
                        .iter()
                        .filter_map(|o| o.add_community.as_ref().map(|c| &c.value)),
                );
                for v in values {
                    if !is_community(v) {
                        return Err(invalid(format!(
                            "{v:?} is not a BGP community (aa:nn or aa:nn:mm)"
                        )));
                    }
                }
                if rule
                    .communities
                    .as_ref()
                    .is_some_and(|c| c.values.len() != 1)
                {
                    return Err(invalid("communities.values takes exactly one value".into()));
                }
                if rule.operations.iter().any(|o| {
                    [
                        o.add_community.is_some(),
                        o.prepend_as_path.is_some(),
                        o.set_priority.is_some(),
                    ]
                    .iter()
                    .filter(|x| **x)
                    .count()
                        != 1
                }) {
                    return Err(invalid("each BGPFilter operation sets exactly one of addCommunity, prependASPath, setPriority".into()));
                }
            }
        }
        Resource::BlockAffinity(_, spec) => {
            if spec.cidr.trunc() != spec.cidr {
                return Err(invalid(format!(
                    "spec.cidr {} has host bits set",
                    spec.cidr
                )));
            }
        }
        Resource::Secret(..) | Resource::Service(..) | Resource::Endpoints(..) => {}
    }
    Ok(())
}

/// A Kubernetes object name (DNS-1123 subdomain).
pub fn is_object_name(name: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=253).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && alnum(name.chars().next())
        && alnum(name.chars().last())
}

/// An interface name or a BIRD glob of one: nothing that would end BIRD's quotes.
fn is_interface_glob(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:*?@+".contains(c))
}

/// Seconds of a Go duration that BIRD's timers take (up to 65535 s).
fn bird_seconds(text: &str) -> Result<u64, String> {
    let seconds = go_duration_seconds(text)?;
    if seconds > 65_535 {
        return Err(format!(
            "{text:?} is longer than BIRD's timers take (65535 s)"
        ));
    }
    Ok(seconds)
}

/// A standard (`aa:nn`) or large (`aa:nn:mm`) community literal.
pub fn is_community(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    (parts.len() == 2 && parts.iter().all(|p| p.parse::<u16>().is_ok()))
        || (parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()))
}

/// Splits `ip`, `ip:port` or `[ipv6]:port` as Calico does.
pub fn split_peer_ip(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("peerIP {text:?} is not ip, ip:port or [ipv6]:port");
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = host.parse::<IpAddr>().map_err(|_| bad())?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    Ok((ip, Some(port)))
}

/// Whole seconds of a Go duration such as `120s`, `2m`, `1m30s`, `1h`.
pub fn go_duration_seconds(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration such as 120s or 2m");
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    // Calico rounds to whole seconds.
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ip_forms() {
        assert_eq!(
            split_peer_ip("10.192.0.1:166").unwrap(),
            ("10.192.0.1".parse().unwrap(), Some(166))
        );
        assert_eq!(
            split_peer_ip("[ac13::57]:50").unwrap(),
            ("ac13::57".parse().unwrap(), Some(50))
        );
        assert_eq!(split_peer_ip("fd00::1").unwrap().1, None);
        assert!(split_peer_ip("10.0.0.300").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration_seconds("120s"), Ok(120));
        assert_eq!(go_duration_seconds("1m30s"), Ok(90));
        assert!(go_duration_seconds("soon").is_err());
    }

    #[test]
    fn delete_removes_named_peers_and_configurations_all_or_nothing() {
        let peer = |name: &str| {
            format!("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {{peerIP: 10.1.5.1, asNumber: 65005}}\n")
        };
        let mut r = Resources::default();
        r.apply(parse(&(peer("a") + "---\n" + &peer("b")), "peers").unwrap())
            .unwrap();
        // One of two absent: nothing goes.
        let err = r
            .delete(&parse(&(peer("a") + "---\n" + &peer("zz")), "del").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(r.bgp_peers.len(), 2);
        r.delete(&parse(&peer("a"), "del").unwrap()).unwrap();
        assert_eq!(r.bgp_peers.keys().collect::<Vec<_>>(), ["b"]);
        // A Node leaves with its Kubernetes node, not by a delete.
        let node = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {}\n";
        r.apply(parse(node, "node").unwrap()).unwrap();
        let err = r.delete(&parse(node, "del").unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("only BGPConfigurations, BGPPeers and BGPFilters"),
            "{err}"
        );
    }
}
