//! Test fixtures and a test runner for calico-lab scenarios: the built-in ones and
//! your own, on the lab the environment names.
//!
//! - [`shared_lab`]: a converged lab to read from (with `CALICO_LAB_REUSE=1` one
//!   running lab per topology, shared by every test process).
//! - [`owned_lab`]: a converged lab of the test's own, to break.
//! - [`run_as_tests`]: a `harness = false` test binary's `main`, one test per scenario.
//!
//! Environment: `CALICO_LAB_TOPOLOGY` (a topology file; default: the embedded seed
//! lab), `CALICO_LAB_FLAVOR` (`emulated`, the default, or `kind`; `CALICO_LAB_ROUTERS` `vyos` or `frr`),
//! `CALICO_LAB_REUSE=1`, `CALICO_LAB_KEEP` (`never`, `on-failure`, `always`),
//! `CALICO_LAB_WAIT` (seconds per convergence wait, the scenarios' own included;
//! default 60).

use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use calico_lab::backend::{routers_from_env, NodeKind};
use calico_lab::scenario::{self, Scenario};
use calico_lab::{Flavor, KeepPolicy, Lab, LabOptions, Topology};
use rstest::fixture;

/// A converged lab for reading: it may be shared with other tests, so it gives no
/// way to change it.
pub struct SharedLab(Lab);

impl Deref for SharedLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

/// A converged lab of this test's own: break it as you like; it is torn down when
/// dropped (kept per `CALICO_LAB_KEEP`).
pub struct OwnedLab(Lab);

impl Deref for OwnedLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

impl DerefMut for OwnedLab {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.0
    }
}

/// The lab a scenario reads: with `CALICO_LAB_REUSE=1` the shared running lab of
/// the topology, else a fresh one. Panics with the reason when it cannot come up.
#[fixture]
pub async fn shared_lab() -> SharedLab {
    let reuse = std::env::var("CALICO_LAB_REUSE").is_ok_and(|v| v == "1");
    match start(reuse).await {
        Ok(lab) => SharedLab(lab),
        Err(e) => panic!("the lab did not come up: {e:#}"),
    }
}

/// A lab of its own even under `CALICO_LAB_REUSE=1`, for a test that breaks it.
#[fixture]
pub async fn owned_lab() -> OwnedLab {
    match start(false).await {
        Ok(lab) => OwnedLab(lab),
        Err(e) => panic!("the lab did not come up: {e:#}"),
    }
}

/// Runs every scenario of `scenarios` as a test of its own (libtest's command line,
/// so nextest and `cargo test` filters work); each brings up its lab as
/// [`shared_lab`] does.
pub fn run_as_tests(scenarios: &'static [Scenario]) -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = scenarios
        .iter()
        .map(|s| libtest_mimic::Trial::test(s.name, move || run_one(s)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn run_one(s: &'static Scenario) -> Result<(), libtest_mimic::Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        // A scenario that breaks its lab never runs on one others share.
        let reuse = std::env::var("CALICO_LAB_REUSE").is_ok_and(|v| v == "1") && !s.disrupts;
        let mut lab = start(reuse)
            .await
            .map_err(|e| format!("the lab did not come up: {e:#}"))?;
        let outcome = scenario::run(&mut lab, s).await;
        append_to_job_summary(&outcome);
        println!("{}", outcome.report);
        if let Some(reason) = &outcome.skipped {
            println!("skipped: {reason}");
        }
        match &outcome.failure {
            None => Ok(()),
            Some(failure) => {
                lab.mark_failed();
                let artifacts = outcome
                    .artifacts
                    .as_ref()
                    .map_or("(none written)".to_string(), |d| d.display().to_string());
                Err(format!(
                    "{} failed: {}\nartifacts: {artifacts}\n{}",
                    s.name, failure.diagnosis, failure.detail
                )
                .into())
            }
        }
    })
}

/// How long each convergence wait may take (`CALICO_LAB_WAIT` seconds, default 60).
pub fn wait_budget() -> anyhow::Result<Duration> {
    match std::env::var("CALICO_LAB_WAIT") {
        Ok(v) if !v.is_empty() => match v.parse::<u64>() {
            Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
            _ => anyhow::bail!("CALICO_LAB_WAIT='{v}' is not a whole number of seconds above 0"),
        },
        _ => Ok(Duration::from_secs(60)),
    }
}

async fn start(reuse: bool) -> anyhow::Result<Lab> {
    init_tracing();
    let flavor = Flavor::from_env()?;
    let t = topology()?;
    let wait = wait_budget()?;
    if reuse {
        return shared(t, flavor, wait).await;
    }
    // kind names its nodes after the cluster: a kind lab is named as its topology.
    let name = match flavor.nodes {
        NodeKind::Kind => t.name.clone(),
        NodeKind::Emulated => format!("s{}-{}", std::process::id(), short(&t.name)),
    };
    let options = LabOptions {
        name: Some(name),
        flavor,
        routers: routers_from_env()?,
        keep: KeepPolicy::from_env()?,
        ..LabOptions::default()
    };
    let mut lab = Lab::up(t, options).await?;
    lab.set_wait_budget(wait);
    lab.converge(wait).await?;
    Ok(lab)
}

/// The topology the environment names (`CALICO_LAB_TOPOLOGY`; default: the seed),
/// at the Calico version `CALICO_LAB_UPGRADE_FROM` names, if set.
pub fn topology() -> anyhow::Result<Topology> {
    let file = std::env::var_os("CALICO_LAB_TOPOLOGY")
        .filter(|v| !v.is_empty())
        .map(|v| workspace_path(PathBuf::from(v)));
    let mut t = Topology::load_or_seed(file.as_deref())?;
    if let Some(from) = scenario::version_from_env(scenario::FROM_VARIABLE)? {
        t.calico.version = from.to_string();
    }
    Ok(t)
}

/// Relative paths are the workspace's (tests run in their package's folder).
fn workspace_path(path: PathBuf) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path;
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .map(|d| d.join(&path))
        .find(|p| p.exists())
        .unwrap_or(path)
}

/// One running lab per topology for all test processes: the first brings it up
/// (detached), the others join it; a lock file keeps them from racing. A joined lab
/// must have every member running and converge, so a stale shared lab is not
/// trusted blindly.
async fn shared(t: Topology, flavor: Flavor, wait: Duration) -> anyhow::Result<Lab> {
    let name = match flavor.nodes {
        NodeKind::Kind => t.name.clone(),
        NodeKind::Emulated => format!("reuse-{}", &t.hash()[..12]),
    };
    let dir = calico_lab::artifacts::root().join("..");
    std::fs::create_dir_all(&dir)?;
    let lock = File::create(dir.join(format!("{name}.lock")))?;
    lock.lock()?;
    let mut lab = match Lab::attach(t.clone(), &name).await {
        Ok(lab) => lab,
        Err(calico_lab::Error::NoSuchLab(_)) => {
            let options = LabOptions {
                name: Some(name.clone()),
                flavor,
                routers: routers_from_env()?,
                detached: true,
                ..LabOptions::default()
            };
            Lab::up(t.clone(), options).await?.release();
            eprintln!("shared lab '{name}' is up; remove it with: calico-lab down --name {name}");
            Lab::attach(t, &name).await?
        }
        Err(e) => return Err(e.into()),
    };
    drop(lock);
    // A member that stopped leaves the lab stale: refused at once, not after a
    // convergence wait it can never pass.
    let stopped: Vec<String> = lab
        .member_states()
        .await?
        .into_iter()
        .filter(|(_, state)| state != "running")
        .map(|(m, state)| format!("{} is {state}", m.container))
        .collect();
    if !stopped.is_empty() {
        anyhow::bail!(
            "the shared lab '{name}' is stale ({}); remove it with: calico-lab down --name {name}",
            stopped.join(", ")
        );
    }
    lab.set_wait_budget(wait);
    lab.converge(wait).await?;
    Ok(lab)
}

/// On GitHub Actions, each scenario's row of the Markdown table goes to the job
/// summary as it ends (the workflow writes the table's header first).
fn append_to_job_summary(outcome: &scenario::Outcome) {
    use std::io::Write;
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let row = calico_lab::report::markdown_row(outcome);
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(row.as_bytes()));
    if let Err(e) = written {
        eprintln!("GITHUB_STEP_SUMMARY {}: {e}", PathBuf::from(path).display());
    }
}

/// Lab names stay short: the test's process id plus the topology's first letters.
fn short(name: &str) -> String {
    name.chars()
        .take(12)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
