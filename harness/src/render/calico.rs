//! Calico resources (projectcalico.org/v3) as the seed applies them with calicoctl.

use super::yaml_scalar;
use crate::topology::Topology;

/// BGPConfiguration `default`, one Node per Kubernetes node and the BGPPeers, as one
/// multi-document YAML stream.
pub fn calico_resources(t: &Topology) -> String {
    let mut docs = documents(t, t.calico.node_to_node_mesh_enabled, true);
    docs.extend(peer_documents(t));
    docs.join("---\n")
}

/// The state of a fresh install the seed starts from, over the topology's other
/// settings: BGPConfiguration `default` with the full mesh on and each Node without
/// an AS number (the global one applies); the BGPPeers go by a delete.
pub fn full_mesh(t: &Topology) -> String {
    documents(t, true, false).join("---\n")
}

/// BGPConfiguration `default` with `mesh`, and the Nodes, with their AS numbers
/// when `node_asns`.
fn documents(t: &Topology, mesh: bool, node_asns: bool) -> Vec<String> {
    let c = &t.calico;
    let mut docs = Vec::new();

    let mut spec = format!(
        "  logSeverityScreen: {}\n  nodeToNodeMeshEnabled: {}\n",
        yaml_scalar(&c.log_severity_screen),
        mesh
    );
    if let Some(asn) = c.as_number {
        spec += &format!("  asNumber: {asn}\n");
    }
    for (field, cidrs) in [
        ("serviceClusterIPs", &c.service_cluster_ips),
        ("serviceExternalIPs", &c.service_external_ips),
    ] {
        if !cidrs.is_empty() {
            spec += &format!("  {field}:\n");
            for cidr in cidrs {
                spec += &format!("  - cidr: {cidr}\n");
            }
        }
    }
    docs.push(format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n{spec}"
    ));

    for (rack, node) in t.nodes() {
        let labels: String = t
            .node_labels(rack, node)
            .iter()
            .map(|(k, v)| format!("    {}: {}\n", yaml_scalar(k), yaml_scalar(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("  labels:\n{labels}")
        };
        let asn = if node_asns {
            format!("    asNumber: {}\n", t.node_asn(rack))
        } else {
            String::new()
        };
        docs.push(format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n{labels}  name: {name}\nspec:\n  addresses:\n  - address: {addr}\n    type: InternalIP\n  bgp:\n{asn}    ipv4Address: {addr}/{prefix}\n  orchRefs:\n  - nodeName: {name}\n    orchestrator: k8s\n",
            name = node.name,
            addr = node.address,
            prefix = rack.subnet.prefix_len(),
        ));
    }
    docs
}

/// The topology's BGPPeers alone, as one YAML stream (empty without peers).
pub fn bgp_peers(t: &Topology) -> String {
    peer_documents(t).join("---\n")
}

fn peer_documents(t: &Topology) -> Vec<String> {
    t.calico
        .bgp_peers
        .iter()
        .map(|peer| {
            let mut spec = format!(
                "  peerIP: {}\n  asNumber: {}\n",
                peer.peer_ip, peer.as_number
            );
            if let Some(node) = &peer.node {
                spec += &format!("  node: {}\n", yaml_scalar(node));
            }
            if let Some(selector) = &peer.node_selector {
                spec += &format!("  nodeSelector: {}\n", yaml_scalar(selector));
            }
            format!(
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: {}\nspec:\n{spec}",
                peer.name
            )
        })
        .collect()
}
