//! Continuous traffic between pods: a background ping per pair at a fixed interval,
//! and, when stopped, what each pair lost and its longest window without replies.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use crate::backend::{Pod, Running, Target};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::probe::{self, PingResult};

/// The default probe interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// What one pair's traffic saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairLoss {
    pub from: String,
    pub to: String,
    pub sent: u32,
    pub received: u32,
    /// The longest run of probes without a reply, as time (probes x interval).
    pub longest_gap_ms: u64,
}

impl PairLoss {
    /// From a stopped ping's output: the longest run of sequence numbers without a
    /// reply (at the start, between replies, at the end) times the interval.
    pub fn from_ping(from: &str, to: &str, result: &PingResult, interval: Duration) -> Self {
        let answered: BTreeSet<u32> = result
            .replies
            .iter()
            .filter(|r| !r.duplicate)
            .map(|r| r.seq)
            .collect();
        let mut longest = 0u32;
        let mut run = 0u32;
        // iputils numbers probes from 1.
        for seq in 1..=result.sent {
            if answered.contains(&seq) {
                run = 0;
            } else {
                run += 1;
                longest = longest.max(run);
            }
        }
        PairLoss {
            from: from.to_string(),
            to: to.to_string(),
            sent: result.sent,
            received: result.received,
            longest_gap_ms: u64::from(longest) * interval.as_millis() as u64,
        }
    }
}

/// Pings running in the background, one per pair.
pub struct Traffic {
    interval: Duration,
    runs: Vec<(Pod, Pod, Box<dyn Running>)>,
}

impl Traffic {
    /// Starts a ping every `interval` from each pair's first pod to its second.
    pub async fn start(lab: &Lab, pairs: &[(Pod, Pod)], interval: Duration) -> Result<Traffic> {
        let seconds = format!("{:.3}", interval.as_secs_f64());
        let mut runs = Vec::new();
        for (from, to) in pairs {
            let ip = to.ip.to_string();
            let started = lab
                .spawn(
                    &Target::Pod(from.name.clone()),
                    &["ping", "-n", "-i", &seconds, "-W", "1", &ip],
                )
                .await;
            match started {
                Ok(running) => runs.push((from.clone(), to.clone(), running)),
                Err(e) => {
                    // None of it may outlive the failure.
                    for (_, _, running) in runs {
                        let _ = running.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(Traffic { interval, runs })
    }

    /// Stops every ping and reads what each pair lost.
    pub async fn stop(self) -> Result<Vec<PairLoss>> {
        let mut out = Vec::new();
        for (from, to, running) in self.runs {
            let output = running.stop().await?;
            let text = format!("{}{}", output.stdout, output.stderr);
            let result = probe::parse_ping(&text).map_err(|e| Error::Lab {
                lab: from.node.clone(),
                message: format!("traffic {} -> {}: {e}", from.name, to.name),
            })?;
            out.push(PairLoss::from_ping(
                &from.name,
                &to.name,
                &result,
                self.interval,
            ));
        }
        Ok(out)
    }
}

/// The pair with the longest window without replies.
pub fn worst(losses: &[PairLoss]) -> Option<&PairLoss> {
    losses.iter().max_by_key(|l| l.longest_gap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_unanswered_run_counts_at_start_middle_and_end() {
        let text = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\
64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.1 ms\n\
64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.1 ms\n\
64 bytes from 10.0.0.2: icmp_seq=7 ttl=64 time=0.1 ms\n\
64 bytes from 10.0.0.2: icmp_seq=8 ttl=64 time=0.1 ms\n\
\n--- 10.0.0.2 ping statistics ---\n\
9 packets transmitted, 4 received, 55.5556% packet loss, time 800ms\n\
rtt min/avg/max/mdev = 0.100/0.100/0.100/0.000 ms\n";
        let result = probe::parse_ping(text).unwrap();
        let loss = PairLoss::from_ping("a", "b", &result, Duration::from_millis(100));
        assert_eq!((loss.sent, loss.received), (9, 4));
        // Probes 4, 5, 6 went unanswered: 300 ms.
        assert_eq!(loss.longest_gap_ms, 300);
        let all = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.1 ms\n\n--- 10.0.0.2 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms\n";
        let result = probe::parse_ping(all).unwrap();
        assert_eq!(
            PairLoss::from_ping("a", "b", &result, INTERVAL).longest_gap_ms,
            0
        );
    }
}
