//! The topology model: loading, validation and the facts derived from it.

pub mod generate;
mod model;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

pub use model::*;
pub use validate::{bridge_port_name, is_dns_label, MAX_INTERFACE_NAME};

/// The seed lab, compiled in so that every command works without `--topology`.
pub const SEED_TOPOLOGY_YAML: &str =
    include_str!("../../../fixtures/topologies/calico-bgp-rr.yaml");
pub const SEED_TOPOLOGY_FILE: &str = "<embedded>/calico-bgp-rr.yaml";

/// Why a topology was rejected; nothing is created for a rejected topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Parse {
        file: String,
        line: u64,
        column: u64,
        path: String,
        message: String,
    },
    #[error("{file}: invalid topology ({} problem{}):\n{}", problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("  {file}: {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

/// One thing wrong with a topology, at a path such as `racks[0].nodes[1].address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Whether a router is a spine or a leaf (ToR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouterRole {
    Spine,
    Leaf,
}

impl RouterRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RouterRole::Spine => "spine",
            RouterRole::Leaf => "leaf",
        }
    }
}

/// A routed interface of a router, from a link or a rack gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub address: Ipv4Net,
    pub mtu: u32,
}

/// A BGP session a router is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The device at the other end (a router or a Kubernetes node).
    pub device: String,
    pub address: Ipv4Addr,
    pub asn: u32,
    /// A rack node this router reflects routes to.
    pub rr_client: bool,
}

/// The most an input file (topology, Calico resources) may hold.
pub const MAX_INPUT_BYTES: u64 = 8 << 20;

/// Reads a text input file, refusing one larger than [`MAX_INPUT_BYTES`] (or endless,
/// like `/dev/zero`) before it fills memory.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, too large for an input file",
                MAX_INPUT_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

impl Topology {
    /// Parses and validates a topology; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, TopologyError> {
        let topology = parse(text, file)?;
        let problems = validate::problems(&topology);
        if problems.is_empty() {
            Ok(topology)
        } else {
            Err(TopologyError::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let file = path.display().to_string();
        let text = read_input(path).map_err(|source| TopologyError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_yaml(&text, &file)
    }

    /// The embedded seed lab.
    pub fn seed() -> Self {
        Self::from_yaml(SEED_TOPOLOGY_YAML, SEED_TOPOLOGY_FILE)
            .unwrap_or_else(|e| panic!("the embedded seed topology is invalid: {e}"))
    }

    /// The file at `path`, or the embedded seed lab.
    pub fn load_or_seed(path: Option<&Path>) -> Result<Self, TopologyError> {
        match path {
            Some(path) => Self::load(path),
            None => Ok(Self::seed()),
        }
    }

    /// The Calico version the cluster runs (`calico.version`, checked by validation).
    pub fn calico_version(&self) -> crate::calico::CalicoVersion {
        self.calico.version.parse().unwrap_or_default()
    }

    /// A short hash of the whole model: labs built from equal models share it.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&canonical)[..6])
    }

    pub fn routers(&self) -> impl Iterator<Item = (RouterRole, &Router)> {
        self.spines
            .iter()
            .map(|r| (RouterRole::Spine, r))
            .chain(self.leafs.iter().map(|r| (RouterRole::Leaf, r)))
    }

    pub fn router(&self, name: &str) -> Option<(RouterRole, &Router)> {
        self.routers().find(|(_, r)| r.name == name)
    }

    /// Every Kubernetes node with its rack.
    pub fn nodes(&self) -> impl Iterator<Item = (&Rack, &Node)> {
        self.racks
            .iter()
            .flat_map(|rack| rack.nodes.iter().map(move |node| (rack, node)))
    }

    pub fn rack_of_leaf<'a>(&'a self, leaf: &'a str) -> impl Iterator<Item = &'a Rack> + 'a {
        self.racks.iter().filter(move |r| r.leaf == leaf)
    }

    /// A node's Kubernetes labels: its rack's, then its own.
    pub fn node_labels(&self, rack: &Rack, node: &Node) -> BTreeMap<String, String> {
        let mut labels = rack.labels.clone();
        labels.extend(node.labels.clone());
        labels
    }

    /// A node's BGP AS: it is an iBGP client of its rack leaf.
    pub fn node_asn(&self, rack: &Rack) -> u32 {
        self.router(&rack.leaf)
            .map(|(_, leaf)| leaf.asn)
            .or(self.calico.as_number)
            .unwrap_or(64512)
    }

    /// A router's interfaces: its link ends, then its rack gateways.
    pub fn interfaces(&self, router: &str) -> Vec<Interface> {
        let links = self.links.iter().flat_map(|link| {
            link.endpoints
                .iter()
                .filter(|e| e.device == router)
                .map(|e| Interface {
                    name: e.interface.clone(),
                    address: e.address,
                    mtu: link.mtu,
                })
        });
        let racks = self.rack_of_leaf(router).map(|rack| Interface {
            name: rack.leaf_interface.clone(),
            address: Ipv4Net::new(rack.gateway, rack.subnet.prefix_len()).unwrap_or(rack.subnet),
            mtu: 1500,
        });
        links.chain(racks).collect()
    }

    /// A router's BGP sessions: the far end of each link, then its racks' nodes.
    pub fn bgp_neighbors(&self, router: &str) -> Vec<Neighbor> {
        let mut neighbors: Vec<Neighbor> = self
            .links
            .iter()
            .filter_map(|link| {
                let [a, b] = &link.endpoints;
                let far = if a.device == router {
                    b
                } else if b.device == router {
                    a
                } else {
                    return None;
                };
                let (_, peer) = self.router(&far.device)?;
                Some(Neighbor {
                    device: far.device.clone(),
                    address: far.address.addr(),
                    asn: peer.asn,
                    rr_client: false,
                })
            })
            .collect();
        for rack in self.rack_of_leaf(router) {
            let asn = self.node_asn(rack);
            neighbors.extend(rack.nodes.iter().map(|node| Neighbor {
                device: node.name.clone(),
                address: node.address,
                asn,
                rr_client: true,
            }));
        }
        neighbors
    }

    /// The subnets a router announces: every connected one, in address order.
    pub fn announced_networks(&self, router: &str) -> Vec<Ipv4Net> {
        let mut nets: Vec<Ipv4Net> = self
            .interfaces(router)
            .iter()
            .map(|i| i.address.trunc())
            .collect();
        nets.sort();
        nets.dedup();
        nets
    }
}

/// Parses YAML into the model, naming the line, column and path of the first error.
/// A YAML parser message without its advice to programmers (which options of the
/// parser library to set).
pub fn plain_yaml_message(message: &str) -> String {
    match message {
        m if m.starts_with("duplicate mapping key") => m
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(m)
            .to_string(),
        m if m.starts_with("multiple YAML documents detected") => {
            "more than one YAML document (`---`): a topology is one document".into()
        }
        m => m.to_string(),
    }
}

fn parse(text: &str, file: &str) -> Result<Topology, TopologyError> {
    let mut track = serde_path_to_error::Track::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde::Deserialize::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    result.map_err(|err| {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let path = track.path().to_string();
        let message = err.without_snippet().to_string();
        // saphyr already prefixes its own location; keep the message once.
        let message = message
            .rsplit_once(" at line ")
            .map(|(m, _)| m.to_string())
            .unwrap_or(message);
        TopologyError::Parse {
            file: file.to_string(),
            line,
            column,
            path: if path == "." || path == "?" {
                "(top)".into()
            } else {
                path
            },
            message: plain_yaml_message(&message),
        }
    })
}
