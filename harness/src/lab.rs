//! A running lab: its containers, wiring and routers, and its teardown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bollard::models::ContainerSummary;
use bollard::Docker;

use crate::calico::bird::{upstream, CONFIG_DIR, CONTROL_SOCKET};
use crate::calico::confd::{render, BirdFiles};
pub use crate::calico::emulated::CalicoState;
use crate::calico::emulated::{self, expected_protocols, pod_script, Pod};
use crate::calico::resources::Resource;
use crate::calico::Resources;
use crate::docker::{
    self, ContainerSpec, ExecOutput, LABEL_CALICO, LABEL_DEVICE, LABEL_LAB, LABEL_ROLE, LABEL_RUN,
    LABEL_TOPOLOGY,
};
use crate::error::{Error, Result};
use crate::image;
use crate::probe::{parse_show_protocols, ProtocolRow};
use crate::render::frr_conf;
use crate::topology::{is_dns_label, Topology};
use crate::wiring::{WiringPlan, FABRIC_DEVICE};

/// Whether a lab outlives its handle (`CALICO_LAB_KEEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepPolicy {
    /// Always tear down (the default).
    #[default]
    Never,
    /// Keep the lab when the test panicked or bring-up failed, for debugging.
    OnFailure,
    Always,
}

impl FromStr for KeepPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "never" => Ok(Self::Never),
            "on-failure" => Ok(Self::OnFailure),
            "always" => Ok(Self::Always),
            other => Err(Error::Input(format!(
                "keep policy '{other}' is not one of never, on-failure, always"
            ))),
        }
    }
}

impl KeepPolicy {
    /// `CALICO_LAB_KEEP`, or `never` when unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("CALICO_LAB_KEEP") {
            Ok(value) if !value.is_empty() => value.parse(),
            _ => Ok(Self::Never),
        }
    }
}

/// How to bring a lab up.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Lab name (container name prefix); the topology's name by default.
    pub name: Option<String>,
    pub keep: KeepPolicy,
    /// The lab outlives this process until `calico-lab down` (what `calico-lab up` does).
    pub detached: bool,
    pub calico: CalicoState,
    /// Told each step of bring-up as it completes (for progress displays).
    pub progress: Progress,
}

/// A listener for bring-up steps: `(step, member)`, member empty for lab-wide steps.
#[derive(Clone, Default)]
pub struct Progress(Option<std::sync::Arc<Listener>>);

type Listener = dyn Fn(&str, &str) + Send + Sync;

impl Progress {
    pub fn new(f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        Progress(Some(std::sync::Arc::new(f)))
    }

    fn tell(&self, step: &str, member: &str) {
        if let Some(f) = &self.0 {
            f(step, member);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(listener)"
        } else {
            "Progress(none)"
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberRole {
    Router,
    Node,
    Fabric,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Router => "router",
            MemberRole::Node => "node",
            MemberRole::Fabric => "fabric",
        }
    }
}

/// One container of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub device: String,
    pub container: String,
    pub role: MemberRole,
}

/// How long each phase of bring-up took.
#[derive(Debug, Clone, Default)]
pub struct UpTimings {
    pub image: Duration,
    pub containers: Duration,
    pub wiring: Duration,
    pub routers: Duration,
    pub nodes: Duration,
}

/// A lab brought up from a topology. Dropping it tears it down unless its
/// [`KeepPolicy`] says otherwise.
pub struct Lab {
    docker: Docker,
    name: String,
    run: RunId,
    topology: Topology,
    members: Vec<Member>,
    keep: KeepPolicy,
    failed: bool,
    /// Every member started; until then a create request may still be in flight.
    ready: bool,
    torn_down: bool,
    /// The Calico objects the emulated cluster holds: the starting set, then what
    /// was applied (kept in the fabric container, so `attach` sees it too).
    calico_state: CalicoState,
    calico: Resources,
    applied: usize,
    pods: Vec<Pod>,
    /// What each node's BIRD runs now (upstream form).
    bird_files: BTreeMap<String, BirdFiles>,
    pub timings: UpTimings,
}

impl Lab {
    /// Builds the image if needed, removes what killed runs of this lab left, then
    /// starts every container, wires the fabric and starts the routers.
    pub async fn up(topology: Topology, options: LabOptions) -> Result<Lab> {
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| topology.name.clone());
        check_lab_name(&name)?;
        let calico = emulated::starting_resources(&topology, options.calico)
            .map_err(|e| Error::Input(format!("Calico resources: {e}")))?;
        let pods = emulated::pods(&topology, &calico);
        let docker = docker::connect().await?;
        let started = Instant::now();
        options.progress.tell("building or finding the image", "");
        let image = image::ensure_image(&docker).await?;
        options.progress.tell("image ready", &image.tag);
        let image_time = started.elapsed();
        sweep(&docker, &name).await?;
        let run = if options.detached {
            RunId::detached()
        } else {
            RunId::current()
        };
        let members = members(&topology, &name);
        let mut lab = Lab {
            docker,
            name,
            run,
            topology,
            members,
            keep: options.keep,
            failed: false,
            ready: false,
            torn_down: false,
            calico_state: options.calico,
            calico,
            applied: 0,
            pods,
            bird_files: BTreeMap::new(),
            timings: UpTimings {
                image: image_time,
                ..Default::default()
            },
        };
        if let Err(e) = lab.start(&image.tag, &options.progress).await {
            lab.failed = true;
            return Err(e);
        }
        Ok(lab)
    }

    async fn start(&mut self, image: &str, progress: &Progress) -> Result<()> {
        let phase = Instant::now();
        let specs: Vec<ContainerSpec> = self.members.iter().map(|m| self.spec(image, m)).collect();
        let engine = &self.docker;
        let started = futures_util::future::join_all(specs.iter().map(|s| async move {
            docker::run(engine, s).await?;
            progress.tell("container running", &s.name);
            Ok::<_, Error>(())
        }))
        .await;
        started.into_iter().collect::<Result<Vec<_>>>()?;
        self.timings.containers = phase.elapsed();

        let phase = Instant::now();
        self.wire(image).await?;
        progress.tell("wired", &self.name);
        self.timings.wiring = phase.elapsed();

        let phase = Instant::now();
        let routers = self.members.iter().filter(|m| m.role == MemberRole::Router);
        let this = &*self;
        let starts = routers.map(|m| async move {
            this.start_router(m).await?;
            progress.tell("FRR started", &m.device);
            Ok::<_, Error>(())
        });
        futures_util::future::join_all(starts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        self.timings.routers = phase.elapsed();

        let phase = Instant::now();
        let nodes: Vec<Member> = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Node)
            .cloned()
            .collect();
        let files = nodes
            .iter()
            .map(|m| Ok((m.device.clone(), self.render_node(&m.device)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let this = &*self;
        let starts = nodes.iter().map(|m| {
            let files = &files[&m.device];
            async move {
                this.start_node(m, files).await?;
                progress.tell("BIRD and pods started", &m.device);
                Ok::<_, Error>(())
            }
        });
        futures_util::future::join_all(starts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        self.bird_files = files;
        self.timings.nodes = phase.elapsed();
        self.ready = true;
        Ok(())
    }

    /// The node's BIRD files as calico-node would write them, adapted for upstream BIRD.
    fn render_node(&self, node: &str) -> Result<BirdFiles> {
        render(&self.calico, node)
            .map(|files| upstream(&files))
            .map_err(|e| Error::Input(format!("Calico resources: {e}")))
    }

    async fn write_bird_files(&self, m: &Member, files: &BirdFiles) -> Result<()> {
        for (name, text) in files.files() {
            let path = format!("{CONFIG_DIR}/{name}");
            docker::upload_file(&self.docker, &m.container, &path, text.as_bytes()).await?;
        }
        Ok(())
    }

    /// Starts BIRD with calico-node's files and control socket, then wires the pods.
    async fn start_node(&self, m: &Member, files: &BirdFiles) -> Result<()> {
        let dirs = format!("mkdir -p {CONFIG_DIR} {}", parent(CONTROL_SOCKET));
        self.checked(
            m,
            "creating calico-node's directories",
            &["sh", "-c", &dirs],
        )
        .await?;
        self.write_bird_files(m, files).await?;
        let start = format!("cd {CONFIG_DIR} && bird -c bird.cfg -s {CONTROL_SOCKET}");
        self.checked(m, "starting BIRD", &["sh", "-c", &start])
            .await?;
        let pods: Vec<&Pod> = self.pods.iter().filter(|p| p.node == m.device).collect();
        if !pods.is_empty() {
            self.checked(m, "wiring pods", &["sh", "-c", &pod_script(&pods)])
                .await?;
        }
        Ok(())
    }

    /// Runs `cmd` on `m`, failing with its output unless it exits 0.
    async fn checked(&self, m: &Member, what: &str, cmd: &[&str]) -> Result<ExecOutput> {
        let out = docker::exec(&self.docker, &m.container, cmd).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(self.error(format!(
                "{what} on {} failed ({}): {}{}",
                m.device, out.exit_code, out.stdout, out.stderr
            )))
        }
    }

    /// Applies a YAML file of Calico objects, as `calicoctl apply -f` does, and keeps it
    /// in the lab so that later handles (`attach`) hold the same objects.
    pub async fn apply_file(&mut self, file: &str, text: &str) -> Result<Vec<String>> {
        let objects = crate::calico::resources::parse(text, file)?;
        let changed = self.apply(objects).await?;
        self.applied += 1;
        let base = file.rsplit('/').next().unwrap_or(file);
        let path = format!("{APPLIED_DIR}/{:04}-{base}", self.applied);
        let fabric = self.member(FABRIC_DEVICE)?.container.clone();
        docker::exec(&self.docker, &fabric, &["mkdir", "-p", APPLIED_DIR]).await?;
        docker::upload_file(&self.docker, &fabric, &path, text.as_bytes()).await?;
        Ok(changed)
    }

    /// Applies Calico objects as `calicoctl apply` would: every node whose BIRD files
    /// change gets the new files and a `configure`, in place. Returns those nodes.
    pub async fn apply(&mut self, objects: Vec<Resource>) -> Result<Vec<String>> {
        let mut next = self.calico.clone();
        next.apply(objects)
            .map_err(|e| Error::Input(format!("Calico resources: {e}")))?;
        let previous = std::mem::replace(&mut self.calico, next);
        let mut changed = BTreeMap::new();
        for m in self.members.iter().filter(|m| m.role == MemberRole::Node) {
            let files = match self.render_node(&m.device) {
                Ok(files) => files,
                Err(e) => {
                    self.calico = previous;
                    return Err(e);
                }
            };
            if self.bird_files.get(&m.device) != Some(&files) {
                changed.insert(m.device.clone(), files);
            }
        }
        for (node, files) in &changed {
            let m = self.member(node)?.clone();
            self.write_bird_files(&m, files).await?;
            let out = self.birdc(node, &["configure"]).await?;
            if !out.stdout.contains("Reconfigur") {
                return Err(self.error(format!(
                    "BIRD on {node} refused the new configuration: {}{}",
                    out.stdout, out.stderr
                )));
            }
            self.bird_files.insert(node.clone(), files.clone());
        }
        Ok(changed.into_keys().collect())
    }

    /// Runs a BIRD client command against calico-node's control socket (`birdcl` where
    /// calico-node ships it, Debian's `birdc` otherwise).
    pub async fn birdc(&self, node: &str, args: &[&str]) -> Result<ExecOutput> {
        let script = format!(
            "if command -v birdcl >/dev/null; then exec birdcl -s {CONTROL_SOCKET} \"$@\"; else exec birdc -s {CONTROL_SOCKET} \"$@\"; fi"
        );
        let mut cmd = vec!["sh", "-c", &script, "birdc"];
        cmd.extend_from_slice(args);
        self.exec(node, &cmd).await
    }

    /// The node's BIRD protocols (`show protocols`), by name.
    pub async fn bird_protocols(&self, node: &str) -> Result<BTreeMap<String, ProtocolRow>> {
        let out = self.birdc(node, &["show", "protocols"]).await?;
        let table = parse_show_protocols(&out.stdout)
            .map_err(|e| self.error(format!("{node}: show protocols: {e}")))?;
        Ok(table
            .rows
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect())
    }

    /// Polls until every node runs exactly the BGP protocols its Calico objects call
    /// for, all Established, or `budget` runs out.
    pub async fn wait_for_calico(&self, budget: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let mut missing = Vec::new();
            for m in self.members.iter().filter(|m| m.role == MemberRole::Node) {
                let want: BTreeSet<String> = expected_protocols(&self.calico, &m.device)
                    .into_iter()
                    .collect();
                let rows = self.bird_protocols(&m.device).await.unwrap_or_default();
                let bgp: BTreeMap<&String, &ProtocolRow> =
                    rows.iter().filter(|(_, r)| r.proto == "BGP").collect();
                for name in &want {
                    match bgp.get(name) {
                        Some(r) if r.is_established() => {}
                        Some(r) => {
                            missing.push(format!("  {}: {name}: {} {}", m.device, r.state, r.info))
                        }
                        None => missing.push(format!("  {}: {name}: absent", m.device)),
                    }
                }
                for name in bgp.keys().filter(|n| !want.contains(**n)) {
                    missing.push(format!("  {}: {name}: not expected", m.device));
                }
            }
            if missing.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= budget {
                return Err(Error::Timeout {
                    wait: format!("lab {}: calico-node BGP sessions Established", self.name),
                    seconds: budget.as_secs_f64(),
                    last: missing.join("\n"),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The BIRD files a node runs now.
    pub fn bird_files(&self, node: &str) -> Option<&BirdFiles> {
        self.bird_files.get(node)
    }

    /// The Calico objects the cluster holds.
    pub fn calico(&self) -> &Resources {
        &self.calico
    }

    /// Every pod with its node and address.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// Runs `cmd` inside a pod's network namespace.
    pub async fn pod_exec(&self, pod: &str, cmd: &[&str]) -> Result<ExecOutput> {
        let p =
            self.pods.iter().find(|p| p.name == pod).ok_or_else(|| {
                Error::Input(format!("lab {} has no pod named '{pod}'", self.name))
            })?;
        let mut full = vec!["ip", "netns", "exec", p.name.as_str()];
        full.extend_from_slice(cmd);
        self.exec(&p.node, &full).await
    }

    /// Writes the router's rendered `frr.conf` and starts FRR on it.
    async fn start_router(&self, m: &Member) -> Result<()> {
        let conf = frr_conf(&self.topology, &m.device);
        docker::upload_file(
            &self.docker,
            &m.container,
            "/etc/frr/frr.conf",
            conf.as_bytes(),
        )
        .await?;
        let out = docker::exec(
            &self.docker,
            &m.container,
            &["/usr/lib/frr/frrinit.sh", "start"],
        )
        .await?;
        if out.success() {
            Ok(())
        } else {
            Err(self.error(format!(
                "FRR did not start on {}: {}{}",
                m.device, out.stdout, out.stderr
            )))
        }
    }

    fn spec(&self, image: &str, m: &Member) -> ContainerSpec {
        ContainerSpec {
            name: m.container.clone(),
            hostname: m.device.clone(),
            image: image.to_string(),
            cmd: vec!["sleep".into(), "infinity".into()],
            labels: self.labels(&m.device, m.role.as_str()),
            host_pid: false,
        }
    }

    fn labels(&self, device: &str, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_LAB.to_string(), self.name.clone()),
            (LABEL_DEVICE.to_string(), device.to_string()),
            (LABEL_ROLE.to_string(), role.to_string()),
            (LABEL_RUN.to_string(), self.run.0.clone()),
            (LABEL_TOPOLOGY.to_string(), self.topology.hash()),
            (
                LABEL_CALICO.to_string(),
                self.calico_state.as_str().to_string(),
            ),
        ])
    }

    /// Runs the wiring plan in a short-lived helper that sees host PIDs.
    async fn wire(&self, image: &str) -> Result<()> {
        let mut pids = BTreeMap::new();
        for m in &self.members {
            pids.insert(
                m.device.clone(),
                docker::pid(&self.docker, &m.container).await?,
            );
        }
        let script = WiringPlan::new(&self.topology)
            .script(&pids)
            .map_err(|e| self.error(e))?;
        let helper = ContainerSpec {
            name: format!("{}-wiring-{}", self.name, std::process::id()),
            hostname: "wiring".into(),
            image: image.to_string(),
            // Ends by itself should this process die before removing it.
            cmd: vec!["sleep".into(), "120".into()],
            labels: self.labels("wiring", "helper"),
            host_pid: true,
        };
        docker::run(&self.docker, &helper).await?;
        let result = docker::exec(&self.docker, &helper.name, &["sh", "-c", &script]).await;
        docker::remove(&self.docker, std::slice::from_ref(&helper.name)).await?;
        let out = result?;
        if out.success() {
            Ok(())
        } else {
            Err(self.error(format!(
                "wiring failed ({}): {}{}",
                out.exit_code, out.stdout, out.stderr
            )))
        }
    }

    fn error(&self, message: String) -> Error {
        Error::Lab {
            lab: self.name.clone(),
            message,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn run_id(&self) -> &str {
        &self.run.0
    }
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn member(&self, device: &str) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.device == device)
            .ok_or_else(|| Error::Input(format!("lab {} has no member '{device}'", self.name)))
    }

    /// Runs a command on a member and waits for it.
    pub async fn exec(&self, device: &str, cmd: &[&str]) -> Result<ExecOutput> {
        docker::exec(&self.docker, &self.member(device)?.container, cmd).await
    }

    /// BGP session states a router reports, by peer address (`show bgp summary json`).
    pub async fn router_sessions(&self, router: &str) -> Result<BTreeMap<Ipv4Addr, String>> {
        let out = self
            .exec(router, &["vtysh", "-c", "show bgp summary json"])
            .await?;
        let summary = crate::probe::parse_bgp_summary(&out.stdout)
            .map_err(|e| self.error(format!("{router}: {e}")))?;
        Ok(summary
            .peers
            .into_values()
            .filter_map(|p| Some((p.address.parse().ok()?, p.state)))
            .collect())
    }

    /// Destinations in a member's kernel routing table (`ip -4 route`).
    pub async fn kernel_routes(&self, device: &str) -> Result<BTreeSet<String>> {
        let out = self.exec(device, &["ip", "-4", "route", "show"]).await?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect())
    }

    /// Polls until every router reports all its router-to-router sessions
    /// Established and has every fabric subnet in its kernel routing table, or
    /// `budget` runs out; returns how long it took.
    pub async fn wait_for_fabric(&self, budget: Duration) -> Result<Duration> {
        let started = Instant::now();
        let subnets: BTreeSet<String> = self
            .topology
            .routers()
            .flat_map(|(_, r)| self.topology.announced_networks(&r.name))
            .map(|net| net.to_string())
            .collect();
        loop {
            let mut missing = Vec::new();
            for (_, router) in self.topology.routers() {
                let sessions = self.router_sessions(&router.name).await.unwrap_or_default();
                for n in self
                    .topology
                    .bgp_neighbors(&router.name)
                    .iter()
                    .filter(|n| !n.rr_client)
                {
                    let state = sessions
                        .get(&n.address)
                        .map(String::as_str)
                        .unwrap_or("absent");
                    if state != "Established" {
                        missing.push(format!(
                            "  {} -> {} ({}): {state}",
                            router.name, n.device, n.address
                        ));
                    }
                }
                let routes = self.kernel_routes(&router.name).await.unwrap_or_default();
                let absent: Vec<&str> = subnets.difference(&routes).map(String::as_str).collect();
                if !absent.is_empty() {
                    missing.push(format!(
                        "  {}: no route to {}",
                        router.name,
                        absent.join(", ")
                    ));
                }
            }
            if missing.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= budget {
                return Err(Error::Timeout {
                    wait: format!(
                        "lab {}: fabric BGP sessions Established and routes installed",
                        self.name
                    ),
                    seconds: budget.as_secs_f64(),
                    last: missing.join("\n"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A handle on a lab another process brought up (`calico-lab up`, a shared test
    /// lab): its members, Calico objects and pods as the topology derives them. The
    /// handle never tears the lab down; `calico-lab down` does.
    pub async fn attach(topology: Topology, name: &str) -> Result<Lab> {
        check_lab_name(name)?;
        let docker = docker::connect().await?;
        let found = docker::list(&docker, &[format!("{LABEL_LAB}={name}")]).await?;
        let Some(first) = found.first() else {
            return Err(Error::Input(format!("no lab named '{name}' is running")));
        };
        let label = |key: &str| {
            first
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default()
        };
        if label(LABEL_TOPOLOGY) != topology.hash() {
            return Err(Error::Input(format!(
                "lab '{name}' runs another topology (hash {}, this one {})",
                label(LABEL_TOPOLOGY),
                topology.hash()
            )));
        }
        let state = CalicoState::from_label(&label(LABEL_CALICO)).unwrap_or_default();
        let mut calico = emulated::starting_resources(&topology, state)
            .map_err(|e| Error::Input(format!("Calico resources: {e}")))?;
        let members = members(&topology, name);
        // Replay what was applied to the running lab, in order.
        let fabric = members
            .iter()
            .find(|m| m.device == FABRIC_DEVICE)
            .map(|m| m.container.clone())
            .unwrap_or_default();
        let list = format!("ls {APPLIED_DIR} 2>/dev/null || true");
        let listing = docker::exec(&docker, &fabric, &["sh", "-c", &list]).await?;
        let files: Vec<String> = listing.stdout.lines().map(String::from).collect();
        for file in &files {
            let path = format!("{APPLIED_DIR}/{file}");
            let text = docker::exec(&docker, &fabric, &["cat", &path])
                .await?
                .stdout;
            calico.apply(crate::calico::resources::parse(&text, &path)?)?;
        }
        let pods = emulated::pods(&topology, &calico);
        let mut lab = Lab {
            docker,
            name: name.to_string(),
            run: RunId(label(LABEL_RUN)),
            topology,
            members,
            keep: KeepPolicy::Always,
            failed: false,
            ready: true,
            torn_down: true,
            calico_state: state,
            calico,
            applied: files.len(),
            pods,
            bird_files: BTreeMap::new(),
            timings: UpTimings::default(),
        };
        let nodes: Vec<String> = lab
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Node)
            .map(|m| m.device.clone())
            .collect();
        for node in nodes {
            let files = lab.render_node(&node)?;
            lab.bird_files.insert(node, files);
        }
        Ok(lab)
    }

    /// Removes every container of this run.
    pub async fn down(mut self) -> Result<()> {
        self.torn_down = true;
        remove_run(&self.docker, &self.run.0).await
    }

    /// Lets the lab outlive this handle (for `calico-lab up`).
    pub fn release(mut self) {
        self.torn_down = true;
    }

    /// Marks the lab failed, so that `KeepPolicy::OnFailure` keeps it.
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let failed = self.failed || std::thread::panicking();
        let keep = match self.keep {
            KeepPolicy::Always => true,
            KeepPolicy::OnFailure => failed,
            KeepPolicy::Never => false,
        };
        if keep {
            eprintln!(
                "calico-lab: keeping lab {} (run {}); remove it with `calico-lab down --name {}`",
                self.name, self.run.0, self.name
            );
            return;
        }
        // Drop may run inside a runtime (or while unwinding): tear down on a thread
        // with a runtime of its own.
        let run = self.run.0.clone();
        let ready = self.ready;
        let teardown = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::io("start a runtime for teardown"))?;
            runtime.block_on(async {
                let docker = docker::connect().await?;
                remove_run(&docker, &run).await?;
                if !ready {
                    // Interrupted bring-up: the engine may finish a create after our list.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    remove_run(&docker, &run).await?;
                }
                Ok(())
            })
        });
        match teardown.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("calico-lab: teardown of lab {} failed: {e}", self.name),
            Err(_) => eprintln!("calico-lab: teardown of lab {} panicked", self.name),
        }
    }
}

/// Every container of a topology's lab, named as kind would name the nodes of a
/// cluster called `lab`.
pub fn members(t: &Topology, lab: &str) -> Vec<Member> {
    let prefix = format!("{}-", t.name);
    let mut members = vec![Member {
        device: FABRIC_DEVICE.into(),
        container: format!("{lab}-{FABRIC_DEVICE}"),
        role: MemberRole::Fabric,
    }];
    members.extend(t.routers().map(|(_, r)| Member {
        device: r.name.clone(),
        container: format!("{lab}-{}", r.name),
        role: MemberRole::Router,
    }));
    members.extend(t.nodes().map(|(_, n)| Member {
        device: n.name.clone(),
        container: format!("{lab}-{}", n.name.strip_prefix(&prefix).unwrap_or(&n.name)),
        role: MemberRole::Node,
    }));
    members
}

/// Where the fabric container keeps the files applied to a running lab.
const APPLIED_DIR: &str = "/etc/calico-lab/applied";

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(dir, _)| dir)
}

fn check_lab_name(name: &str) -> Result<()> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "lab name '{name}' must be 1 to 40 lower-case letters, digits and '-', not starting or ending with '-'"
        )))
    }
}

/// Identifies one lab and the process that owns it:
/// `<host>-<pid>-<process start time>-<lab number within the process>`, or
/// `detached-...` for labs that live until `calico-lab down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId(pub String);

impl RunId {
    /// A new run owned by this process.
    pub fn current() -> Self {
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let pid = std::process::id();
        let seq = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RunId(format!(
            "{}-{pid}-{}-{seq}",
            hostname(),
            process_start(pid).unwrap_or(0)
        ))
    }

    pub fn detached() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        RunId(format!("detached-{}-{now}", std::process::id()))
    }

    /// Whether the owner may still need the lab: detached labs, labs of other
    /// hosts and labs whose owning process still runs.
    pub fn is_alive(&self) -> bool {
        if self.0.starts_with("detached-") {
            return true;
        }
        let mut parts = self.0.rsplitn(4, '-');
        let (Some(_seq), Some(start), Some(pid), Some(host)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if host != hostname() {
            return true;
        }
        match (pid.parse::<u32>(), start.parse::<u64>()) {
            (Ok(pid), Ok(start)) => process_start(pid) == Some(start),
            _ => false,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
/// which tells a live owner from a recycled PID.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields after its closing parenthesis.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

async fn remove_run(docker: &Docker, run: &str) -> Result<()> {
    let containers = docker::list(docker, &[format!("{LABEL_RUN}={run}")]).await?;
    remove_listed(docker, &containers).await.map(drop)
}

/// Removes what killed runs of lab `name` left; refuses while a live run uses the name.
async fn sweep(docker: &Docker, name: &str) -> Result<()> {
    let containers = docker::list(docker, &[format!("{LABEL_LAB}={name}")]).await?;
    if let Some(live) = containers.iter().map(run_of).find(RunId::is_alive) {
        return Err(Error::Input(format!(
            "lab '{name}' is already running (run {}); choose another name, or remove it with `calico-lab down --name {name}`",
            live.0
        )));
    }
    if !containers.is_empty() {
        tracing::info!(
            "lab {name}: removing {} container(s) left by a killed run",
            containers.len()
        );
        remove_listed(docker, &containers).await?;
    }
    Ok(())
}

/// Removes every container of lab `name`, whoever owns it; returns their names.
pub async fn down(name: &str) -> Result<Vec<String>> {
    let docker = docker::connect().await?;
    let containers = docker::list(&docker, &[format!("{LABEL_LAB}={name}")]).await?;
    remove_listed(&docker, &containers).await
}

/// Removes every labelled container whose run is gone; returns their names.
pub async fn gc() -> Result<Vec<String>> {
    let docker = docker::connect().await?;
    let containers = docker::list(&docker, &[LABEL_LAB.to_string()]).await?;
    let gone: Vec<_> = containers
        .into_iter()
        .filter(|c| !run_of(c).is_alive())
        .collect();
    remove_listed(&docker, &gone).await
}

/// The run a labelled container belongs to (empty, hence dead, when unlabelled).
fn run_of(c: &ContainerSummary) -> RunId {
    RunId(
        c.labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default(),
    )
}

/// Removes listed containers; returns their names.
async fn remove_listed(docker: &Docker, containers: &[ContainerSummary]) -> Result<Vec<String>> {
    let ids: Vec<String> = containers.iter().filter_map(|c| c.id.clone()).collect();
    docker::remove(docker, &ids).await?;
    Ok(containers
        .iter()
        .filter_map(|c| {
            c.names
                .as_ref()?
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .collect())
}
