//! The one way the harness waits: poll a check until it holds or its named budget
//! runs out, backing off between polls; the timeout shows the last diagnoses.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};

/// A named time budget for one wait.
#[derive(Debug, Clone)]
pub struct Budget {
    pub name: String,
    pub limit: Duration,
}

impl Budget {
    pub fn new(name: impl Into<String>, limit: Duration) -> Self {
        Budget {
            name: name.into(),
            limit,
        }
    }
}

/// Polls `check` until it returns no diagnosis; returns how long that took. Polls
/// start 50 ms apart and back off to 100 ms, or to twice as long as one poll takes
/// (a big lab's reads, a process per member, then poll at most a third of the
/// time and leave the rest to the daemons they wait for).
pub async fn until<F, Fut>(budget: &Budget, mut check: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<Diagnosis>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let poll = Instant::now();
        let broken = check().await;
        let ceiling = (poll.elapsed() * 2).max(Duration::from_millis(100));
        if broken.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= budget.limit {
            return Err(Error::Timeout {
                wait: budget.name.clone(),
                seconds: budget.limit.as_secs_f64(),
                last: broken,
            });
        }
        let left = budget.limit.saturating_sub(started.elapsed());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 3 / 2).min(ceiling);
    }
}
