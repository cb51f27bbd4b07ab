//! The scenario registry (name, claim, check) read by the test binary, `calico-lab
//! run` and users' own runners, and the runner that turns a check into an outcome
//! with a diagnosis and artifacts.

mod checks;
mod faults;
mod upgrade;

pub use upgrade::{version_from_env, FROM_VARIABLE, TO_VARIABLE};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};
use crate::lab::Lab;

/// What a passing check says: what it saw, or why there was nothing to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// Checked; what it saw (a matrix, the pairs checked).
    Report(String),
    /// Nothing to check on this lab, and why (never a silent pass).
    Skipped(String),
}

/// Why a scenario failed: the first broken thing, and detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub diagnosis: Diagnosis,
    pub detail: String,
}

impl Failure {
    pub fn new(diagnosis: Diagnosis, detail: impl Into<String>) -> Self {
        Failure {
            diagnosis,
            detail: detail.into(),
        }
    }
}

/// A check's result.
pub type Checked = std::result::Result<Pass, Failure>;

/// A check function: reads the lab (a disruptive one may change it, and leaves it
/// as designed), judges it.
pub type Check = for<'a> fn(&'a mut Lab) -> BoxFuture<'a, Checked>;

/// A scenario: its name (also its test's name), the claim it proves, its check.
#[derive(Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub proves: &'static str,
    pub check: Check,
    /// Breaks the lab while it runs (and mends it): never on a lab other
    /// scenarios share at the same time.
    pub disrupts: bool,
    /// About how long it takes on the seed lab: a run with several labs starts the
    /// longest first (a wrong figure costs time, never a verdict).
    pub typical_duration: Duration,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("proves", &self.proves)
            .finish()
    }
}

/// The built-in scenarios, in the order a run reports them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "bgp_neighbors_match_topology",
        proves: "every device has exactly the BGP sessions the topology calls for, all Established (nodes: their leaf, node specific)",
        disrupts: false,
        typical_duration: Duration::from_millis(200),
        check: |lab| Box::pin(checks::bgp_neighbors_match_topology(lab)),
    },
    Scenario {
        name: "no_node_to_node_mesh",
        proves: "no node runs a Mesh_ session the Calico configuration does not ask for, and each runs the sessions it does ask for",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::no_node_to_node_mesh(lab)),
    },
    Scenario {
        name: "routes_match_topology",
        proves: "every leaf, spine and node holds every pod block with exactly the next hops the fabric design gives (ECMP over every spine), and no other pod-block route",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::routes_match_topology(lab)),
    },
    Scenario {
        name: "same_host_ping",
        proves: "pods on one node reach each other through the node's routing table",
        disrupts: false,
        typical_duration: Duration::from_millis(400),
        check: |lab| Box::pin(checks::pings(lab, crate::expect::PathClass::SameHost)),
    },
    Scenario {
        name: "same_rack_ping",
        proves: "pods on two nodes of one rack reach each other",
        disrupts: false,
        typical_duration: Duration::from_millis(400),
        check: |lab| Box::pin(checks::pings(lab, crate::expect::PathClass::SameRack)),
    },
    Scenario {
        name: "cross_rack_ping",
        proves: "pods in different racks reach each other",
        disrupts: false,
        typical_duration: Duration::from_millis(400),
        check: |lab| Box::pin(checks::pings(lab, crate::expect::PathClass::CrossRack)),
    },
    Scenario {
        name: "same_rack_path_stays_in_rack",
        proves: "same-rack traffic goes node to node across the bridge: no leaf, no spine",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::paths(lab, crate::expect::PathClass::SameRack)),
    },
    Scenario {
        name: "cross_rack_path_crosses_one_spine",
        proves: "cross-rack traffic goes node, leaf, one spine, leaf, node (node, leaf, node between two racks of one leaf); from every leaf, every spine carries some pairs (ECMP)",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::paths(lab, crate::expect::PathClass::CrossRack)),
    },
    Scenario {
        name: "all_pairs_reachability",
        proves: "every pod reaches every other pod (the matrix shows each pair's path class)",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::all_pairs_reachability(lab)),
    },
    Scenario {
        name: "service_cidrs_advertised",
        proves: "the service CIDRs reach every leaf from every node of its racks, and every spine, as valid installed paths; no node installs them in its kernel table",
        disrupts: false,
        typical_duration: Duration::from_millis(100),
        check: |lab| Box::pin(checks::service_cidrs_advertised(lab)),
    },
    Scenario {
        name: "spine_failure_keeps_cross_rack_traffic",
        proves: "a spine stops (every link down): cross-rack traffic goes on through the other spines (longest window without replies within 3 s), routes through it are withdrawn, and after its restart every route returns with ECMP over every spine",
        disrupts: true,
        typical_duration: Duration::from_millis(4700),
        check: |lab| Box::pin(faults::spine_failure(lab)),
    },
    Scenario {
        name: "uplink_cut_reroutes",
        proves: "one leaf-spine link cut at both ends: traffic continues through the other spines (within 3 s), the routes avoid the link, and all return when it is mended",
        disrupts: true,
        typical_duration: Duration::from_millis(3300),
        check: |lab| Box::pin(faults::uplink_cut(lab)),
    },
    Scenario {
        name: "calico_node_restart_keeps_routes",
        proves: "BIRD dies on a node as in a calico-node restart: with graceful restart its leaf keeps the node's block, traffic to its pods goes on (within 1 s), and its sessions return",
        disrupts: true,
        typical_duration: Duration::from_millis(6400),
        check: |lab| Box::pin(faults::calico_node_restart(lab)),
    },
    Scenario {
        name: "mesh_to_route_reflector_switch_keeps_traffic",
        proves: "the seed's own sequence live: from the full mesh (no BGPPeers), mesh off plus Node AS numbers and BGPPeers applied under continuous traffic; pairs that answered in the mesh keep answering (within 3 s), then every session and route is as designed and every cross-rack pair answers",
        disrupts: true,
        typical_duration: Duration::from_millis(9400),
        check: |lab| Box::pin(faults::mesh_to_route_reflector_switch(lab)),
    },
    Scenario {
        name: "leaf_failure_isolates_only_its_rack",
        proves: "a leaf stops: its racks' cross-rack pairs get no reply, pods on one node there still reach each other, other racks' pairs are unaffected, and everything answers again after it returns",
        disrupts: true,
        typical_duration: Duration::from_millis(2700),
        check: |lab| Box::pin(faults::leaf_failure(lab)),
    },
    Scenario {
        name: UPGRADE,
        proves: "the Calico upgrade gate: the suite passes at the lab's version, calico-node rolls node by node to CALICO_LAB_UPGRADE_TO (default: the newest supported release) under continuous traffic (longest window within 10 s: BIRD's connect delay and retry), the suite passes again, the route differences are reported; then it rolls back",
        disrupts: true,
        typical_duration: Duration::from_millis(13400),
        check: upgrade::calico_upgrade,
    },
];

/// The upgrade scenario's name (`calico-lab upgrade` runs the others around it).
pub const UPGRADE: &str = "calico_upgrade_keeps_traffic";

/// The scenario named `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The scenarios whose names contain one of the patterns (all without patterns).
pub fn select(patterns: &[String]) -> Result<Vec<&'static Scenario>> {
    let selected: Vec<&'static Scenario> = SCENARIOS
        .iter()
        .filter(|s| patterns.is_empty() || patterns.iter().any(|p| s.name.contains(p.as_str())))
        .collect();
    if selected.is_empty() {
        return Err(Error::UnknownScenario {
            patterns: patterns.to_vec(),
            known: SCENARIOS.iter().map(|s| s.name).collect(),
        });
    }
    Ok(selected)
}

/// A scenario's result, as reports show it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub proves: String,
    pub duration: Duration,
    /// What the scenario saw (a matrix, the pairs checked), pass or fail.
    pub report: String,
    /// Why there was nothing to check.
    pub skipped: Option<String>,
    pub failure: Option<Failure>,
    pub artifacts: Option<PathBuf>,
}

impl Outcome {
    /// Not failed (a skip is not a failure).
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// A scenario that never ran its check, failed with `diagnosis` (a lab that did
    /// not converge still reports every scenario).
    pub fn not_run(scenario: &Scenario, diagnosis: Diagnosis, detail: &str) -> Outcome {
        Outcome {
            name: scenario.name.into(),
            proves: scenario.proves.into(),
            duration: Duration::ZERO,
            report: String::new(),
            skipped: None,
            failure: Some(Failure::new(diagnosis, detail)),
            artifacts: None,
        }
    }
}

/// Runs one scenario; on failure, explains a data-path symptom by the first broken
/// link of the control plane (or by members that are gone), and writes artifacts.
pub async fn run(lab: &mut Lab, scenario: &Scenario) -> Outcome {
    let started = Instant::now();
    let result = (scenario.check)(lab).await;
    let duration = started.elapsed();
    let mut outcome = Outcome {
        name: scenario.name.into(),
        proves: scenario.proves.into(),
        duration,
        report: String::new(),
        skipped: None,
        failure: None,
        artifacts: None,
    };
    match result {
        Ok(Pass::Report(report)) => outcome.report = report,
        Ok(Pass::Skipped(reason)) => outcome.skipped = Some(reason),
        Err(mut failure) => {
            let cause = if failure.diagnosis.is_data_path() {
                explain(lab).await
            } else {
                gone(lab).await
            };
            if let Some(cause) = cause {
                if cause != failure.diagnosis {
                    failure.detail = format!("{}\n{}", failure.diagnosis, failure.detail);
                    failure.diagnosis = cause;
                }
            }
            match crate::artifacts::collect(lab, scenario.name, &failure.diagnosis).await {
                Ok(dir) => outcome.artifacts = Some(dir),
                Err(e) => failure
                    .detail
                    .push_str(&format!("\n(artifacts not written: {e})")),
            }
            outcome.failure = Some(failure);
        }
    }
    outcome
}

/// The deepest cause of a data-path symptom: members gone, else the control
/// plane's first diagnosis.
async fn explain(lab: &Lab) -> Option<Diagnosis> {
    match gone(lab).await {
        Some(gone) => Some(gone),
        None => lab.diagnose().await.into_iter().next(),
    }
}

/// Members that are stopped or removed, if any.
async fn gone(lab: &Lab) -> Option<Diagnosis> {
    let states = lab.member_states().await.ok()?;
    let down: Vec<String> = states
        .iter()
        .filter(|(_, state)| state != "running")
        .map(|(m, state)| format!("{} ({state})", m.container))
        .collect();
    (!down.is_empty()).then(|| Diagnosis::LabGone {
        lab: lab.name().to_string(),
        members: down,
    })
}
