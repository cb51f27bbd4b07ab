//! A lab handle, the public API users write scenarios against: the topology, the
//! cluster's Calico objects, the pods, and a backend that runs them, with the verbs a
//! scenario needs (exec, sessions, routes, ping, traceroute, converge, apply).

mod options;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

pub use options::{CalicoState, Event, KeepPolicy, LabOptions, Progress};

use crate::backend::docker::LABEL_FLAVOR;
use crate::backend::emulated::{Emulated, UpTimings};
use crate::backend::kind::Kind;
use crate::backend::ownership::{check_lab_name, lab_labels};
use crate::backend::replay::Recorder;
use crate::backend::{
    Backend, Edit, ExecOutput, Flavor, Member, NodeKind, Pod, RouterKind, Running, Target,
};
use crate::calico::bird::CONTROL_SOCKET;
use crate::calico::resources::parse;
use crate::calico::{emulated, Resources};
use crate::check::{self, Strictness};
use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};
use crate::expect::{self, PathClass};
use crate::fault::{self, Fault};
use crate::observe::{self, Routes, Sessions, Snapshot};
use crate::probe::{BgpTable, PingResult};
use crate::topology::Topology;
use crate::wait::{self, Budget};

/// A running lab. Dropping a lab this process brought up tears it down unless its
/// [`KeepPolicy`] says otherwise; a lab [`attach`](Lab::attach)ed to is never torn
/// down by its handle.
pub struct Lab {
    name: String,
    topology: Topology,
    calico: Resources,
    pods: Vec<Pod>,
    backend: Box<dyn Backend>,
    keep: KeepPolicy,
    failed: bool,
    /// Brought up by this handle (not attached to).
    owned: bool,
    /// How long each phase of bring-up took (zero for an attached lab).
    pub timings: UpTimings,
    /// How long each wait inside a scenario may take (the fabric settling after a
    /// fault, calico-node's sessions after a roll).
    wait_budget: Duration,
}

/// The budget of each wait until the caller sets another (`--wait`, `CALICO_LAB_WAIT`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A BIRD client command line against calico-node's control socket (`birdcl` where
/// calico-node ships it, Debian's `birdc` otherwise).
pub fn birdc<'a>(args: &[&'a str]) -> Vec<&'a str> {
    const SCRIPT: &str = "if command -v birdcl >/dev/null; then exec birdcl -s \"$0\" \"$@\"; else exec birdc -s \"$0\" \"$@\"; fi";
    let mut cmd = vec!["sh", "-c", SCRIPT, CONTROL_SOCKET];
    cmd.extend_from_slice(args);
    cmd
}

impl Lab {
    /// Brings a lab up from a topology: the cluster's Calico objects as `options`
    /// says, every member started and wired, routers and calico-node running. Call
    /// [`converge`](Lab::converge) before asserting anything.
    pub async fn up(topology: Topology, options: LabOptions) -> Result<Lab> {
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| topology.name.clone());
        check_lab_name(&name)?;
        let mut calico = emulated::starting_resources(&topology, options.calico)?;
        let keep_on_failure = options.keep != KeepPolicy::Never;
        let (backend, timings): (Box<dyn Backend>, UpTimings) = match options.flavor.nodes {
            NodeKind::Emulated => {
                if options.routers == Some(RouterKind::Vyos) {
                    return Err(Error::Unsupported(
                        "the emulated flavor runs FRR routers; VyOS routers run on the kind flavor (--flavor kind)".into(),
                    ));
                }
                let b = Emulated::up(
                    &topology,
                    &name,
                    &calico,
                    options.calico,
                    options.detached,
                    keep_on_failure,
                    &options.progress,
                )
                .await?;
                let timings = b.timings.clone();
                (Box::new(b), timings)
            }
            NodeKind::Kind => {
                let b = Kind::up(
                    &topology,
                    &name,
                    &calico,
                    options.calico,
                    options.routers,
                    options.detached,
                    keep_on_failure,
                    &options.progress,
                )
                .await?;
                // Calico's IPAM, not the harness, gave the blocks out.
                calico = b.resources().clone();
                (Box::new(b), UpTimings::default())
            }
        };
        let backend: Box<dyn Backend> = match &options.record {
            Some(dir) => Box::new(Recorder::new(backend, dir)),
            None => backend,
        };
        let mut lab = Lab::over(&name, topology, calico, backend, options.keep).await?;
        lab.timings = timings;
        Ok(lab)
    }

    /// A handle on a lab another process brought up (`calico-lab up`, a shared test
    /// lab), with the Calico objects it holds now. The handle never tears it down.
    pub async fn attach(topology: Topology, name: &str) -> Result<Lab> {
        check_lab_name(name)?;
        let labels = lab_labels(name).await?;
        let (backend, calico): (Box<dyn Backend>, Resources) =
            if labels.get(LABEL_FLAVOR).map(String::as_str) == Some("kind") {
                let (b, calico) = Kind::attach(&topology, name, &labels).await?;
                (Box::new(b), calico)
            } else {
                let (b, calico) = Emulated::attach(&topology, name).await?;
                (Box::new(b), calico)
            };
        let mut lab = Lab::over(name, topology, calico, backend, KeepPolicy::Always).await?;
        lab.owned = false;
        Ok(lab)
    }

    /// A lab over any backend (the replay backend in offline tests).
    pub async fn with_backend(
        name: &str,
        topology: Topology,
        calico: Resources,
        backend: Box<dyn Backend>,
    ) -> Result<Lab> {
        Lab::over(name, topology, calico, backend, KeepPolicy::Never).await
    }

    /// A handle this process owns over `backend`, with the pods it lists.
    async fn over(
        name: &str,
        topology: Topology,
        calico: Resources,
        backend: Box<dyn Backend>,
        keep: KeepPolicy,
    ) -> Result<Lab> {
        let pods = backend.pods().await?;
        Ok(Lab {
            name: name.to_string(),
            topology,
            calico,
            pods,
            backend,
            keep,
            failed: false,
            owned: true,
            timings: UpTimings::default(),
            wait_budget: DEFAULT_WAIT,
        })
    }

    /// Removes every member of this lab now.
    pub async fn down(mut self) -> Result<()> {
        self.backend.teardown().await
    }

    /// Done with the lab: kept as its keep policy says (as a drop would), else
    /// removed without blocking the runtime.
    pub async fn close(self) -> Result<()> {
        if self.kept() || !self.owned {
            drop(self);
            Ok(())
        } else {
            self.down().await
        }
    }

    /// Whether the keep policy keeps the lab once its handle goes (a panic counts
    /// as a failure).
    fn kept(&self) -> bool {
        match self.keep {
            KeepPolicy::Always => true,
            KeepPolicy::OnFailure => self.failed || std::thread::panicking(),
            KeepPolicy::Never => false,
        }
    }

    /// Lets the lab outlive this handle (what `calico-lab up` does).
    pub fn release(mut self) {
        self.backend.release();
        self.owned = false;
    }

    /// Marks the lab failed, so that `KeepPolicy::OnFailure` keeps it.
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long each wait inside a scenario may take ([`DEFAULT_WAIT`] unless set).
    pub fn wait_budget(&self) -> Duration {
        self.wait_budget
    }

    pub fn set_wait_budget(&mut self, wait: Duration) {
        self.wait_budget = wait;
    }

    pub fn run_id(&self) -> &str {
        self.backend.run_id()
    }
    pub fn flavor(&self) -> Flavor {
        self.backend.flavor()
    }
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
    /// The Calico objects the cluster holds.
    pub fn calico(&self) -> &Resources {
        &self.calico
    }
    /// Every pod with its node and address, as the cluster placed them.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }
    pub fn members(&self) -> &[Member] {
        self.backend.members()
    }

    /// The pod named `name`.
    pub fn pod(&self, name: &str) -> Result<&Pod> {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::NoSuchTarget {
                lab: self.name.clone(),
                what: "pod",
                name: name.to_string(),
            })
    }

    /// What a name stands for: a router, a node (or the fabric member), or a pod.
    pub fn target(&self, name: &str) -> Result<Target> {
        if self.topology.router(name).is_some() {
            Ok(Target::Router(name.into()))
        } else if self.members().iter().any(|m| m.device == name) {
            Ok(Target::Node(name.into()))
        } else if self.pods.iter().any(|p| p.name == name) {
            Ok(Target::Pod(name.into()))
        } else {
            Err(Error::NoSuchTarget {
                lab: self.name.clone(),
                what: "device or pod",
                name: name.into(),
            })
        }
    }

    /// Runs a command on a target and waits for it.
    pub async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput> {
        self.backend.exec(target, cmd).await
    }

    /// Runs several commands, each on its target, all at once (one batch where
    /// the flavor can); the results in order.
    pub async fn exec_all(&self, commands: &[(Target, Vec<String>)]) -> Vec<Result<ExecOutput>> {
        self.backend.exec_all(commands).await
    }

    /// Starts a long-running command (continuous traffic); stop it to read its output.
    pub async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>> {
        self.backend.spawn(target, cmd).await
    }

    /// Runs a BIRD client command on a node's calico-node.
    pub async fn birdc(&self, node: &str, args: &[&str]) -> Result<ExecOutput> {
        self.exec(&Target::CalicoNode(node.into()), &birdc(args))
            .await
    }

    /// A device's BGP sessions and their states.
    pub async fn sessions(&self, device: &str) -> Result<Sessions> {
        Ok(observe::sessions(self, device).await?)
    }

    /// A device's IPv4 kernel routes by destination.
    pub async fn routes(&self, device: &str) -> Result<Routes> {
        Ok(observe::routes(self, device).await?)
    }

    /// A router's BGP table with every path's attributes.
    pub async fn bgp_table(&self, router: &str) -> Result<BgpTable> {
        Ok(observe::bgp_table(self, router).await?)
    }

    /// Every device's sessions and routes, read at once.
    pub async fn snapshot(&self) -> Snapshot {
        observe::snapshot(self).await
    }

    /// What is wrong with the control plane now, in the order traffic depends on it
    /// (empty when every session and route is exactly as designed).
    pub async fn diagnose(&self) -> Vec<Diagnosis> {
        let snapshot = self.snapshot().await;
        check::control_plane(&self.topology, &self.calico, &snapshot, Strictness::Exact)
    }

    /// Representative pod pairs of a class: the first two pods of each node
    /// (same host), else the first pods of every ordered node pair; above
    /// [`SAMPLE_ABOVE_PODS`](expect::SAMPLE_ABOVE_PODS) pods, the sample
    /// [`sample`](expect::sample) takes.
    pub fn pod_pairs(&self, class: PathClass) -> Vec<(Pod, Pod)> {
        expect::sample(&self.topology, &self.pods, class)
            .unwrap_or_else(|| expect::pod_pairs(&self.topology, &self.pods, class, false))
    }

    /// Every ordered pod pair of a class.
    pub fn all_pod_pairs(&self, class: PathClass) -> Vec<(Pod, Pod)> {
        expect::pod_pairs(&self.topology, &self.pods, class, true)
    }

    /// Three pings from one pod to another; loss shows in the result.
    pub async fn ping(&self, from: &Pod, to: &Pod) -> Result<PingResult> {
        Ok(observe::ping(self, from, to).await?.0)
    }

    /// The addresses traceroute shows from one pod to another (`None`: no answer).
    pub async fn traceroute(&self, from: &Pod, to: &Pod) -> Result<Vec<Option<Ipv4Addr>>> {
        Ok(observe::traceroute(self, from, to).await?)
    }

    /// The devices a packet from one pod to another crosses, as traceroute shows
    /// them (an unknown address as itself, no answer as `*`), ending at the pod.
    pub async fn path(&self, from: &Pod, to: &Pod) -> Result<Vec<String>> {
        let owners = expect::address_owners(&self.topology, &self.pods);
        Ok(devices_of(&owners, &self.traceroute(from, to).await?))
    }

    /// [`path`](Lab::path) for every pair, in order, a bounded number traced at
    /// once.
    pub async fn paths(&self, pairs: &[(Pod, Pod)]) -> Vec<Result<Vec<String>>> {
        let owners = expect::address_owners(&self.topology, &self.pods);
        observe::traceroutes(self, pairs)
            .await
            .into_iter()
            .map(|hops| Ok(devices_of(&owners, &hops?)))
            .collect()
    }

    /// Waits until every router-to-router session is Established and every router
    /// has every fabric subnet; returns how long it took.
    pub async fn wait_for_fabric(&self, limit: Duration) -> Result<Duration> {
        let budget = Budget::new(
            format!(
                "lab {}: fabric BGP sessions Established and routes installed",
                self.name
            ),
            limit,
        );
        wait::until(&budget, || async {
            let snapshot = observe::snapshot_of(self, self.router_names()).await;
            check::fabric(&self.topology, &snapshot)
        })
        .await
    }

    /// Waits until every device, router and node, runs exactly the BGP sessions the
    /// design calls for, all Established (routes not yet looked at).
    pub async fn wait_for_sessions(&self, limit: Duration) -> Result<Duration> {
        let devices = self
            .router_names()
            .into_iter()
            .chain(self.node_names())
            .collect();
        self.wait_for_sessions_of(devices, "every BGP session Established", limit)
            .await
    }

    /// Waits until every node runs exactly the BGP sessions its Calico objects call
    /// for, all Established.
    pub async fn wait_for_calico(&self, limit: Duration) -> Result<Duration> {
        let what = "calico-node BGP sessions Established";
        self.wait_for_sessions_of(self.node_names(), what, limit)
            .await
    }

    async fn wait_for_sessions_of(
        &self,
        devices: Vec<String>,
        what: &str,
        limit: Duration,
    ) -> Result<Duration> {
        let budget = Budget::new(format!("lab {}: {what}", self.name), limit);
        let mut expected = expect::sessions(&self.topology, &self.calico);
        expected.retain(|device, _| devices.contains(device));
        wait::until(&budget, || async {
            let snapshot = observe::snapshot_of(self, devices.clone()).await;
            check::sessions(
                &self.topology,
                &expected,
                &snapshot.sessions,
                Strictness::Exact,
            )
        })
        .await
    }

    /// Waits, each phase within `limit`, for the fabric, then calico-node's
    /// sessions, then every session and route the design calls for; returns the
    /// whole time.
    pub async fn converge(&self, limit: Duration) -> Result<Duration> {
        let fabric = self.wait_for_fabric(limit).await?;
        let calico = self.wait_for_calico(limit).await?;
        let budget = Budget::new(
            format!(
                "lab {}: every session Established and every route installed",
                self.name
            ),
            limit,
        );
        let routes = wait::until(&budget, || async {
            let snapshot = self.snapshot().await;
            check::control_plane(
                &self.topology,
                &self.calico,
                &snapshot,
                Strictness::Converged,
            )
        })
        .await?;
        Ok(fabric + calico + routes)
    }

    /// Applies a YAML file of Calico objects, as `calicoctl apply -f` does: every
    /// node whose BGP configuration changes is reconfigured in place. Returns those
    /// nodes. A set that does not parse or hold together changes nothing.
    pub async fn apply(&mut self, source: &str, yaml: &str) -> Result<Vec<String>> {
        self.edit(Edit::Apply, source, yaml).await
    }

    /// Deletes the BGPConfigurations, BGPPeers and BGPFilters a YAML file names, as `calicoctl
    /// delete -f` does; returns the nodes reconfigured. An object the cluster does
    /// not hold changes nothing and is an error.
    pub async fn delete(&mut self, source: &str, yaml: &str) -> Result<Vec<String>> {
        self.edit(Edit::Delete, source, yaml).await
    }

    async fn edit(&mut self, edit: Edit, source: &str, yaml: &str) -> Result<Vec<String>> {
        let objects = parse(yaml, source)?;
        let mut next = self.calico.clone();
        match edit {
            Edit::Apply => next.apply(objects.clone())?,
            Edit::Delete => next.delete(&objects)?,
        }
        let changed = self
            .backend
            .apply(edit, source, yaml, &objects, &next)
            .await?;
        self.calico = next;
        Ok(changed)
    }

    /// [`apply`](Lab::apply) for a file.
    pub async fn apply_file(&mut self, path: &Path) -> Result<Vec<String>> {
        self.edit_file(Edit::Apply, path).await
    }

    /// [`apply`](Lab::apply) or [`delete`](Lab::delete) a file.
    pub async fn edit_file(&mut self, edit: Edit, path: &Path) -> Result<Vec<String>> {
        let yaml = crate::topology::read_input(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.edit(edit, &path.display().to_string(), &yaml).await
    }

    /// Injects a fault; the guard's [`FaultGuard::restore`] undoes it (a guard
    /// dropped without it restores on the spot where the runtime allows blocking,
    /// and teardown removes everything anyway).
    pub async fn fault(&self, fault: Fault) -> Result<FaultGuard<'_>> {
        if matches!(fault, Fault::BirdDown { .. }) && self.flavor().nodes == NodeKind::Kind {
            return Err(Error::Unsupported(
                "bird-down on the kind flavor: calico-node's own supervisor restarts BIRD; restart its pod instead".into(),
            ));
        }
        let plan = fault.plan(&self.topology)?;
        if let Err(e) = self.run_fault_steps(&fault, &plan.inject, "inject").await {
            // Half applied: mend what was broken, then say why it failed.
            let _ = self.run_fault_steps(&fault, &plan.restore, "restore").await;
            return Err(e);
        }
        Ok(FaultGuard {
            lab: self,
            fault,
            restore: plan.restore,
            restored: false,
        })
    }

    /// Undoes `fault` (what `calico-lab restore` runs, from any process).
    pub async fn restore(&self, fault: &Fault) -> Result<()> {
        let plan = fault.plan(&self.topology)?;
        self.run_fault_steps(fault, &plan.restore, "restore").await
    }

    /// Runs the steps in order; an inject stops at the first failure, a restore
    /// goes on past it (mending as much as it can) and returns the first.
    async fn run_fault_steps(
        &self,
        fault: &Fault,
        steps: &[fault::Step],
        what: &str,
    ) -> Result<()> {
        let mut first = None;
        for step in steps {
            let ran = if step.starts_daemon {
                self.backend.start_in(&step.target, &step.script).await
            } else {
                self.exec(&step.target, &["sh", "-c", &step.script]).await
            };
            let result = match ran {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => Err(Error::Lab {
                    lab: self.name.clone(),
                    message: format!(
                        "{what} {fault}: on {} `{}` failed ({}): {}{}",
                        step.target, step.script, out.exit_code, out.stdout, out.stderr
                    ),
                }),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                if what == "inject" {
                    return Err(e);
                }
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Rolls `node`'s calico-node to `version` (new BGP configuration, restart).
    pub async fn roll_calico_node(
        &mut self,
        node: &str,
        version: crate::calico::CalicoVersion,
    ) -> Result<()> {
        self.backend
            .roll_calico_node(node, version, &self.calico)
            .await
    }

    /// Rolls every one of `nodes` to `version` at once, without waiting for their
    /// sessions (a rollback; a gated rollout rolls one node at a time).
    pub async fn roll_calico_nodes(
        &mut self,
        nodes: &[String],
        version: crate::calico::CalicoVersion,
    ) -> Result<()> {
        self.backend
            .roll_calico_nodes(nodes, version, &self.calico)
            .await
    }

    /// Each member with its state as the runtime reports it.
    pub async fn member_states(&self) -> Result<Vec<(Member, String)>> {
        self.backend.member_states().await
    }

    /// Writes what only the runtime knows about a member into `dir`.
    pub(crate) async fn collect(&self, member: &Member, dir: &Path) -> Result<()> {
        self.backend.collect(member, dir).await
    }

    fn node_names(&self) -> Vec<String> {
        self.topology.nodes().map(|(_, n)| n.name.clone()).collect()
    }

    fn router_names(&self) -> Vec<String> {
        self.topology
            .routers()
            .map(|(_, r)| r.name.clone())
            .collect()
    }
}

/// Hop addresses as the devices that own them (an unknown one as itself, no
/// answer as `*`).
fn devices_of(
    owners: &std::collections::BTreeMap<Ipv4Addr, String>,
    hops: &[Option<Ipv4Addr>],
) -> Vec<String> {
    hops.iter()
        .map(|h| match h {
            Some(ip) => owners.get(ip).cloned().unwrap_or_else(|| ip.to_string()),
            None => "*".into(),
        })
        .collect()
}

/// A fault in force on a lab; [`restore`](FaultGuard::restore) undoes it.
pub struct FaultGuard<'a> {
    lab: &'a Lab,
    fault: Fault,
    restore: Vec<fault::Step>,
    restored: bool,
}

impl FaultGuard<'_> {
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// Leaves the fault in force: [`Lab::restore`] or the lab's teardown undoes it.
    pub fn leave_in_force(mut self) -> Fault {
        self.restored = true;
        self.fault.clone()
    }

    /// Undoes the fault.
    pub async fn restore(mut self) -> Result<()> {
        self.restored = true;
        let steps = std::mem::take(&mut self.restore);
        self.lab
            .run_fault_steps(&self.fault, &steps, "restore")
            .await
    }
}

impl Drop for FaultGuard<'_> {
    fn drop(&mut self) {
        if self.restored {
            return;
        }
        let handle = tokio::runtime::Handle::try_current();
        let blocking_allowed = handle
            .as_ref()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let (lab, fault, steps) = (self.lab, &self.fault, &self.restore);
        let result = match handle {
            Ok(h) if blocking_allowed => tokio::task::block_in_place(|| {
                h.block_on(lab.run_fault_steps(fault, steps, "restore"))
            }),
            _ => Err(Error::Lab {
                lab: lab.name.clone(),
                message: "no multi-thread runtime to restore from: teardown will".into(),
            }),
        };
        if let Err(e) = result {
            eprintln!(
                "calico-lab: fault {fault} on lab {} not restored: {e}",
                lab.name
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if self.kept() {
            self.backend.release();
            eprintln!(
                "calico-lab: keeping lab {} (run {}); remove it with `calico-lab down --name {}`",
                self.name,
                self.backend.run_id(),
                self.name
            );
        } else {
            self.backend.teardown_blocking();
        }
    }
}
