//! How a lab is brought up and kept: flavor, name, keep policy, starting Calico state,
//! progress listener.

use std::str::FromStr;
use std::sync::Arc;

use crate::backend::Flavor;
pub use crate::calico::emulated::CalicoState;
use crate::error::{Error, Result};
use crate::scenario::Outcome;

/// Whether a lab outlives its handle (`CALICO_LAB_KEEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepPolicy {
    /// Always tear down (the default).
    #[default]
    Never,
    /// Keep the lab when the test panicked, a scenario failed or bring-up failed.
    OnFailure,
    Always,
}

impl FromStr for KeepPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "never" => Ok(Self::Never),
            "on-failure" => Ok(Self::OnFailure),
            "always" => Ok(Self::Always),
            other => Err(Error::InvalidOption {
                option: "keep policy",
                value: other.into(),
                expected: "never, on-failure, always",
            }),
        }
    }
}

impl KeepPolicy {
    /// `CALICO_LAB_KEEP`, or `never` when unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("CALICO_LAB_KEEP") {
            Ok(value) if !value.is_empty() => value.parse(),
            _ => Ok(Self::Never),
        }
    }
}

/// How to bring a lab up.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Lab name (container name prefix); the topology's name by default.
    pub name: Option<String>,
    pub flavor: Flavor,
    /// The routers on the kind flavor (`--routers`); the topology's, else VyOS.
    pub routers: Option<crate::backend::RouterKind>,
    pub keep: KeepPolicy,
    /// The lab outlives this process until `calico-lab down` (what `calico-lab up` does).
    pub detached: bool,
    pub calico: CalicoState,
    /// Keep a record of every command's answer in this folder (replayable offline).
    pub record: Option<std::path::PathBuf>,
    /// Told each step of bring-up as it completes (for progress displays).
    pub progress: Progress,
}

/// What a lab or a job tells as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A lab-wide step begins.
    Step(&'a str),
    /// A step is done for one member.
    Member { step: &'a str, member: &'a str },
    /// A scenario ended.
    Outcome(&'a Outcome),
}

/// A listener for progress events (for progress displays).
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Listener>>);

type Listener = dyn Fn(Event<'_>) + Send + Sync;

impl Progress {
    pub fn new(f: impl Fn(Event<'_>) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(f)))
    }

    pub fn tell(&self, event: Event<'_>) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }

    /// A step done for one member.
    pub fn member(&self, step: &str, member: &str) {
        self.tell(Event::Member { step, member });
    }

    pub fn step(&self, step: &str) {
        self.tell(Event::Step(step));
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(listener)"
        } else {
            "Progress(none)"
        })
    }
}
