//! The emulated flavor: FRR router containers, node containers running BIRD with the
//! configuration calico-node would write, pods as network namespaces, all wired with
//! veths in Docker; bring-up, exec, apply and teardown.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use futures_util::future::BoxFuture;

use super::docker::{
    self, ContainerSpec, ExecOutput, LABEL_CALICO, LABEL_DEVICE, LABEL_FLAVOR, LABEL_LAB,
    LABEL_ROLE, LABEL_RUN, LABEL_TOPOLOGY,
};
use super::ownership::{remove_run, remove_run_blocking, sweep, RunId};
use super::runner::{self, RUNNER_DIR};
use super::session::Sessions;
use super::{
    all_bounded, all_in_order, batch, image, Backend, Edit, Flavor, Member, MemberRole, Pod,
    Running, Target,
};
use crate::calico::bird::{upstream, CONFIG_DIR, CONTROL_SOCKET};
use crate::calico::confd::{render, BirdFiles};
use crate::calico::emulated::{self, pod_route_script, pod_script, CalicoState};
use crate::calico::resources::Resource;
use crate::calico::{CalicoVersion, Resources};
use crate::error::{Error, Result};
use crate::lab::{birdc, Progress};
use crate::render::frr_conf;
use crate::topology::Topology;
use crate::wiring::{WiringPlan, FABRIC_DEVICE};

/// Where the fabric container keeps the files applied to a running lab, so that a
/// later handle (`attach`) holds the same Calico objects.
/// Where FRR reads its configuration.
const FRR_CONF: &str = "/etc/frr/frr.conf";
const APPLIED_DIR: &str = "/etc/calico-lab/applied";

/// Where it keeps the calico-node version of each node rolled to another one.
const VERSIONS_DIR: &str = "/etc/calico-lab/versions";

/// How long each phase of bring-up took.
#[derive(Debug, Clone, Default)]
pub struct UpTimings {
    pub image: Duration,
    pub containers: Duration,
    pub wiring: Duration,
    /// FRR on every router, then BIRD and the pods on every node.
    pub daemons: Duration,
}

/// An emulated lab's containers. Dropping it removes them unless it was released.
pub struct Emulated {
    docker: Docker,
    lab: String,
    run: RunId,
    topology: Topology,
    members: Vec<Member>,
    calico_state: CalicoState,
    pods: Vec<Pod>,
    /// What each node's BIRD runs now (upstream form).
    bird_files: BTreeMap<String, BirdFiles>,
    applied: usize,
    /// Nodes rolled to another calico-node version than the topology's.
    versions: BTreeMap<String, CalicoVersion>,
    /// Every member started; until then a create request may still be in flight.
    ready: bool,
    released: bool,
    /// The shells in the helper that runs a batch of commands at once (see [`batch`]).
    observer: Option<std::sync::Arc<Sessions>>,
    /// Each member container's main process, as the observer enters it.
    pids: std::sync::Mutex<BTreeMap<String, u32>>,
    pub timings: UpTimings,
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

impl Emulated {
    /// Builds the image if needed, removes what killed runs of this lab left, then
    /// starts every container, wires the fabric, starts FRR, BIRD and the pods.
    /// Whatever was created is removed when this fails or is dropped midway.
    pub async fn up(
        topology: &Topology,
        lab: &str,
        calico: &Resources,
        calico_state: CalicoState,
        detached: bool,
        keep_on_failure: bool,
        progress: &Progress,
    ) -> Result<Emulated> {
        check_neighbour_table(topology, emulated::pods(topology, calico).len())?;
        let docker = docker::connect().await?;
        let started = Instant::now();
        progress.step("building or finding the image");
        let image = image::ensure_image(&docker).await?;
        progress.member("image ready", &image.tag);
        let image_time = started.elapsed();
        sweep(&docker, lab).await?;
        let mut backend = Emulated {
            docker,
            lab: lab.to_string(),
            run: if detached {
                RunId::detached()
            } else {
                RunId::current()
            },
            members: members(topology, lab),
            topology: topology.clone(),
            calico_state,
            pods: emulated::pods(topology, calico),
            bird_files: BTreeMap::new(),
            applied: 0,
            versions: BTreeMap::new(),
            ready: false,
            released: false,
            observer: None,
            pids: Default::default(),
            timings: UpTimings {
                image: image_time,
                ..Default::default()
            },
        };
        if let Err(e) = backend.start(&image.tag, calico, progress).await {
            if keep_on_failure {
                backend.release();
                eprintln!(
                    "calico-lab: keeping lab {lab} after a failed bring-up; remove it with `calico-lab down --name {lab}`"
                );
            }
            return Err(e);
        }
        Ok(backend)
    }

    /// A handle on a lab another process brought up, and the Calico objects it holds
    /// (the starting set and every file applied since). It never tears the lab down.
    pub async fn attach(topology: &Topology, lab: &str) -> Result<(Emulated, Resources)> {
        let docker = docker::connect().await?;
        let found = docker::list(&docker, &[format!("{LABEL_LAB}={lab}")]).await?;
        let Some(first) = found.first() else {
            return Err(Error::NoSuchLab(lab.to_string()));
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
            return Err(Error::OtherTopology {
                lab: lab.to_string(),
                running: label(LABEL_TOPOLOGY),
                given: topology.hash(),
            });
        }
        let state = CalicoState::from_label(&label(LABEL_CALICO)).unwrap_or_default();
        let mut calico = emulated::starting_resources(topology, state)?;
        let mut backend = Emulated {
            docker,
            lab: lab.to_string(),
            run: RunId(label(LABEL_RUN)),
            members: members(topology, lab),
            topology: topology.clone(),
            calico_state: state,
            pods: Vec::new(),
            bird_files: BTreeMap::new(),
            applied: 0,
            versions: BTreeMap::new(),
            ready: true,
            released: true,
            observer: None,
            pids: Default::default(),
            timings: UpTimings::default(),
        };
        if docker::pid(&backend.docker, &observer_name(lab))
            .await
            .is_ok()
        {
            backend.observer = Some(std::sync::Arc::new(Sessions::new(
                backend.docker.clone(),
                observer_name(lab),
            )));
        }
        // Replay what was applied to the running lab, in order.
        let fabric = Target::Node(FABRIC_DEVICE.into());
        let list = format!("ls {APPLIED_DIR} 2>/dev/null || true");
        let listing = backend.exec(&fabric, &["sh", "-c", &list]).await?;
        for file in listing.stdout.lines() {
            let path = format!("{APPLIED_DIR}/{file}");
            let text = backend.exec(&fabric, &["cat", &path]).await?.stdout;
            let objects = crate::calico::resources::parse(&text, &path)?;
            // Recorded as `<n>-apply-<file>` or `<n>-delete-<file>`.
            match file.split_once('-').map(|(_, rest)| rest) {
                Some(rest) if rest.starts_with("delete-") => calico.delete(&objects)?,
                _ => calico.apply(objects)?,
            }
            backend.applied += 1;
        }
        let list = format!("cd {VERSIONS_DIR} 2>/dev/null && grep . * || true");
        let listing = backend.exec(&fabric, &["sh", "-c", &list]).await?;
        for line in listing.stdout.lines() {
            if let Some((node, version)) = line.split_once(':') {
                if let Ok(v) = version.trim().parse() {
                    backend.versions.insert(node.to_string(), v);
                }
            }
        }
        backend.pods = emulated::pods(topology, &calico);
        for (_, node) in topology.nodes() {
            let files = render_node(&calico, &node.name, backend.version_of(&node.name))?;
            backend.bird_files.insert(node.name.clone(), files);
        }
        Ok((backend, calico))
    }

    async fn start(&mut self, image: &str, calico: &Resources, progress: &Progress) -> Result<()> {
        let phase = Instant::now();
        // Rendered first: a node that cannot be rendered starts nothing.
        let files = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Node)
            .map(|m| {
                Ok((
                    m.device.clone(),
                    render_node(calico, &m.device, self.version_of(&m.device))?,
                ))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let mut specs: Vec<ContainerSpec> =
            self.members.iter().map(|m| self.spec(image, m)).collect();
        // The fabric container is created first, alone: its name is the lab's claim.
        // Of two runs racing for one name, exactly one creates it; the other is
        // refused. It starts with the others (a start costs far more than a create).
        let fabric = specs.remove(0);
        let fabric_id = match docker::create(&self.docker, &fabric).await {
            Ok(id) => id,
            Err(Error::ContainerExists(_)) => {
                // Not ours: leave it to its owner.
                self.ready = true;
                self.released = true;
                let owner = docker::list(&self.docker, &[format!("{LABEL_LAB}={}", self.lab)])
                    .await?
                    .iter()
                    .find_map(|c| c.labels.as_ref()?.get(LABEL_RUN).cloned())
                    .unwrap_or_else(|| "another process".into());
                return Err(Error::AlreadyRunning {
                    lab: self.lab.clone(),
                    run: owner,
                });
            }
            Err(e) => return Err(e),
        };
        // The observer wires the lab and reads it: it starts with the members.
        let observer = ContainerSpec {
            name: observer_name(&self.lab),
            hostname: "observer".into(),
            image: image.to_string(),
            cmd: vec!["sleep".into(), "infinity".into()],
            labels: self.labels("observer", "helper"),
            host_pid: true,
            // The batches' output files: on the engine's disk, creating and removing
            // thousands a second took a third of a 16 x 8 lab's CPU.
            tmpfs: vec!["/tmp".into()],
            ..ContainerSpec::default()
        };
        specs.push(observer);
        let engine = &self.docker;
        let fabric = &fabric;
        let fabric_id = &fabric_id;
        let start_fabric: BoxFuture<'_, Result<()>> = Box::pin(async move {
            docker::start(engine, fabric_id, &fabric.name).await?;
            progress.member("container running", &fabric.name);
            Ok(())
        });
        all_bounded(
            std::iter::once(start_fabric)
                .chain(specs.iter().map(|s| -> BoxFuture<'_, Result<()>> {
                    Box::pin(async move {
                        docker::run(engine, s).await?;
                        progress.member("container running", &s.name);
                        Ok(())
                    })
                }))
                .collect(),
        )
        .await?;
        self.observer = Some(std::sync::Arc::new(Sessions::new(
            self.docker.clone(),
            observer_name(&self.lab),
        )));
        self.timings.containers = phase.elapsed();

        let phase = Instant::now();
        self.wire().await?;
        progress.member("wired", &self.lab);
        self.timings.wiring = phase.elapsed();

        // FRR first, then BIRD: a leaf that connects to a BIRD not yet listening
        // waits for BIRD's own connect delay instead (about 1 s more in the seed).
        // (Both at once is slower: on two cores BIRD's start delays FRR's.)
        let phase = Instant::now();
        let routers = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Router)
            .map(|m| {
                let conf = frr_conf(&self.topology, &m.device);
                let script = format!(
                    "set -e\n{}/usr/lib/frr/frrinit.sh start\n",
                    file_script(FRR_CONF, &conf)?
                );
                Ok((m, script))
            })
            .collect::<Result<Vec<_>>>()?;
        self.checked("starting FRR", &routers, Runs::ByMember)
            .await?;
        for (m, _) in &routers {
            progress.member("FRR started", &m.device);
        }
        let nodes = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Node)
            .map(|m| Ok((m, self.start_node_script(m, &files[&m.device])?)))
            .collect::<Result<Vec<_>>>()?;
        self.checked("starting BIRD and wiring pods", &nodes, Runs::ByMember)
            .await?;
        for (m, _) in &nodes {
            progress.member("BIRD and pods started", &m.device);
        }
        self.bird_files = files.clone();
        self.timings.daemons = phase.elapsed();
        self.ready = true;
        Ok(())
    }

    /// The script that writes a node's BIRD files, starts BIRD with calico-node's
    /// control socket and wires the pods.
    fn start_node_script(&self, m: &Member, files: &BirdFiles) -> Result<String> {
        let pods: Vec<&Pod> = self.pods.iter().filter(|p| p.node == m.device).collect();
        let mut script = format!("set -e\nmkdir -p {}\n", parent(CONTROL_SOCKET));
        script += &bird_files_script(files)?;
        script += &format!("cd {CONFIG_DIR}\nbird -c bird.cfg -s {CONTROL_SOCKET}\n");
        if !pods.is_empty() {
            let metric = self.version_of(&m.device).workload_route_metric();
            script += &pod_script(&pods, metric);
        }
        Ok(script)
    }

    /// calico-node's pod replaced on each of `nodes` at `version`, all at once: its
    /// BIRD files written, BIRD restarted, its workload routes reprogrammed. The
    /// files each node runs with, or why it did not restart.
    async fn restart_calico_nodes(
        &self,
        nodes: &[String],
        version: CalicoVersion,
        calico: &Resources,
    ) -> Vec<Result<BirdFiles>> {
        let mut prepared = Vec::new();
        let mut results: Vec<Option<Result<BirdFiles>>> = nodes.iter().map(|_| None).collect();
        for (i, node) in nodes.iter().enumerate() {
            match self.restart_script(node, version, calico) {
                Ok((m, files, script)) => prepared.push((i, m, files, script)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let scripts: Vec<(&Member, String)> = prepared
            .iter()
            .map(|(_, m, _, script)| (*m, script.clone()))
            .collect();
        let answers = self.run_scripts(&scripts).await;
        for ((i, m, files, _), answer) in prepared.into_iter().zip(answers) {
            results[i] = Some(
                answer
                    .and_then(|out| self.succeeded("restarting calico-node", m, out))
                    .map(|()| files),
            );
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.error("unanswered".into()))))
            .collect()
    }

    /// The member, the files and the script of one node's calico-node restart.
    fn restart_script(
        &self,
        node: &str,
        version: CalicoVersion,
        calico: &Resources,
    ) -> Result<(&Member, BirdFiles, String)> {
        let files = render_node(calico, node, version)?;
        let m = self.member(node)?;
        let mut script = format!("set -e\n{}", bird_files_script(&files)?);
        // Wait for the old BIRD's socket to stop answering (its process may stay a
        // zombie for a while), then start the new one.
        script += &format!(
            "pkill -x bird || true\ni=0\nwhile birdc -s {CONTROL_SOCKET} show status >/dev/null 2>&1; do\n\
             i=$((i + 1)); [ $i -le 200 ] || {{ echo 'the old BIRD still answers 10 s after SIGTERM' >&2; exit 1; }}\n\
             sleep 0.05\ndone\ncd {CONFIG_DIR}\nbird -c bird.cfg -s {CONTROL_SOCKET}\n"
        );
        // Felix of the new version reprograms the node's workload routes.
        let pods: Vec<&Pod> = self.pods.iter().filter(|p| p.node == node).collect();
        if !pods.is_empty() {
            script += &pod_route_script(&pods, version.workload_route_metric());
        }
        Ok((m, files, script))
    }

    /// Remembers each of `nodes` at `version` with the files it runs, in this
    /// process and in the lab (for a later process that attaches).
    async fn record_versions(
        &mut self,
        nodes: &[(String, BirdFiles)],
        version: CalicoVersion,
    ) -> Result<()> {
        let mut script = String::from("set -e\n");
        for (node, files) in nodes {
            self.bird_files.insert(node.clone(), files.clone());
            self.versions.insert(node.clone(), version);
            script += &file_script(&format!("{VERSIONS_DIR}/{node}"), &version.to_string())?;
        }
        if nodes.is_empty() {
            return Ok(());
        }
        let fabric = self.member(FABRIC_DEVICE)?;
        self.checked(
            "recording calico-node versions",
            &[(fabric, script)],
            Runs::Entered,
        )
        .await
    }

    /// Runs each script in its member, all at once through the observer (an exec
    /// each where there is no observer), failing with the first that did not exit 0.
    /// `Runs::ByMember`: by the member's own main process (see [`runner`]), so that
    /// what it starts is the member's; `Runs::Entered`: in its namespaces (files,
    /// nothing that stays running).
    async fn checked(&self, what: &str, scripts: &[(&Member, String)], runs: Runs) -> Result<()> {
        let answers = match runs {
            Runs::ByMember => self.run_scripts(scripts).await,
            Runs::Entered => {
                let located: Vec<(String, Vec<String>)> = scripts
                    .iter()
                    .map(|(m, s)| (m.container.clone(), sh_c(s)))
                    .collect();
                self.run_all_located(&located, true).await
            }
        };
        for ((m, _), answer) in scripts.iter().zip(answers) {
            self.succeeded(what, m, answer?)?;
        }
        Ok(())
    }

    /// Each script handed to its member's runner.
    async fn run_scripts(&self, scripts: &[(&Member, String)]) -> Vec<Result<ExecOutput>> {
        let located: Vec<(String, Vec<String>)> = scripts
            .iter()
            .map(|(m, s)| {
                let argv = runner::courier(RUNNER_DIR, &batch::nonce(), s);
                (m.container.clone(), argv)
            })
            .collect();
        // Without an observer, the courier runs as an exec of its own.
        self.run_all_located(&located, false).await
    }

    /// Commands already located (`(container, argv)`), in batches within
    /// the script budget, all at once through the observer; an exec each where there
    /// is no observer, or where its shell failed and the commands may run again
    /// (`rerunnable`: a daemon's start must not run twice). Answers in order.
    async fn run_all_located(
        &self,
        located: &[(String, Vec<String>)],
        rerunnable: bool,
    ) -> Vec<Result<ExecOutput>> {
        let size =
            |(_, argv): &(String, Vec<String>)| -> usize { argv.iter().map(|a| a.len() + 3).sum() };
        let groups = batch::groups(located, size, batch::SCRIPT_BUDGET);
        let answers = futures_util::future::join_all(groups.into_iter().map(|g| async move {
            let group = &located[g];
            let slots: Vec<(usize, String, Vec<String>)> = group
                .iter()
                .enumerate()
                .map(|(i, (c, argv))| (i, c.clone(), argv.clone()))
                .collect();
            if let Some(observer) = &self.observer {
                let mut results: Vec<Option<Result<ExecOutput>>> =
                    group.iter().map(|_| None).collect();
                match self.batch_located(observer, &slots, &mut results).await {
                    Ok(()) => {
                        return results
                            .into_iter()
                            .map(|r| r.unwrap_or_else(|| Err(self.error("unanswered".into()))))
                            .collect::<Vec<_>>()
                    }
                    Err(e) if !rerunnable => {
                        // Some may have run: say so rather than run them again.
                        let why = format!("the observer failed while it ran this: {e}");
                        return group.iter().map(|_| Err(self.error(why.clone()))).collect();
                    }
                    Err(_) => {}
                }
            }
            let calls: Vec<BoxFuture<'_, Result<ExecOutput>>> = group
                .iter()
                .map(|(container, argv)| -> BoxFuture<'_, Result<ExecOutput>> {
                    Box::pin(async move {
                        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                        docker::exec(&self.docker, container, &argv).await
                    })
                })
                .collect();
            all_in_order(calls).await
        }))
        .await;
        answers.into_iter().flatten().collect()
    }

    /// `out` of `what` on `m`, an error unless it exited 0.
    fn succeeded(&self, what: &str, m: &Member, out: ExecOutput) -> Result<()> {
        if out.success() {
            Ok(())
        } else {
            Err(self.error(format!(
                "{what} on {} failed ({}): {}{}",
                m.device, out.exit_code, out.stdout, out.stderr
            )))
        }
    }

    fn spec(&self, image: &str, m: &Member) -> ContainerSpec {
        ContainerSpec {
            name: m.container.clone(),
            hostname: m.device.clone(),
            image: image.to_string(),
            // Runs the scripts that start its daemons (see `runner`).
            cmd: sh_c(&runner::main_process(RUNNER_DIR)),
            labels: self.labels(&m.device, m.role.as_str()),
            ..ContainerSpec::default()
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
            (LABEL_FLAVOR.to_string(), "emulated".to_string()),
        ])
    }

    /// Runs the wiring plan in the observer, which sees host PIDs.
    async fn wire(&self) -> Result<()> {
        let pids = futures_util::future::join_all(self.members.iter().map(|m| async move {
            Ok::<_, Error>((
                m.device.clone(),
                docker::pid(&self.docker, &m.container).await?,
            ))
        }))
        .await
        .into_iter()
        .collect::<Result<BTreeMap<_, _>>>()?;
        let script = WiringPlan::new(&self.topology)
            .script(&pids)
            .map_err(|e| self.error(e))?;
        // Through the observer's first shell; not again by an exec where it fails
        // (some links may exist already).
        let out = match &self.observer {
            Some(observer) => observer.run(&script).await?,
            None => {
                let observer = observer_name(&self.lab);
                docker::exec(&self.docker, &observer, &["sh", "-c", &script]).await?
            }
        };
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
            lab: self.lab.clone(),
            message,
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

    /// The container and full command line that run `cmd` on `target`.
    fn locate(&self, target: &Target, cmd: &[&str]) -> Result<(String, Vec<String>)> {
        let owned = || cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match target {
            Target::Router(d) => Ok((self.member(d)?.container.clone(), router_argv(cmd))),
            Target::Node(d) | Target::CalicoNode(d) => {
                Ok((self.member(d)?.container.clone(), owned()))
            }
            Target::Pod(name) => {
                let pod = self.pods.iter().find(|p| &p.name == name).ok_or_else(|| {
                    Error::NoSuchTarget {
                        lab: self.lab.clone(),
                        what: "pod",
                        name: name.clone(),
                    }
                })?;
                let mut full: Vec<String> = ["ip", "netns", "exec", &pod.name]
                    .map(String::from)
                    .to_vec();
                full.extend(owned());
                Ok((self.member(&pod.node)?.container.clone(), full))
            }
        }
    }

    /// Commands already located, `(slot, container, argv)`, as one script in the
    /// observer, each answer put in its slot of `results`; a member whose process
    /// changed since its pid was read gets it read again, once.
    async fn batch_located(
        &self,
        observer: &Sessions,
        runnable: &[(usize, String, Vec<String>)],
        results: &mut [Option<Result<ExecOutput>>],
    ) -> Result<()> {
        let mut pending: Vec<&(usize, String, Vec<String>)> = runnable.iter().collect();
        let mut refresh = false;
        while !pending.is_empty() {
            let containers: std::collections::BTreeSet<&String> =
                pending.iter().map(|(_, c, _)| c).collect();
            let (pids, unreadable) = self.member_pids(&containers, refresh).await;
            let mut batch = Vec::new();
            let mut slots = Vec::new();
            for command in pending {
                let (i, container, argv) = command;
                match pids.get(container) {
                    Some(&pid) => {
                        slots.push(command);
                        batch.push(batch::Command {
                            pid,
                            hostname: self.hostname_of(container),
                            argv: argv.clone(),
                        });
                    }
                    None => {
                        results[*i] = Some(Err(match unreadable.get(container) {
                            Some(Error::NotRunning { state, .. }) => Error::NotRunning {
                                container: container.clone(),
                                state,
                            },
                            Some(e) => self.error(e.to_string()),
                            None => Error::NotRunning {
                                container: container.clone(),
                                state: "not running",
                            },
                        }))
                    }
                }
            }
            let nonce = batch::nonce();
            let script = batch::script(&nonce, &batch);
            let out = observer.run(&script).await?;
            let outs = batch::split(&nonce, &out.stdout, batch.len());
            // A stale member's command did not run: only those go again, once, with
            // their pids read anew (the others must not run twice).
            pending = Vec::new();
            for (command, output) in slots.into_iter().zip(outs) {
                if !refresh && output.as_ref().is_some_and(batch::is_stale) {
                    pending.push(command);
                } else {
                    results[command.0] = Some(answer_of(&self.lab, &command.1, &out, output));
                }
            }
            refresh = true;
        }
        Ok(())
    }

    /// Runs `argv` in `container` (not wrapped for a target) as a batch of one, or
    /// as an exec of its own where the observer cannot run it.
    async fn run_located(&self, container: &str, argv: Vec<String>) -> Result<ExecOutput> {
        self.run_all_located(&[(container.to_string(), argv)], true)
            .await
            .pop()
            .unwrap_or_else(|| Err(self.error("unanswered".into())))
    }

    /// The main process of each container that runs, read from the engine where
    /// not known yet (or all again with `refresh`); and why, for those unread.
    async fn member_pids(
        &self,
        containers: &std::collections::BTreeSet<&String>,
        refresh: bool,
    ) -> (BTreeMap<String, u32>, BTreeMap<String, Error>) {
        let mut known = if refresh {
            BTreeMap::new()
        } else {
            self.pids.lock().map(|p| p.clone()).unwrap_or_default()
        };
        let missing: Vec<&String> = containers
            .iter()
            .copied()
            .filter(|c| !known.contains_key(*c))
            .collect();
        let read = futures_util::future::join_all(
            missing
                .iter()
                .map(|c| async move { ((*c).clone(), docker::pid(&self.docker, c).await) }),
        )
        .await;
        let mut unreadable = BTreeMap::new();
        for (container, pid) in read {
            match pid {
                Ok(pid) => {
                    known.insert(container, pid);
                }
                Err(e) => {
                    unreadable.insert(container, e);
                }
            }
        }
        if let Ok(mut cache) = self.pids.lock() {
            *cache = known.clone();
        }
        (known, unreadable)
    }

    /// The hostname a member container runs with (its device's name).
    fn hostname_of(&self, container: &str) -> String {
        self.members
            .iter()
            .find(|m| m.container == container)
            .map_or_else(|| container.to_string(), |m| m.device.clone())
    }

    /// The lab's name.
    pub fn lab(&self) -> &str {
        &self.lab
    }

    /// The calico-node version `node` runs.
    fn version_of(&self, node: &str) -> CalicoVersion {
        self.versions
            .get(node)
            .copied()
            .unwrap_or_else(|| self.topology.calico_version())
    }
}

/// The lab's observer helper (see [`batch`]).
fn observer_name(lab: &str) -> String {
    format!("{lab}-observer")
}

/// Where a checked script runs (see `Emulated::checked`).
#[derive(Debug, Clone, Copy)]
enum Runs {
    ByMember,
    Entered,
}

/// The script that writes a node's BIRD files where calico-node keeps them.
fn bird_files_script(files: &BirdFiles) -> Result<String> {
    bird_paths(files)
        .into_iter()
        .map(|(path, text)| file_script(&path, text))
        .collect()
}

/// `script` as a command line.
fn sh_c(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(String::from).to_vec()
}

/// A node's BIRD files at their paths.
fn bird_paths(files: &BirdFiles) -> Vec<(String, &str)> {
    files
        .files()
        .into_iter()
        .map(|(name, text)| (format!("{CONFIG_DIR}/{name}"), text))
        .collect()
}

/// Shell lines that write `text` to `path` (its folder created), byte for byte
/// but for a final newline.
fn file_script(path: &str, text: &str) -> Result<String> {
    const END: &str = "CALICO_LAB_END_OF_FILE";
    if text.lines().any(|l| l == END) {
        return Err(Error::Unsupported(format!(
            "{path}: a line reads {END}, which ends the file early"
        )));
    }
    let text = text.strip_suffix('\n').unwrap_or(text);
    // Quoted: an applied file's path ends in the name the user gave it.
    Ok(format!(
        "mkdir -p {}\ncat > {} <<'{END}'\n{text}\n{END}\n",
        batch::quote(parent(path)),
        batch::quote(path)
    ))
}

/// The node's BIRD files as calico-node would write them, adapted for upstream BIRD.
pub(crate) fn render_node(
    calico: &Resources,
    node: &str,
    version: CalicoVersion,
) -> Result<BirdFiles> {
    let files = render(calico, node, version).map_err(crate::calico::CalicoError::from)?;
    Ok(upstream(&files))
}

/// Where Linux keeps the hard limit of the host's one neighbour table.
const NEIGHBOUR_LIMIT: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// Refuses a lab whose namespaces could need more neighbour (ARP) entries than the
/// host's kernel keeps for all namespaces together: past the limit new entries are
/// refused and pings fail for the host's reasons, not the lab's. Skipped where the
/// engine is not on this host or the limit cannot be read.
fn check_neighbour_table(t: &Topology, pods: usize) -> Result<()> {
    let Some(limit) = host_neighbour_limit() else {
        return Ok(());
    };
    neighbour_table_fits(crate::wiring::neighbour_entries(t, pods), limit)
}

/// The host's neighbour table limit, where the engine runs on this host.
fn host_neighbour_limit() -> Option<usize> {
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty() && !h.starts_with("unix://")) {
        return None;
    }
    std::fs::read_to_string(NEIGHBOUR_LIMIT)
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
}

/// How many labs of `t` the host's one neighbour table holds at once (at least
/// one: a lab too big alone is refused by its own bring-up).
pub fn labs_the_neighbour_table_holds(t: &Topology) -> usize {
    let Some(limit) = host_neighbour_limit() else {
        return usize::MAX;
    };
    let pods = t.nodes().map(|(_, n)| n.pod_names().len()).sum();
    (limit / crate::wiring::neighbour_entries(t, pods).max(1)).max(1)
}

fn neighbour_table_fits(needed: usize, limit: usize) -> Result<()> {
    if needed <= limit {
        return Ok(());
    }
    let hard = (needed * 4).next_power_of_two();
    Err(Error::Environment {
        what: format!(
            "the lab may need {needed} neighbour (ARP) entries across its namespaces; this host's kernel keeps at most {limit} for all namespaces together (net.ipv4.neigh.default.gc_thresh3), and pings past it fail for the host's reasons"
        ),
        fix: format!(
            "sudo sysctl -w net.ipv4.neigh.default.gc_thresh2={} net.ipv4.neigh.default.gc_thresh3={hard} (ci/bootstrap raises both)",
            hard / 2
        ),
    })
}

/// A router's command line as the image runs it: `vtysh -c 'show bgp ...'` goes
/// straight to bgpd's vty socket through the image's client, the same answer
/// for an eighth of vtysh's CPU (waits ask every router several times a second);
/// anything else runs as given.
fn router_argv(cmd: &[&str]) -> Vec<String> {
    match cmd {
        ["vtysh", "-c", command] if command.starts_with("show bgp ") => vec![
            "perl".into(),
            format!("/{}", image::FRR_VTY_CLIENT_FILE),
            "bgpd".into(),
            command.to_string(),
        ],
        _ => cmd.iter().map(|s| s.to_string()).collect(),
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(dir, _)| dir)
}

/// A command started by [`Emulated::spawn`], running detached in its member:
/// `stop` collects it with one command, through the observer where there is one.
struct Spawned {
    docker: Docker,
    lab: String,
    observer: Option<std::sync::Arc<Sessions>>,
    container: String,
    /// The member's main process and hostname when the command started.
    member: Option<(u32, String)>,
    collect: Vec<String>,
}

#[async_trait]
impl Running for Spawned {
    async fn stop(self: Box<Self>) -> Result<ExecOutput> {
        let (Some(observer), Some((pid, hostname))) = (&self.observer, self.member) else {
            let argv: Vec<&str> = self.collect.iter().map(String::as_str).collect();
            return docker::exec(&self.docker, &self.container, &argv).await;
        };
        let nonce = batch::nonce();
        let command = batch::Command {
            pid,
            hostname,
            argv: self.collect,
        };
        let out = observer.run(&batch::script(&nonce, &[command])).await?;
        let answer = batch::split(&nonce, &out.stdout, 1).pop().flatten();
        answer_of(&self.lab, &self.container, &out, answer)
    }
}

/// One command's answer out of the observer's batch `out`: a member whose process
/// is no longer the one entered (restarted or stopped, a command inside it gone
/// with its output) is not running; no answer at all is the batch's failure.
fn answer_of(
    lab: &str,
    container: &str,
    out: &ExecOutput,
    answer: Option<ExecOutput>,
) -> Result<ExecOutput> {
    match answer {
        Some(o) if batch::is_stale(&o) => Err(Error::NotRunning {
            container: container.to_string(),
            state: "not running (its process is gone)",
        }),
        Some(o) => Ok(o),
        None => Err(Error::Lab {
            lab: lab.to_string(),
            message: format!(
                "the observer's batch ended before {container}'s command answered (exit {}: {})",
                out.exit_code,
                out.stderr.trim()
            ),
        }),
    }
}

#[async_trait]
impl Backend for Emulated {
    fn flavor(&self) -> Flavor {
        Flavor::EMULATED
    }

    fn members(&self) -> &[Member] {
        &self.members
    }

    fn run_id(&self) -> &str {
        &self.run.0
    }

    async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput> {
        let (container, full) = self.locate(target, cmd)?;
        self.run_located(&container, full).await
    }

    async fn exec_all(&self, commands: &[(Target, Vec<String>)]) -> Vec<Result<ExecOutput>> {
        let mut results: Vec<Option<Result<ExecOutput>>> = commands.iter().map(|_| None).collect();
        let (mut slots, mut located) = (Vec::new(), Vec::new());
        for (i, (target, cmd)) in commands.iter().enumerate() {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            match self.locate(target, &cmd) {
                Ok(found) => {
                    slots.push(i);
                    located.push(found);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let answers = self.run_all_located(&located, true).await;
        for (i, answer) in slots.into_iter().zip(answers) {
            results[i] = Some(answer);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.error("unanswered".into()))))
            .collect()
    }

    async fn start_in(&self, target: &Target, script: &str) -> Result<ExecOutput> {
        match target {
            Target::Router(d) | Target::Node(d) | Target::CalicoNode(d) => {
                let m = self.member(d)?;
                self.run_scripts(&[(m, script.to_string())])
                    .await
                    .pop()
                    .unwrap_or_else(|| Err(self.error("unanswered".into())))
            }
            // A pod is a namespace of its node: nothing of its own runs scripts.
            Target::Pod(_) => self.exec(target, &["sh", "-c", script]).await,
        }
    }

    async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>> {
        static SPAWNED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let files = format!("/run/calico-lab-spawned-{}-{seq}", std::process::id());
        let (container, full) = self.locate(target, cmd)?;
        let started = self
            .run_located(&container, super::detached_command(&files, &full))
            .await?;
        if started.exit_code != 0 {
            return Err(self.error(format!(
                "cannot start `{}` in {container}: {}",
                cmd.join(" "),
                started.stderr.trim()
            )));
        }
        let member = self
            .pids
            .lock()
            .ok()
            .and_then(|pids| pids.get(&container).copied())
            .map(|pid| (pid, self.hostname_of(&container)));
        Ok(Box::new(Spawned {
            docker: self.docker.clone(),
            lab: self.lab.clone(),
            observer: self.observer.clone(),
            container,
            member,
            collect: super::collect_detached(&files),
        }))
    }

    async fn pods(&self) -> Result<Vec<Pod>> {
        Ok(self.pods.clone())
    }

    async fn apply(
        &mut self,
        edit: Edit,
        source: &str,
        yaml: &str,
        _objects: &[Resource],
        next: &Resources,
    ) -> Result<Vec<String>> {
        let mut changed = BTreeMap::new();
        for (_, node) in self.topology.nodes() {
            let files = render_node(next, &node.name, self.version_of(&node.name))?;
            if self.bird_files.get(&node.name) != Some(&files) {
                changed.insert(node.name.clone(), files);
            }
        }
        // Every calico-node sees the change at once and reconfigures its BIRD. The
        // files go everywhere first (BIRD reads them only when told), then every BIRD
        // is told in one batch: node by node, a 16 x 8 lab's switch spread over
        // 20 s, and with the files written 16 at a time still over 14 s, cutting
        // pairs off between nodes already switched and nodes not yet.
        let written = match changed
            .iter()
            .map(|(node, files)| Ok((self.member(node)?, bird_files_script(files)?)))
            .collect::<Result<Vec<_>>>()
        {
            Ok(scripts) => {
                self.checked("writing BIRD's files", &scripts, Runs::Entered)
                    .await
            }
            Err(e) => Err(e),
        };
        let configure: Vec<String> = birdc(&["configure"])
            .iter()
            .map(|a| a.to_string())
            .collect();
        let reconfigured = match written {
            Ok(()) => {
                let commands: Vec<(Target, Vec<String>)> = changed
                    .keys()
                    .map(|node| (Target::CalicoNode(node.clone()), configure.clone()))
                    .collect();
                let answers = self.exec_all(&commands).await;
                changed
                    .keys()
                    .zip(answers)
                    .map(|(node, answer)| match answer {
                        Ok(out) if out.stdout.contains("Reconfigur") => Ok(()),
                        Ok(out) => Err(self.error(format!(
                            "BIRD on {node} did not take the new configuration: {}{}",
                            out.stdout, out.stderr
                        ))),
                        Err(e) => Err(e),
                    })
                    .collect::<Result<Vec<()>>>()
                    .map(drop)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = reconfigured {
            // Which nodes took the files is unknown: the next apply writes them all.
            for node in changed.keys() {
                self.bird_files.remove(node);
            }
            return Err(e);
        }
        let nodes: Vec<String> = changed.keys().cloned().collect();
        self.bird_files.extend(changed);
        self.applied += 1;
        let base = source.rsplit('/').next().unwrap_or(source);
        let path = format!("{APPLIED_DIR}/{:04}-{}-{base}", self.applied, edit.as_str());
        let fabric = self.member(FABRIC_DEVICE)?;
        let script = format!("set -e\n{}", file_script(&path, yaml)?);
        self.checked(
            "recording the applied file",
            &[(fabric, script)],
            Runs::Entered,
        )
        .await?;
        Ok(nodes)
    }

    async fn roll_calico_node(
        &mut self,
        node: &str,
        version: CalicoVersion,
        calico: &Resources,
    ) -> Result<()> {
        self.roll_calico_nodes(&[node.to_string()], version, calico)
            .await
    }

    async fn roll_calico_nodes(
        &mut self,
        nodes: &[String],
        version: CalicoVersion,
        calico: &Resources,
    ) -> Result<()> {
        let restarted = self.restart_calico_nodes(nodes, version, calico).await;
        let mut first = None;
        let mut rolled = Vec::new();
        for (node, files) in nodes.iter().zip(restarted) {
            match files {
                Ok(files) => rolled.push((node.clone(), files)),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if let Err(e) = self.record_versions(&rolled, version).await {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }

    async fn member_states(&self) -> Result<Vec<(Member, String)>> {
        let found = docker::list(&self.docker, &[format!("{LABEL_LAB}={}", self.lab)]).await?;
        Ok(self
            .members
            .iter()
            .map(|m| {
                let state = found
                    .iter()
                    .find(|c| {
                        c.names.as_ref().is_some_and(|n| {
                            n.iter().any(|n| n.trim_start_matches('/') == m.container)
                        })
                    })
                    .and_then(|c| c.state.as_ref())
                    .map_or_else(|| "absent".into(), |s| s.to_string().to_lowercase());
                (m.clone(), state)
            })
            .collect())
    }

    async fn collect(&self, member: &Member, dir: &Path) -> Result<()> {
        let files: &[(&str, &str)] = match member.role {
            MemberRole::Router => &[("frr.conf", "/etc/frr/frr.conf")],
            MemberRole::Node => &[
                ("bird.cfg", "/etc/calico/confd/config/bird.cfg"),
                ("bird_aggr.cfg", "/etc/calico/confd/config/bird_aggr.cfg"),
                ("bird_ipam.cfg", "/etc/calico/confd/config/bird_ipam.cfg"),
            ],
            MemberRole::Fabric => &[],
        };
        let reads: Vec<(String, Vec<String>)> = files
            .iter()
            .map(|(_, path)| {
                (
                    member.container.clone(),
                    vec!["cat".into(), path.to_string()],
                )
            })
            .collect();
        let outs = self.run_all_located(&reads, true).await;
        for ((name, path), out) in files.iter().zip(outs) {
            crate::artifacts::write_output(dir, name, &format!("cat {path}"), out)?;
        }
        let logs = docker::logs(&self.docker, &member.container, 2000).await;
        crate::artifacts::write_text(
            dir,
            "container.log",
            &logs.unwrap_or_else(|e| format!("# error: {e}\n")),
        )
    }

    async fn teardown(&mut self) -> Result<()> {
        // Released only once removed: a teardown dropped midway (a signal) leaves
        // the drop to finish it.
        remove_run(&self.docker, &self.run.0).await?;
        self.released = true;
        Ok(())
    }

    fn teardown_blocking(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        remove_run_blocking(&self.lab, &self.run.0, !self.ready);
    }

    fn release(&mut self) {
        self.released = true;
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        self.teardown_blocking();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_past_the_host_neighbour_table_is_refused_with_the_fix() {
        assert!(neighbour_table_fits(1024, 1024).is_ok());
        let e = neighbour_table_fits(1729, 1024).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let text = e.to_string();
        assert!(text.contains("1729 neighbour"), "{text}");
        assert!(text.contains("gc_thresh3=8192"), "{text}");
    }

    #[test]
    fn only_bgp_shows_go_to_the_vty_client() {
        let client = format!("/{}", image::FRR_VTY_CLIENT_FILE);
        assert_eq!(
            router_argv(&["vtysh", "-c", "show bgp summary json"]),
            ["perl", &client, "bgpd", "show bgp summary json"]
        );
        for kept in [
            &["vtysh", "-c", "show running-config"][..],
            &["vtysh", "-c", "show ip route json"],
            &["vtysh", "-d", "bgpd", "-c", "show bgp summary json"],
            &["sh", "-c", "vtysh -c 'show bgp summary json'"],
        ] {
            assert_eq!(router_argv(kept), kept, "{kept:?}");
        }
    }
}
