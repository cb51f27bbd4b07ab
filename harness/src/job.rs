//! The main job, shared by `calico-lab run` and test runners: bring a lab up, wait
//! for convergence, run the scenarios, report, tear down.

use std::time::Duration;

use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};
use crate::lab::{Event, Lab, LabOptions, Progress};
use crate::report::Report;
use crate::scenario::{self, Outcome, Scenario};
use crate::topology::Topology;

/// One run of the job.
#[derive(Debug, Clone)]
pub struct Job {
    pub topology: Topology,
    pub options: LabOptions,
    pub scenarios: Vec<&'static Scenario>,
    /// The budget of each convergence wait.
    pub wait: Duration,
}

impl Job {
    /// Runs the job. A lab that does not converge still gets a report: every
    /// scenario failed with the wait's last diagnosis, and the lab's artifacts. The
    /// lab is torn down at the end unless the keep policy says otherwise.
    pub async fn run(self) -> Result<Report> {
        let progress = self.options.progress.clone();
        let name = self
            .options
            .name
            .clone()
            .unwrap_or_else(|| self.topology.name.clone());
        progress.step(&format!(
            "bringing up lab '{name}' (image, containers, wiring, routers, calico-node)"
        ));
        let mut lab = Lab::up(self.topology.clone(), self.options).await?;
        let report = check_lab(&mut lab, &self.scenarios, self.wait, &progress).await?;
        if !report.all_passed() {
            lab.mark_failed();
        }
        Ok(report)
    }
}

/// Waits for `lab` to converge, then runs the scenarios on it (each of their waits
/// within `wait` too): the report. A lab that does not converge gets every scenario
/// failed with the wait's diagnosis.
pub async fn check_lab(
    lab: &mut Lab,
    scenarios: &[&'static Scenario],
    wait: Duration,
    progress: &Progress,
) -> Result<Report> {
    let started = chrono::Utc::now();
    // The scenarios' own waits (after a fault, a roll) take the same budget.
    lab.set_wait_budget(wait);
    progress.step("waiting for the fabric, calico-node's sessions and every route");
    let outcomes = match lab.converge(wait).await {
        Ok(_) => {
            let mut outcomes = Vec::new();
            for s in scenarios {
                progress.step(&format!("scenario {}", s.name));
                let outcome = scenario::run(lab, s).await;
                progress.tell(Event::Outcome(&outcome));
                outcomes.push(outcome);
            }
            outcomes
        }
        Err(Error::Timeout {
            wait,
            seconds,
            last,
        }) => not_converged(lab, scenarios, wait, seconds, last).await,
        Err(e) => {
            lab.mark_failed();
            return Err(e);
        }
    };
    Ok(Report {
        lab: lab.name().to_string(),
        topology: lab.topology().name.clone(),
        flavor: lab.flavor().to_string(),
        started,
        outcomes,
    })
}

/// Every scenario failed with the wait's diagnosis; one artifact folder for all.
async fn not_converged(
    lab: &Lab,
    scenarios: &[&'static Scenario],
    wait: String,
    seconds: f64,
    last: Vec<Diagnosis>,
) -> Vec<Outcome> {
    let detail = last
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let diagnosis = Diagnosis::NotConverged {
        wait,
        seconds: seconds.round() as u64,
        last: Box::new(last.into_iter().next().unwrap_or(Diagnosis::LabGone {
            lab: lab.name().to_string(),
            members: Vec::new(),
        })),
    };
    let artifacts = crate::artifacts::collect(lab, "convergence", &diagnosis).await;
    scenarios
        .iter()
        .map(|s| {
            let mut outcome = Outcome::not_run(s, diagnosis.clone(), &detail);
            match &artifacts {
                Ok(dir) => outcome.artifacts = Some(dir.clone()),
                Err(e) => {
                    if let Some(f) = outcome.failure.as_mut() {
                        f.detail
                            .push_str(&format!("\n(artifacts not written: {e})"));
                    }
                }
            }
            outcome
        })
        .collect()
}
