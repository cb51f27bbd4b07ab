//! The kind lab's Kubernetes API: server-side apply of any object, waits, pods,
//! logs, and exec in pods behind the harness's own trait.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod as KubePod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, AttachParams, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams,
};
use kube::core::GroupVersion;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use super::objects::{identity, POD_LAB_LABEL, POD_NAMESPACE};
use super::plan::Wait;
use crate::backend::{ExecOutput, Pod};
use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};
use crate::wait::{self, Budget};

/// The field manager of every object the harness applies.
pub const FIELD_MANAGER: &str = "calico-lab";
/// Where the manifest install runs calico-node.
pub const CALICO_NAMESPACE: &str = "kube-system";

/// Runs a command in a pod's container and waits for it.
#[async_trait]
pub trait PodExec: Send + Sync {
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
    ) -> Result<ExecOutput>;
}

/// A kind cluster's API.
pub struct Cluster {
    client: Client,
    discovery: Mutex<Option<Discovery>>,
}

fn kube_error(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let context = context.into();
    move |source| Error::Kube {
        context,
        source: Box::new(source),
    }
}

impl Cluster {
    /// The cluster of the lab's kubeconfig (context `kind-<cluster>`).
    pub async fn connect(kubeconfig: &Path, cluster: &str) -> Result<Cluster> {
        let config_err = |e: String| Error::Environment {
            what: format!("kubeconfig {}: {e}", kubeconfig.display()),
            fix: format!("`kind get kubeconfig --name {cluster}` tells whether the cluster exists"),
        };
        let file = kube::config::Kubeconfig::read_from(kubeconfig)
            .map_err(|e| config_err(e.to_string()))?;
        let options = kube::config::KubeConfigOptions {
            context: Some(format!("kind-{cluster}")),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| config_err(e.to_string()))?;
        let client = Client::try_from(config).map_err(kube_error("Kubernetes client"))?;
        Ok(Cluster::new(client))
    }

    pub fn new(client: Client) -> Cluster {
        Cluster {
            client,
            discovery: Mutex::new(None),
        }
    }

    /// What serves `apiVersion`/`kind`; discovery runs again on a miss (CRDs appear
    /// as the manifest is applied).
    async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities)> {
        let gvk = api_version
            .parse::<GroupVersion>()
            .map_err(|e| Error::Lab {
                lab: String::new(),
                message: format!("apiVersion {api_version:?}: {e}"),
            })?
            .with_kind(kind);
        let mut cached = self.discovery.lock().await;
        if let Some(found) = cached.as_ref().and_then(|d| d.resolve_gvk(&gvk)) {
            return Ok(found);
        }
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(kube_error("API discovery"))?;
        let found = discovery.resolve_gvk(&gvk);
        *cached = Some(discovery);
        found.ok_or_else(|| Error::Lab {
            lab: String::new(),
            message: format!("the cluster serves no {kind} in {api_version}"),
        })
    }

    async fn dynamic(&self, object: &Value) -> Result<(Api<DynamicObject>, String)> {
        let (api_version, kind, namespace, name) = identity(object);
        let (resource, caps) = self.resolve(&api_version, &kind).await?;
        let api = match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            Scope::Namespaced => {
                let ns = if namespace.is_empty() {
                    "default"
                } else {
                    &namespace
                };
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
        };
        Ok((api, name))
    }

    /// Server-side applies each object in order (field manager `calico-lab`,
    /// conflicts forced: the harness owns what it applies).
    pub async fn apply(&self, objects: &[Value]) -> Result<()> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for object in objects {
            let (api, name) = self.dynamic(object).await?;
            let (_, kind, _, _) = identity(object);
            api.patch(&name, &params, &Patch::Apply(object))
                .await
                .map_err(kube_error(format!("apply {kind} {name}")))?;
        }
        Ok(())
    }

    /// Deletes an object; one already gone is fine.
    pub async fn delete(&self, object: &Value) -> Result<()> {
        let (api, name) = self.dynamic(object).await?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(kube_error(format!("delete {name}"))(e)),
        }
    }

    /// Removes one taint from a node (kubectl taint NODE KEY-).
    pub async fn untaint(&self, node: &str, key: &str) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let current = api
            .get(node)
            .await
            .map_err(kube_error(format!("get node {node}")))?;
        let taints: Vec<_> = current
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.key != key)
            .collect();
        api.patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "taints": taints } })),
        )
        .await
        .map_err(kube_error(format!("untaint node {node}")))?;
        Ok(())
    }

    /// Waits for `what` within `budget`, polling; the timeout names what was missing.
    pub async fn wait(&self, what: &Wait, budget: Duration) -> Result<Duration> {
        // A refusal (403, a bad request) will not pass by waiting: say so now.
        if let Err(e) = self.pending_or_error(what).await {
            if is_permanent(&e) {
                return Err(e);
            }
        }
        let budget = Budget::new(wait_name(what), budget);
        wait::until(&budget, || async { self.pending(what).await }).await
    }

    /// What still keeps `what` from holding (empty: it holds).
    pub async fn pending(&self, what: &Wait) -> Vec<Diagnosis> {
        match self.pending_or_error(what).await {
            Ok(pending) => pending,
            // The API may not answer yet (the control plane starting): keep waiting.
            Err(e) => vec![pending(wait_name(what), e.to_string())],
        }
    }

    async fn pending_or_error(&self, what: &Wait) -> Result<Vec<Diagnosis>> {
        Ok(match what {
            Wait::NodesRegistered(names) | Wait::NodesReady(names) => {
                let api: Api<Node> = Api::all(self.client.clone());
                let nodes = api
                    .list(&ListParams::default())
                    .await
                    .map_err(kube_error("list nodes"))?;
                let ready_only = matches!(what, Wait::NodesReady(_));
                names
                    .iter()
                    .filter_map(|name| {
                        let node = nodes
                            .items
                            .iter()
                            .find(|n| n.metadata.name.as_deref() == Some(name));
                        match node {
                            None => Some(pending(format!("node {name}"), "not registered".into())),
                            Some(n) if ready_only && !node_ready(n) => {
                                Some(pending(format!("node {name}"), "not Ready".into()))
                            }
                            Some(_) => None,
                        }
                    })
                    .collect()
            }
            Wait::CrdsEstablished(names) => {
                let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
                let mut out = Vec::new();
                for name in names {
                    let crd = api
                        .get_opt(name)
                        .await
                        .map_err(kube_error(format!("get CRD {name}")))?;
                    let established = crd.as_ref().is_some_and(|c| {
                        c.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c.type_ == "Established" && c.status == "True")
                            })
                    });
                    if !established {
                        out.push(pending(format!("CRD {name}"), "not Established".into()));
                    }
                }
                out
            }
            Wait::Rollout {
                kind,
                namespace,
                name,
            } => {
                if *kind != "DaemonSet" {
                    return Err(Error::Lab {
                        lab: String::new(),
                        message: format!("no rollout wait for {kind}"),
                    });
                }
                let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
                let ds = api
                    .get(name)
                    .await
                    .map_err(kube_error(format!("get DaemonSet {namespace}/{name}")))?;
                match daemonset_rollout(&ds) {
                    Ok(()) => vec![],
                    Err(state) => vec![pending(format!("DaemonSet {namespace}/{name}"), state)],
                }
            }
            Wait::PodsRunning { namespace, names } => {
                let api: Api<KubePod> = Api::namespaced(self.client.clone(), namespace);
                let pods = api
                    .list(&ListParams::default())
                    .await
                    .map_err(kube_error(format!("list pods in {namespace}")))?;
                names
                    .iter()
                    .filter_map(|name| {
                        let pod = pods
                            .items
                            .iter()
                            .find(|p| p.metadata.name.as_deref() == Some(name));
                        let phase = pod
                            .and_then(|p| p.status.as_ref())
                            .and_then(|s| s.phase.clone())
                            .unwrap_or_else(|| "absent".into());
                        let has_ip = pod
                            .and_then(|p| p.status.as_ref())
                            .and_then(|s| s.pod_ip.as_ref())
                            .is_some();
                        (phase != "Running" || !has_ip)
                            .then(|| pending(format!("pod {namespace}/{name}"), phase))
                    })
                    .collect()
            }
            Wait::RoutersConfigured(_) => {
                return Err(Error::Lab {
                    lab: String::new(),
                    message: "routers are waited for through Docker, not the cluster".into(),
                })
            }
        })
    }

    /// The lab's test pods as the cluster placed them.
    pub async fn test_pods(&self, lab: &str) -> Result<Vec<Pod>> {
        let api: Api<KubePod> = Api::namespaced(self.client.clone(), POD_NAMESPACE);
        let listed = api
            .list(&ListParams::default().labels(&format!("{POD_LAB_LABEL}={lab}")))
            .await
            .map_err(kube_error("list test pods"))?;
        let mut pods = Vec::new();
        for p in listed.items {
            let name = p.metadata.name.clone().unwrap_or_default();
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_ref())
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
            match (node, ip) {
                (Some(node), Some(ip)) => pods.push(Pod { name, node, ip }),
                _ => {
                    return Err(Error::Lab {
                        lab: lab.to_string(),
                        message: format!("pod {name} has no node or no IPv4 address yet"),
                    })
                }
            }
        }
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// The IPAM blocks Calico gave the nodes (BlockAffinity objects), by name.
    pub async fn block_affinities(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::calico::resources::BlockAffinitySpec>>
    {
        let (resource, _) = self
            .resolve("crd.projectcalico.org/v1", "BlockAffinity")
            .await?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let listed = api
            .list(&ListParams::default())
            .await
            .map_err(kube_error("list BlockAffinities"))?;
        listed
            .items
            .into_iter()
            .map(|o| {
                let name = o.metadata.name.clone().unwrap_or_default();
                let spec = o.data.get("spec").cloned().unwrap_or(Value::Null);
                serde_json::from_value(spec)
                    .map(|spec| (name.clone(), spec))
                    .map_err(|e| Error::Lab {
                        lab: String::new(),
                        message: format!("BlockAffinity {name}: {e}"),
                    })
            })
            .collect()
    }

    /// The calico-node pod running on `node`.
    pub async fn calico_node_pod(&self, node: &str) -> Result<String> {
        let api: Api<KubePod> = Api::namespaced(self.client.clone(), CALICO_NAMESPACE);
        let listed = api
            .list(
                &ListParams::default()
                    .labels("k8s-app=calico-node")
                    .fields(&format!("spec.nodeName={node}")),
            )
            .await
            .map_err(kube_error(format!("find calico-node on {node}")))?;
        listed
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .find_map(|p| p.metadata.name)
            .ok_or_else(|| Error::NoSuchTarget {
                lab: String::new(),
                what: "calico-node pod on node",
                name: node.to_string(),
            })
    }

    /// A container's log (the last `tail` lines).
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        tail: i64,
    ) -> Result<String> {
        let api: Api<KubePod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_string()),
            tail_lines: Some(tail),
            ..LogParams::default()
        };
        api.logs(pod, &params)
            .await
            .map_err(kube_error(format!("logs of {namespace}/{pod}")))
    }

    /// Deletes calico-node's pod on `node`; the DaemonSet recreates it from its
    /// current template. Waits until a new pod there is Ready.
    pub async fn replace_calico_node_pod(&self, node: &str, budget: Duration) -> Result<()> {
        let old = self.calico_node_pod(node).await?;
        let api: Api<KubePod> = Api::namespaced(self.client.clone(), CALICO_NAMESPACE);
        api.delete(&old, &DeleteParams::default())
            .await
            .map_err(kube_error(format!("delete pod {old}")))?;
        let budget = Budget::new(format!("calico-node on {node} replaced and Ready"), budget);
        wait::until(&budget, || async {
            match self.calico_node_pod(node).await {
                Ok(name) if name != old => match api.get(&name).await {
                    Ok(p) if pod_ready(&p) => vec![],
                    Ok(_) => vec![pending(format!("pod {name}"), "not Ready".into())],
                    Err(e) => vec![pending(format!("pod {name}"), e.to_string())],
                },
                Ok(_) => vec![pending(
                    format!("calico-node on {node}"),
                    "old pod still there".into(),
                )],
                Err(e) => vec![pending(format!("calico-node on {node}"), e.to_string())],
            }
        })
        .await
        .map(drop)
    }
}

/// An API answer no wait will change: a 4xx other than 404 (not there yet) and 429
/// (busy).
fn is_permanent(e: &Error) -> bool {
    match e {
        Error::Kube { source, .. } => {
            matches!(source.as_ref(), kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 404 && s.code != 429)
        }
        _ => false,
    }
}

fn pending(what: String, state: String) -> Diagnosis {
    Diagnosis::Pending { what, state }
}

fn wait_name(what: &Wait) -> String {
    match what {
        Wait::RoutersConfigured(_) => "routers configured".into(),
        Wait::NodesRegistered(_) => "nodes registered".into(),
        Wait::CrdsEstablished(_) => "Calico CRDs Established".into(),
        Wait::Rollout {
            kind,
            namespace,
            name,
        } => format!("{kind} {namespace}/{name} rolled out"),
        Wait::PodsRunning { .. } => "test pods running".into(),
        Wait::NodesReady(_) => "nodes Ready".into(),
    }
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ready(p: &KubePod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// kubectl's rollout status for a DaemonSet: the controller saw the latest spec,
/// every scheduled pod is updated and available.
pub fn daemonset_rollout(ds: &DaemonSet) -> std::result::Result<(), String> {
    let generation = ds.metadata.generation.unwrap_or(0);
    let Some(status) = &ds.status else {
        return Err("no status yet".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Err("the controller has not seen the latest spec".into());
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if desired == 0 {
        return Err("no pod scheduled yet".into());
    }
    if updated < desired || available < desired {
        return Err(format!(
            "{updated} of {desired} updated, {available} of {desired} available"
        ));
    }
    Ok(())
}

/// Exec through the Kubernetes API (a websocket).
pub struct KubeExec {
    client: Client,
}

impl KubeExec {
    pub fn new(cluster: &Cluster) -> KubeExec {
        KubeExec {
            client: cluster.client.clone(),
        }
    }
}

#[async_trait]
impl PodExec for KubeExec {
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
    ) -> Result<ExecOutput> {
        let api: Api<KubePod> = Api::namespaced(self.client.clone(), namespace);
        let mut params = AttachParams::default().stdout(true).stderr(true);
        if let Some(c) = container {
            params = params.container(c);
        }
        let context = format!("exec in {namespace}/{pod}: {}", cmd.join(" "));
        let mut process = api
            .exec(pod, cmd.to_vec(), &params)
            .await
            .map_err(kube_error(context.clone()))?;
        let status = process.take_status();
        let mut stdout = process.stdout();
        let mut stderr = process.stderr();
        // Drain both before join: join drops undrained readers.
        let read = |half: Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>| async move {
            let mut bytes = Vec::new();
            if let Some(mut h) = half {
                h.read_to_end(&mut bytes).await?;
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&bytes).into_owned())
        };
        let (out, err) = tokio::join!(read(stdout.take()), read(stderr.take()));
        let read_error = |e: std::io::Error| Error::Lab {
            lab: String::new(),
            message: format!("{context}: reading its output: {e}"),
        };
        let (out, err) = (out.map_err(read_error)?, err.map_err(read_error)?);
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        process.join().await.map_err(|e| Error::Lab {
            lab: String::new(),
            message: format!("{context}: {e}"),
        })?;
        Ok(ExecOutput {
            stdout: out,
            stderr: err,
            exit_code: exit_code(status.as_ref()).map_err(|message| Error::Lab {
                lab: String::new(),
                message: format!("{context}: {message}"),
            })?,
        })
    }
}

/// The exit code in an exec's final status: `Success`, or `Failure` with reason
/// `NonZeroExitCode` and the code as the `ExitCode` cause's message.
pub fn exit_code(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> std::result::Result<i64, String> {
    let Some(status) = status else {
        return Err("the exec ended without a status".into());
    };
    match status.status.as_deref() {
        Some("Success") => Ok(0),
        Some("Failure") if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|causes| {
                causes
                    .iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
                    .and_then(|c| c.message.as_ref()?.parse().ok())
            })
            .ok_or_else(|| "a non-zero exit without its code".into()),
        _ => Err(format!(
            "the command could not run: {}",
            status.message.clone().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::sync::{Arc as StdArc, Mutex as StdMutex};

    /// A request the mocked API server saw.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        uri: String,
        content_type: String,
        body: String,
    }

    /// What the mocked API server answers; `None`: 404.
    type Answer = dyn Fn(&str, &str) -> Option<Value> + Send + Sync;

    /// Discovery documents for a cluster serving core Pods and Nodes and Calico's
    /// BGPPeer and BlockAffinity.
    fn discovery(uri: &str) -> Option<Value> {
        let path = uri.split('?').next().unwrap_or(uri);
        Some(match path {
            "/api" => {
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            }
            "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "crd.projectcalico.org",
                "versions": [{"groupVersion": "crd.projectcalico.org/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "crd.projectcalico.org/v1", "version": "v1"}
            }]}),
            "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list", "patch", "delete"]},
                {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node", "verbs": ["get", "list", "patch"]}
            ]}),
            "/apis/crd.projectcalico.org/v1" => {
                json!({"kind": "APIResourceList", "groupVersion": "crd.projectcalico.org/v1", "resources": [
                    {"name": "bgppeers", "singularName": "bgppeer", "namespaced": false, "kind": "BGPPeer", "verbs": ["get", "list", "patch", "delete"]},
                    {"name": "blockaffinities", "singularName": "blockaffinity", "namespaced": false, "kind": "BlockAffinity", "verbs": ["get", "list"]}
                ]})
            }
            _ => return None,
        })
    }

    /// A cluster over a mocked API server; returns it and what the server saw.
    fn mocked(answer: StdArc<Answer>) -> (Cluster, StdArc<StdMutex<Vec<Seen>>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = StdArc::new(StdMutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().to_string();
                let uri = request.uri().to_string();
                let content_type = request
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .unwrap_or_default();
                log.lock().unwrap().push(Seen {
                    method: method.clone(),
                    uri: uri.clone(),
                    content_type,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let response = match discovery(&uri).or_else(|| answer(&method, &uri)) {
                    Some(v) => Response::builder()
                        .status(200)
                        .body(Body::from(serde_json::to_vec(&v).unwrap())),
                    None => Response::builder().status(404).body(Body::from(
                        serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})).unwrap(),
                    )),
                };
                send.send_response(response.unwrap());
            }
        });
        (Cluster::new(Client::new(service, "default")), seen)
    }

    fn echo_patch() -> StdArc<Answer> {
        StdArc::new(|method, uri| {
            (method == "PATCH").then(|| {
                let name = uri
                    .split('?')
                    .next()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string();
                json!({"apiVersion": "v1", "kind": "Object", "metadata": {"name": name}})
            })
        })
    }

    #[tokio::test]
    async fn apply_is_a_forced_server_side_apply_at_each_objects_own_path() {
        let (cluster, seen) = mocked(echo_patch());
        let peer = json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
            "metadata": {"name": "rack0"}, "spec": {"peerIP": "10.1.5.1", "asNumber": 65005}});
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p1", "namespace": "calico-lab"}, "spec": {"nodeName": "n1"}});
        cluster.apply(&[peer.clone(), pod]).await.unwrap();
        let patches: Vec<Seen> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "PATCH")
            .cloned()
            .collect();
        assert_eq!(patches.len(), 2, "{patches:?}");
        assert!(patches[0]
            .uri
            .starts_with("/apis/crd.projectcalico.org/v1/bgppeers/rack0?"));
        assert!(patches[1]
            .uri
            .starts_with("/api/v1/namespaces/calico-lab/pods/p1?"));
        for p in &patches {
            assert!(p.uri.contains("fieldManager=calico-lab"), "{}", p.uri);
            assert!(p.uri.contains("force=true"), "{}", p.uri);
            assert_eq!(p.content_type, "application/apply-patch+yaml");
        }
        let sent: Value = serde_json::from_str(&patches[0].body).unwrap();
        assert_eq!(sent, peer);
    }

    #[tokio::test]
    async fn a_kind_the_cluster_does_not_serve_is_an_error_not_a_skip() {
        let (cluster, seen) = mocked(echo_patch());
        let filter = json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPFilter", "metadata": {"name": "f"}});
        let err = cluster.apply(&[filter]).await.unwrap_err().to_string();
        assert!(err.contains("serves no BGPFilter"), "{err}");
        assert!(seen.lock().unwrap().iter().all(|s| s.method != "PATCH"));
    }

    #[tokio::test]
    async fn untaint_removes_only_that_taint() {
        let (cluster, seen) = mocked(StdArc::new(|method, uri| {
            (uri.starts_with("/api/v1/nodes/cp")).then(|| {
                let _ = method;
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp"},
                  "spec": {"taints": [
                    {"key": CONTROL_PLANE, "effect": "NoSchedule"},
                    {"key": "keep.me", "effect": "NoExecute"}]}})
            })
        }));
        cluster.untaint("cp", CONTROL_PLANE).await.unwrap();
        let seen = seen.lock().unwrap();
        let patch = seen.iter().find(|s| s.method == "PATCH").unwrap();
        assert_eq!(patch.content_type, "application/merge-patch+json");
        let body: Value = serde_json::from_str(&patch.body).unwrap();
        assert_eq!(
            body,
            json!({"spec": {"taints": [{"key": "keep.me", "effect": "NoExecute"}]}})
        );
    }
    const CONTROL_PLANE: &str = super::super::plan::CONTROL_PLANE_TAINT;

    #[tokio::test]
    async fn test_pods_are_listed_by_lab_and_a_pod_without_address_is_an_error() {
        let pods = |with_ip: bool| -> StdArc<Answer> {
            StdArc::new(move |_, uri| {
                uri.starts_with("/api/v1/namespaces/calico-lab/pods?").then(|| {
                    let mut status = json!({"phase": "Running", "podIP": "10.244.7.2"});
                    if !with_ip {
                        status = json!({"phase": "Pending"});
                    }
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                        {"metadata": {"name": "n1-pod1"}, "spec": {"nodeName": "n1", "containers": []}, "status": status}
                    ]})
                })
            })
        };
        let (cluster, seen) = mocked(pods(true));
        let listed = cluster.test_pods("lab1").await.unwrap();
        assert_eq!(
            listed,
            [Pod {
                name: "n1-pod1".into(),
                node: "n1".into(),
                ip: "10.244.7.2".parse().unwrap()
            }]
        );
        let uri = seen.lock().unwrap()[0].uri.clone();
        assert!(
            uri.contains("labelSelector=calico-lab.io%2Flab%3Dlab1"),
            "{uri}"
        );
        let (cluster, _) = mocked(pods(false));
        let err = cluster.test_pods("lab1").await.unwrap_err().to_string();
        assert!(err.contains("no node or no IPv4 address"), "{err}");
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_names_what_is_missing() {
        let (cluster, _) = mocked(StdArc::new(|_, uri| {
            uri.starts_with("/api/v1/nodes").then(|| {
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
                    {"metadata": {"name": "n1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                    {"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
                ]})
            })
        }));
        let ready = Wait::NodesReady(vec!["n1".into(), "n2".into(), "n3".into()]);
        let pending: Vec<String> = cluster
            .pending(&ready)
            .await
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            pending,
            [
                "pending: node n2: not Ready",
                "pending: node n3: not registered"
            ]
        );
        let err = cluster
            .wait(&ready, Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nodes Ready") && err.contains("node n3"),
            "{err}"
        );
        let registered = Wait::NodesRegistered(vec!["n1".into(), "n2".into()]);
        assert!(cluster.pending(&registered).await.is_empty());
    }

    #[tokio::test]
    async fn block_affinities_come_from_the_cluster() {
        let (cluster, _) = mocked(StdArc::new(|_, uri| {
            uri.starts_with("/apis/crd.projectcalico.org/v1/blockaffinities").then(|| {
                json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinityList", "metadata": {}, "items": [
                    {"apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinity",
                     "metadata": {"name": "n1-10-244-64-0-26"},
                     "spec": {"node": "n1", "cidr": "10.244.64.0/26", "state": "confirmed", "deleted": "false"}}
                ]})
            })
        }));
        let blocks = cluster.block_affinities().await.unwrap();
        assert_eq!(blocks["n1-10-244-64-0-26"].node, "n1");
        assert_eq!(
            blocks["n1-10-244-64-0-26"].cidr.to_string(),
            "10.244.64.0/26"
        );
    }

    fn daemonset(
        generation: i64,
        observed: i64,
        desired: i32,
        updated: i32,
        available: i32,
    ) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "calico-node", "generation": generation},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                "updatedNumberScheduled": updated, "numberAvailable": available,
                "currentNumberScheduled": desired, "numberMisscheduled": 0, "numberReady": available}
        }))
        .unwrap()
    }

    #[test]
    fn rollout_follows_kubectl() {
        assert!(daemonset_rollout(&daemonset(2, 2, 4, 4, 4)).is_ok());
        assert!(daemonset_rollout(&daemonset(3, 2, 4, 4, 4))
            .unwrap_err()
            .contains("latest spec"));
        assert_eq!(
            daemonset_rollout(&daemonset(2, 2, 4, 3, 4)).unwrap_err(),
            "3 of 4 updated, 4 of 4 available"
        );
        assert!(daemonset_rollout(&daemonset(2, 2, 4, 4, 2)).is_err());
        assert!(daemonset_rollout(&daemonset(1, 1, 0, 0, 0)).is_err());
    }

    #[test]
    fn exec_status_gives_the_exit_code() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
        let status = |v: Value| serde_json::from_value::<Status>(v).unwrap();
        assert_eq!(
            exit_code(Some(&status(json!({"status": "Success"})))),
            Ok(0)
        );
        let failed = status(json!({"status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}}));
        assert_eq!(exit_code(Some(&failed)), Ok(2));
        let broken = status(json!({"status": "Failure", "message": "container not found"}));
        assert!(exit_code(Some(&broken))
            .unwrap_err()
            .contains("container not found"));
        assert!(exit_code(None).is_err());
    }
}
