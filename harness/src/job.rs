//! The main job, shared by `calico-lab run` and test runners: bring a lab up, wait
//! for convergence, run the scenarios, report, tear down.

use std::time::Duration;

use crate::backend::{Flavor, NodeKind};
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
    /// How many labs may run at once: above 1, each scenario that changes the lab
    /// runs on a fresh lab of its own (`<name>-1`, `<name>-2`, ...) while the
    /// others share the main one. Kind labs and recorded runs use one lab.
    pub labs: usize,
}

impl Job {
    /// Runs the job. A lab that does not converge still gets a report: every
    /// scenario failed with the wait's last diagnosis, and the lab's artifacts. Each
    /// lab is torn down when its scenarios end unless the keep policy says
    /// otherwise; a lab that fails to come up ends the job (the others are removed).
    pub async fn run(self) -> Result<Report> {
        use futures_util::StreamExt;
        let started = chrono::Utc::now();
        let name = self
            .options
            .name
            .clone()
            .unwrap_or_else(|| self.topology.name.clone());
        let progress = &self.options.progress;
        let alone = |why: &str| {
            if self.labs > 1 {
                progress.step(&format!("one lab at a time: {why}"));
            }
            1
        };
        let labs = if self.options.flavor.nodes == NodeKind::Kind {
            alone("a kind lab is a cluster of its own")
        } else if self.options.record.is_some() {
            alone("a record follows one lab")
        } else {
            // Linux keeps one neighbour table for every lab's namespaces.
            self.labs
                .min(crate::backend::emulated::labs_the_neighbour_table_holds(
                    &self.topology,
                ))
        };
        let mut units = plan(&name, &self.scenarios, labs);
        let valid = |lab: &str| crate::backend::ownership::check_lab_name(lab).is_ok();
        if valid(&name) && !units.iter().all(|(lab, _)| valid(lab)) {
            // A name valid alone may leave no room for `-N`: one lab, as before.
            alone(&format!(
                "'{name}' leaves no room for the other labs' names ({name}-1, ...)"
            ));
            units = plan(&name, &self.scenarios, 1);
        }
        let count = units.len();
        if count > 1 {
            // Every lab's name is free before any starts: a job stopped by a name
            // in use after its first labs ran would lose their verdicts.
            let docker = crate::backend::docker::connect().await?;
            for (lab, _) in &units {
                crate::backend::ownership::refuse_live(&docker, lab).await?;
            }
        }
        let runs = units.into_iter().map(|(lab, picked)| {
            let options = LabOptions {
                name: Some(lab),
                ..self.options.clone()
            };
            let scenarios: Vec<&'static Scenario> =
                picked.iter().map(|&i| self.scenarios[i]).collect();
            let (topology, wait) = (self.topology.clone(), self.wait);
            async move { (picked, one_lab(topology, options, &scenarios, wait).await) }
        });
        let mut running =
            futures_util::stream::iter(runs).buffer_unordered(labs.clamp(1, count.max(1)));
        let mut outcomes: Vec<Option<Outcome>> = self.scenarios.iter().map(|_| None).collect();
        let mut flavor = self.options.flavor.to_string();
        while let Some((picked, report)) = running.next().await {
            // Dropping the stream on an error drops the other labs: they are removed.
            let report = report?;
            flavor = report.flavor;
            for (i, outcome) in picked.into_iter().zip(report.outcomes) {
                outcomes[i] = Some(outcome);
            }
        }
        Ok(Report {
            lab: name,
            topology: self.topology.name.clone(),
            flavor,
            started,
            outcomes: outcomes.into_iter().flatten().collect(),
        })
    }
}

/// Brings one lab up, runs `scenarios` on it, closes it.
async fn one_lab(
    topology: Topology,
    options: LabOptions,
    scenarios: &[&'static Scenario],
    wait: Duration,
) -> Result<Report> {
    let progress = options.progress.clone();
    let name = options.name.clone().unwrap_or_default();
    progress.step(&format!(
        "bringing up lab '{name}' (image, containers, wiring, routers, calico-node)"
    ));
    let mut lab = Lab::up(topology, options).await?;
    let report = check_lab(&mut lab, scenarios, wait, &progress).await?;
    if !report.all_passed() {
        lab.mark_failed();
    }
    if let Err(e) = lab.close().await {
        // As a dropped lab's teardown does: the verdicts stand, the failure is told.
        eprintln!("calico-lab: teardown of lab {name} failed: {e}");
    }
    Ok(report)
}

/// The labs of a job of `scenarios` named `lab`, with at most `labs` at once: each
/// lab's name and the scenarios (their indices) it runs, the main lab first. Above
/// one lab, the scenarios that read the lab share the main one and each that
/// changes it gets its own: one lab's fault cannot leak into another's verdict,
/// and the scenarios' waits on BGP timers overlap.
pub fn plan(lab: &str, scenarios: &[&Scenario], labs: usize) -> Vec<(String, Vec<usize>)> {
    let all: Vec<usize> = (0..scenarios.len()).collect();
    if labs <= 1 || scenarios.is_empty() {
        return vec![(lab.to_string(), all)];
    }
    let (reading, changing): (Vec<usize>, Vec<usize>) =
        all.into_iter().partition(|&i| !scenarios[i].disrupts);
    let groups = std::iter::once(reading)
        .filter(|g| !g.is_empty())
        .chain(changing.into_iter().map(|i| vec![i]));
    groups
        .enumerate()
        .map(|(n, g)| match n {
            0 => (lab.to_string(), g),
            n => (format!("{lab}-{n}"), g),
        })
        .collect()
}

/// How many labs of `topology` this machine runs at once by default: kind one;
/// emulated two per core, fewer as labs grow (about 32 members per core: the seed's
/// 10 four at once on two cores, a generated 8 x 8 alone). Measured on the seed's
/// scenario crate: with four at once the loss windows stayed within their budgets.
pub fn default_labs(topology: &Topology, flavor: Flavor) -> usize {
    if flavor.nodes == NodeKind::Kind {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Every member container and the observer.
    let containers = crate::backend::emulated::members(topology, &topology.name).len() + 1;
    labs_for(containers, cores)
}

fn labs_for(members: usize, cores: usize) -> usize {
    (2 * cores).min(32 * cores / members.max(1)).max(1)
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
    progress.step(&format!(
        "waiting for the fabric, calico-node's sessions and every route of lab '{}'",
        lab.name()
    ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SCENARIOS;

    fn registry() -> Vec<&'static Scenario> {
        SCENARIOS.iter().collect()
    }

    #[test]
    fn one_lab_runs_every_scenario_in_order() {
        let all = registry();
        let every: Vec<usize> = (0..all.len()).collect();
        assert_eq!(plan("lab", &all, 1), vec![("lab".to_string(), every)]);
    }

    #[test]
    fn above_one_lab_each_scenario_that_changes_the_lab_gets_its_own() {
        let all = registry();
        let units = plan("lab", &all, 4);
        let reading: Vec<usize> = (0..all.len()).filter(|&i| !all[i].disrupts).collect();
        let changing: Vec<usize> = (0..all.len()).filter(|&i| all[i].disrupts).collect();
        assert!(
            !reading.is_empty() && changing.len() > 1,
            "the registry has both"
        );
        assert_eq!(units[0], ("lab".to_string(), reading));
        let own: Vec<(String, Vec<usize>)> = changing
            .iter()
            .enumerate()
            .map(|(n, &i)| (format!("lab-{}", n + 1), vec![i]))
            .collect();
        assert_eq!(units[1..], own[..]);
    }

    #[test]
    fn without_a_reading_scenario_the_first_that_changes_the_lab_takes_the_main_one() {
        let changing: Vec<&'static Scenario> =
            registry().into_iter().filter(|s| s.disrupts).collect();
        let units = plan("x", &changing[..2], 4);
        assert_eq!(
            units,
            vec![("x".to_string(), vec![0]), ("x-1".to_string(), vec![1])]
        );
        assert_eq!(plan("x", &[], 4), vec![("x".to_string(), vec![])]);
    }

    #[test]
    fn labs_at_once_shrink_as_labs_grow() {
        // The seed (4 routers, 4 nodes, fabric, observer) on two cores: four.
        assert_eq!(labs_for(10, 2), 4);
        // A generated 8 x 8 (10 routers, 64 nodes) or bigger: alone.
        assert_eq!(labs_for(76, 2), 1);
        assert_eq!(labs_for(148, 2), 1);
        // More cores, more at once, still bounded by size.
        assert_eq!(labs_for(10, 8), 16);
        assert_eq!(labs_for(76, 8), 3);
        assert_eq!(labs_for(0, 1), 2);
    }
}
