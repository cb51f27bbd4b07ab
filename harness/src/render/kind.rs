//! kind cluster config, as the seed lab creates its cluster.

use crate::topology::{NodeRole, Topology};

/// The kind `Cluster` config: no default CNI, Calico's pod CIDR, and per node its
/// kubelet `node-ip` and labels.
pub fn kind_config(t: &Topology) -> String {
    let mut c = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {}\nnetworking:\n  disableDefaultCNI: true\n  podSubnet: \"{}\"\nnodes:\n",
        t.name, t.calico.pod_cidr
    );
    let mut first_control_plane = true;
    for (rack, node) in t.nodes() {
        // kubeadm initialises the first control-plane node; every other node joins.
        let kubeadm_kind = if node.role == NodeRole::ControlPlane && first_control_plane {
            first_control_plane = false;
            "InitConfiguration"
        } else {
            "JoinConfiguration"
        };
        let labels = t
            .node_labels(rack, node)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        c += &format!(
            "- role: {}\n  image: {}\n  kubeadmConfigPatches:\n  - |\n    kind: {kubeadm_kind}\n    nodeRegistration:\n      kubeletExtraArgs:\n        node-ip: {}\n        node-labels: {}\n",
            node.role.as_str(),
            t.kubernetes.node_image,
            node.address,
            serde_json::Value::String(labels),
        );
    }
    c
}

/// The node names kind gives this config's nodes (`<cluster>-control-plane`,
/// `<cluster>-worker`, `<cluster>-worker2`, ...), in topology order.
pub fn kind_assigned_names(t: &Topology) -> Vec<String> {
    let (mut control_planes, mut workers) = (0, 0);
    t.nodes()
        .map(|(_, node)| {
            let (base, count) = match node.role {
                NodeRole::ControlPlane => ("control-plane", &mut control_planes),
                NodeRole::Worker => ("worker", &mut workers),
            };
            *count += 1;
            if *count == 1 {
                format!("{}-{base}", t.name)
            } else {
                format!("{}-{base}{count}", t.name)
            }
        })
        .collect()
}
