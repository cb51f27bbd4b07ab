//! The `calico-lab` command line: arguments, and one file per command; every
//! command is a thin shell over the library.

mod apply;
mod bench;
mod collect;
mod confd;
mod down;
mod exec;
mod fault;
mod gc;
mod generate;
mod graph;
mod image;
mod progress;
mod render;
mod run;
mod status;
mod up;
mod upgrade;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use calico_lab::backend::Edit;
use calico_lab::{Error, Topology};
use clap::{Args, Parser, Subcommand};

/// Leaf/spine BGP fabric + Calico lab: bring it up, check it, tear it down.
#[derive(Parser)]
#[command(name = "calico-lab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The topology a command works on.
#[derive(Args, Clone)]
pub struct TopologyArg {
    /// Topology file (default: the embedded seed lab).
    #[arg(long, short)]
    pub topology: Option<PathBuf>,
}

impl TopologyArg {
    pub fn load(&self) -> Result<Topology, Error> {
        Ok(Topology::load_or_seed(self.topology.as_deref())?)
    }
}

/// A running lab: its topology and name.
#[derive(Args, Clone)]
pub struct LabArg {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Lab name (default: the topology's name).
    #[arg(long, short)]
    pub name: Option<String>,
}

impl LabArg {
    /// Attaches to the running lab.
    pub async fn attach(&self) -> Result<calico_lab::Lab, Error> {
        let t = self.topology.load()?;
        let name = self.name.clone().unwrap_or_else(|| t.name.clone());
        calico_lab::Lab::attach(t, &name).await
    }
}

/// Which runtime brings the lab up.
#[derive(Args, Clone)]
pub struct FlavorArg {
    /// emulated (default) or kind (`CALICO_LAB_FLAVOR`).
    #[arg(long, env = "CALICO_LAB_FLAVOR", default_value = "emulated")]
    pub flavor: calico_lab::Flavor,
    /// Routers on the kind flavor: vyos or frr (default: the topology's, else vyos).
    #[arg(long, env = "CALICO_LAB_ROUTERS")]
    pub routers: Option<calico_lab::backend::RouterKind>,
    /// Print every step the kind flavor would take (commands, containers, every
    /// Kubernetes object, waits) and exit; nothing is created.
    #[arg(long)]
    pub dry_run: bool,
}

impl FlavorArg {
    /// With `--dry-run`: the plan, printed; the caller stops there.
    pub fn dry_run(&self, t: &Topology, name: Option<&str>) -> Result<bool, Error> {
        if !self.dry_run {
            return Ok(false);
        }
        if self.flavor.nodes != calico_lab::backend::NodeKind::Kind {
            return Err(Error::Unsupported(
                "--dry-run prints the kind flavor's steps: add --flavor kind (the emulated flavor starts in seconds: run it)".into(),
            ));
        }
        let lab = name.unwrap_or(&t.name);
        let plan = calico_lab::backend::kind::dry_run(
            t,
            lab,
            self.routers,
            calico_lab::lab::CalicoState::Configured,
            calico_lab::backend::kind::state_dir(lab),
        )?;
        print!("{plan}");
        Ok(true)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Check a topology file and print what it describes.
    Validate(validate::Args),
    /// Write a leaf/spine topology of any size (racks, nodes per rack, spines), in
    /// the seed's conventions.
    Generate(generate::Args),
    /// Write every derived config (FRR, VyOS, kind, Calico resources) to a folder.
    Render(render::Args),
    /// Render what calico-node's confd writes for one node (bird.cfg, bird_aggr.cfg,
    /// bird_ipam.cfg) from Calico resources, applied in file order.
    Confd(confd::Args),
    /// The main job: bring the lab up, wait for convergence, run the named scenarios,
    /// print the report, tear the lab down. Exit 0: all passed, 1: one failed.
    Run(run::Args),
    /// A running lab: every member and its state, each node's BGP table as
    /// `calicoctl node status` prints it, each router's sessions, what is missing.
    Status(status::Args),
    /// Apply Calico resources to a running lab, as `calicoctl apply -f` would: every
    /// node whose BIRD configuration changes is reconfigured in place.
    Apply(apply::Args),
    /// Delete BGPConfigurations, BGPPeers and BGPFilters from a running lab, as `calicoctl
    /// delete -f` would: every node whose BIRD configuration changes is reconfigured.
    Delete(apply::Args),
    /// Write a running lab's state (every device's sessions, routes, configs, logs)
    /// to a folder, as a failing scenario's artifacts hold it.
    Collect(collect::Args),
    /// Run a command on a member of a running lab: a router, a node, or a pod (in its
    /// network namespace). Exits with the command's exit code.
    Exec(exec::Args),
    /// Break a running lab: a router down (every link), BIRD killed on a node (as a
    /// calico-node restart), a link cut at both ends, one BGP session blocked.
    Fault(fault::Args),
    /// Undo a fault `calico-lab fault` injected.
    Restore(fault::Args),
    /// The Calico upgrade gate: the lab at --from (default: the topology's version),
    /// the scenarios, calico-node rolled to --to node by node under continuous
    /// traffic, the scenarios again, the loss windows and every difference in the
    /// routes. Exit 1 when a scenario fails after, or loss exceeds its budget.
    Upgrade(upgrade::Args),
    /// Bring a lab up and leave it running.
    Up(up::Args),
    /// Draw the topology (racks, nodes, leafs, spines, links with addresses, ASNs)
    /// as Mermaid (for a README) or Graphviz dot.
    Graph(graph::Args),
    /// Remove a lab's containers.
    Down(down::Args),
    /// Remove every labelled container whose run is gone (never unlabelled ones).
    Gc,
    /// Build the emulated image unless the engine has it; print its tag.
    Image,
    /// Measure the lab engine and print figures.
    Bench(bench::Args),
}

/// Refuses report paths that cannot be written, before any lab starts (input: exit 2).
pub fn check_writable<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), Error> {
    let mut seen = Vec::new();
    for path in paths {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        // One file for two reports: the second would overwrite the first.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if seen.contains(&real) {
            return Err(Error::InvalidOption {
                option: "--json/--junit/--markdown",
                value: path.display().to_string(),
                expected: "a different file for each report",
            });
        }
        seen.push(real);
    }
    Ok(())
}

/// Writes each report asked for (`path` if given, what it is, text) and appends
/// `markdown` to `$GITHUB_STEP_SUMMARY` when set; one that fails does not stop the
/// others, and the error names every one that failed.
pub fn write_reports(
    reports: &[(Option<&PathBuf>, &str, String)],
    markdown: &str,
) -> anyhow::Result<()> {
    let mut unwritten = Vec::new();
    for (path, kind, text) in reports {
        let Some(path) = path else { continue };
        if let Err(e) = std::fs::write(path, text) {
            unwritten.push(format!("{kind} report {}: {e}", path.display()));
        }
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut file| writeln!(file, "{markdown}"));
        if let Err(e) = appended {
            unwritten.push(format!(
                "GITHUB_STEP_SUMMARY {}: {e}",
                summary.to_string_lossy()
            ));
        }
    }
    if !unwritten.is_empty() {
        anyhow::bail!("reports not written: {}", unwritten.join("; "));
    }
    Ok(())
}

/// Runs one command; the exit code on success (a command's own, for `exec`).
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(args),
        Command::Confd(args) => confd::run(args),
        Command::Run(args) => run::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Apply(args) => apply::run(args, Edit::Apply).await,
        Command::Delete(args) => apply::run(args, Edit::Delete).await,
        Command::Collect(args) => collect::run(args).await,
        Command::Exec(args) => exec::run(args).await,
        Command::Generate(args) => generate::run(args).await,
        Command::Fault(args) => fault::inject(args).await,
        Command::Restore(args) => fault::restore(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Upgrade(args) => upgrade::run(args).await,
        Command::Graph(args) => graph::run(args),
        Command::Down(args) => down::run(args).await,
        Command::Gc => gc::run().await,
        Command::Image => image::run().await,
        Command::Bench(args) => bench::run(args).await,
    }
}
