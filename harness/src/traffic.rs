//! Continuous traffic between pods: a background ping per pair at a fixed interval,
//! and, when stopped, what each pair lost and its longest window without replies.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join_all;
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

/// How many pairs continuous traffic pings at once: each is a process sending ten
/// probes a second, and past a few hundred on a small machine the windows measured
/// are the machine's, not the fabric's (a 16 x 8 lab's 1920 sampled cross-rack pairs
/// left two cores no idle time). 64 per core.
pub fn max_streams() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 64
}

/// At most `max` of `pairs`, spread over the nodes: taken in rounds, in each of
/// which a node sends at most one and receives at most one, so every node carries
/// traffic before any carries two. In the order given.
pub fn spread(pairs: &[(Pod, Pod)], max: usize) -> Vec<(Pod, Pod)> {
    if pairs.len() <= max {
        return pairs.to_vec();
    }
    let mut taken = vec![false; pairs.len()];
    let mut count = 0;
    while count < max {
        let (mut sending, mut receiving) = (BTreeSet::new(), BTreeSet::new());
        let before = count;
        for (i, (a, b)) in pairs.iter().enumerate() {
            if count == max {
                break;
            }
            if !taken[i] && !sending.contains(&a.node) && !receiving.contains(&b.node) {
                sending.insert(&a.node);
                receiving.insert(&b.node);
                taken[i] = true;
                count += 1;
            }
        }
        if count == before {
            break;
        }
    }
    pairs
        .iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|(p, _)| p.clone())
        .collect()
}

/// Pings running in the background, one per pair.
pub struct Traffic {
    interval: Duration,
    runs: Vec<Run>,
    /// How many pairs the caller asked for.
    offered: usize,
}

impl Traffic {
    /// Starts a ping every `interval` from each pair's first pod to its second; of
    /// more than [`max_streams`] pairs, the ones [`spread`] takes.
    pub async fn start(lab: &Lab, pairs: &[(Pod, Pod)], interval: Duration) -> Result<Traffic> {
        let seconds = format!("{:.3}", interval.as_secs_f64());
        let mut runs = Vec::new();
        for (from, to) in spread(pairs, max_streams()) {
            let ip = to.ip.to_string();
            let started = lab
                .spawn(
                    &Target::Pod(from.name.clone()),
                    &["ping", "-n", "-i", &seconds, "-W", "1", &ip],
                )
                .await;
            match started {
                Ok(running) => runs.push((from, to, running)),
                Err(e) => {
                    // None of it may outlive the failure.
                    for (_, _, running) in runs {
                        let _ = running.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(Traffic {
            interval,
            runs,
            offered: pairs.len(),
        })
    }

    /// Where only some of the pairs carry traffic, a line saying so for reports.
    pub fn spread_note(&self) -> Option<String> {
        (self.runs.len() < self.offered).then(|| {
            format!(
                "traffic on {} of {} pairs (at most {} at once, spread so every node sends and receives)",
                self.runs.len(),
                self.offered,
                max_streams()
            )
        })
    }

    /// Stops every ping (a bounded number at once) and reads what each pair lost, in
    /// the pairs' order. Every ping is stopped even when one fails to.
    pub async fn stop(self) -> Result<Vec<PairLoss>> {
        let mut stopped = Vec::with_capacity(self.runs.len());
        let mut runs = self.runs.into_iter();
        loop {
            let group: Vec<Run> = runs.by_ref().take(crate::backend::parallelism()).collect();
            if group.is_empty() {
                break;
            }
            stopped
                .extend(join_all(group.into_iter().map(|run| stop_one(run, self.interval))).await);
        }
        stopped.into_iter().collect()
    }
}

type Run = (Pod, Pod, Box<dyn Running>);

async fn stop_one((from, to, running): Run, interval: Duration) -> Result<PairLoss> {
    let output = running.stop().await?;
    let text = format!("{}{}", output.stdout, output.stderr);
    let result = probe::parse_ping(&text).map_err(|e| Error::Lab {
        lab: from.node.clone(),
        message: format!("traffic {} -> {}: {e}", from.name, to.name),
    })?;
    Ok(PairLoss::from_ping(&from.name, &to.name, &result, interval))
}

/// The pair with the longest window without replies.
pub fn worst(losses: &[PairLoss]) -> Option<&PairLoss> {
    losses.iter().max_by_key(|l| l.longest_gap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calico::emulated::{pods, starting_resources, CalicoState};
    use crate::expect::{sample, PathClass};
    use crate::topology::generate::Shape;
    use std::collections::BTreeMap;

    fn lab_pods(racks: u32, nodes: u32) -> (crate::topology::Topology, Vec<Pod>) {
        let t = Shape::leaf_spine(racks, nodes, 2).topology().unwrap();
        let calico = starting_resources(&t, CalicoState::Configured).unwrap();
        let p = pods(&t, &calico);
        (t, p)
    }

    fn count<'a>(nodes: impl Iterator<Item = &'a String>) -> BTreeMap<&'a String, usize> {
        let mut out = BTreeMap::new();
        for n in nodes {
            *out.entry(n).or_default() += 1;
        }
        out
    }

    #[test]
    fn few_pairs_all_carry_traffic_in_their_order() {
        let (t, p) = lab_pods(2, 2);
        let pairs = crate::expect::pod_pairs(&t, &p, PathClass::CrossRack, true);
        assert_eq!(spread(&pairs, pairs.len()), pairs);
        assert_eq!(spread(&pairs, 1000), pairs);
    }

    #[test]
    fn a_big_sample_is_spread_so_every_node_sends_and_receives_once() {
        // 16 x 8: the cross-rack sample is 1920 pairs, 15 per node.
        let (t, p) = lab_pods(16, 8);
        let pairs = sample(&t, &p, PathClass::CrossRack).unwrap();
        assert_eq!(pairs.len(), 1920);
        let taken = spread(&pairs, 128);
        assert_eq!(taken.len(), 128);
        let senders = count(taken.iter().map(|(a, _)| &a.node));
        let receivers = count(taken.iter().map(|(_, b)| &b.node));
        assert_eq!(senders.len(), 128, "every node sends");
        assert!(senders.values().all(|&n| n == 1));
        assert!(receivers.values().all(|&n| n == 1), "{receivers:?}");
        assert!(receivers.len() >= 120, "{} nodes receive", receivers.len());
        // A subset, in the order given.
        let mut rest = pairs.iter();
        assert!(taken.iter().all(|pair| rest.any(|q| q == pair)));
        // A second round only once every node sent in the first.
        let twice = spread(&pairs, 200);
        let senders = count(twice.iter().map(|(a, _)| &a.node));
        assert_eq!(senders.len(), 128);
        assert!(senders.values().all(|&n| (1..=2).contains(&n)));
    }

    #[test]
    fn pairs_to_one_node_are_capped_at_the_bound() {
        let (t, p) = lab_pods(16, 8);
        let node = &t.racks[0].nodes[0].name;
        let to_one: Vec<(Pod, Pod)> = crate::expect::pod_pairs(&t, &p, PathClass::CrossRack, true)
            .into_iter()
            .filter(|(_, b)| &b.node == node)
            .collect();
        assert_eq!(to_one.len(), 120 * 2 * 2);
        let taken = spread(&to_one, 100);
        assert_eq!(taken.len(), 100);
        assert!(taken.iter().all(|(_, b)| &b.node == node));
    }

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
