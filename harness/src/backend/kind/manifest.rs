//! The Calico manifest of the declared version: where it comes from, a cached
//! download with its sha256, and the patch that fits it to the topology.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::topology::Topology;

/// Why the manifest could not be had or fitted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("Calico manifest {url}: {message}")]
    Download { url: String, message: String },
    #[error("Calico manifest {url}: sha256 is {actual}, the topology expects {expected}")]
    Checksum {
        url: String,
        actual: String,
        expected: String,
    },
    #[error("Calico manifest {url}: {message}")]
    Content { url: String, message: String },
    #[error("manifest cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the manifest comes from and what the patch sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSource {
    pub version: String,
    pub url: String,
    pub sha256: Option<String>,
    /// calico-node's environment as the topology needs it, in order.
    pub env: Vec<(String, String)>,
}

/// The release's own manifest. v3.23 predates the per-tag manifest in the
/// repository; its documentation archive serves it (the seed's URL).
pub fn default_url(version: &str) -> String {
    if version.starts_with("v3.23.") {
        "https://projectcalico.docs.tigera.io/archive/v3.23/manifests/calico.yaml".into()
    } else {
        format!("https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/calico.yaml")
    }
}

impl ManifestSource {
    pub fn for_topology(t: &Topology) -> ManifestSource {
        let c = &t.calico;
        let subnets: Vec<String> = t
            .racks
            .iter()
            .map(|r| r.subnet.trunc().to_string())
            .collect();
        ManifestSource {
            version: c.version.clone(),
            url: c
                .manifest_url
                .clone()
                .unwrap_or_else(|| default_url(&c.version)),
            sha256: c.manifest_sha256.clone(),
            env: vec![
                ("CALICO_IPV4POOL_CIDR".into(), c.pod_cidr.to_string()),
                (
                    "CALICO_IPV4POOL_BLOCK_SIZE".into(),
                    c.block_size.to_string(),
                ),
                ("CALICO_IPV4POOL_IPIP".into(), c.ipip_mode.clone()),
                ("CALICO_IPV4POOL_VXLAN".into(), c.vxlan_mode.clone()),
                // The fabric address, not the kind network's.
                (
                    "IP_AUTODETECTION_METHOD".into(),
                    format!("cidr={}", subnets.join(",")),
                ),
            ],
        }
    }

    /// The dry run's account of this step.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "download {} (once; cached with its sha256{}) and patch it:\n  calico-node env:",
            self.url,
            match &self.sha256 {
                Some(s) => format!(", must be {s}"),
                None => String::new(),
            }
        );
        for (k, v) in &self.env {
            out += &format!(" {k}={v}");
        }
        out += &format!(
            "\n  images <registry>/calico/<name>:<tag> -> tag {}",
            self.version
        );
        out
    }

    fn cache_path(&self, cache: &Path) -> PathBuf {
        cache.join(format!(
            "calico-{}-{}.yaml",
            self.version,
            short_hash(&self.url)
        ))
    }

    /// Whether the cache holds this manifest with its recorded sha256.
    pub fn cached(&self, cache: &Path) -> bool {
        let path = self.cache_path(cache);
        match (
            std::fs::read_to_string(&path),
            std::fs::read_to_string(path.with_extension("sha256")),
        ) {
            (Ok(text), Ok(sum)) => sum.trim() == sha256(&text),
            _ => false,
        }
    }

    /// The manifest text: from the cache when its recorded sha256 still matches,
    /// downloaded otherwise. Returns the text and its sha256.
    pub async fn fetch(&self, cache: &Path) -> Result<(String, String), ManifestError> {
        let path = cache.join(format!(
            "calico-{}-{}.yaml",
            self.version,
            short_hash(&self.url)
        ));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let actual = sha256(&text);
            let recorded = std::fs::read_to_string(path.with_extension("sha256")).ok();
            if recorded.as_deref().map(str::trim) == Some(actual.as_str()) {
                self.check_sum(&actual)?;
                return Ok((text, actual));
            }
        }
        let text = self.download().await?;
        let actual = sha256(&text);
        self.check_sum(&actual)?;
        let cache_err = |source| ManifestError::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(cache).map_err(cache_err)?;
        std::fs::write(&path, &text).map_err(cache_err)?;
        std::fs::write(path.with_extension("sha256"), format!("{actual}\n")).map_err(cache_err)?;
        Ok((text, actual))
    }

    async fn download(&self) -> Result<String, ManifestError> {
        let err = |message: String| ManifestError::Download {
            url: self.url.clone(),
            message,
        };
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| err(e.to_string()))?;
        let response = client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !response.status().is_success() {
            return Err(err(format!("answered {}", response.status())));
        }
        response.text().await.map_err(|e| err(e.to_string()))
    }

    fn check_sum(&self, actual: &str) -> Result<(), ManifestError> {
        match &self.sha256 {
            Some(expected) if !expected.eq_ignore_ascii_case(actual) => {
                Err(ManifestError::Checksum {
                    url: self.url.clone(),
                    actual: actual.to_string(),
                    expected: expected.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The manifest's objects, patched: calico-node's environment as the topology
    /// needs it, and every Calico image at the declared version (a v3.23 archive
    /// manifest serves the newest v3.23 patch release).
    pub fn patch(&self, text: &str) -> Result<Vec<Value>, ManifestError> {
        let content = |message: String| ManifestError::Content {
            url: self.url.clone(),
            message,
        };
        let docs: Vec<Option<Value>> =
            serde_saphyr::from_multiple(text).map_err(|e| content(format!("not YAML: {e}")))?;
        let mut objects: Vec<Value> = docs.into_iter().flatten().collect();
        let mut patched = false;
        for object in &mut objects {
            for image in images(object) {
                if let Some(rewritten) =
                    at_version(image.as_str().unwrap_or_default(), &self.version)
                {
                    *image = json!(rewritten);
                }
            }
            if object["kind"] == "DaemonSet"
                && object.pointer("/metadata/name") == Some(&json!("calico-node"))
            {
                let containers = object
                    .pointer_mut("/spec/template/spec/containers")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| content("the calico-node DaemonSet has no containers".into()))?;
                let node = containers
                    .iter_mut()
                    .find(|c| c["name"] == "calico-node")
                    .ok_or_else(|| {
                        content("the calico-node DaemonSet has no calico-node container".into())
                    })?;
                set_env(node, &self.env);
                patched = true;
            }
        }
        if !patched {
            return Err(content(
                "no calico-node DaemonSet: not a Calico manifest".into(),
            ));
        }
        Ok(objects)
    }
}

/// Sets the calico-node DaemonSet's update strategy to `OnDelete`: applied, the new
/// template waits until each node's pod is deleted (a rollout node by node, by the
/// harness).
pub fn hold_calico_node_rollout(objects: &mut [Value]) -> Result<(), ManifestError> {
    let ds = objects
        .iter_mut()
        .find(|o| {
            o["kind"] == "DaemonSet" && o.pointer("/metadata/name") == Some(&json!("calico-node"))
        })
        .ok_or_else(|| ManifestError::Content {
            url: String::new(),
            message: "no calico-node DaemonSet: not a Calico manifest".into(),
        })?;
    ds["spec"]["updateStrategy"] = json!({ "type": "OnDelete" });
    Ok(())
}

/// Sets (or replaces) environment variables of a container.
fn set_env(container: &mut Value, env: &[(String, String)]) {
    if !container["env"].is_array() {
        container["env"] = json!([]);
    }
    let Some(list) = container["env"].as_array_mut() else {
        return;
    };
    for (key, value) in env {
        list.retain(|e| e["name"] != json!(key));
        list.push(json!({ "name": key, "value": value }));
    }
}

/// Every `image` of a workload's containers and init containers.
fn images(object: &mut Value) -> Vec<&mut Value> {
    let Some(spec) = object.pointer_mut("/spec/template/spec") else {
        return vec![];
    };
    let Some(spec) = spec.as_object_mut() else {
        return vec![];
    };
    spec.iter_mut()
        .filter(|(k, _)| *k == "containers" || *k == "initContainers")
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
        .filter_map(|c| c.get_mut("image"))
        .collect()
}

/// `<registry>/calico/<name>:v3.x.y` at `version`; `None` for any other image.
fn at_version(image: &str, version: &str) -> Option<String> {
    let (repository, tag) = image.rsplit_once(':')?;
    let mut parts = repository.rsplit('/');
    let (_name, org) = (parts.next()?, parts.next()?);
    (org == "calico" && tag.starts_with("v3.")).then(|| format!("{repository}:{version}"))
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn short_hash(text: &str) -> String {
    sha256(text)[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Topology {
        Topology::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/topologies/calico-bgp-rr.yaml"
        )))
        .unwrap()
    }

    fn manifest(version: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../fixtures/calico-manifests/{version}.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn node_container(objects: &[Value]) -> &Value {
        let ds = objects
            .iter()
            .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "calico-node")
            .unwrap();
        ds["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "calico-node")
            .unwrap()
    }

    fn env<'a>(container: &'a Value, key: &str) -> Vec<&'a str> {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == key)
            .map(|e| e["value"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn real_manifests_are_patched_for_the_topology() {
        let t = seed();
        for (file, version) in [("v3.24.0", "v3.24.6"), ("v3.32.1", "v3.32.1")] {
            let mut source = ManifestSource::for_topology(&t);
            source.version = version.into();
            let objects = source.patch(&manifest(file)).unwrap();
            let node = node_container(&objects);
            // Replaced, not added twice: the manifest sets IPIP Always.
            assert_eq!(env(node, "CALICO_IPV4POOL_IPIP"), ["Never"], "{file}");
            assert_eq!(env(node, "CALICO_IPV4POOL_CIDR"), ["10.244.0.0/16"]);
            assert_eq!(env(node, "CALICO_IPV4POOL_BLOCK_SIZE"), ["26"]);
            assert_eq!(
                env(node, "IP_AUTODETECTION_METHOD"),
                ["cidr=10.1.5.0/24,10.1.8.0/24"]
            );
            assert!(
                node["image"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/calico/node:{version}")),
                "{}",
                node["image"]
            );
            // Every document survives (CRDs included).
            let crds = objects
                .iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition")
                .count();
            assert!(crds > 15, "{file}: {crds} CRDs");
        }
    }

    #[test]
    fn an_upgrade_holds_calico_nodes_rollout() {
        let mut objects = ManifestSource::for_topology(&seed())
            .patch(&manifest("v3.32.1"))
            .unwrap();
        hold_calico_node_rollout(&mut objects).unwrap();
        let ds = objects
            .iter()
            .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "calico-node")
            .unwrap();
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert!(hold_calico_node_rollout(&mut []).is_err());
    }

    #[test]
    fn a_document_without_calico_node_is_refused() {
        let source = ManifestSource::for_topology(&seed());
        let err = source
            .patch("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a Calico manifest"), "{err}");
        let err = source.patch("{{{").unwrap_err().to_string();
        assert!(err.contains("not YAML"), "{err}");
    }

    #[test]
    fn only_calico_images_move_to_the_declared_version() {
        assert_eq!(
            at_version("docker.io/calico/node:v3.23.5", "v3.23.2").as_deref(),
            Some("docker.io/calico/node:v3.23.2")
        );
        assert_eq!(at_version("quay.io/other/node:v3.23.5", "v3.23.2"), None);
        assert_eq!(at_version("calico/node:master", "v3.23.2"), None);
        assert_eq!(at_version("busybox", "v3.23.2"), None);
    }

    #[test]
    fn default_urls_per_version() {
        assert!(default_url("v3.23.2").contains("archive/v3.23"));
        assert_eq!(
            default_url("v3.32.1"),
            "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/calico.yaml"
        );
    }

    #[tokio::test]
    async fn the_cache_answers_without_a_download_and_checks_the_sum() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = ManifestSource::for_topology(&seed());
        // A scheme the client refuses before any traffic: only the cache can serve it.
        source.url = "unsupported://calico.yaml".into();
        let err = source.fetch(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("unsupported://calico.yaml"), "{err}");
        let text = "kind: ConfigMap\n";
        let path = dir.path().join(format!(
            "calico-{}-{}.yaml",
            source.version,
            short_hash(&source.url)
        ));
        std::fs::write(&path, text).unwrap();
        std::fs::write(path.with_extension("sha256"), sha256(text)).unwrap();
        let (got, sum) = source.fetch(dir.path()).await.unwrap();
        assert_eq!((got.as_str(), sum.as_str()), (text, sha256(text).as_str()));
        source.sha256 = Some("00".repeat(32));
        let err = source.fetch(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("the topology expects"), "{err}");
    }
}
