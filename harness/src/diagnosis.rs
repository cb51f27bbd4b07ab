//! What is wrong with a lab, as a typed value: one line for people (`Display`), a
//! tagged object for machines (`Serialize`).

use std::fmt;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::expect::PathClass;
use crate::observe::ObservationError;

/// The role of a device, as diagnoses name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leaf,
    Spine,
    Node,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leaf => "leaf",
            Role::Spine => "spine",
            Role::Node => "node",
        })
    }
}

/// One broken thing, in terms of the fabric design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnosis {
    /// An expected session is absent (`state: None`) or not Established.
    NoSession {
        device: String,
        session: String,
        /// The device at the other end, where the design names one.
        peer: Option<String>,
        state: Option<String>,
    },
    /// A session the design does not call for.
    UnexpectedSession {
        device: String,
        session: String,
        state: String,
    },
    /// A node runs another number of `Mesh_` sessions than its Calico objects ask.
    MeshDiffers {
        node: String,
        running: Vec<String>,
        wanted: usize,
    },
    /// A route the design calls for is absent or goes elsewhere.
    RouteMissing {
        role: Role,
        device: String,
        prefix: Ipv4Net,
        /// Whose prefix it is (`worker's block`, `service CIDR`).
        of: String,
        want: String,
        found: String,
    },
    /// A pod-block route the design does not call for.
    ExtraRoute {
        role: Role,
        device: String,
        prefix: Ipv4Net,
        found: String,
    },
    PingFailed {
        from: String,
        to: String,
        class: PathClass,
        summary: String,
    },
    PathDiffers {
        from: String,
        to: String,
        class: PathClass,
        want: String,
        got: String,
    },
    /// Cross-rack traffic from one leaf does not spread over every spine.
    NoEcmp {
        leaf: String,
        pairs: usize,
        used: Vec<String>,
        spines: Vec<String>,
    },
    /// A device could not be asked: the check cannot say the lab is healthy.
    ObservationFailed(ObservationError),
    /// A convergence wait ran out: the scenario never ran.
    NotConverged {
        wait: String,
        seconds: u64,
        last: Box<Diagnosis>,
    },
    /// The lab's containers are stopped or gone.
    LabGone { lab: String, members: Vec<String> },
    /// Something bring-up waits for is not there yet (a node, a rollout, a pod).
    Pending { what: String, state: String },
    /// Continuous traffic went unanswered longer than the budget during a fault.
    TrafficLost {
        from: String,
        to: String,
        longest_gap_ms: u64,
        budget_ms: u64,
        during: String,
    },
}

impl Diagnosis {
    /// A symptom seen on the data path (pings, traces), which a broken control
    /// plane may explain.
    pub fn is_data_path(&self) -> bool {
        matches!(
            self,
            Diagnosis::PingFailed { .. }
                | Diagnosis::PathDiffers { .. }
                | Diagnosis::NoEcmp { .. }
                | Diagnosis::TrafficLost { .. }
        )
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::NoSession {
                device,
                session,
                peer,
                state,
            } => {
                let peer = peer
                    .as_ref()
                    .map_or_else(String::new, |p| format!(" ({p})"));
                match state {
                    None => write!(f, "no session: {device}: no session {session}{peer}"),
                    Some(s) => write!(f, "no session: {device}: session {session}{peer} is {s}"),
                }
            }
            Diagnosis::UnexpectedSession {
                device,
                session,
                state,
            } => write!(
                f,
                "unexpected session: {device}: {session} ({state}) is not in the design"
            ),
            Diagnosis::MeshDiffers {
                node,
                running,
                wanted,
            } => write!(
                f,
                "mesh differs: {node} runs {} Mesh_ sessions, the Calico configuration calls for {wanted}",
                running.len()
            ),
            Diagnosis::RouteMissing {
                role,
                device,
                prefix,
                of,
                want,
                found,
            } => write!(
                f,
                "route missing on {role} {device}: {prefix} ({of}) {want}, found {found}"
            ),
            Diagnosis::ExtraRoute {
                role,
                device,
                prefix,
                found,
            } => write!(
                f,
                "extra route on {role} {device}: {prefix} {found}, which the design does not call for"
            ),
            Diagnosis::PingFailed {
                from,
                to,
                class,
                summary,
            } => write!(f, "ping failed: {from} -> {to} ({class}): {summary}"),
            Diagnosis::PathDiffers {
                from,
                to,
                class,
                want,
                got,
            } => write!(
                f,
                "path differs: {from} -> {to} ({class}): want {want}, got {got}"
            ),
            Diagnosis::NoEcmp {
                leaf,
                pairs,
                used,
                spines,
            } => write!(
                f,
                "path differs: {pairs} cross-rack pairs from {leaf} crossed only {} of the spines {} (no ECMP)",
                used.join(", "),
                spines.join(", ")
            ),
            Diagnosis::ObservationFailed(e) => write!(f, "observation failed: {e}"),
            Diagnosis::NotConverged {
                wait,
                seconds,
                last,
            } => write!(f, "not converged: {wait} after {seconds} s: {last}"),
            Diagnosis::LabGone { lab, members } => write!(
                f,
                "lab gone: {lab}'s containers are stopped or removed: {}",
                members.join(", ")
            ),
            Diagnosis::Pending { what, state } => write!(f, "pending: {what}: {state}"),
            Diagnosis::TrafficLost {
                from,
                to,
                longest_gap_ms,
                budget_ms,
                during,
            } => write!(
                f,
                "traffic lost: {from} -> {to}: {longest_gap_ms} ms without replies during {during} (budget {budget_ms} ms)"
            ),
        }
    }
}
