//! The Kubernetes objects the kind flavor sends: Calico's objects in the Kubernetes
//! datastore (no calicoctl), node annotations, the test pods.

use serde_json::{json, Map, Value};

use crate::backend::docker::icmp_unlimited_args;
use crate::calico::resources::CalicoError;
use crate::topology::Topology;

/// The namespace of the test pods.
pub const POD_NAMESPACE: &str = "calico-lab";
/// Label on every test pod: the lab it belongs to.
pub const POD_LAB_LABEL: &str = "calico-lab.io/lab";

/// The Calico object kinds the Kubernetes datastore holds as CRDs (group
/// `crd.projectcalico.org`, version `v1`, cluster-scoped), with the same spec as
/// `projectcalico.org/v3`.
const CRD_KINDS: &[&str] = &[
    "BGPConfiguration",
    "BGPPeer",
    "BGPFilter",
    "IPPool",
    "FelixConfiguration",
];

/// Metadata the cluster owns: sending it back would be refused or overwrite.
const SERVER_FIELDS: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
];

/// Converts a multi-document stream of Calico (`projectcalico.org/v3`) and
/// Kubernetes objects into what the cluster stores: Calico objects as their CRDs,
/// a Calico `Node` as annotations and labels on the Kubernetes Node
/// (`projectcalico.org/ASNumber`, `projectcalico.org/IPv4Address`), Kubernetes
/// objects as they are. `file` names the source in errors.
pub fn cluster_objects(yaml: &str, file: &str) -> Result<Vec<Value>, CalicoError> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(yaml).map_err(|e| CalicoError::Yaml {
            file: file.to_string(),
            message: crate::topology::plain_yaml_message(&e.to_string()),
        })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().flatten().enumerate() {
        let items = match doc.get("items").and_then(Value::as_array) {
            Some(items) if kind(&doc).ends_with("List") => items.clone(),
            _ => vec![doc],
        };
        for item in items {
            out.push(convert(item).map_err(|message| CalicoError::Document {
                file: file.to_string(),
                document: i + 1,
                message,
            })?);
        }
    }
    Ok(out)
}

fn kind(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn convert(mut object: Value) -> Result<Value, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or("an object without apiVersion")?
        .to_string();
    let kind = kind(&object).to_string();
    if kind.is_empty() {
        return Err("an object without kind".into());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{kind} without metadata.name"))?
        .to_string();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_FIELDS {
            meta.remove(*field);
        }
    }
    match api_version.as_str() {
        "projectcalico.org/v3" if kind == "Node" => node_annotations(&object, &name),
        "projectcalico.org/v3" if CRD_KINDS.contains(&kind.as_str()) => {
            object["apiVersion"] = json!("crd.projectcalico.org/v1");
            Ok(object)
        }
        "projectcalico.org/v3" => Err(format!(
            "{kind} {name}: on the kind flavor Calico itself manages {kind} objects"
        )),
        _ => Ok(object),
    }
}

/// The Calico Node fields the Kubernetes datastore keeps as annotations on the
/// Kubernetes Node (libcalico-go's node conversion).
const NODE_ANNOTATIONS: &[(&str, &str)] = &[
    ("asNumber", "projectcalico.org/ASNumber"),
    ("ipv4Address", "projectcalico.org/IPv4Address"),
    ("ipv6Address", "projectcalico.org/IPv6Address"),
    ("ipv4IPIPTunnelAddr", "projectcalico.org/IPv4IPIPTunnelAddr"),
    (
        "routeReflectorClusterID",
        "projectcalico.org/RouteReflectorClusterID",
    ),
];

/// Node spec fields Kubernetes itself owns on the kind flavor (addresses, the
/// orchestrator reference): accepted and left to it.
const NODE_FIELDS_OWNED_BY_KUBERNETES: &[&str] = &["addresses", "orchRefs"];

/// A Calico Node's BGP settings as the annotations calico-node reads on the
/// Kubernetes Node, and its labels as the Node's labels; a field the datastore
/// cannot hold that way is an error, never dropped.
fn node_annotations(node: &Value, name: &str) -> Result<Value, String> {
    let mut annotations = Map::new();
    let spec = node
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(field) = spec
        .keys()
        .find(|f| *f != "bgp" && !NODE_FIELDS_OWNED_BY_KUBERNETES.contains(&f.as_str()))
    {
        return Err(format!(
            "Node {name}: spec.{field} cannot be set on the kind flavor (only spec.bgp)"
        ));
    }
    let bgp = spec
        .get("bgp")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (field, value) in &bgp {
        let Some((_, annotation)) = NODE_ANNOTATIONS.iter().find(|(f, _)| f == field) else {
            return Err(format!(
                "Node {name}: spec.bgp.{field} has no annotation in the Kubernetes datastore"
            ));
        };
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        annotations.insert(annotation.to_string(), json!(text));
    }
    let mut metadata = json!({ "name": name, "annotations": annotations });
    if let Some(labels) = node.pointer("/metadata/labels") {
        metadata["labels"] = labels.clone();
    }
    Ok(json!({ "apiVersion": "v1", "kind": "Node", "metadata": metadata }))
}

/// The namespace and one pod per topology pod, pinned to its node.
pub fn test_pods(t: &Topology, lab: &str) -> Vec<Value> {
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": POD_NAMESPACE, "labels": { POD_LAB_LABEL: lab } },
    })];
    let icmp_command: Vec<String> = ["sysctl".to_string(), "-w".to_string()]
        .into_iter()
        .chain(icmp_unlimited_args())
        .collect();
    for (_, node) in t.nodes() {
        for pod in node.pod_names() {
            out.push(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod,
                    "namespace": POD_NAMESPACE,
                    "labels": { POD_LAB_LABEL: lab },
                },
                "spec": {
                    "nodeName": node.name,
                    "terminationGracePeriodSeconds": 0,
                    // The pod answers every probe of a traceroute, however many
                    // run at once (its namespace's ICMP limits lifted).
                    "initContainers": [{
                        "name": "icmp-limits",
                        "image": t.kubernetes.pod_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": icmp_command.clone(),
                        "securityContext": { "privileged": true },
                    }],
                    "containers": [{
                        "name": "probe",
                        "image": t.kubernetes.pod_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "infinity"],
                    }],
                },
            }));
        }
    }
    out
}

/// An object as YAML (for the dry run and the artifacts).
pub fn to_yaml(object: &Value) -> String {
    serde_saphyr::to_string(object).unwrap_or_else(|_| object.to_string())
}

/// `apiVersion`, `kind`, namespace (empty: cluster-scoped) and name of an object.
pub fn identity(object: &Value) -> (String, String, String, String) {
    let field = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/namespace"),
        field("/metadata/name"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_objects_become_crds_and_node_annotations() {
        let yaml = "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: rack0, resourceVersion: '12' }
spec: { peerIP: 10.1.5.1, asNumber: 65005, nodeSelector: rack == 'rack0' }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n1, labels: { rack: rack0 } }
spec: { bgp: { asNumber: 65005, ipv4Address: 10.1.5.10/24 } }
---
apiVersion: v1
kind: Secret
metadata: { name: pw, namespace: kube-system }
stringData: { password: x }
";
        let objects = cluster_objects(yaml, "t.yaml").unwrap();
        assert_eq!(objects[0]["apiVersion"], "crd.projectcalico.org/v1");
        assert_eq!(objects[0]["spec"]["asNumber"], 65005);
        assert!(objects[0]["metadata"].get("resourceVersion").is_none());
        assert_eq!(
            objects[1],
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "n1",
            "labels": {"rack": "rack0"},
            "annotations": {
                "projectcalico.org/ASNumber": "65005",
                "projectcalico.org/IPv4Address": "10.1.5.10/24",
            }}})
        );
        assert_eq!(objects[2]["kind"], "Secret");
    }

    #[test]
    fn ipam_objects_and_nameless_objects_are_refused() {
        let err = cluster_objects(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: b}\nspec: {}\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("Calico itself manages BlockAffinity"), "{err}");
        let err = cluster_objects("apiVersion: v1\nkind: Secret\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without metadata.name"), "{err}");
    }

    #[test]
    fn every_bgp_field_of_a_node_becomes_its_annotation_or_an_error() {
        let yaml = "apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n1 }
spec:
  bgp: { routeReflectorClusterID: 224.0.0.1, ipv6Address: fd00::1/64 }
  addresses: [{ address: 10.1.5.10, type: InternalIP }]
";
        let node = &cluster_objects(yaml, "t").unwrap()[0];
        let annotations = &node["metadata"]["annotations"];
        assert_eq!(
            annotations["projectcalico.org/RouteReflectorClusterID"],
            "224.0.0.1"
        );
        assert_eq!(annotations["projectcalico.org/IPv6Address"], "fd00::1/64");
        for (spec, field) in [
            ("{ bgp: { asPathPrepend: 3 } }", "spec.bgp.asPathPrepend"),
            (
                "{ wireguard: { interfaceIPv4Address: 10.0.0.1 } }",
                "spec.wireguard",
            ),
        ] {
            let yaml = format!("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{ name: n1 }}\nspec: {spec}\n");
            let err = cluster_objects(&yaml, "t").unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn lists_are_flattened() {
        let yaml = "apiVersion: projectcalico.org/v3
kind: BGPPeerList
items:
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: { name: a }
  spec: { peerIP: 10.0.0.1, asNumber: 1 }
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: { name: b }
  spec: { peerIP: 10.0.0.2, asNumber: 1 }
";
        let names: Vec<_> = cluster_objects(yaml, "t")
            .unwrap()
            .iter()
            .map(|o| identity(o).3)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
