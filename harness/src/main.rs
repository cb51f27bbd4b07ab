//! The `calico-lab` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use calico_lab::calico::{self, confd, Resources};
use calico_lab::lab::{self, MemberRole};
use calico_lab::report::Report;
use calico_lab::scenario::{self, SCENARIOS};
use calico_lab::{image, probe, render, Error, KeepPolicy, Lab, LabOptions, Topology};
use clap::{Parser, Subcommand};

/// Leaf/spine BGP fabric + Calico lab: bring it up, check it, tear it down.
#[derive(Parser)]
#[command(name = "calico-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a topology file and print what it describes.
    Validate {
        /// Topology file (default: the embedded seed lab).
        #[arg(long, short)]
        topology: Option<PathBuf>,
    },
    /// Write every derived config (FRR, VyOS, kind, Calico resources) to a folder.
    Render {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Render what calico-node v3.23's confd writes for one node (bird.cfg,
    /// bird_aggr.cfg, bird_ipam.cfg) from Calico resources, applied in file order.
    Confd {
        /// The Calico Node to render for.
        #[arg(long)]
        node: String,
        /// Folder to write the three files to.
        #[arg(long, short)]
        out: PathBuf,
        /// Adapt the files for upstream BIRD 1.6 (drop Calico's `krt_tunnel`).
        #[arg(long)]
        upstream_bird: bool,
        /// Calico v3 resources and BlockAffinity objects (YAML, `---` separated, `*List` forms too).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The main job: bring the lab up, wait for convergence, run the named scenarios,
    /// print the report, tear the lab down. Exit 0: all passed, 1: one failed.
    Run {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Flavor::Emulated)]
        flavor: Flavor,
        /// Run only scenarios whose name contains PATTERN (repeatable; default: all).
        #[arg(long = "scenario", short = 's', value_name = "PATTERN")]
        scenarios: Vec<String>,
        /// Keep the lab afterwards: never (default), on-failure, always.
        #[arg(long, default_value = "never")]
        keep: KeepPolicy,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the report as JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write the report as Markdown here (also appended to $GITHUB_STEP_SUMMARY when set).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Seconds each convergence wait may take.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// A running lab: every member and its state, each node's BGP table as
    /// `calicoctl node status` prints it, each router's sessions, what is missing.
    Status {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Apply Calico resources to a running lab, as `calicoctl apply -f` would: every
    /// node whose BIRD configuration changes is reconfigured in place.
    Apply {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Calico v3 resource files, applied in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a command on a member of a running lab: a router, a node, or a pod (in its
    /// network namespace). Exits with the command's exit code.
    Exec {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Device or pod name.
        target: String,
        /// The command, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Bring a lab up and leave it running.
    Up {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Seconds to wait for every fabric BGP session to be Established.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Draw the topology (racks, nodes, leafs, spines, links with addresses, ASNs)
    /// as Mermaid (for a README) or Graphviz dot.
    Graph {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = render::GraphFormat::Mermaid)]
        format: render::GraphFormat,
    },
    /// Remove a lab's containers.
    Down {
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        #[arg(long, short)]
        topology: Option<PathBuf>,
    },
    /// Remove every labelled container whose run is gone (never unlabelled ones).
    Gc,
    /// Build the emulated image unless the engine has it; print its tag.
    Image,
    /// Measure the lab engine and print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Flavor {
    Emulated,
    Kind,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Image build (cold with --cold, cached), fabric up to Established, calico-node
    /// sessions, every expected route, teardown.
    Up {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Remove the image first, to time a cold build.
        #[arg(long)]
        cold: bool,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "calico_lab=info,calico_lab_cli=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.downcast_ref::<ScenarioFailed>().is_none()
                && err.downcast_ref::<CommandExit>().is_none()
            {
                eprintln!("error: {err:#}");
            }
            if let Some(CommandExit(code)) = err.downcast_ref::<CommandExit>() {
                return ExitCode::from(u8::try_from(*code).unwrap_or(1));
            }
            let code = match err.downcast_ref::<Error>() {
                Some(e) if e.is_input() => 2,
                Some(e) if e.is_environment() => 3,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}

fn load(topology: Option<&PathBuf>) -> Result<Topology, Error> {
    Ok(Topology::load_or_seed(topology.map(PathBuf::as_path))?)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Validate { topology } => {
            let t = load(topology.as_ref())?;
            println!(
                "topology '{}' is valid: {} spines, {} leafs, {} racks, {} nodes, {} links",
                t.name,
                t.spines.len(),
                t.leafs.len(),
                t.racks.len(),
                t.nodes().count(),
                t.links.len()
            );
        }
        Command::Render { topology, out } => {
            let t = load(topology.as_ref())?;
            let written = render::write_all(&t, &out)
                .with_context(|| format!("writing renders to {}", out.display()))?;
            for path in written {
                println!("{}", path.display());
            }
        }
        Command::Confd {
            node,
            out,
            upstream_bird,
            files,
        } => {
            let mut resources = Resources::default();
            for file in &files {
                resources
                    .apply(calico::resources::load(file).map_err(Error::from)?)
                    .map_err(Error::from)?;
            }
            let mut bird =
                confd::render(&resources, &node).map_err(|e| Error::Input(e.to_string()))?;
            if upstream_bird {
                bird = calico::bird::upstream(&bird);
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in bird.files() {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
        Command::Run {
            topology,
            flavor,
            scenarios,
            keep,
            name,
            json,
            junit,
            markdown,
            wait,
        } => {
            let t = load(topology.as_ref())?;
            let selected = select_scenarios(&scenarios)?;
            if flavor == Flavor::Kind {
                return Err(Error::Environment {
                    what: "the kind flavor's bring-up is not built yet".into(),
                    fix: "run the emulated flavor (the default); `calico-lab render` writes the kind and VyOS configs".into(),
                }
                .into());
            }
            let outcome = run_job(t, name, keep, &selected, Duration::from_secs(wait)).await?;
            for (path, text) in [
                (&json, outcome.json.clone()),
                (&junit, outcome.junit.clone()),
                (&markdown, outcome.markdown.clone()),
            ] {
                if let Some(path) = path {
                    std::fs::write(path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                use std::io::Write as _;
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&summary)
                    .with_context(|| {
                        format!("opening GITHUB_STEP_SUMMARY {}", summary.to_string_lossy())
                    })?;
                writeln!(file, "{}", outcome.markdown)?;
            }
            if !outcome.passed {
                return Err(ScenarioFailed.into());
            }
        }
        Command::Status {
            topology,
            name,
            json,
        } => {
            let t = load(topology.as_ref())?;
            let name = name.unwrap_or_else(|| t.name.clone());
            let lab = Lab::attach(t, &name).await?;
            status(&lab, json).await?;
        }
        Command::Apply {
            topology,
            name,
            files,
        } => {
            let t = load(topology.as_ref())?;
            let name = name.unwrap_or_else(|| t.name.clone());
            let mut lab = Lab::attach(t, &name).await?;
            for file in &files {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Error::Input(format!("{}: cannot read: {e}", file.display())))?;
                let changed = lab.apply_file(&file.display().to_string(), &text).await?;
                println!(
                    "{}: reconfigured {}",
                    file.display(),
                    if changed.is_empty() {
                        "no node".to_string()
                    } else {
                        changed.join(", ")
                    }
                );
            }
        }
        Command::Exec {
            topology,
            name,
            target,
            command,
        } => {
            let t = load(topology.as_ref())?;
            let name = name.unwrap_or_else(|| t.name.clone());
            let lab = Lab::attach(t, &name).await?;
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            let out = if lab.pods().iter().any(|p| p.name == target) {
                lab.pod_exec(&target, &args).await?
            } else {
                lab.exec(&target, &args).await?
            };
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            if !out.success() {
                return Err(CommandExit(out.exit_code).into());
            }
        }
        Command::Up {
            topology,
            name,
            wait,
        } => {
            let t = load(topology.as_ref())?;
            // Torn down when bring-up fails or is interrupted; released once up.
            let progress = Progress::new();
            let options = LabOptions {
                name,
                keep: KeepPolicy::Never,
                detached: true,
                progress: progress.listener(),
                ..LabOptions::default()
            };
            let up = Lab::up(t, options);
            tokio::pin!(up);
            let lab = tokio::select! {
                result = &mut up => result?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: finishing the step under way, then removing what was created");
                    // Dropping `up` mid-request could let the engine create a container
                    // after the teardown listed them; the finished lab drops cleanly.
                    drop(up.await);
                    anyhow::bail!("interrupted: removed what was created");
                }
            };
            let took = tokio::select! {
                result = lab.wait_for_fabric(Duration::from_secs(wait)) => result?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
            };
            let calico = tokio::select! {
                result = lab.wait_for_calico(Duration::from_secs(wait)) => result?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
            };
            progress.finish();
            print_members(&lab);
            println!(
                "fabric BGP sessions Established {:.1} s after the routers started; calico-node sessions {:.1} s later",
                took.as_secs_f64(),
                calico.as_secs_f64()
            );
            println!("remove it with: calico-lab down --name {}", lab.name());
            lab.release();
        }
        Command::Graph { topology, format } => {
            let t = load(topology.as_ref())?;
            print!("{}", render::graph(&t, format));
        }
        Command::Down { name, topology } => {
            let name = match name {
                Some(name) => name,
                None => load(topology.as_ref())?.name,
            };
            let removed = lab::down(&name).await?;
            println!("lab {name}: removed {} container(s)", removed.len());
        }
        Command::Gc => {
            let removed = lab::gc().await?;
            for name in &removed {
                println!("removed {name}");
            }
            println!("gc: removed {} container(s)", removed.len());
        }
        Command::Image => {
            let docker = calico_lab::docker::connect().await?;
            let report = image::ensure_image(&docker).await?;
            println!(
                "{} ({}, {:.1} s)",
                report.tag, report.method, report.seconds
            );
        }
        Command::Bench {
            what:
                BenchWhat::Up {
                    topology,
                    cold,
                    runs,
                },
        } => {
            bench_up(load(topology.as_ref())?, cold, runs.max(1)).await?;
        }
    }
    Ok(())
}

/// A scenario failed: the report says which; the exit code is 1.
#[derive(Debug)]
struct ScenarioFailed;

impl std::fmt::Display for ScenarioFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a scenario failed")
    }
}

impl std::error::Error for ScenarioFailed {}

/// `exec`'s command exited non-zero: pass its code on.
#[derive(Debug)]
struct CommandExit(i64);

impl std::fmt::Display for CommandExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command exited {}", self.0)
    }
}

impl std::error::Error for CommandExit {}

/// The scenarios whose names contain one of the patterns (all without patterns).
fn select_scenarios(patterns: &[String]) -> Result<Vec<&'static str>, Error> {
    let selected: Vec<&'static str> = SCENARIOS
        .iter()
        .map(|s| s.name)
        .filter(|name| patterns.is_empty() || patterns.iter().any(|p| name.contains(p.as_str())))
        .collect();
    if selected.is_empty() {
        let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        return Err(Error::Input(format!(
            "no scenario matches {patterns:?}; known: {}",
            known.join(", ")
        )));
    }
    Ok(selected)
}

struct JobOutcome {
    passed: bool,
    json: String,
    junit: String,
    markdown: String,
}

/// Brings the lab up, waits, runs the scenarios, prints the report, tears down (per
/// `keep`). Ctrl-C stops between steps and tears down what was created.
async fn run_job(
    t: Topology,
    name: Option<String>,
    keep: KeepPolicy,
    selected: &[&'static str],
    wait: Duration,
) -> anyhow::Result<JobOutcome> {
    let started = now_rfc3339();
    let topology_name = t.name.clone();
    let progress = Progress::new();
    let options = LabOptions {
        name,
        keep,
        progress: progress.listener(),
        ..LabOptions::default()
    };
    progress.step(&format!(
        "bringing up lab '{}' (image, containers, wiring, routers, calico-node)",
        options.name.as_deref().unwrap_or(&t.name)
    ));
    let up = Lab::up(t, options);
    tokio::pin!(up);
    let mut lab = tokio::select! {
        result = &mut up => result?,
        _ = tokio::signal::ctrl_c() => {
            drop(up.await);
            anyhow::bail!("interrupted: removed what was created");
        }
    };
    let converge = async {
        progress.step("waiting for the fabric's BGP sessions and routes");
        lab.wait_for_fabric(wait).await?;
        progress.step("waiting for calico-node's BGP sessions");
        lab.wait_for_calico(wait).await?;
        progress.step("waiting for every route the topology calls for");
        scenario::wait_until_converged(&lab, wait).await?;
        Ok::<_, Error>(())
    };
    tokio::select! {
        result = converge => if let Err(e) = result { lab.mark_failed(); return Err(e.into()); },
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
    }
    let mut outcomes = Vec::new();
    for name in selected {
        progress.step(&format!("scenario {name}"));
        let outcome = tokio::select! {
            outcome = scenario::run(&lab, name) => outcome,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
        };
        progress.result(name, outcome.passed(), outcome.duration);
        outcomes.push(outcome);
    }
    progress.finish();
    let report = Report {
        lab: lab.name().to_string(),
        topology: topology_name,
        flavor: "emulated".into(),
        started,
        outcomes,
    };
    // The reachability matrix, passed or failed.
    for o in report
        .outcomes
        .iter()
        .filter(|o| o.name == "all_pairs_reachability")
    {
        let matrix = o.failure.as_ref().map_or(&o.report, |f| &f.detail);
        println!("{matrix}");
    }
    println!("{}", report.table());
    let passed = report.all_passed();
    if !passed {
        lab.mark_failed();
    }
    Ok(JobOutcome {
        passed,
        json: serde_json::to_string_pretty(&report.json())?,
        junit: report.junit(),
        markdown: report.markdown(),
    })
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Progress on a terminal (a spinner per step), plain lines otherwise (CI logs).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// What the lab engine tells, as it happens: one line per member started.
    fn listener(&self) -> lab::Progress {
        let bar = self.bar.clone();
        lab::Progress::new(move |step, member| {
            let line = if member.is_empty() {
                step.to_string()
            } else {
                format!("{step}: {member}")
            };
            match &bar {
                Some(bar) => bar.set_message(line),
                None => eprintln!("   {line}"),
            }
        })
    }

    fn step(&self, what: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(what.to_string()),
            None => eprintln!("-- {what}"),
        }
    }

    fn result(&self, name: &str, passed: bool, took: Duration) {
        let line = format!(
            "{} {name} ({:.1} s)",
            if passed { "pass" } else { "FAIL" },
            took.as_secs_f64()
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("   {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Prints (or writes as JSON) what `status` shows.
async fn status(lab: &Lab, json: bool) -> anyhow::Result<()> {
    let docker = lab.docker();
    let running = calico_lab::docker::list(
        docker,
        &[format!("{}={}", calico_lab::docker::LABEL_LAB, lab.name())],
    )
    .await?;
    let state_of = |container: &str| {
        running
            .iter()
            .find(|c| {
                c.names
                    .as_ref()
                    .is_some_and(|n| n.iter().any(|n| n.trim_start_matches('/') == container))
            })
            .and_then(|c| c.state.as_ref().map(|s| format!("{s:?}").to_lowercase()))
            .unwrap_or_else(|| "absent".into())
    };
    let t = lab.topology();
    let expected = calico_lab::expect::sessions(t, lab.calico());
    let mut members = Vec::new();
    let mut nodes = serde_json::Map::new();
    let mut routers = serde_json::Map::new();
    let mut missing = Vec::new();
    let mut text = format!("lab {} (topology {})\n", lab.name(), t.name);
    for m in lab.members() {
        let state = state_of(&m.container);
        text += &format!(
            "  {:<36} {:<30} {:<7} {state}\n",
            m.container,
            m.device,
            m.role.as_str()
        );
        members.push(serde_json::json!({"device": m.device, "container": m.container, "role": m.role.as_str(), "state": state}));
    }
    for (_, node) in t.nodes() {
        let rows: Vec<_> = lab
            .bird_protocols(&node.name)
            .await
            .map(|r| r.into_values().collect())
            .unwrap_or_default();
        let peers = probe::node_status(&rows);
        text += &format!(
            "\n{} (calicoctl node status):\n{}",
            node.name,
            probe::render_table(&peers)
        );
        nodes.insert(node.name.clone(), serde_json::json!(peers.iter().map(|p| serde_json::json!({
            "peer_address": p.address_cell(), "peer_type": p.peer_type.as_str(), "state": p.state, "since": p.since, "info": p.info
        })).collect::<Vec<_>>()));
        for s in &expected[&node.name] {
            if let calico_lab::expect::Session::Bird { protocol, .. } = s {
                if !rows
                    .iter()
                    .any(|r| &r.name == protocol && r.is_established())
                {
                    missing.push(format!("{}: {protocol}", node.name));
                }
            }
        }
    }
    for (_, router) in t.routers() {
        let out = lab
            .exec(&router.name, &["vtysh", "-c", "show bgp summary json"])
            .await?;
        let summary = probe::parse_bgp_summary(&out.stdout).ok();
        text += &format!("\n{} (AS {}):\n", router.name, router.asn);
        let mut list = Vec::new();
        for peer in summary.iter().flat_map(|s| s.peers.values()) {
            text += &format!(
                "  {:<16} {:<12} received {:>4} sent {:>4}\n",
                peer.address,
                peer.state,
                peer.pfx_rcd.unwrap_or(0),
                peer.pfx_snt.unwrap_or(0)
            );
            list.push(serde_json::json!({"peer": peer.address, "state": peer.state, "prefixes_received": peer.pfx_rcd, "prefixes_sent": peer.pfx_snt}));
        }
        for s in &expected[&router.name] {
            if let calico_lab::expect::Session::Frr { peer, device } = s {
                let ok = summary
                    .as_ref()
                    .and_then(|x| x.peer(peer))
                    .is_some_and(|p| p.is_established());
                if !ok {
                    missing.push(format!("{}: {peer} ({device})", router.name));
                }
            }
        }
        routers.insert(router.name.clone(), serde_json::json!(list));
    }
    if json {
        let value = serde_json::json!({"lab": lab.name(), "topology": t.name, "members": members, "nodes": nodes, "routers": routers, "missing": missing});
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        text += &format!(
            "\nmissing sessions: {}\n",
            if missing.is_empty() {
                "none".to_string()
            } else {
                missing.join(", ")
            }
        );
        print!("{text}");
    }
    Ok(())
}

fn print_members(lab: &Lab) {
    println!("lab {} (run {}):", lab.name(), lab.run_id());
    println!("  {:<36} {:<30} ROLE", "CONTAINER", "DEVICE");
    for m in lab.members() {
        println!("  {:<36} {:<30} {}", m.container, m.device, m.role.as_str());
    }
}

async fn bench_up(t: Topology, cold: bool, runs: usize) -> anyhow::Result<()> {
    let docker = calico_lab::docker::connect().await?;
    if cold {
        let tag = image::image_tag();
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let _ = docker.remove_image(&tag, Some(options), None).await;
        let report = image::ensure_image(&docker).await?;
        println!(
            "image build, cold ({}): {:.1} s",
            report.method, report.seconds
        );
    }
    let started = Instant::now();
    image::ensure_image(&docker).await?;
    println!(
        "image lookup, cached: {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let mut ups = Vec::new();
    let mut downs = Vec::new();
    let mut all = Vec::new();
    for i in 0..runs {
        let options = LabOptions {
            name: Some(format!("bench-{}", std::process::id())),
            ..Default::default()
        };
        let started = Instant::now();
        let lab = Lab::up(t.clone(), options).await?;
        lab.wait_for_fabric(Duration::from_secs(60)).await?;
        let up = started.elapsed();
        lab.wait_for_calico(Duration::from_secs(60)).await?;
        let calico = started.elapsed();
        scenario::wait_until_converged(&lab, Duration::from_secs(60)).await?;
        let converged = started.elapsed();
        let timings = lab.timings.clone();
        let members = lab.members().len();
        let routers = lab
            .members()
            .iter()
            .filter(|m| m.role == MemberRole::Router)
            .count();
        let started = Instant::now();
        lab.down().await?;
        let down = started.elapsed();
        println!(
            "run {}: {members} containers ({routers} routers): up to all fabric sessions Established {:.2} s (containers {:.2}, wiring {:.2}, FRR start {:.2}, BIRD and pods {:.2}); calico-node sessions Established {:.2} s; every expected route {:.2} s; teardown {:.2} s",
            i + 1,
            up.as_secs_f64(),
            timings.containers.as_secs_f64(),
            timings.wiring.as_secs_f64(),
            timings.routers.as_secs_f64(),
            timings.nodes.as_secs_f64(),
            calico.as_secs_f64(),
            converged.as_secs_f64(),
            down.as_secs_f64()
        );
        ups.push(up);
        all.push(converged);
        downs.push(down);
    }
    ups.sort();
    downs.sort();
    println!(
        "fabric up + Established: median {:.2} s, max {:.2} s (target <= 10 s)",
        ups[ups.len() / 2].as_secs_f64(),
        ups[ups.len() - 1].as_secs_f64()
    );
    all.sort();
    println!(
        "lab start to every session Established and every route installed: median {:.2} s, max {:.2} s",
        all[all.len() / 2].as_secs_f64(),
        all[all.len() - 1].as_secs_f64()
    );
    println!(
        "teardown: median {:.2} s, max {:.2} s (target <= 5 s)",
        downs[downs.len() / 2].as_secs_f64(),
        downs[downs.len() - 1].as_secs_f64()
    );
    Ok(())
}
