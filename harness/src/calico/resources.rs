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
    pub cidr: IpNet,
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
    #[serde(default)]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
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
    Node(Metadata, NodeSpec),
    IpPool(String, IpPoolSpec),
    BlockAffinity(String, BlockAffinitySpec),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::BgpConfiguration(..) => "BGPConfiguration",
            Resource::BgpPeer(..) => "BGPPeer",
            Resource::Node(..) => "Node",
            Resource::IpPool(..) => "IPPool",
            Resource::BlockAffinity(..) => "BlockAffinity",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::BgpConfiguration(n, _)
            | Resource::BgpPeer(n, _)
            | Resource::IpPool(n, _)
            | Resource::BlockAffinity(n, _) => n,
            Resource::Node(m, _) => &m.name,
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
    let known = [
        "BGPConfiguration",
        "BGPPeer",
        "Node",
        "IPPool",
        "BlockAffinity",
    ];
    if !known.contains(&kind.as_str()) {
        return Err(doc_error(format!(
            "unknown kind {kind:?} (this harness reads {})",
            known.join(", ")
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
    pub nodes: BTreeMap<String, (BTreeMap<String, String>, NodeSpec)>,
    pub ip_pools: BTreeMap<String, IpPoolSpec>,
    pub block_affinities: BTreeMap<String, BlockAffinitySpec>,
}

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
                Resource::Node(m, s) => {
                    self.nodes.insert(m.name, (m.labels, s));
                }
                Resource::IpPool(n, s) => {
                    self.ip_pools.insert(n, s);
                }
                Resource::BlockAffinity(n, s) => {
                    self.block_affinities.insert(n, s);
                }
            }
        }
        Ok(())
    }

    /// Deletes objects by kind and name, as `calicoctl delete -f` does: all or
    /// nothing. Only BGPConfigurations and BGPPeers go: a Node leaves with its
    /// Kubernetes node, a pool or block with Calico's IPAM.
    pub fn delete(&mut self, objects: &[Resource]) -> Result<(), CalicoError> {
        for object in objects {
            let present = match object {
                Resource::BgpConfiguration(n, _) => self.bgp_configurations.contains_key(n),
                Resource::BgpPeer(n, _) => self.bgp_peers.contains_key(n),
                Resource::Node(..) | Resource::IpPool(..) | Resource::BlockAffinity(..) => {
                    return Err(CalicoError::Invalid {
                        kind: object.kind(),
                        name: object.name().to_string(),
                        message: "the harness deletes only BGPConfigurations and BGPPeers".into(),
                    })
                }
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
            match (&spec.peer_ip, &spec.peer_selector) {
                (Some(_), Some(_)) => {
                    return Err(invalid("peerIP and peerSelector cannot both be set".into()));
                }
                (None, None) => {
                    return Err(invalid("one of peerIP or peerSelector is required".into()))
                }
                (Some(ip), None) => {
                    split_peer_ip(ip).map_err(invalid)?;
                    if spec.as_number.is_none() {
                        return Err(invalid("asNumber is required with peerIP".into()));
                    }
                }
                (None, Some(_)) => {}
            }
            if let Some(d) = &spec.max_restart_time {
                go_duration_seconds(d).map_err(invalid)?;
            }
        }
        Resource::Node(_, spec) => {
            if let Some(bgp) = &spec.bgp {
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
        }
        Resource::BgpConfiguration(_, spec) => {
            for advert in &spec.prefix_advertisements {
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
        Resource::BlockAffinity(..) => {}
    }
    Ok(())
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
    let port = port.parse::<u16>().map_err(|_| bad())?;
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
    Ok(total as u64)
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
                .contains("only BGPConfigurations and BGPPeers"),
            "{err}"
        );
    }
}
