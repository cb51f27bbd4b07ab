//! The flavor seam: what a lab's backend must answer, whichever runtime runs the
//! nodes and the routers. Everything above it (observation, checks, scenarios,
//! artifacts, the CLI) talks to a lab only through these verbs.
//!
//! | module | job |
//! |---|---|
//! | [`emulated`] | nodes as BIRD containers with pods as namespaces, FRR routers, in Docker |
//! | [`kind`] | a kind cluster running the real calico-node, VyOS or FRR routers |
//! | [`replay`] | answers from recorded outputs, for offline tests of checks and diagnoses |
//! | [`docker`] | labelled access to the Docker engine, for the backends that use it |
//! | [`batch`] | many commands as one exec, each in a member's namespaces |
//! | [`image`] | the emulated flavor's image, built locally |
//! | [`ownership`] | run ids, the start-up sweep, `down` and `gc` of labelled containers |

pub mod batch;
pub mod docker;
pub mod emulated;
pub mod image;
pub mod kind;
pub mod ownership;
pub mod replay;
pub mod runner;
pub mod session;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use serde::Serialize;

use crate::calico::resources::Resource;
use crate::calico::Resources;
use crate::error::{Error, Result};

pub use docker::ExecOutput;

/// What a command runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A router (FRR or VyOS): answers `vtysh`.
    Router(String),
    /// A Kubernetes node's own namespace: its kernel routes and interfaces.
    Node(String),
    /// What runs calico-node on a node: answers BIRD's client on calico-node's socket.
    CalicoNode(String),
    /// Inside a pod's network namespace.
    Pod(String),
}

impl Target {
    /// The device or pod name.
    pub fn name(&self) -> &str {
        match self {
            Target::Router(n) | Target::Node(n) | Target::CalicoNode(n) | Target::Pod(n) => n,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Router(n) => write!(f, "router {n}"),
            Target::Node(n) => write!(f, "node {n}"),
            Target::CalicoNode(n) => write!(f, "calico-node on {n}"),
            Target::Pod(n) => write!(f, "pod {n}"),
        }
    }
}

/// What runs the Kubernetes nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Containers running BIRD with calico-node's configuration; pods are namespaces.
    #[default]
    Emulated,
    /// A kind cluster running the real calico-node.
    Kind,
}

pub use crate::topology::RouterKind;

/// The two axes of a lab's runtime. Both router kinds answer `vtysh ... json` and
/// both node kinds answer BIRD's `show protocols`, so probes stay shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Flavor {
    pub nodes: NodeKind,
    pub routers: RouterKind,
}

impl Flavor {
    pub const EMULATED: Flavor = Flavor {
        nodes: NodeKind::Emulated,
        routers: RouterKind::Frr,
    };

    /// `CALICO_LAB_FLAVOR`, or the emulated flavor when unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("CALICO_LAB_FLAVOR") {
            Ok(value) if !value.is_empty() => value.parse(),
            _ => Ok(Flavor::EMULATED),
        }
    }
}

/// `CALICO_LAB_ROUTERS` (`vyos` or `frr`), the kind flavor's routers; `None` when unset.
pub fn routers_from_env() -> Result<Option<RouterKind>> {
    match std::env::var("CALICO_LAB_ROUTERS") {
        Ok(value) if !value.is_empty() => {
            value.parse().map(Some).map_err(|_| Error::InvalidOption {
                option: "CALICO_LAB_ROUTERS",
                value,
                expected: "vyos, frr",
            })
        }
        _ => Ok(None),
    }
}

impl FromStr for Flavor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "emulated" => Ok(Flavor::EMULATED),
            "kind" => Ok(Flavor {
                nodes: NodeKind::Kind,
                routers: RouterKind::Vyos,
            }),
            other => Err(Error::InvalidOption {
                option: "flavor",
                value: other.into(),
                expected: "emulated, kind",
            }),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nodes {
            NodeKind::Emulated => f.write_str("emulated"),
            NodeKind::Kind => f.write_str("kind"),
        }
    }
}

/// A pod as the cluster placed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Router,
    Node,
    /// Holds the rack bridges.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub device: String,
    pub container: String,
    pub role: MemberRole,
}

/// A long-running command started with [`Backend::spawn`]; stop it to get what it
/// printed.
#[async_trait]
pub trait Running: Send {
    /// Stops the command and returns its output (exit code of the stopped command).
    async fn stop(self: Box<Self>) -> Result<ExecOutput>;
}

/// A command that writes its shell's PID to `pid_file`, then becomes `cmd`, so that
/// [`stop_spawned`] can interrupt it (the kind flavor's `spawn`).
pub(crate) fn spawned_command(pid_file: &str, cmd: &[String]) -> Vec<String> {
    let mut wrapped: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        format!("echo $$ > {pid_file}; exec \"$@\""),
        "spawned".into(),
    ];
    wrapped.extend_from_slice(cmd);
    wrapped
}

/// Interrupts a spawned command (SIGINT: ping prints its summary); the command may
/// not have written its PID yet, so wait for it a little.
pub(crate) fn stop_spawned(pid_file: &str) -> String {
    format!(
        "for i in $(seq 50); do [ -s {pid_file} ] && exec kill -INT $(cat {pid_file}); sleep 0.1; done; exit 1"
    )
}

/// Starts `cmd` in the background and returns at once: its PID, output and exit
/// code go to files named `files`.* on the target, for [`collect_detached`] (the
/// emulated flavor's `spawn`, which holds no connection open while it runs). A
/// shell starts background jobs with SIGINT ignored: `cmd` gets it back.
pub(crate) fn detached_command(files: &str, cmd: &[String]) -> Vec<String> {
    let mut wrapped: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        format!(
            "( sh -c 'echo $$ >{files}.pid; exec env --default-signal=INT,QUIT \"$@\"' spawned \"$@\" >{files}.out 2>{files}.err </dev/null; \
             echo $? >{files}.code.new; mv {files}.code.new {files}.code ) >/dev/null 2>&1 </dev/null &"
        ),
        "detached".into(),
    ];
    wrapped.extend_from_slice(cmd);
    wrapped
}

/// Interrupts a command started by [`detached_command`] (SIGINT, as [`stop_spawned`]),
/// waits for it to end, answers with its output and exit code as if it had run in
/// the foreground, and removes its files. One that ignores SIGINT for
/// [`DETACHED_GRACE`] is killed and answered with exit 124.
pub(crate) fn collect_detached(files: &str) -> Vec<String> {
    let tenths = DETACHED_GRACE.as_millis() / 100;
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "for i in $(seq 50); do [ -s {files}.pid ] && break; sleep 0.1; done\n\
             [ -e {files}.code ] || {{ [ -s {files}.pid ] && kill -INT $(cat {files}.pid) 2>/dev/null; }}\n\
             for i in $(seq {tenths}); do [ -e {files}.code ] && break; sleep 0.1; done\n\
             if [ ! -e {files}.code ]; then\n\
             [ -s {files}.pid ] && kill -KILL $(cat {files}.pid) 2>/dev/null\n\
             for i in $(seq 20); do [ -e {files}.code ] && break; sleep 0.05; done\n\
             echo 'the command did not end within {grace} s of being stopped: killed' >&2; code=124\n\
             else code=$(cat {files}.code); fi\n\
             cat {files}.out 2>/dev/null; [ ! -e {files}.err ] || cat {files}.err >&2\n\
             rm -f {files}.pid {files}.out {files}.err {files}.code {files}.code.new\n\
             exit $code\n",
            grace = DETACHED_GRACE.as_secs()
        ),
    ]
}

/// How long a stopped command may take to end after SIGINT.
pub(crate) const DETACHED_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How many calls of one kind go to the engine at once: enough to keep it busy,
/// few enough that a small machine does not thrash.
pub(crate) fn parallelism() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 8).clamp(8, 64)
}

/// Runs every future, at most [`parallelism`] at once; the first error wins.
/// (Boxed by the caller: a stream over unboxed closures' futures is not provably
/// `Send` for every lifetime.)
pub(crate) async fn all_bounded(
    futures: Vec<futures_util::future::BoxFuture<'_, Result<()>>>,
) -> Result<()> {
    use futures_util::StreamExt;
    let mut running = futures_util::stream::iter(futures).buffer_unordered(parallelism());
    let mut first = None;
    while let Some(result) = running.next().await {
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// [`Backend::exec_all`] as one exec per command, a bounded number at once.
pub async fn exec_each<B: Backend + ?Sized + Sync>(
    backend: &B,
    commands: &[(Target, Vec<String>)],
) -> Vec<Result<ExecOutput>> {
    use futures_util::future::BoxFuture;
    // Boxed first: the stream's closure would otherwise not be general enough.
    let calls: Vec<BoxFuture<'_, Result<ExecOutput>>> = commands
        .iter()
        .map(|(target, cmd)| {
            let call: BoxFuture<'_, Result<ExecOutput>> = Box::pin(async move {
                let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                backend.exec(target, &cmd).await
            });
            call
        })
        .collect();
    all_in_order(calls).await
}

/// Every future's output in order, at most [`parallelism`] running at once.
pub(crate) async fn all_in_order<T>(calls: Vec<futures_util::future::BoxFuture<'_, T>>) -> Vec<T> {
    use futures_util::StreamExt;
    futures_util::stream::iter(calls)
        .buffered(parallelism())
        .collect()
        .await
}

/// What a change of Calico objects does to them: `calicoctl apply` or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Apply,
    Delete,
}

impl Edit {
    pub fn as_str(self) -> &'static str {
        match self {
            Edit::Apply => "apply",
            Edit::Delete => "delete",
        }
    }
}

/// The verbs every flavor answers. Implementations: [`emulated::Emulated`] and
/// [`kind::Kind`] and [`replay::Replay`].
#[async_trait]
pub trait Backend: Send + Sync {
    fn flavor(&self) -> Flavor;
    /// The lab's members (containers), as created.
    fn members(&self) -> &[Member];
    /// The run id that owns the lab's containers.
    fn run_id(&self) -> &str;

    /// Runs a command on a target and waits for it. A command that ran and failed is
    /// an output with its exit code; an error means it could not be run.
    async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput>;
    /// Runs several commands, each on its target, all at once; the results in
    /// order, each as [`exec`](Backend::exec) gives it. A flavor that can runs them
    /// as one batch.
    async fn exec_all(&self, commands: &[(Target, Vec<String>)]) -> Vec<Result<ExecOutput>> {
        exec_each(self, commands).await
    }
    /// Runs `script` on `target` for what must outlive it (a daemon it starts): an
    /// [`exec`](Backend::exec) of `sh -c` by default; a flavor whose members run
    /// scripts themselves has the member run it, so that the daemon is the member's.
    async fn start_in(&self, target: &Target, script: &str) -> Result<ExecOutput> {
        self.exec(target, &["sh", "-c", script]).await
    }
    /// Starts a long-running command on a target (continuous traffic).
    async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>>;
    /// The pods as they are: on kind the scheduler and Calico IPAM decide.
    async fn pods(&self) -> Result<Vec<Pod>>;
    /// Applies or deletes Calico objects (`objects`, read from `yaml` of `source`) so
    /// that the cluster holds `next`; returns the nodes whose BGP configuration
    /// changed.
    async fn apply(
        &mut self,
        edit: Edit,
        source: &str,
        yaml: &str,
        objects: &[Resource],
        next: &Resources,
    ) -> Result<Vec<String>>;
    /// Rolls one node's calico-node to `version`, as a DaemonSet rollout replaces its
    /// pod: the node's BGP configuration as that version writes it for `calico`, and
    /// a restart (peers see the session go and come back).
    async fn roll_calico_node(
        &mut self,
        node: &str,
        version: crate::calico::CalicoVersion,
        calico: &Resources,
    ) -> Result<()>;
    /// Rolls every one of `nodes` to `version` without waiting between them (a
    /// rollback, not a gated rollout); by default one after another.
    async fn roll_calico_nodes(
        &mut self,
        nodes: &[String],
        version: crate::calico::CalicoVersion,
        calico: &Resources,
    ) -> Result<()> {
        for node in nodes {
            self.roll_calico_node(node, version, calico).await?;
        }
        Ok(())
    }
    /// Each member's state as the runtime reports it (`running`, `exited`, `absent`).
    async fn member_states(&self) -> Result<Vec<(Member, String)>>;
    /// Writes what only the runtime knows about a member (logs, files it runs with)
    /// into `dir`.
    async fn collect(&self, member: &Member, dir: &Path) -> Result<()>;
    /// Removes everything of the lab.
    async fn teardown(&mut self) -> Result<()>;
    /// Tears down from a synchronous context (a handle dropped, maybe while
    /// unwinding): blocks until done, reports failures on stderr.
    fn teardown_blocking(&mut self);
    /// Lets the lab outlive this handle: neither drop nor teardown_blocking removes it.
    fn release(&mut self);
}
