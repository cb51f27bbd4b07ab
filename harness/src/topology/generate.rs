//! Generated leaf/spine fabrics in the seed's conventions: one leaf per rack, every
//! leaf linked to every spine, nodes named as kind names them, one BGPPeer per rack.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{
    BgpPeer, Calico, Endpoint, Kubernetes, Link, Node, NodeRole, Rack, Router, RouterRuntime,
    Topology, TopologyError,
};

/// The shape of a generated fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub racks: u32,
    pub nodes_per_rack: u32,
    pub spines: u32,
    pub pods_per_node: u32,
    pub leafs_per_rack: u32,
    pub name: Option<String>,
    pub calico_version: String,
}

/// Why a shape cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("--{what} must be between {min} and {max}, not {value}")]
    OutOfRange {
        what: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error(
        "--leafs-per-rack {0}: a rack has one leaf (its ToR and route reflector) in this model"
    )]
    LeafsPerRack(u32),
    #[error("{racks} racks x {nodes} nodes is {total} nodes; at most {MAX_NODES} are generated")]
    TooManyNodes { racks: u32, nodes: u32, total: u32 },
    #[error("--name '{0}': 1 to {MAX_NAME} lower-case letters, digits and '-' (node names add '-control-plane')")]
    Name(String),
}

/// Racks get `10.10.<rack>.0/24` and leafs AS 65001 + rack: 250 racks at most.
pub const MAX_RACKS: u32 = 250;
/// Nodes take .10 upwards of their rack's /24.
pub const MAX_NODES_PER_RACK: u32 = 200;
/// Spines take AS 65500 + index, below 65535.
pub const MAX_SPINES: u32 = 32;
pub const MAX_PODS_PER_NODE: u32 = 50;
/// Pods take /26 blocks of 10.128.0.0/12 (16384 blocks) above 1024 nodes.
pub const MAX_NODES: u32 = 4096;
/// Lab names are at most 40 characters and kind adds `-control-plane`.
pub const MAX_NAME: usize = 26;

fn range(what: &'static str, value: u32, min: u32, max: u32) -> Result<(), ShapeError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ShapeError::OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

/// The address of a /30 leaf-spine link's end (`end` 1 or 2) for link `k`.
fn link_address(k: u32, end: u32) -> Ipv4Net {
    let base = u32::from(Ipv4Addr::new(10, 20, 0, 0)) + k * 4 + end;
    Ipv4Net::new(Ipv4Addr::from(base), 30).expect("prefix 30 is valid")
}

impl Shape {
    /// `racks` racks of `nodes_per_rack` nodes under `spines` spines, otherwise as
    /// `calico-lab generate` makes it by default: two pods per node, one leaf per
    /// rack, the seed's Calico version, the name derived from the shape.
    pub fn leaf_spine(racks: u32, nodes_per_rack: u32, spines: u32) -> Shape {
        Shape {
            racks,
            nodes_per_rack,
            spines,
            pods_per_node: 2,
            leafs_per_rack: 1,
            name: None,
            calico_version: crate::calico::CalicoVersion::SEED.to_string(),
        }
    }

    /// The topology of this shape, validated as every topology file is.
    pub fn topology(&self) -> Result<Topology, GenerateError> {
        range("racks", self.racks, 1, MAX_RACKS)?;
        range("nodes-per-rack", self.nodes_per_rack, 1, MAX_NODES_PER_RACK)?;
        range("spines", self.spines, 1, MAX_SPINES)?;
        // A node without pods leaves every data-path scenario nothing to check.
        range("pods-per-node", self.pods_per_node, 1, MAX_PODS_PER_NODE)?;
        let total = self.racks * self.nodes_per_rack;
        if total > MAX_NODES {
            return Err(ShapeError::TooManyNodes {
                racks: self.racks,
                nodes: self.nodes_per_rack,
                total,
            }
            .into());
        }
        if self.leafs_per_rack != 1 {
            return Err(ShapeError::LeafsPerRack(self.leafs_per_rack).into());
        }
        let name = self.name.clone().unwrap_or_else(|| {
            format!("gen-{}x{}x{}", self.racks, self.nodes_per_rack, self.spines)
        });
        if name.len() > MAX_NAME || !super::is_dns_label(&name) {
            return Err(ShapeError::Name(name).into());
        }
        let spines: Vec<Router> = (0..self.spines)
            .map(|s| Router {
                name: format!("spine{s}"),
                asn: 65500 + s,
                // Its first link's address, as the seed's spines.
                router_id: link_address(s, 2).addr(),
            })
            .collect();
        let mut leafs = Vec::new();
        let mut racks = Vec::new();
        let mut links = Vec::new();
        let mut peers = Vec::new();
        let mut workers = 0;
        for r in 0..self.racks {
            let subnet = Ipv4Net::new(Ipv4Addr::new(10, 10, r as u8, 0), 24).expect("/24");
            let gateway = Ipv4Addr::new(10, 10, r as u8, 1);
            let leaf = format!("leaf{r}");
            let asn = 65001 + r;
            leafs.push(Router {
                name: leaf.clone(),
                asn,
                router_id: gateway,
            });
            for s in 0..self.spines {
                let k = r * self.spines + s;
                links.push(Link {
                    endpoints: [
                        Endpoint {
                            device: leaf.clone(),
                            interface: format!("eth{}", s + 1),
                            address: link_address(k, 1),
                        },
                        Endpoint {
                            device: format!("spine{s}"),
                            interface: format!("eth{}", r + 1),
                            address: link_address(k, 2),
                        },
                    ],
                    mtu: 1500,
                });
            }
            let nodes = (0..self.nodes_per_rack)
                .map(|n| {
                    let (role, node_name) = if r == 0 && n == 0 {
                        (NodeRole::ControlPlane, format!("{name}-control-plane"))
                    } else {
                        workers += 1;
                        let suffix = if workers == 1 {
                            String::new()
                        } else {
                            workers.to_string()
                        };
                        (NodeRole::Worker, format!("{name}-worker{suffix}"))
                    };
                    let pods = (self.pods_per_node != 2).then(|| {
                        (1..=self.pods_per_node)
                            .map(|p| format!("{node_name}-pod{p}"))
                            .collect()
                    });
                    Node {
                        name: node_name,
                        role,
                        address: Ipv4Addr::new(10, 10, r as u8, 10 + n as u8),
                        interface: "net0".into(),
                        labels: BTreeMap::new(),
                        pods,
                    }
                })
                .collect();
            racks.push(Rack {
                name: format!("rack{r}"),
                leaf: leaf.clone(),
                leaf_interface: format!("eth{}", self.spines + 1),
                gateway,
                subnet,
                bridge: format!("br-rack{r}"),
                labels: BTreeMap::from([("rack".to_string(), format!("rack{r}"))]),
                nodes,
            });
            peers.push(BgpPeer {
                name: format!("rack{r}-to-{leaf}"),
                peer_ip: gateway,
                as_number: asn,
                node_selector: Some(format!("rack == 'rack{r}'")),
                node: None,
            });
        }
        let t = Topology {
            name,
            kubernetes: Kubernetes::default(),
            calico: Calico {
                version: self.calico_version.clone(),
                manifest_url: None,
                manifest_sha256: None,
                // 1024 blocks of /26 in the seed's pool; a wider one above that.
                pod_cidr: if total <= 1024 {
                    "10.244.0.0/16"
                } else {
                    "10.128.0.0/12"
                }
                .parse()
                .expect("valid"),
                block_size: 26,
                ipip_mode: "Never".into(),
                vxlan_mode: "Never".into(),
                node_to_node_mesh_enabled: false,
                as_number: None,
                log_severity_screen: "Info".into(),
                service_cluster_ips: vec!["10.96.0.0/16".parse().expect("valid")],
                service_external_ips: vec![],
                bgp_peers: peers,
            },
            spines,
            leafs,
            racks,
            links,
            routers: RouterRuntime::default(),
        };
        // The same checks as a hand-written file: what is generated loads.
        let text = t.to_yaml();
        Ok(Topology::from_yaml(&text, "generated topology")?)
    }
}

/// Why `generate` failed: the shape, or (a bug) the generated file.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Invalid(#[from] TopologyError),
}

impl Topology {
    /// The topology as a YAML file.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(racks: u32, nodes: u32, spines: u32) -> Shape {
        Shape::leaf_spine(racks, nodes, spines)
    }

    #[test]
    fn generated_shapes_are_valid_and_have_what_was_asked() {
        for (r, n, s) in [
            (1, 1, 1),
            (2, 2, 2),
            (8, 8, 2),
            (16, 8, 2),
            (32, 8, 2),
            (3, 5, 4),
            (64, 20, 2),
        ] {
            let t = shape(r, n, s).topology().unwrap();
            assert_eq!(t.racks.len() as u32, r);
            assert_eq!(t.spines.len() as u32, s);
            assert_eq!(t.leafs.len() as u32, r);
            assert_eq!(t.nodes().count() as u32, r * n);
            assert_eq!(t.links.len() as u32, r * s);
            assert_eq!(t.calico.bgp_peers.len() as u32, r);
            // kind's names, in topology order.
            assert_eq!(
                t.nodes().map(|(_, n)| n.name.clone()).collect::<Vec<_>>(),
                crate::render::kind_assigned_names(&t)
            );
            // Every leaf reaches every spine.
            for leaf in &t.leafs {
                assert_eq!(t.interfaces(&leaf.name).len() as u32, s + 1);
            }
        }
    }

    #[test]
    fn pods_per_node_and_the_name_are_honoured() {
        let mut sh = shape(2, 2, 2);
        sh.pods_per_node = 3;
        sh.name = Some("big".into());
        let t = sh.topology().unwrap();
        assert_eq!(t.name, "big");
        let (_, first) = t.nodes().next().unwrap();
        assert_eq!(
            first.pod_names(),
            [
                "big-control-plane-pod1",
                "big-control-plane-pod2",
                "big-control-plane-pod3"
            ]
        );
    }

    #[test]
    fn impossible_shapes_are_refused() {
        for (sh, what) in [
            (shape(0, 1, 1), "--racks"),
            (shape(251, 1, 1), "--racks"),
            (shape(1, 0, 1), "--nodes-per-rack"),
            (shape(1, 201, 1), "--nodes-per-rack"),
            (shape(1, 1, 0), "--spines"),
            (shape(1, 1, 33), "--spines"),
            (
                Shape {
                    leafs_per_rack: 2,
                    ..shape(1, 1, 1)
                },
                "--leafs-per-rack",
            ),
            (
                Shape {
                    calico_version: "v4.0.0".into(),
                    ..shape(1, 1, 1)
                },
                "v4.0.0",
            ),
            (
                Shape {
                    name: Some("Bad_Name".into()),
                    ..shape(1, 1, 1)
                },
                "Bad_Name",
            ),
            (
                Shape {
                    name: Some("a".repeat(27)),
                    ..shape(1, 1, 1)
                },
                "--name",
            ),
            (
                Shape {
                    pods_per_node: 0,
                    ..shape(1, 1, 1)
                },
                "--pods-per-node",
            ),
            (shape(250, 200, 2), "at most 4096"),
        ] {
            let err = sh.topology().unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
    }
}
