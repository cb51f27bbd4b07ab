//! The library's error type.

use crate::topology::TopologyError;

/// Everything that can go wrong in the harness, split by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input (topology, names, flags) is wrong.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Calico resources that do not parse or do not hold together.
    #[error(transparent)]
    Calico(#[from] crate::calico::CalicoError),
    #[error("invalid input: {0}")]
    Input(String),
    /// The machine lacks something the harness needs (Docker engine, debootstrap, ...).
    #[error("environment: {what}\n  fix: {fix}")]
    Environment { what: String, fix: String },
    #[error("docker: {context}: {source}")]
    Docker {
        context: String,
        #[source]
        source: bollard::errors::Error,
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
    #[error("{wait}: not converged after {seconds:.1} s; last observed:\n{last}")]
    Timeout {
        wait: String,
        seconds: f64,
        last: String,
    },
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

    /// Whether the error is the user's input (the CLI exits 2 on those).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Error::Topology(_) | Error::Calico(_) | Error::Input(_)
        )
    }

    /// Whether the error is a missing piece of the environment (the CLI exits 3).
    pub fn is_environment(&self) -> bool {
        matches!(self, Error::Environment { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
