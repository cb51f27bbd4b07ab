//! The lab the scenario tests run against, from the environment:
//! `CALICO_LAB_TOPOLOGY` (a topology file; default: the embedded seed lab),
//! `CALICO_LAB_FLAVOR` (`emulated`, the default; `kind` is not built yet),
//! `CALICO_LAB_REUSE=1` (test processes share one running lab per topology),
//! `CALICO_LAB_KEEP` (as in the lab engine).

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use calico_lab::scenario::{self, Outcome};
use calico_lab::{KeepPolicy, Lab, LabOptions, Topology};
use rstest::fixture;

/// How long a lab may take to converge after its containers run.
pub const CONVERGENCE: Duration = Duration::from_secs(60);

/// The lab a scenario runs on; a fresh one is torn down when dropped, a shared one
/// stays for the next test process.
pub struct TestLab {
    pub lab: Lab,
}

/// Brings up (or, with `CALICO_LAB_REUSE=1`, joins) the lab and waits until it has
/// converged. Panics with the reason when it cannot: a scenario without its lab
/// has nothing to say.
#[fixture]
pub async fn lab() -> TestLab {
    let reuse = std::env::var("CALICO_LAB_REUSE").is_ok_and(|v| v == "1");
    start(reuse).await
}

/// A lab of its own even under `CALICO_LAB_REUSE=1`, for a test that breaks it.
#[fixture]
pub async fn fresh_lab() -> TestLab {
    start(false).await
}

async fn start(reuse: bool) -> TestLab {
    init_tracing();
    match bring_up(reuse).await {
        Ok(lab) => TestLab { lab },
        Err(e) => panic!("the lab did not come up: {e:#}"),
    }
}

/// Runs the named scenario and panics with its diagnosis and artifact folder when it
/// fails, after printing what it saw.
pub async fn check(lab: &mut TestLab, name: &str) {
    let outcome: Outcome = scenario::run(&lab.lab, name).await;
    println!("{}", outcome.report);
    if let Some(failure) = &outcome.failure {
        lab.lab.mark_failed();
        let artifacts = outcome
            .artifacts
            .as_ref()
            .map_or("(none written)".to_string(), |d| d.display().to_string());
        panic!(
            "{name} failed: {}\nartifacts: {artifacts}\n{}",
            failure.diagnosis, failure.detail
        );
    }
}

fn topology() -> anyhow::Result<Topology> {
    let file = std::env::var_os("CALICO_LAB_TOPOLOGY")
        .filter(|v| !v.is_empty())
        .map(|v| workspace_path(PathBuf::from(v)));
    Ok(Topology::load_or_seed(file.as_deref())?)
}

/// Relative paths are the workspace's (tests run in their package's folder).
fn workspace_path(path: PathBuf) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

async fn bring_up(reuse: bool) -> anyhow::Result<Lab> {
    match std::env::var("CALICO_LAB_FLAVOR").as_deref() {
        Ok("emulated") | Ok("") | Err(_) => {}
        Ok("kind") => anyhow::bail!(
            "CALICO_LAB_FLAVOR=kind: the kind flavor's bring-up is not built yet (its configs are: calico-lab render)"
        ),
        Ok(other) => anyhow::bail!("CALICO_LAB_FLAVOR='{other}' is not one of emulated, kind"),
    }
    let t = topology()?;
    if reuse {
        return shared(t).await;
    }
    let name = format!("s{}-{}", std::process::id(), short(&t.name));
    let options = LabOptions {
        name: Some(name),
        keep: KeepPolicy::from_env()?,
        ..LabOptions::default()
    };
    let lab = Lab::up(t, options).await?;
    converge(&lab).await?;
    Ok(lab)
}

async fn converge(lab: &Lab) -> anyhow::Result<()> {
    lab.wait_for_fabric(CONVERGENCE).await?;
    lab.wait_for_calico(CONVERGENCE).await?;
    scenario::wait_until_converged(lab, CONVERGENCE).await?;
    Ok(())
}

/// One running lab per topology for all test processes: the first brings it up
/// (detached), the others join it; a lock file keeps them from racing.
async fn shared(t: Topology) -> anyhow::Result<Lab> {
    let name = format!("reuse-{}", &t.hash()[..12]);
    let dir = calico_lab::artifacts::root().join("..");
    std::fs::create_dir_all(&dir)?;
    let lock = File::create(dir.join(format!("{name}.lock")))?;
    lock.lock()?;
    let lab = match Lab::attach(t.clone(), &name).await {
        Ok(lab) => lab,
        Err(_) => {
            let options = LabOptions {
                name: Some(name.clone()),
                detached: true,
                ..LabOptions::default()
            };
            let lab = Lab::up(t.clone(), options).await?;
            converge(&lab).await?;
            lab.release();
            eprintln!("shared lab '{name}' is up; remove it with: calico-lab down --name {name}");
            Lab::attach(t, &name).await?
        }
    };
    drop(lock);
    Ok(lab)
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
