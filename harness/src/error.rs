//! The library's error type, split by who can fix it; [`Error::exit_code`] is what the
//! CLI exits with.

use std::path::PathBuf;

use crate::topology::TopologyError;

/// Everything that can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file does not hold together.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Calico resources that do not parse or do not hold together.
    #[error(transparent)]
    Calico(#[from] crate::calico::CalicoError),
    /// An input file that cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output file that cannot be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lab name '{0}' must be 1 to 40 lower-case letters, digits and '-', not starting or ending with '-'")]
    LabName(String),
    #[error("{option} '{value}' is not one of {expected}")]
    InvalidOption {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A fabric shape `generate` cannot make.
    #[error(transparent)]
    Generate(#[from] crate::topology::generate::GenerateError),
    /// A combination of inputs the harness cannot run, with the reason.
    #[error("{0}")]
    Unsupported(String),
    #[error("no lab named '{0}' is running")]
    NoSuchLab(String),
    #[error("lab '{lab}' runs another topology (hash {running}, this one {given})")]
    OtherTopology {
        lab: String,
        running: String,
        given: String,
    },
    #[error("lab '{lab}' is already running (run {run}); choose another name, or remove it with `calico-lab down --name {lab}`")]
    AlreadyRunning { lab: String, run: String },
    #[error("lab {lab} has no {what} named '{name}'")]
    NoSuchTarget {
        lab: String,
        what: &'static str,
        name: String,
    },
    #[error("no scenario matches {patterns:?}; known: {}", known.join(", "))]
    UnknownScenario {
        patterns: Vec<String>,
        known: Vec<&'static str>,
    },
    /// The machine lacks something the harness needs (Docker engine, debootstrap, ...).
    #[error("environment: {what}\n  fix: {fix}")]
    Environment { what: String, fix: String },
    #[error("docker: {context}: {source}")]
    Docker {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("kubernetes: {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The machine cannot run a kind lab; every problem found, each with its fix.
    #[error("preflight found {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Preflight(Vec<crate::backend::kind::preflight::Problem>),
    #[error(transparent)]
    Manifest(#[from] crate::backend::kind::manifest::ManifestError),
    /// A container of that name exists already (another run claimed the name).
    #[error("container {0} exists already")]
    ContainerExists(String),
    /// A lab member's container is stopped or gone, so nothing can run on it.
    #[error("container {container} is {state}")]
    NotRunning {
        container: String,
        state: &'static str,
    },
    /// A lab member did not do what it was told.
    #[error("lab {lab}: {message}")]
    Lab { lab: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A convergence wait ran out of budget; `last` is the last observed state.
    #[error(
        "{wait}: not converged after {seconds:.1} s; last observed:\n{}",
        lines(last)
    )]
    Timeout {
        wait: String,
        seconds: f64,
        last: Vec<crate::diagnosis::Diagnosis>,
    },
    /// A device could not be observed.
    #[error(transparent)]
    Observation(#[from] crate::observe::ObservationError),
    /// A signal (SIGINT, SIGTERM, SIGHUP) stopped the work; what was created is gone.
    #[error("interrupted by {signal}: removed what was created")]
    Interrupted { signal: &'static str, number: i32 },
    /// The job ran and some scenario failed (the report says which).
    #[error("{failed} of {total} scenarios failed")]
    ScenariosFailed { failed: usize, total: usize },
}

impl Error {
    pub fn docker(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let context = context.into();
        move |source| Error::Docker { context, source }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// The CLI's exit code: 2 the user's input, 3 the environment, 128 + N a signal,
    /// 1 anything else (a lab or a scenario failed).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Topology(_)
            | Error::Calico(_)
            | Error::Read { .. }
            | Error::Write { .. }
            | Error::LabName(_)
            | Error::InvalidOption { .. }
            | Error::Unsupported(_)
            | Error::Generate(_)
            | Error::NoSuchLab(_)
            | Error::OtherTopology { .. }
            | Error::AlreadyRunning { .. }
            | Error::ContainerExists(_)
            | Error::NoSuchTarget { .. }
            | Error::UnknownScenario { .. } => 2,
            Error::Environment { .. } | Error::Preflight(_) | Error::Manifest(_) => 3,
            Error::Interrupted { number, .. } => u8::try_from(128 + number).unwrap_or(1),
            Error::Docker { .. }
            | Error::Kube { .. }
            | Error::NotRunning { .. }
            | Error::Lab { .. }
            | Error::Io { .. }
            | Error::Timeout { .. }
            | Error::Observation(_)
            | Error::ScenariosFailed { .. } => 1,
        }
    }
}

fn lines(diagnoses: &[crate::diagnosis::Diagnosis]) -> String {
    diagnoses
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
