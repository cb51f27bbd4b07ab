//! Calico resources (projectcalico.org/v3) as the seed applies them with calicoctl.

use super::yaml_scalar;
use crate::topology::Topology;

/// BGPConfiguration `default`, one Node per Kubernetes node and the BGPPeers, as one
/// multi-document YAML stream.
pub fn calico_resources(t: &Topology) -> String {
    let c = &t.calico;
    let mut docs = Vec::new();

    let mut spec = format!(
        "  logSeverityScreen: {}\n  nodeToNodeMeshEnabled: {}\n",
        yaml_scalar(&c.log_severity_screen),
        c.node_to_node_mesh_enabled
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
        docs.push(format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n{labels}  name: {name}\nspec:\n  addresses:\n  - address: {addr}\n    type: InternalIP\n  bgp:\n    asNumber: {asn}\n    ipv4Address: {addr}/{prefix}\n  orchRefs:\n  - nodeName: {name}\n    orchestrator: k8s\n",
            name = node.name,
            addr = node.address,
            asn = t.node_asn(rack),
            prefix = rack.subnet.prefix_len(),
        ));
    }

    docs.extend(peer_documents(t));
    docs.join("---\n")
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
