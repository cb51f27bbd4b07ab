//! Who owns a lab's containers: run ids, the start-up sweep of what killed runs left,
//! `down` and `gc`. Only containers carrying the harness's labels are ever touched.

use bollard::models::ContainerSummary;
use bollard::Docker;

use super::docker::{self, LABEL_FLAVOR, LABEL_LAB, LABEL_RUN};
use crate::error::{Error, Result};

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

pub(crate) async fn remove_run(docker: &Docker, run: &str) -> Result<()> {
    let containers = docker::list(docker, &[format!("{LABEL_RUN}={run}")]).await?;
    remove_listed(docker, &containers).await.map(drop)
}

/// Removes run `run`'s containers from a synchronous context (a handle dropped,
/// maybe while unwinding, maybe inside a runtime): on a thread with a runtime and
/// an engine connection of its own; failures go to stderr. `in_flight`: bring-up
/// was interrupted, so a create may still land after the first sweep.
pub(crate) fn remove_run_blocking(lab: &str, run: &str, in_flight: bool) {
    let run = run.to_string();
    let teardown = std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("start a runtime for teardown"))?;
        runtime.block_on(async {
            let docker = docker::connect().await?;
            remove_run(&docker, &run).await?;
            if in_flight {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                remove_run(&docker, &run).await?;
            }
            Ok(())
        })
    });
    match teardown.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("calico-lab: teardown of lab {lab} failed: {e}"),
        Err(_) => eprintln!("calico-lab: teardown of lab {lab} panicked"),
    }
}

/// Refuses `name` while a live run uses it (what a bring-up would refuse later).
pub async fn refuse_live(docker: &Docker, name: &str) -> Result<()> {
    let containers = docker::list(docker, &[format!("{LABEL_LAB}={name}")]).await?;
    live_refused(name, &containers)
}

fn live_refused(name: &str, containers: &[ContainerSummary]) -> Result<()> {
    match containers.iter().map(run_of).find(RunId::is_alive) {
        Some(live) => Err(Error::AlreadyRunning {
            lab: name.to_string(),
            run: live.0,
        }),
        None => Ok(()),
    }
}

/// Removes what killed runs of lab `name` left; refuses while a live run uses the name.
pub(crate) async fn sweep(docker: &Docker, name: &str) -> Result<()> {
    let containers = docker::list(docker, &[format!("{LABEL_LAB}={name}")]).await?;
    live_refused(name, &containers)?;
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

/// Removes listed containers, and first the kind cluster of a kind lab among them
/// (the fabric container, removed last, is the lab's claim on the cluster); returns
/// their names.
async fn remove_listed(docker: &Docker, containers: &[ContainerSummary]) -> Result<Vec<String>> {
    let label = |c: &ContainerSummary, key: &str| c.labels.as_ref()?.get(key).cloned();
    let kind_labs: std::collections::BTreeSet<String> = containers
        .iter()
        .filter(|c| label(c, LABEL_FLAVOR).as_deref() == Some("kind"))
        .filter_map(|c| label(c, LABEL_LAB))
        .collect();
    let mut names = Vec::new();
    for lab in kind_labs {
        names.extend(remove_kind_cluster(docker, &lab).await?);
    }
    let ids: Vec<String> = containers.iter().filter_map(|c| c.id.clone()).collect();
    docker::remove(docker, &ids).await?;
    names.extend(container_names(containers));
    Ok(names)
}

fn container_names(containers: &[ContainerSummary]) -> Vec<String> {
    containers
        .iter()
        .filter_map(|c| {
            c.names
                .as_ref()?
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .collect()
}

/// Deletes lab `lab`'s kind cluster, if calico-lab created it here, with `kind`,
/// or, where kind is missing or fails, removes its node containers by kind's own
/// label; returns their names.
async fn remove_kind_cluster(docker: &Docker, lab: &str) -> Result<Vec<String>> {
    if !super::kind::created_here(lab) {
        // Bring-up failed before `kind create` (or another machine made it): a
        // cluster of that name is not ours to delete.
        tracing::info!("lab {lab}: no kind cluster created by calico-lab here; none deleted");
        super::kind::remove_state(lab)?;
        return Ok(vec![]);
    }
    let nodes = docker::list(docker, &[format!("{KIND_CLUSTER_LABEL}={lab}")]).await?;
    if let Err(e) = super::kind::delete_cluster(lab).await {
        tracing::warn!("kind delete cluster {lab}: {e}; removing its node containers directly");
        let ids: Vec<String> = nodes.iter().filter_map(|c| c.id.clone()).collect();
        docker::remove(docker, &ids).await?;
    }
    super::kind::remove_state(lab)?;
    Ok(container_names(&nodes))
}

/// kind's label on the node containers of a cluster.
const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

/// The labels of lab `name`'s containers (those of the first one found).
pub async fn lab_labels(name: &str) -> Result<std::collections::HashMap<String, String>> {
    let docker = docker::connect().await?;
    let found = docker::list(&docker, &[format!("{LABEL_LAB}={name}")]).await?;
    found
        .into_iter()
        .next()
        .map(|c| c.labels.unwrap_or_default())
        .ok_or_else(|| Error::NoSuchLab(name.to_string()))
}

/// Lab names become container-name prefixes and labels: a DNS label.
pub fn check_lab_name(name: &str) -> Result<()> {
    if crate::topology::is_dns_label(name) {
        Ok(())
    } else {
        Err(Error::LabName(name.to_string()))
    }
}
