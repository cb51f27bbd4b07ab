//! calico-lab: a leaf/spine BGP fabric with a Calico cluster, brought up in Docker
//! and checked by named scenarios.
//!
//! Write your own scenario against [`Lab`]: [`Lab::pod_pairs`], [`Lab::ping`],
//! [`Lab::traceroute`], [`Lab::path`], [`Lab::sessions`], [`Lab::routes`],
//! [`Lab::converge`], [`Lab::apply`]; the `calico-lab-scenarios` crate gives test
//! fixtures for a shared and an owned lab.
//!
//! | module | job |
//! |---|---|
//! | [`topology`] | the topology model: load, validate, derive |
//! | [`render`] | configs derived from a topology: FRR, VyOS, kind, Calico resources, diagrams |
//! | [`calico`] | the emulated calico-node: resources, selectors, peers, services, BGPFilters, IPAM, confd's render per version |
//! | [`backend`] | the flavor seam and its implementations (emulated, kind, replay) |
//! | [`lab`] | the lab handle users and scenarios work with |
//! | [`probe`] | parsers for what daemons and tools print |
//! | [`observe`] | reads a lab's state through its backend into typed values |
//! | [`expect`] | the state a healthy lab must show, derived from the topology |
//! | [`fault`] | faults on a running lab and what undoes them |
//! | [`check`] | pure comparison of expected and observed state into diagnoses |
//! | [`diagnosis`] | what is wrong, as a typed value |
//! | [`wait`] | polling a check within a named budget |
//! | [`scenario`] | the scenario registry and runner |
//! | [`job`] | up, converge, scenarios, report, down |
//! | [`report`] | table, Markdown, JUnit and JSON reports |
//! | [`artifacts`] | what a failing scenario leaves behind |
//! | [`interrupt`] | SIGINT, SIGTERM and SIGHUP stop work and tear labs down |
//! | [`traffic`] | continuous pings between pods and their loss windows |
//! | [`upgrade`] | the Calico upgrade gate: A, rollout under traffic, B, differences |
//! | [`wiring`] | the veth and bridge plan of a topology |
//! | [`bench`] | the minimal-script baseline and container memory `calico-lab bench` reports |

pub mod artifacts;
pub mod backend;
pub mod bench;
pub mod calico;
pub mod check;
pub mod diagnosis;
pub mod error;
pub mod expect;
pub mod fault;
pub mod interrupt;
pub mod job;
pub mod lab;
pub mod observe;
pub mod probe;
pub mod render;
pub mod report;
pub mod scenario;
pub mod topology;
pub mod traffic;
pub mod upgrade;
pub mod wait;
pub mod wiring;

pub use backend::{Flavor, Pod, Target};
pub use diagnosis::Diagnosis;
pub use error::{Error, Result};
pub use expect::PathClass;
pub use lab::{CalicoState, KeepPolicy, Lab, LabOptions};
pub use topology::Topology;
