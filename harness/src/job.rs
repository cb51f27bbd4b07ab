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
    /// How many labs may run at once: above 1, the scenarios that change the lab
    /// run on labs beside the main one (`<name>-1`, `<name>-2`, ...), the longest
    /// first, while the others share the main one (see [`plan`]). Kind labs and
    /// recorded runs use one lab.
    pub labs: usize,
}

impl Job {
    /// Runs the job. A lab that does not converge still gets a report: every
    /// scenario failed with the wait's last diagnosis, and the lab's artifacts. Each
    /// lab is torn down when its scenarios end unless the keep policy says
    /// otherwise; a lab that fails to come up ends the job (the others are removed).
    pub async fn run(self) -> Result<Report> {
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
        let mut plan = plan(&self.scenarios, labs);
        let valid = |lab: &str| crate::backend::ownership::check_lab_name(lab).is_ok();
        if valid(&name) && !plan.sibling_names(&name).iter().all(|lab| valid(lab)) {
            // A name valid alone may leave no room for `-N`: one lab, as before.
            alone(&format!(
                "'{name}' leaves no room for the other labs' names ({name}-1, ...)"
            ));
            plan = self::plan(&self.scenarios, 1);
        }
        let siblings = plan.sibling_names(&name);
        if !siblings.is_empty() {
            // Every lab's name is free before any starts: a job stopped by a name
            // in use after its first labs ran would lose their verdicts.
            let docker = crate::backend::docker::connect().await?;
            for lab in std::iter::once(&name).chain(&siblings) {
                crate::backend::ownership::refuse_live(&docker, lab).await?;
            }
        }
        let shared = Shared {
            queue: std::sync::Mutex::new(plan.queue.into()),
            siblings: std::sync::Mutex::new(siblings.into()),
        };
        let job = &self;
        let workers = (0..plan.labs).map(|n| {
            let first = if n == 0 {
                plan.main.clone()
            } else {
                Vec::new()
            };
            worker(job, &shared, (n == 0).then(|| name.clone()), first)
        });
        // The first error drops the other workers: their labs are removed.
        let done = futures_util::future::try_join_all(workers).await?;
        let mut outcomes: Vec<Option<Outcome>> = self.scenarios.iter().map(|_| None).collect();
        let mut flavor = self.options.flavor.to_string();
        for (ran, lab_flavor) in done {
            flavor = lab_flavor.unwrap_or(flavor);
            for (i, outcome) in ran {
                outcomes[i] = Some(outcome);
            }
        }
        // Every scenario has its outcome: one missing would read as a pass.
        let outcomes = outcomes
            .into_iter()
            .zip(&self.scenarios)
            .map(|(o, s)| {
                o.ok_or_else(|| Error::Unsupported(format!("scenario {} was never run", s.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Report {
            lab: name,
            topology: self.topology.name.clone(),
            flavor,
            started,
            outcomes,
        })
    }
}

/// What the labs of a job take their scenarios and names from.
struct Shared {
    /// Scenarios (indices) not taken yet, the longest first.
    queue: std::sync::Mutex<std::collections::VecDeque<usize>>,
    /// Sibling lab names not used yet.
    siblings: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Shared {
    fn take(&self) -> Option<usize> {
        self.queue.lock().ok()?.pop_front()
    }

    /// `i` first again, for another lab.
    fn give_back(&self, i: usize) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push_front(i);
        }
    }
}

/// One slot of the job: a lab (the main one when `main` is named: it comes up
/// even with nothing to run) runs `first`, then scenarios from the queue one after
/// another, each once the lab has converged again. A lab where a scenario failed,
/// or that does not converge again, takes no more: what it left broken must not
/// judge the next; a fresh lab does.
/// Each outcome with its scenario's index, and the flavor the labs ran.
async fn worker(
    job: &Job,
    shared: &Shared,
    mut main: Option<String>,
    first: Vec<usize>,
) -> Result<(Vec<(usize, Outcome)>, Option<String>)> {
    let mut done = Vec::new();
    let mut flavor = None;
    let mut next = first;
    loop {
        if next.is_empty() {
            match shared.take() {
                Some(i) => next.push(i),
                // The main lab comes up even so: a job of nothing still converges.
                None if main.is_some() => {}
                None => return Ok((done, flavor)),
            }
        }
        let name = match main.take() {
            Some(name) => name,
            None => shared
                .siblings
                .lock()
                .ok()
                .and_then(|mut s| s.pop_front())
                .ok_or_else(|| Error::Unsupported("a job ran out of lab names".into()))?,
        };
        let options = LabOptions {
            name: Some(name.clone()),
            ..job.options.clone()
        };
        let progress = options.progress.clone();
        progress.step(&format!(
            "bringing up lab '{name}' (image, containers, wiring, routers, calico-node)"
        ));
        let mut lab = Lab::up(job.topology.clone(), options).await?;
        let picked: Vec<&'static Scenario> = next.iter().map(|&i| job.scenarios[i]).collect();
        let report = check_lab(&mut lab, &picked, job.wait, &progress).await?;
        let mut healthy = report.all_passed();
        flavor = Some(report.flavor);
        done.extend(next.drain(..).zip(report.outcomes));
        while healthy {
            let Some(i) = shared.take() else { break };
            if lab.converge(job.wait).await.is_err() {
                shared.give_back(i);
                healthy = false;
                break;
            }
            let s = job.scenarios[i];
            progress.step(&format!("scenario {}", s.name));
            let outcome = scenario::run(&mut lab, s).await;
            progress.tell(Event::Outcome(&outcome));
            healthy = outcome.passed();
            done.push((i, outcome));
        }
        if !healthy {
            lab.mark_failed();
        }
        if let Err(e) = lab.close().await {
            // As a dropped lab's teardown does: the verdicts stand, the failure is told.
            eprintln!("calico-lab: teardown of lab {name} failed: {e}");
        }
    }
}

/// How a job of `scenarios` with at most `labs` at once is spread over labs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Labs up at once.
    pub labs: usize,
    /// What the main lab runs first (indices into the scenarios), in order.
    pub main: Vec<usize>,
    /// What every lab takes from once it is free, the longest first.
    pub queue: Vec<usize>,
}

impl Plan {
    /// The names the job's other labs may take, `<lab>-1` on: at most one per
    /// queued scenario (a lab whose scenario failed is replaced by a fresh one).
    pub fn sibling_names(&self, lab: &str) -> Vec<String> {
        if self.labs <= 1 {
            return Vec::new();
        }
        (1..=self.queue.len())
            .map(|n| format!("{lab}-{n}"))
            .collect()
    }
}

/// The plan of a job of `scenarios` with at most `labs` at once. One lab runs
/// every scenario in order. Above one, the scenarios that read the lab run on the
/// main lab and those that change it queue, the longest first, for whichever lab
/// is free: one lab's fault cannot leak into another's verdict, the scenarios'
/// waits on BGP timers overlap, and a lab serves several scenarios in turn (each
/// leaves it as designed) rather than each paying for a bring-up.
pub fn plan(scenarios: &[&Scenario], labs: usize) -> Plan {
    let all: Vec<usize> = (0..scenarios.len()).collect();
    if labs <= 1 {
        return Plan {
            labs: 1,
            main: all,
            queue: Vec::new(),
        };
    }
    let (main, mut queue): (Vec<usize>, Vec<usize>) =
        all.into_iter().partition(|&i| !scenarios[i].disrupts);
    // Stable: equal figures keep the registry's order.
    queue.sort_by_key(|&i| std::cmp::Reverse(scenarios[i].typical_duration));
    let wanted = usize::from(!main.is_empty()) + queue.len();
    Plan {
        labs: labs.min(wanted).max(1),
        main,
        queue,
    }
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
        let one = plan(&all, 1);
        assert_eq!(
            one,
            Plan {
                labs: 1,
                main: every,
                queue: vec![]
            }
        );
        assert!(one.sibling_names("lab").is_empty());
    }

    #[test]
    fn above_one_lab_the_scenarios_that_change_the_lab_queue_longest_first() {
        let all = registry();
        let four = plan(&all, 4);
        let reading: Vec<usize> = (0..all.len()).filter(|&i| !all[i].disrupts).collect();
        assert_eq!(four.labs, 4);
        assert_eq!(four.main, reading);
        let mut changing: Vec<usize> = (0..all.len()).filter(|&i| all[i].disrupts).collect();
        assert!(changing.len() > 1, "the registry has several");
        changing.sort_by_key(|&i| std::cmp::Reverse(all[i].typical_duration));
        assert_eq!(four.queue, changing);
        let upgrade = all.iter().position(|s| s.name == crate::scenario::UPGRADE);
        assert_eq!(four.queue.first().copied(), upgrade, "the longest first");
        // One name for each queued scenario: a failed lab is replaced.
        let names = four.sibling_names("lab");
        assert_eq!(names.len(), changing.len());
        assert_eq!(names[0], "lab-1");
    }

    #[test]
    fn no_more_labs_than_there_is_work_for() {
        let changing: Vec<&'static Scenario> =
            registry().into_iter().filter(|s| s.disrupts).collect();
        let two = plan(&changing[..2], 8);
        assert_eq!(two.labs, 2);
        assert!(two.main.is_empty());
        let reading: Vec<&'static Scenario> =
            registry().into_iter().filter(|s| !s.disrupts).collect();
        let only_reading = plan(&reading, 4);
        assert_eq!(only_reading.labs, 1);
        assert!(only_reading.sibling_names("x").is_empty());
        assert_eq!(plan(&[], 4).labs, 1);
    }

    #[test]
    fn equal_figures_keep_the_registry_order() {
        let mut a = *registry().into_iter().find(|s| s.disrupts).unwrap();
        let mut b = a;
        a.typical_duration = Duration::from_secs(1);
        b.typical_duration = Duration::from_secs(1);
        a.name = "a";
        b.name = "b";
        let mut c = a;
        c.name = "c";
        c.typical_duration = Duration::from_secs(2);
        let p = plan(&[&a, &b, &c], 2);
        assert_eq!(p.queue, vec![2, 0, 1]);
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
