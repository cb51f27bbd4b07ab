//! The kind flavor: a kind cluster running the real calico-node, VyOS or FRR router
//! containers, wired by the same plan as the emulated flavor; bring-up follows
//! [`plan::Plan`], so `--dry-run` prints exactly what a run does.
//!
//! | module | job |
//! |---|---|
//! | [`plan`] | the bring-up as a list of steps derived from the topology |
//! | [`objects`] | the Kubernetes objects sent: Calico CRDs, node annotations, test pods |
//! | [`manifest`] | the Calico manifest: URL per version, cached download, patch |
//! | [`preflight`] | what is checked before anything is created, each with its fix |
//! | [`cluster`] | the Kubernetes API: apply, waits, pods, logs, exec |

pub mod cluster;
pub mod manifest;
pub mod objects;
pub mod plan;
pub mod preflight;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use serde_json::Value;

use self::cluster::{Cluster, KubeExec, PodExec, CALICO_NAMESPACE};
use self::manifest::ManifestSource;
use self::plan::{ContainerPlan, Plan, Settings, Step, Wait};
use self::preflight::{Environment, Needs};
use super::docker::{
    self, ContainerSpec, ExecOutput, LABEL_CALICO, LABEL_DEVICE, LABEL_FLAVOR, LABEL_LAB,
    LABEL_ROLE, LABEL_RUN, LABEL_TOPOLOGY,
};
use super::ownership::{remove_run, remove_run_blocking, sweep, RunId};
use super::{
    image, Backend, Edit, Flavor, Member, MemberRole, NodeKind, Pod, RouterKind, Running, Target,
};
use crate::calico::confd::render;
use crate::calico::emulated::CalicoState;
use crate::calico::resources::Resource;
use crate::calico::{CalicoVersion, Resources};
use crate::error::{Error, Result};
use crate::lab::Progress;
use crate::topology::Topology;
use crate::wiring::{WiringPlan, FABRIC_DEVICE};

/// The container that runs calico-node in its DaemonSet pod.
const CALICO_NODE_CONTAINER: &str = "calico-node";
/// The test pods' container.
const PROBE_CONTAINER: &str = "probe";

/// Where kind labs keep their kind config and kubeconfig:
/// `$CALICO_LAB_STATE_DIR`, else `$XDG_STATE_HOME/calico-lab`, else
/// `~/.local/state/calico-lab`; then `kind/<lab>`.
pub fn state_dir(lab: &str) -> PathBuf {
    let base = std::env::var_os("CALICO_LAB_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("calico-lab")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/calico-lab"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("calico-lab-state"));
    base.join("kind").join(lab)
}

/// Where downloaded manifests are cached.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("calico-lab/manifests")
}

/// The router kind a kind lab runs: `--routers` first, then the topology's, VyOS
/// (the seed's) by default.
pub fn router_kind(t: &Topology, asked: Option<RouterKind>) -> RouterKind {
    asked.or(t.routers.kind).unwrap_or(RouterKind::Vyos)
}

/// The settings a kind lab of `t` is brought up with.
pub fn settings(t: &Topology, lab: &str, routers: RouterKind, state: PathBuf) -> Settings {
    Settings {
        lab: lab.to_string(),
        routers,
        router_image: t
            .routers
            .image
            .clone()
            .unwrap_or_else(|| routers.default_image().to_string()),
        helper_image: image::image_tag(),
        manifest: ManifestSource::for_topology(t),
        state_dir: state,
    }
}

/// The kind flavor's requirements on the topology: kind names the nodes after the
/// cluster (`<lab>-control-plane`, `<lab>-worker`, `<lab>-worker2`, ...).
pub fn check_topology(t: &Topology, lab: &str) -> Result<()> {
    let invalid = |message: String| Error::Unsupported(format!("kind flavor: {message}"));
    if lab != t.name {
        return Err(invalid(format!(
            "lab name {lab} differs from the topology's name {} (kind names the nodes after the cluster)",
            t.name
        )));
    }
    let assigned = crate::render::kind_assigned_names(t);
    for ((_, node), kind_name) in t.nodes().zip(&assigned) {
        if node.name != *kind_name {
            return Err(invalid(format!(
                "node {} would be named {kind_name} by kind: name the nodes <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ... in topology order",
                node.name
            )));
        }
    }
    Ok(())
}

/// The Calico objects the cluster starts from: the topology's (BGPConfiguration,
/// node AS numbers, BGPPeers), or none (a fresh install's full mesh).
pub fn starting_objects(t: &Topology, state: CalicoState) -> Result<Vec<Value>> {
    match state {
        CalicoState::Installed => Ok(vec![]),
        CalicoState::Configured => Ok(objects::cluster_objects(
            &crate::render::calico_resources(t),
            "topology's Calico resources",
        )?),
    }
}

/// What `--dry-run` prints: the preflight checks and every step, with no Docker or
/// cluster call.
pub fn dry_run(
    t: &Topology,
    lab: &str,
    routers: Option<RouterKind>,
    state: CalicoState,
    state_dir: PathBuf,
) -> Result<String> {
    check_topology(t, lab)?;
    let s = settings(t, lab, router_kind(t, routers), state_dir);
    let plan = Plan::new(t, &s, starting_objects(t, state)?);
    let needs = needs(t, &s);
    let mut out = format!(
        "kind flavor, lab {lab}, routers {}, Calico {} (dry run: nothing is created)\n\npreflight: kind v{}.{} or later on PATH and no kind cluster named {lab} yet; the engine allows privileged containers; fs.inotify.max_user_watches >= {} and max_user_instances >= {}; the manifest is cached or {} answers; images present or pullable: {}\n\n",
        router_name(s.routers),
        t.calico.version,
        preflight::MIN_KIND.0,
        preflight::MIN_KIND.1,
        preflight::MIN_INOTIFY_WATCHES,
        preflight::MIN_INOTIFY_INSTANCES,
        needs.manifest_url,
        needs.images.join(", "),
    );
    out += &plan.describe();
    out += "\non teardown (drop, Ctrl-C, SIGTERM, `down`, `gc`): kind delete cluster, remove the router and fabric containers, remove the lab's state folder\n";
    Ok(out)
}

fn router_name(r: RouterKind) -> &'static str {
    match r {
        RouterKind::Vyos => "vyos",
        RouterKind::Frr => "frr",
    }
}

fn needs(t: &Topology, s: &Settings) -> Needs {
    Needs {
        cluster: s.lab.clone(),
        manifest_url: s.manifest.url.clone(),
        images: vec![
            s.router_image.clone(),
            t.kubernetes.node_image.clone(),
            t.kubernetes.pod_image.clone(),
        ],
    }
}

/// Runs the `kind` binary; its output, or an error with what it printed.
pub async fn kind(args: &[String]) -> Result<String> {
    let out = tokio::process::Command::new("kind")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Environment {
            what: format!("cannot run kind: {e}"),
            fix: "install kind v0.20 or later and put it on PATH".into(),
        })?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(Error::Lab {
            lab: String::new(),
            message: format!(
                "kind {} failed ({}): {}",
                args.join(" "),
                out.status,
                text.trim()
            ),
        })
    }
}

/// Deletes lab `name`'s kind cluster (a cluster already gone is fine).
pub async fn delete_cluster(name: &str) -> Result<()> {
    kind(&[
        "delete".into(),
        "cluster".into(),
        "--name".into(),
        name.into(),
    ])
    .await
    .map(drop)
}

/// The file that says this machine's calico-lab created lab `name`'s kind cluster:
/// only such a cluster is ever deleted (never a user's cluster of the same name).
fn created_marker(name: &str) -> PathBuf {
    state_dir(name).join("created-by-calico-lab")
}

/// Records that `run` creates lab `name`'s kind cluster (done just before `kind
/// create cluster`, once preflight found the name free).
pub fn mark_created(name: &str, run: &str) -> Result<()> {
    let dir = state_dir(name);
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let path = created_marker(name);
    std::fs::write(&path, format!("{run}\n"))
        .map_err(Error::io(format!("write {}", path.display())))
}

/// Whether calico-lab created lab `name`'s kind cluster.
pub fn created_here(name: &str) -> bool {
    created_marker(name).exists()
}

/// Removes lab `name`'s state folder (kind config, kubeconfig), if any.
pub fn remove_state(name: &str) -> Result<()> {
    let dir = state_dir(name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

/// The checks against this machine.
struct Host<'a> {
    docker: &'a Docker,
    helper_image: &'a str,
    manifest: &'a ManifestSource,
}

#[async_trait]
impl Environment for Host<'_> {
    async fn kind_version(&self) -> Result<String, String> {
        kind(&["version".into()]).await.map_err(|e| e.to_string())
    }

    async fn kind_clusters(&self) -> Result<Vec<String>, String> {
        let text = kind(&["get".into(), "clusters".into()])
            .await
            .map_err(|e| e.to_string())?;
        // "No kind clusters found." goes to stderr, which `kind()` appends.
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains(' '))
            .map(String::from)
            .collect())
    }

    async fn privileged_allowed(&self) -> Result<(), String> {
        // Start a privileged `true` and remove it: some engines create privileged
        // containers and refuse only to start them.
        let spec = ContainerSpec {
            name: format!("calico-lab-preflight-{}", std::process::id()),
            image: self.helper_image.to_string(),
            cmd: vec!["true".into()],
            privileged: true,
            labels: HashMap::from([(LABEL_LAB.to_string(), "preflight".to_string())]),
            ..ContainerSpec::default()
        };
        let result = docker::run(self.docker, &spec).await.map(drop);
        docker::remove(self.docker, std::slice::from_ref(&spec.name))
            .await
            .ok();
        result.map_err(|e| e.to_string())
    }

    fn inotify(&self) -> Option<(u64, u64)> {
        let read = |f: &str| {
            std::fs::read_to_string(format!("/proc/sys/fs/inotify/{f}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some((read("max_user_watches")?, read("max_user_instances")?))
    }

    async fn manifest_reachable(&self, url: &str) -> Result<(), String> {
        if self.manifest.cached(&cache_dir()) {
            return Ok(());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.head(url).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }

    async fn image_available(&self, image: &str) -> Result<(), String> {
        docker::pull_if_absent(self.docker, image)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Where a command of a target runs.
#[derive(Debug, Clone)]
enum Place {
    Container(String),
    Pod {
        namespace: String,
        pod: String,
        container: &'static str,
    },
}

/// A kind lab: the cluster, the router and fabric containers. Dropping it removes
/// them unless it was released.
pub struct Kind {
    docker: Docker,
    lab: String,
    run: RunId,
    topology: Topology,
    settings: Settings,
    members: Vec<Member>,
    calico_state: CalicoState,
    cluster: Option<Arc<Cluster>>,
    pod_exec: Option<Arc<dyn PodExec>>,
    pods: Vec<Pod>,
    /// The Calico objects the cluster holds (what expectations and changed nodes
    /// are computed from).
    calico: Resources,
    manifest: Vec<Value>,
    versions: BTreeMap<String, CalicoVersion>,
    released: bool,
}

impl Kind {
    /// Checks the machine, then brings the lab up step by step as [`Plan`] says;
    /// whatever was created is removed when this fails (unless kept).
    #[allow(clippy::too_many_arguments)]
    pub async fn up(
        topology: &Topology,
        lab: &str,
        calico: &Resources,
        calico_state: CalicoState,
        routers: Option<RouterKind>,
        detached: bool,
        keep_on_failure: bool,
        progress: &Progress,
    ) -> Result<Kind> {
        check_topology(topology, lab)?;
        let docker = docker::connect().await?;
        progress.step("building or finding the helper image");
        image::ensure_image(&docker).await?;
        sweep(&docker, lab).await?;
        let settings = settings(
            topology,
            lab,
            router_kind(topology, routers),
            state_dir(lab),
        );
        progress.step("preflight");
        let problems = preflight::check(
            &Host {
                docker: &docker,
                helper_image: &settings.helper_image,
                manifest: &settings.manifest,
            },
            &needs(topology, &settings),
        )
        .await;
        if !problems.is_empty() {
            return Err(Error::Preflight(problems));
        }
        let plan = Plan::new(
            topology,
            &settings,
            starting_objects(topology, calico_state)?,
        );
        let mut backend = Kind {
            docker,
            lab: lab.to_string(),
            run: if detached {
                RunId::detached()
            } else {
                RunId::current()
            },
            members: super::emulated::members(topology, lab),
            topology: topology.clone(),
            settings,
            calico_state,
            cluster: None,
            pod_exec: None,
            pods: vec![],
            calico: calico.clone(),
            manifest: vec![],
            versions: BTreeMap::new(),
            released: false,
        };
        for step in &plan.steps {
            if let Err(e) = backend.run_step(step, progress).await {
                if keep_on_failure {
                    backend.release();
                    eprintln!(
                        "calico-lab: keeping lab {lab} after a failed bring-up; remove it with `calico-lab down --name {lab}`"
                    );
                }
                return Err(e);
            }
        }
        backend.pods = backend.cluster()?.test_pods(lab).await?;
        backend.calico.block_affinities = backend.cluster()?.block_affinities().await?;
        Ok(backend)
    }

    /// The Calico objects the cluster holds, with the blocks its IPAM gave out.
    pub fn resources(&self) -> &Resources {
        &self.calico
    }

    /// A handle on a kind lab another process brought up. It never tears it down.
    pub async fn attach(
        topology: &Topology,
        lab: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(Kind, Resources)> {
        check_topology(topology, lab)?;
        let docker = docker::connect().await?;
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if label(LABEL_TOPOLOGY) != topology.hash() {
            return Err(Error::OtherTopology {
                lab: lab.to_string(),
                running: label(LABEL_TOPOLOGY),
                given: topology.hash(),
            });
        }
        let state = CalicoState::from_label(&label(LABEL_CALICO)).unwrap_or_default();
        let mut calico = crate::calico::emulated::starting_resources(topology, state)?;
        let routers = label(LABEL_ROUTERS).parse().ok();
        let settings = settings(
            topology,
            lab,
            router_kind(topology, routers),
            state_dir(lab),
        );
        if !settings.kubeconfig().exists() {
            let text = kind(&[
                "get".into(),
                "kubeconfig".into(),
                "--name".into(),
                lab.into(),
            ])
            .await?;
            std::fs::create_dir_all(&settings.state_dir).map_err(Error::io(format!(
                "create {}",
                settings.state_dir.display()
            )))?;
            std::fs::write(settings.kubeconfig(), text).map_err(Error::io(format!(
                "write {}",
                settings.kubeconfig().display()
            )))?;
        }
        let cluster = Arc::new(Cluster::connect(&settings.kubeconfig(), lab).await?);
        let pods = cluster.test_pods(lab).await?;
        calico.block_affinities = cluster.block_affinities().await?;
        let backend = Kind {
            docker,
            lab: lab.to_string(),
            run: RunId(label(LABEL_RUN)),
            members: super::emulated::members(topology, lab),
            topology: topology.clone(),
            settings,
            calico_state: state,
            pod_exec: Some(Arc::new(KubeExec::new(&cluster))),
            cluster: Some(cluster),
            pods,
            calico: calico.clone(),
            manifest: vec![],
            versions: BTreeMap::new(),
            released: true,
        };
        Ok((backend, calico))
    }

    fn cluster(&self) -> Result<&Cluster> {
        self.cluster
            .as_deref()
            .ok_or_else(|| self.error("the cluster is not up yet".into()))
    }

    fn error(&self, message: String) -> Error {
        Error::Lab {
            lab: self.lab.clone(),
            message,
        }
    }

    fn labels(&self, device: &str, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_LAB.to_string(), self.lab.clone()),
            (LABEL_DEVICE.to_string(), device.to_string()),
            (LABEL_ROLE.to_string(), role.to_string()),
            (LABEL_RUN.to_string(), self.run.0.clone()),
            (LABEL_TOPOLOGY.to_string(), self.topology.hash()),
            (
                LABEL_CALICO.to_string(),
                self.calico_state.as_str().to_string(),
            ),
            (LABEL_FLAVOR.to_string(), "kind".to_string()),
            (
                LABEL_ROUTERS.to_string(),
                router_name(self.settings.routers).to_string(),
            ),
        ])
    }

    async fn run_step(&mut self, step: &Step, progress: &Progress) -> Result<()> {
        match step {
            Step::Container(c) => {
                let role = if c.device == FABRIC_DEVICE {
                    "fabric"
                } else {
                    "router"
                };
                let spec = self.container_spec(c, role);
                match docker::run(&self.docker, &spec).await {
                    Err(Error::ContainerExists(_)) if c.device == FABRIC_DEVICE => {
                        // Another run holds the name: leave everything to it.
                        self.released = true;
                        return Err(Error::AlreadyRunning {
                            lab: self.lab.clone(),
                            run: "another process".into(),
                        });
                    }
                    other => other?,
                };
                progress.member("container running", &c.name);
            }
            Step::FetchManifest(source) => {
                progress.step("fetching the Calico manifest");
                let (text, sha) = source.fetch(&cache_dir()).await?;
                progress.member("manifest sha256", &sha);
                self.manifest = source.patch(&text)?;
            }
            Step::Kind { args, writes } => {
                if let Some((path, text)) = writes {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)
                            .map_err(Error::io(format!("create {}", dir.display())))?;
                    }
                    std::fs::write(path, text)
                        .map_err(Error::io(format!("write {}", path.display())))?;
                }
                // Preflight found no cluster of this name: the one created now is
                // ours, even if this process dies while kind creates it.
                mark_created(&self.lab, &self.run.0)?;
                progress.step(&format!("kind {}", args.join(" ")));
                kind(args).await?;
                let cluster =
                    Arc::new(Cluster::connect(&self.settings.kubeconfig(), &self.lab).await?);
                self.pod_exec = Some(Arc::new(KubeExec::new(&cluster)));
                self.cluster = Some(cluster);
            }
            Step::LoadImages { extra } => {
                let mut images = manifest_images(&self.manifest);
                images.extend(extra.iter().cloned());
                for image in &images {
                    docker::pull_if_absent(&self.docker, image).await?;
                }
                let mut args: Vec<String> = vec!["load".into(), "docker-image".into()];
                args.extend(images);
                args.extend(["--name".into(), self.lab.clone()]);
                progress.step("loading images into the nodes");
                kind(&args).await?;
            }
            Step::Wire(plan) => self.wire(plan).await?,
            Step::Untaint { node, key } => self.cluster()?.untaint(node, key).await?,
            Step::IcmpUnlimited { nodes } => {
                let mut cmd = vec!["sysctl".to_string(), "-w".to_string()];
                cmd.extend(docker::icmp_unlimited_args());
                let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                for node in nodes {
                    let m = self.member(node)?.clone();
                    let out = docker::exec(&self.docker, &m.container, &cmd).await?;
                    if !out.success() {
                        return Err(self.error(format!(
                            "{node}: {} failed: {}{}",
                            cmd.join(" "),
                            out.stdout,
                            out.stderr
                        )));
                    }
                }
            }
            Step::ApplyManifest => {
                progress.step("applying the Calico manifest");
                let manifest = std::mem::take(&mut self.manifest);
                self.cluster()?.apply(&manifest).await?;
            }
            Step::Apply { what, objects } => {
                progress.step(&format!("applying {what}"));
                self.cluster()?.apply(objects).await?;
            }
            Step::Wait { what, budget } => {
                progress.step(&format!("waiting: {what:?}"));
                match what {
                    Wait::RoutersConfigured(routers) => self.wait_routers(routers, *budget).await?,
                    other => self.cluster()?.wait(other, *budget).await.map(drop)?,
                }
            }
        }
        Ok(())
    }

    fn container_spec(&self, c: &ContainerPlan, role: &str) -> ContainerSpec {
        ContainerSpec {
            name: c.name.clone(),
            hostname: c.device.clone(),
            image: c.image.clone(),
            cmd: c.cmd.clone().unwrap_or_default(),
            labels: self.labels(&c.device, role),
            privileged: c.privileged,
            binds: c.binds.clone(),
            network_of: c.network_of.clone(),
            files: c
                .files
                .iter()
                .map(|f| (f.path.clone(), f.contents.clone().into_bytes()))
                .collect(),
            ..ContainerSpec::default()
        }
    }

    /// Runs the shared wiring plan; kind's node containers are the nodes.
    async fn wire(&self, plan: &WiringPlan) -> Result<()> {
        let mut pids = BTreeMap::new();
        for m in &self.members {
            pids.insert(
                m.device.clone(),
                docker::pid(&self.docker, &m.container).await?,
            );
        }
        let script = plan.script(&pids).map_err(|e| self.error(e))?;
        let helper = ContainerSpec {
            name: format!("{}-wiring-{}", self.lab, std::process::id()),
            hostname: "wiring".into(),
            image: self.settings.helper_image.clone(),
            cmd: vec!["sleep".into(), "120".into()],
            labels: self.labels("wiring", "helper"),
            host_pid: true,
            ..ContainerSpec::default()
        };
        let out = docker::run_once(&self.docker, &helper, &script).await?;
        if out.success() {
            Ok(())
        } else {
            Err(self.error(format!(
                "wiring failed ({}): {}{}",
                out.exit_code, out.stdout, out.stderr
            )))
        }
    }

    /// Until every router's running configuration holds `router bgp <asn>`.
    async fn wait_routers(&self, routers: &[(String, u32)], budget: Duration) -> Result<()> {
        let budget = crate::wait::Budget::new("routers configured", budget);
        crate::wait::until(&budget, || async {
            let mut pending = Vec::new();
            for (router, asn) in routers {
                let container = self.settings.container(router);
                let out = docker::exec(
                    &self.docker,
                    &container,
                    &["vtysh", "-c", "show running-config"],
                )
                .await;
                let state = match out {
                    Ok(o) if o.stdout.contains(&format!("router bgp {asn}")) => continue,
                    Ok(o) => format!("no `router bgp {asn}` yet (exit {})", o.exit_code),
                    Err(e) => e.to_string(),
                };
                pending.push(crate::diagnosis::Diagnosis::Pending {
                    what: format!("router {router}"),
                    state,
                });
            }
            pending
        })
        .await
        .map(drop)
    }

    /// Where `target` runs its commands.
    async fn place(&self, target: &Target) -> Result<Place> {
        match target {
            Target::Router(d) => {
                self.member(d)?;
                Ok(Place::Container(self.settings.container(d)))
            }
            Target::Node(d) => Ok(Place::Container(self.member(d)?.container.clone())),
            Target::CalicoNode(d) => {
                self.member(d)?;
                Ok(Place::Pod {
                    namespace: CALICO_NAMESPACE.into(),
                    pod: self.cluster()?.calico_node_pod(d).await?,
                    container: CALICO_NODE_CONTAINER,
                })
            }
            Target::Pod(p) => {
                if !self.pods.iter().any(|pod| &pod.name == p) {
                    return Err(Error::NoSuchTarget {
                        lab: self.lab.clone(),
                        what: "pod",
                        name: p.clone(),
                    });
                }
                Ok(Place::Pod {
                    namespace: objects::POD_NAMESPACE.into(),
                    pod: p.clone(),
                    container: PROBE_CONTAINER,
                })
            }
        }
    }

    fn member(&self, device: &str) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.device == device)
            .ok_or_else(|| Error::NoSuchTarget {
                lab: self.lab.clone(),
                what: "member",
                name: device.to_string(),
            })
    }

    async fn run_at(&self, place: &Place, cmd: &[&str]) -> Result<ExecOutput> {
        run_at(&self.docker, self.pod_exec.as_ref(), place, cmd).await
    }
}

async fn run_at(
    docker: &Docker,
    pod_exec: Option<&Arc<dyn PodExec>>,
    place: &Place,
    cmd: &[&str],
) -> Result<ExecOutput> {
    match place {
        Place::Container(c) => docker::exec(docker, c, cmd).await,
        Place::Pod {
            namespace,
            pod,
            container,
        } => {
            let exec = pod_exec.ok_or_else(|| Error::Lab {
                lab: String::new(),
                message: "the cluster is not up yet".into(),
            })?;
            exec.exec(namespace, pod, Some(container), cmd).await
        }
    }
}

/// Every image of the patched manifest's workloads.
fn manifest_images(objects: &[Value]) -> Vec<String> {
    let mut images: Vec<String> = objects
        .iter()
        .filter_map(|o| o.pointer("/spec/template/spec"))
        .flat_map(|spec| {
            ["containers", "initContainers"]
                .into_iter()
                .filter_map(|k| spec.get(k)?.as_array())
                .flatten()
                .filter_map(|c| c.get("image")?.as_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .collect();
    images.sort();
    images.dedup();
    images
}

/// Docker label: which router kind a kind lab runs.
pub const LABEL_ROUTERS: &str = "calico-lab.routers";

struct Spawned {
    docker: Docker,
    pod_exec: Option<Arc<dyn PodExec>>,
    place: Place,
    pid_file: String,
    output: tokio::task::JoinHandle<Result<ExecOutput>>,
}

#[async_trait]
impl Running for Spawned {
    async fn stop(self: Box<Self>) -> Result<ExecOutput> {
        let kill = super::stop_spawned(&self.pid_file);
        run_at(
            &self.docker,
            self.pod_exec.as_ref(),
            &self.place,
            &["sh", "-c", &kill],
        )
        .await?;
        let out = self.output.await.map_err(|e| Error::Lab {
            lab: String::new(),
            message: format!("a spawned command's reader failed: {e}"),
        })??;
        run_at(
            &self.docker,
            self.pod_exec.as_ref(),
            &self.place,
            &["rm", "-f", &self.pid_file],
        )
        .await?;
        Ok(out)
    }
}

#[async_trait]
impl Backend for Kind {
    fn flavor(&self) -> Flavor {
        Flavor {
            nodes: NodeKind::Kind,
            routers: self.settings.routers,
        }
    }

    fn members(&self) -> &[Member] {
        &self.members
    }

    fn run_id(&self) -> &str {
        &self.run.0
    }

    async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput> {
        let place = self.place(target).await?;
        self.run_at(&place, cmd).await
    }

    async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>> {
        static SPAWNED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid_file = format!("/tmp/calico-lab-spawned-{}-{seq}.pid", std::process::id());
        let place = self.place(target).await?;
        let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        let wrapped = super::spawned_command(&pid_file, &cmd);
        let (docker, pod_exec, in_task) =
            (self.docker.clone(), self.pod_exec.clone(), place.clone());
        let output = tokio::spawn(async move {
            let cmd: Vec<&str> = wrapped.iter().map(String::as_str).collect();
            run_at(&docker, pod_exec.as_ref(), &in_task, &cmd).await
        });
        Ok(Box::new(Spawned {
            docker: self.docker.clone(),
            pod_exec: self.pod_exec.clone(),
            place,
            pid_file,
            output,
        }))
    }

    async fn pods(&self) -> Result<Vec<Pod>> {
        self.cluster()?.test_pods(&self.lab).await
    }

    async fn apply(
        &mut self,
        edit: Edit,
        source: &str,
        yaml: &str,
        _objects: &[Resource],
        next: &Resources,
    ) -> Result<Vec<String>> {
        let objects = objects::cluster_objects(yaml, source)?;
        let cluster = self.cluster()?;
        match edit {
            Edit::Apply => cluster.apply(&objects).await?,
            Edit::Delete => {
                for object in &objects {
                    cluster.delete(object).await?;
                }
            }
        }
        // calico-node's confd re-renders by itself; the nodes whose configuration
        // changes are those whose render differs.
        let mut changed = Vec::new();
        for (_, node) in self.topology.nodes() {
            let version = self.version_of(&node.name);
            let before = render(&self.calico, &node.name, version)
                .map_err(crate::calico::CalicoError::from)?;
            let after =
                render(next, &node.name, version).map_err(crate::calico::CalicoError::from)?;
            if before != after {
                changed.push(node.name.clone());
            }
        }
        self.calico = next.clone();
        Ok(changed)
    }

    async fn roll_calico_node(
        &mut self,
        node: &str,
        version: CalicoVersion,
        _calico: &Resources,
    ) -> Result<()> {
        // The first node rolled moves the DaemonSet to the new version with an
        // OnDelete strategy; each node's pod is then replaced in turn.
        if self.versions.is_empty() {
            let mut source = self.settings.manifest.clone();
            source.version = version.to_string();
            source.url = manifest::default_url(&source.version);
            // The topology's pin is the starting version's.
            source.sha256 = None;
            let (text, _) = source.fetch(&cache_dir()).await?;
            let mut patched = source.patch(&text)?;
            let images = manifest_images(&patched);
            for image in &images {
                docker::pull_if_absent(&self.docker, image).await?;
            }
            let mut args: Vec<String> = vec!["load".into(), "docker-image".into()];
            args.extend(images);
            args.extend(["--name".into(), self.lab.clone()]);
            kind(&args).await?;
            // Everything of the new release (CRDs, RBAC, kube-controllers, the
            // DaemonSet's template), but calico-node's pods wait to be replaced.
            manifest::hold_calico_node_rollout(&mut patched)?;
            self.cluster()?.apply(&patched).await?;
        }
        self.cluster()?
            .replace_calico_node_pod(node, Duration::from_secs(300))
            .await?;
        self.versions.insert(node.to_string(), version);
        Ok(())
    }

    async fn member_states(&self) -> Result<Vec<(Member, String)>> {
        let mut out = Vec::new();
        for m in &self.members {
            let state = match self.docker.inspect_container(&m.container, None).await {
                Ok(c) => c
                    .state
                    .and_then(|s| s.status)
                    .map_or_else(|| "unknown".into(), |s| s.to_string().to_lowercase()),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => "absent".into(),
                Err(e) => return Err(Error::docker(format!("inspect {}", m.container))(e)),
            };
            out.push((m.clone(), state));
        }
        Ok(out)
    }

    async fn collect(&self, member: &Member, dir: &Path) -> Result<()> {
        match member.role {
            MemberRole::Router => {
                let out = docker::exec(
                    &self.docker,
                    &member.container,
                    &["vtysh", "-c", "show running-config"],
                )
                .await;
                crate::artifacts::write_output(
                    dir,
                    "running-config",
                    "vtysh -c 'show running-config'",
                    out,
                )?;
                let logs = docker::logs(&self.docker, &member.container, 2000).await;
                crate::artifacts::write_text(
                    dir,
                    "container.log",
                    &logs.unwrap_or_else(|e| format!("# error: {e}\n")),
                )
            }
            MemberRole::Node => {
                let text = match self.cluster()?.calico_node_pod(&member.device).await {
                    Ok(pod) => self
                        .cluster()?
                        .logs(CALICO_NAMESPACE, &pod, CALICO_NODE_CONTAINER, 2000)
                        .await
                        .unwrap_or_else(|e| format!("# error: {e}\n")),
                    Err(e) => format!("# error: {e}\n"),
                };
                crate::artifacts::write_text(dir, "calico-node.log", &text)
            }
            MemberRole::Fabric => {
                // The cluster's own logs, once per lab.
                let logs_dir = dir.join("kind-logs");
                let result = kind(&[
                    "export".into(),
                    "logs".into(),
                    logs_dir.display().to_string(),
                    "--name".into(),
                    self.lab.clone(),
                ])
                .await;
                crate::artifacts::write_text(
                    dir,
                    "kind-export-logs.txt",
                    &result.unwrap_or_else(|e| format!("# error: {e}\n")),
                )
            }
        }
    }

    async fn teardown(&mut self) -> Result<()> {
        // Released only once removed (see the emulated flavor's).
        remove_run(&self.docker, &self.run.0).await?;
        self.released = true;
        Ok(())
    }

    fn teardown_blocking(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        // A create may be in flight whenever the handle drops mid bring-up.
        remove_run_blocking(&self.lab, &self.run.0, true);
    }

    fn release(&mut self) {
        self.released = true;
    }
}

impl Kind {
    fn version_of(&self, node: &str) -> CalicoVersion {
        self.versions
            .get(node)
            .copied()
            .unwrap_or_else(|| self.topology.calico_version())
    }
}

impl Drop for Kind {
    fn drop(&mut self) {
        self.teardown_blocking();
    }
}
