//! The Calico upgrade gate as a scenario: the read-only suite at the lab's version,
//! calico-node rolled node by node to the target version under continuous traffic,
//! the suite again, the route differences reported; then rolled back.

use std::fmt::Write;

use futures_util::future::BoxFuture;

use super::faults::{failed, healthy_before, judge_loss};
use super::{Checked, Failure, Pass, SCENARIOS};
use crate::calico::CalicoVersion;
use crate::diagnosis::Diagnosis;
use crate::job::check_lab;
use crate::lab::{Lab, Progress};
use crate::observe;
use crate::report::Report;
use crate::upgrade::{differences, roll_under_traffic, LOSS_BUDGET};

/// The version the scenario upgrades to (default: [`CalicoVersion::NEWEST`]).
pub const TO_VARIABLE: &str = "CALICO_LAB_UPGRADE_TO";
/// The version the lab starts at, read where the lab's topology is loaded (the
/// scenario test binary); the scenario upgrades from whatever the lab runs.
pub const FROM_VARIABLE: &str = "CALICO_LAB_UPGRADE_FROM";

/// A version read from `variable`; unset or empty is `None`, anything else that is
/// not a supported version an error.
pub fn version_from_env(variable: &str) -> crate::Result<Option<CalicoVersion>> {
    match std::env::var(variable) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| crate::Error::InvalidOption {
                    option: "environment variable",
                    value: format!("{variable}={v}"),
                    expected: "the Calico versions v3.23.0 to v3.32.x",
                })
        }
        _ => Ok(None),
    }
}

/// The first failed scenario of a suite, said to be at `version`.
fn first_failure(report: &Report, version: CalicoVersion, when: &str) -> Option<Failure> {
    report.outcomes.iter().find_map(|o| {
        o.failure.as_ref().map(|f| {
            Failure::new(
                f.diagnosis.clone(),
                format!("at {version} ({when}): {} failed\n{}", o.name, f.detail),
            )
        })
    })
}

/// Boxed here: the suite it runs holds this scenario too.
pub fn calico_upgrade(lab: &mut Lab) -> BoxFuture<'_, Checked> {
    Box::pin(async move {
        let from = lab.topology().calico_version();
        let to = version_from_env(TO_VARIABLE)
            .map_err(failed)?
            .unwrap_or(CalicoVersion::NEWEST);
        if to == from {
            return Ok(Pass::Skipped(format!(
                "the lab runs {from} already: set {TO_VARIABLE} (and {FROM_VARIABLE} for the lab) to gate another upgrade"
            )));
        }
        healthy_before(lab, &format!("the upgrade to {to}")).await?;
        let suite: Vec<_> = SCENARIOS.iter().filter(|s| !s.disrupts).collect();
        let progress = Progress::default();
        let wait = lab.wait_budget();
        let before = check_lab(lab, &suite, wait, &progress)
            .await
            .map_err(failed)?;
        if let Some(f) = first_failure(&before, from, "before the upgrade") {
            return Err(f);
        }
        let state_before = observe::routing_state(lab)
            .await
            .map_err(|e| Failure::new(Diagnosis::ObservationFailed(e), ""))?;
        let rolled = roll_under_traffic(lab, to, wait, &progress).await;
        let verdict = match rolled {
            Ok(rollout) => at_new_version(lab, from, to, &before, &state_before, &rollout).await,
            Err(e) => Err(failed(e)),
        };
        // Back to the lab's own version for what runs next, whatever happened.
        let back = roll_back(lab, from).await;
        let mut report = verdict?;
        back.map_err(failed)?;
        let _ = writeln!(report, "rolled back to {from}: every route as designed");
        Ok(Pass::Report(report))
    })
}

async fn at_new_version(
    lab: &mut Lab,
    from: CalicoVersion,
    to: CalicoVersion,
    before: &Report,
    state_before: &observe::RoutingState,
    rollout: &[crate::traffic::PairLoss],
) -> Result<String, Failure> {
    let mut report = format!("Calico {from} -> {to}\nat {from}: {}\n", before.summary());
    let _ = writeln!(
        report,
        "rollout, node by node, under traffic (budget {} ms):",
        LOSS_BUDGET.as_millis()
    );
    if let Some(f) = judge_loss(
        rollout,
        LOSS_BUDGET,
        &format!("the calico-node rollout to {to}"),
        &mut report,
    ) {
        return Err(f);
    }
    let progress = Progress::default();
    let suite: Vec<_> = SCENARIOS.iter().filter(|s| !s.disrupts).collect();
    let wait = lab.wait_budget();
    let after = check_lab(lab, &suite, wait, &progress)
        .await
        .map_err(failed)?;
    let _ = writeln!(report, "at {to}: {}", after.summary());
    if let Some(f) = first_failure(&after, to, "after the upgrade") {
        return Err(f);
    }
    let state_after = observe::routing_state(lab)
        .await
        .map_err(|e| Failure::new(Diagnosis::ObservationFailed(e), ""))?;
    let found = differences(lab, state_before, &state_after);
    let _ = writeln!(report, "differences in the routes ({}):", found.len());
    for d in &found {
        let _ = writeln!(report, "  {d}");
    }
    Ok(report)
}

async fn roll_back(lab: &mut Lab, from: CalicoVersion) -> crate::Result<()> {
    let nodes: Vec<String> = lab
        .topology()
        .nodes()
        .map(|(_, n)| n.name.clone())
        .collect();
    lab.roll_calico_nodes(&nodes, from).await?;
    lab.converge(lab.wait_budget()).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_in_the_environment_is_read_and_checked() {
        // One variable per case: tests run in parallel in one process.
        std::env::set_var("CALICO_LAB_TEST_UPGRADE_A", "v3.28.2");
        assert_eq!(
            version_from_env("CALICO_LAB_TEST_UPGRADE_A")
                .unwrap()
                .map(|v| v.to_string()),
            Some("v3.28.2".into())
        );
        std::env::set_var("CALICO_LAB_TEST_UPGRADE_B", " ");
        assert!(version_from_env("CALICO_LAB_TEST_UPGRADE_B")
            .unwrap()
            .is_none());
        assert!(version_from_env("CALICO_LAB_TEST_UPGRADE_UNSET")
            .unwrap()
            .is_none());
        for bad in ["3.28", "v3.99.0", "latest"] {
            std::env::set_var("CALICO_LAB_TEST_UPGRADE_C", bad);
            let e = version_from_env("CALICO_LAB_TEST_UPGRADE_C").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
