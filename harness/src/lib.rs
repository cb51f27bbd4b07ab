//! calico-lab: a leaf/spine BGP fabric with a Calico cluster, brought up in Docker
//! and checked by named scenarios.

pub mod artifacts;
pub mod calico;
pub mod docker;
pub mod error;
pub mod expect;
pub mod image;
pub mod lab;
pub mod probe;
pub mod render;
pub mod report;
pub mod scenario;
pub mod topology;
pub mod wiring;

pub use error::{Error, Result};
pub use lab::{CalicoState, KeepPolicy, Lab, LabOptions};
pub use topology::Topology;
