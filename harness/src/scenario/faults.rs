//! The fault scenarios: break the fabric under continuous traffic, assert the state
//! while broken, the recovery, and the longest window without replies.

use std::fmt::Write;
use std::time::{Duration, Instant};

use super::{Checked, Failure, Pass};
use crate::backend::Pod;
use crate::check::{self, Strictness};
use crate::diagnosis::Diagnosis;
use crate::expect::{self, PathClass};
use crate::fault::Fault;
use crate::lab::Lab;
use crate::observe;
use crate::topology::Topology;
use crate::traffic::{self, PairLoss, Traffic};
use crate::wait::{self, Budget};

/// The longest window without replies a pair may see when a spine or an uplink
/// fails (the routers drop a session at once when its link loses carrier).
pub const FABRIC_LOSS_BUDGET: Duration = Duration::from_secs(3);
/// ... and for pairs that answered in the full mesh while the route reflectors take
/// over (the node sessions come up with BGP's first exchange).
pub const SWITCH_LOSS_BUDGET: Duration = Duration::from_secs(3);
/// ... and while calico-node restarts (graceful restart keeps its routes).
pub const RESTART_LOSS_BUDGET: Duration = Duration::from_secs(1);
/// Traffic runs this long before the fault and while it is in force.
const STEADY: Duration = Duration::from_secs(1);

pub(super) fn failed(e: crate::Error) -> Failure {
    match e {
        crate::Error::Observation(o) => Failure::new(Diagnosis::ObservationFailed(o), ""),
        crate::Error::Timeout {
            wait,
            seconds,
            last,
        } => {
            let detail = last
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            let first = last.into_iter().next().unwrap_or(Diagnosis::Pending {
                what: wait.clone(),
                state: "no diagnosis".into(),
            });
            Failure::new(
                Diagnosis::NotConverged {
                    wait,
                    seconds: seconds as u64,
                    last: Box::new(first),
                },
                detail,
            )
        }
        other => Failure::new(
            Diagnosis::Pending {
                what: "the fault".into(),
                state: other.to_string(),
            },
            "",
        ),
    }
}

/// Waits until every device of `t` holds exactly the routes `t` calls for.
async fn routes_settle(lab: &Lab, t: &Topology, what: &str) -> crate::Result<Duration> {
    let expected = expect::routes(t, lab.calico());
    let pools = check::pools(lab.calico());
    let budget = Budget::new(what, lab.wait_budget());
    wait::until(&budget, || async {
        let snapshot = lab.snapshot().await;
        check::routes(t, &expected, &snapshot.routes, &pools, Strictness::Exact)
    })
    .await
}

/// Each pair's window, and the first pair over `budget` as a failure.
pub(super) fn judge_loss(
    losses: &[PairLoss],
    budget: Duration,
    during: &str,
    report: &mut String,
) -> Option<Failure> {
    for l in losses {
        let _ = writeln!(
            report,
            "{} -> {}: {}/{} answered, longest window without replies {} ms",
            l.from, l.to, l.received, l.sent, l.longest_gap_ms
        );
    }
    match traffic::worst(losses) {
        Some(w) if u128::from(w.longest_gap_ms) > budget.as_millis() => Some(Failure::new(
            Diagnosis::TrafficLost {
                from: w.from.clone(),
                to: w.to.clone(),
                longest_gap_ms: w.longest_gap_ms,
                budget_ms: budget.as_millis() as u64,
                during: during.to_string(),
            },
            report.clone(),
        )),
        _ => None,
    }
}

/// The lab must be exactly as designed before a fault: a fault on a lab already
/// broken proves nothing.
pub(super) async fn healthy_before(
    lab: &Lab,
    fault: &(dyn std::fmt::Display + Sync),
) -> Result<(), Failure> {
    let broken = lab.diagnose().await;
    match broken.first() {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            first.clone(),
            format!(
                "the lab was not healthy before {fault}:\n{}",
                broken
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )),
    }
}

/// Checks the lab is healthy, starts traffic between `pairs`, lets it run, then
/// injects `fault`; if the inject fails, the traffic is stopped before the error
/// returns.
async fn break_under_traffic<'a>(
    lab: &'a Lab,
    fault: &Fault,
    pairs: &[(Pod, Pod)],
) -> Result<(crate::lab::FaultGuard<'a>, Traffic), Failure> {
    healthy_before(lab, fault).await?;
    let running = Traffic::start(lab, pairs, traffic::INTERVAL)
        .await
        .map_err(failed)?;
    tokio::time::sleep(STEADY).await;
    match lab.fault(fault.clone()).await {
        Ok(guard) => Ok((guard, running)),
        Err(e) => {
            let _ = running.stop().await;
            Err(failed(e))
        }
    }
}

/// A router or link fault on the fabric under cross-rack traffic: the survivors
/// hold exactly the degraded design's routes, traffic goes on, and after the repair
/// every route (ECMP included) returns.
async fn fabric_fault(lab: &Lab, fault: Fault) -> Checked {
    let t = lab.topology();
    // Only traffic that crosses a spine can tell a spine or uplink fault.
    let pairs: Vec<(Pod, Pod)> = lab
        .pod_pairs(PathClass::CrossRack)
        .into_iter()
        .filter(|(a, b)| {
            expect::path(t, a, b).is_some_and(|p| p.hops.contains(&expect::Hop::AnySpine))
        })
        .collect();
    if pairs.is_empty() {
        return Ok(Pass::Skipped(
            "no pod pair's traffic crosses a spine".into(),
        ));
    }
    let degraded = fault
        .degraded(t)
        .filter(|d| expect::routes(d, lab.calico()) != expect::routes(t, lab.calico()));
    let Some(degraded) = degraded else {
        return Ok(Pass::Skipped(format!(
            "{fault} changes no route of the fabric"
        )));
    };
    let (guard, running) = break_under_traffic(lab, &fault, &pairs).await?;
    let injected = Instant::now();
    let mut report = String::new();
    let during = routes_settle(lab, &degraded, &format!("routes without {fault}"))
        .await
        .map_err(failed);
    if during.is_ok() {
        tokio::time::sleep(STEADY).await;
    }
    let restored = guard.restore().await.map_err(failed);
    let after = match (&during, &restored) {
        (Ok(_), Ok(())) => routes_settle(lab, t, &format!("routes after repairing {fault}"))
            .await
            .map_err(failed),
        _ => Ok(Duration::ZERO),
    };
    let spread = running.spread_note();
    let losses = running.stop().await.map_err(failed)?;
    let withdrawn = during?;
    restored?;
    let back = after?;
    let _ = writeln!(
        report,
        "{fault}: the survivors held the degraded design's routes {:.1} s after it; every route (ECMP included) back {:.1} s after the repair ({:.1} s in all)",
        withdrawn.as_secs_f64(),
        back.as_secs_f64(),
        injected.elapsed().as_secs_f64()
    );
    report.extend(spread.map(|n| n + "\n"));
    match judge_loss(&losses, FABRIC_LOSS_BUDGET, &fault.to_string(), &mut report) {
        Some(failure) => Err(failure),
        None => Ok(Pass::Report(report)),
    }
}

pub async fn spine_failure(lab: &Lab) -> Checked {
    let t = lab.topology();
    if t.spines.len() < 2 {
        return Ok(Pass::Skipped("one spine: nothing to fail over to".into()));
    }
    fabric_fault(
        lab,
        Fault::RouterDown {
            router: t.spines[0].name.clone(),
        },
    )
    .await
}

pub async fn uplink_cut(lab: &Lab) -> Checked {
    let t = lab.topology();
    // The first leaf-spine link whose leaf has another spine to go through.
    let uplink = t.links.iter().find_map(|l| {
        let [a, b] = &l.endpoints;
        let is_spine = |d: &str| t.spines.iter().any(|s| s.name == d);
        let (leaf, spine) = match (is_spine(&a.device), is_spine(&b.device)) {
            (false, true) => (&a.device, &b.device),
            (true, false) => (&b.device, &a.device),
            _ => return None,
        };
        let uplinks = t
            .links
            .iter()
            .filter(|l| l.endpoints.iter().any(|e| &e.device == leaf))
            .filter(|l| l.endpoints.iter().any(|e| is_spine(&e.device)))
            .count();
        (uplinks > 1).then(|| (leaf.clone(), spine.clone()))
    });
    let Some((leaf, spine)) = uplink else {
        return Ok(Pass::Skipped("no leaf has two uplinks".into()));
    };
    fabric_fault(lab, Fault::LinkDown { a: leaf, b: spine }).await
}

/// BIRD killed on a node (calico-node restarting): with graceful restart its leaf
/// keeps the node's block, traffic to its pods goes on, and BIRD's sessions return.
pub async fn calico_node_restart(lab: &Lab) -> Checked {
    let t = lab.topology();
    // A node that cross-rack traffic goes to.
    let pairs_all = lab.pod_pairs(PathClass::CrossRack);
    let Some(node) = pairs_all.first().map(|(_, b)| b.node.clone()) else {
        return Ok(Pass::Skipped(
            "the topology has no cross-rack pod pair".into(),
        ));
    };
    let pairs: Vec<(Pod, Pod)> = lab
        .all_pod_pairs(PathClass::CrossRack)
        .into_iter()
        .filter(|(_, b)| b.node == node)
        .collect();
    let Some((rack, address)) = t
        .nodes()
        .find(|(_, n)| n.name == node)
        .map(|(r, n)| (r, n.address))
    else {
        return Ok(Pass::Skipped(format!("{node} is on no rack")));
    };
    let leaf = rack.leaf.clone();
    let blocks: Vec<_> = expect::blocks(t, lab.calico())
        .into_iter()
        .filter(|(n, _)| n == &node)
        .map(|(_, b)| b)
        .collect();
    let fault = Fault::BirdDown { node: node.clone() };
    let (guard, running) = break_under_traffic(lab, &fault, &pairs).await?;
    // While BIRD is down, the leaf must still route the node's block to the node.
    let mut kept = Ok(());
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        match observe::routes(lab, &leaf).await {
            Ok(routes) => {
                for block in &blocks {
                    if !routes
                        .get(&block.to_string())
                        .is_some_and(|r| r.gateways.contains(&address))
                    {
                        kept = Err(Failure::new(
                            Diagnosis::RouteMissing {
                                role: crate::diagnosis::Role::Leaf,
                                device: leaf.clone(),
                                prefix: *block,
                                of: format!("{node}'s block while its calico-node restarts"),
                                want: format!("via {address}, kept by graceful restart"),
                                found: "withdrawn or elsewhere".into(),
                            },
                            "",
                        ));
                    }
                }
            }
            Err(e) => kept = Err(Failure::new(Diagnosis::ObservationFailed(e), "")),
        }
        if kept.is_err() {
            break;
        }
    }
    let restored = guard.restore().await.map_err(failed);
    // Back means the sessions, and every route again (the node's block re-exported,
    // not just held stale until graceful restart gives up).
    let back = match restored {
        Ok(()) => match lab.wait_for_calico(lab.wait_budget()).await {
            Ok(sessions) => routes_settle(lab, t, &format!("routes after {fault} ended"))
                .await
                .map(|routes| sessions + routes)
                .map_err(failed),
            Err(e) => Err(failed(e)),
        },
        Err(e) => Err(e),
    };
    let spread = running.spread_note();
    let losses = running.stop().await.map_err(failed)?;
    kept?;
    let back = back?;
    let mut report = format!(
        "{fault}: {leaf} kept {} while BIRD was down; sessions and every route back {:.1} s after it restarted\n",
        blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "),
        back.as_secs_f64()
    );
    report.extend(spread.map(|n| n + "\n"));
    match judge_loss(
        &losses,
        RESTART_LOSS_BUDGET,
        &fault.to_string(),
        &mut report,
    ) {
        Some(failure) => Err(failure),
        None => Ok(Pass::Report(report)),
    }
}

/// What a pair's pings must get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replies {
    None,
    All,
}

/// Pings every pair (a bounded number at once); the first pair that gets other than `want` fails.
async fn ping_all(
    lab: &Lab,
    pairs: &[(Pod, Pod)],
    class: PathClass,
    want: Replies,
    when: &str,
) -> Result<(), Failure> {
    let pings = observe::pings(lab, pairs).await;
    for ((a, b), ping) in pairs.iter().zip(pings) {
        let (r, text) = ping.map_err(|e| Failure::new(Diagnosis::ObservationFailed(e), ""))?;
        let got = match want {
            Replies::None => r.received == 0,
            Replies::All => r.all_received(),
        };
        if !got {
            let isolated = if want == Replies::None {
                ": not isolated"
            } else {
                ""
            };
            return Err(Failure::new(
                Diagnosis::PingFailed {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    class,
                    summary: format!("{}/{} received {when}{isolated}", r.received, r.sent),
                },
                text,
            ));
        }
    }
    Ok(())
}

/// A leaf stops: its racks lose cross-rack reachability, pods on one node there
/// still reach each other, other racks are unaffected; all returns after restart.
pub async fn leaf_failure(lab: &Lab) -> Checked {
    let t = lab.topology();
    // One pair per pair of nodes, pinged all at once: what is cut gets no reply.
    let cross = lab.pod_pairs(PathClass::CrossRack);
    let behind = |leaf: &str| -> Vec<String> {
        t.nodes()
            .filter(|(r, _)| r.leaf == leaf)
            .map(|(_, n)| n.name.clone())
            .collect()
    };
    // The first leaf some cross-rack pair goes through.
    let Some((leaf, isolated)) = t
        .leafs
        .iter()
        .map(|l| (l.name.clone(), behind(&l.name)))
        .find(|(_, nodes)| {
            cross
                .iter()
                .any(|(a, b)| nodes.contains(&a.node) || nodes.contains(&b.node))
        })
    else {
        return Ok(Pass::Skipped(
            "no cross-rack pair goes through a leaf".into(),
        ));
    };
    let touches = |(a, b): &(Pod, Pod)| isolated.contains(&a.node) || isolated.contains(&b.node);
    let (cut, others): (Vec<_>, Vec<_>) = cross.into_iter().partition(touches);
    let same_host: Vec<_> = lab
        .pod_pairs(PathClass::SameHost)
        .into_iter()
        .filter(touches)
        .collect();
    let fault = Fault::RouterDown {
        router: leaf.clone(),
    };
    healthy_before(lab, &fault).await?;
    let guard = lab.fault(fault.clone()).await.map_err(failed)?;
    let mut report = String::new();
    let down = format!("with {leaf} down");
    // Cut off: not a single reply; elsewhere and on one node: every reply.
    let mut verdict = ping_all(lab, &cut, PathClass::CrossRack, Replies::None, &down).await;
    let _ = writeln!(
        report,
        "{fault}: {} cross-rack pair(s) through it cut off",
        cut.len()
    );
    for (class, pairs) in [
        (PathClass::SameHost, &same_host),
        (PathClass::CrossRack, &others),
    ] {
        if verdict.is_ok() {
            verdict = ping_all(lab, pairs, class, Replies::All, &down).await;
            let _ = writeln!(report, "{class} pairs unaffected: {}", pairs.len());
        }
    }
    let restored = guard.restore().await.map_err(failed);
    let back = match restored {
        Ok(()) => lab.converge(lab.wait_budget()).await.map_err(failed),
        Err(e) => Err(e),
    };
    verdict?;
    let back = back?;
    ping_all(
        lab,
        &cut,
        PathClass::CrossRack,
        Replies::All,
        &format!("after {leaf} returned"),
    )
    .await?;
    let _ = writeln!(
        report,
        "after the repair: converged in {:.1} s, every cut pair answers again",
        back.as_secs_f64()
    );
    Ok(Pass::Report(report))
}

/// The seed's own sequence, live: the lab is taken back to a fresh install's full
/// mesh (mesh on, Nodes in the global AS, no BGPPeers), then mesh off, Node AS
/// numbers and BGPPeers are applied in one
/// go under continuous traffic. Pairs that answered in the mesh keep answering
/// (within budget); afterwards the lab is exactly as designed and every
/// cross-rack pair answers.
pub async fn mesh_to_route_reflector_switch(lab: &mut Lab) -> Checked {
    let t = lab.topology().clone();
    if t.calico.node_to_node_mesh_enabled || t.calico.bgp_peers.is_empty() {
        return Ok(Pass::Skipped(
            "the topology runs the full mesh: there are no route reflectors to switch to".into(),
        ));
    }
    healthy_before(lab, &"the switch to the full mesh").await?;
    let designed = crate::render::calico_resources(&t);
    let result = mesh_then_switch(lab, &t, &designed).await;
    if result.is_err() {
        // Whatever broke, the lab goes back to its design for what runs next.
        let _ = lab.apply("calico-resources.yaml", &designed).await;
    }
    result
}

async fn mesh_then_switch(lab: &mut Lab, t: &Topology, designed: &str) -> Checked {
    let mut report = String::new();
    lab.apply("full-mesh.yaml", &crate::render::full_mesh(t))
        .await
        .map_err(failed)?;
    lab.delete("bgppeers.yaml", &crate::render::bgp_peers(t))
        .await
        .map_err(failed)?;
    let meshed = lab
        .wait_for_calico(lab.wait_budget())
        .await
        .map_err(failed)?;
    // Neighbours in one rack reach each other in the mesh; whether cross-rack pairs
    // do depends on the fabric (a leaf that learns no pod block drops them).
    let same_rack = lab.pod_pairs(PathClass::SameRack);
    let mesh_state = "in the full mesh";
    ping_all(
        lab,
        &same_rack,
        PathClass::SameRack,
        Replies::All,
        mesh_state,
    )
    .await?;
    let cross = lab.pod_pairs(PathClass::CrossRack);
    let pings = observe::pings(lab, &cross).await;
    let mut kept = same_rack.clone();
    let mut joining = Vec::new();
    for (pair, ping) in cross.iter().zip(pings) {
        let (r, _) = ping.map_err(|e| Failure::new(Diagnosis::ObservationFailed(e), ""))?;
        if r.all_received() {
            kept.push(pair.clone());
        } else {
            joining.push(pair.clone());
        }
    }
    let _ = writeln!(
        report,
        "full mesh: every node's Mesh_ sessions Established in {:.1} s; {} same-rack and {} of {} cross-rack pair(s) answered",
        meshed.as_secs_f64(),
        same_rack.len(),
        cross.len() - joining.len(),
        cross.len()
    );
    let all: Vec<(Pod, Pod)> = kept.iter().chain(&joining).cloned().collect();
    let running = Traffic::start(lab, &all, traffic::INTERVAL)
        .await
        .map_err(failed)?;
    tokio::time::sleep(STEADY).await;
    let switched = Instant::now();
    let applied = lab.apply("calico-resources.yaml", designed).await;
    let converged = match &applied {
        Ok(_) => lab.converge(lab.wait_budget()).await,
        Err(_) => Ok(Duration::ZERO),
    };
    if converged.is_ok() {
        tokio::time::sleep(STEADY).await;
    }
    report.extend(running.spread_note().map(|n| n + "\n"));
    let losses = running.stop().await.map_err(failed)?;
    applied.map_err(failed)?;
    converged.map_err(failed)?;
    let _ = writeln!(
        report,
        "switch (mesh off, Node AS numbers, BGPPeers in one apply): every session and route as designed {:.1} s after it",
        switched.elapsed().as_secs_f64() - STEADY.as_secs_f64()
    );
    let (kept_losses, joined_losses): (Vec<PairLoss>, Vec<PairLoss>) = losses
        .into_iter()
        .partition(|l| kept.iter().any(|(a, b)| a.name == l.from && b.name == l.to));
    for l in &joined_losses {
        let _ = writeln!(
            report,
            "{} -> {} (no answer in the mesh): {}/{} answered during the switch",
            l.from, l.to, l.received, l.sent
        );
    }
    if let Some(failure) = judge_loss(
        &kept_losses,
        SWITCH_LOSS_BUDGET,
        "the switch from the full mesh to route reflectors",
        &mut report,
    ) {
        return Err(failure);
    }
    ping_all(
        lab,
        &joining,
        PathClass::CrossRack,
        Replies::All,
        "after the switch",
    )
    .await?;
    Ok(Pass::Report(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(gap: u64) -> PairLoss {
        PairLoss {
            from: "a".into(),
            to: "b".into(),
            sent: 50,
            received: 50 - (gap / 100) as u32,
            longest_gap_ms: gap,
        }
    }

    #[test]
    fn a_window_over_budget_is_traffic_lost_and_every_window_is_reported() {
        let mut report = String::new();
        assert!(judge_loss(
            &[loss(400), loss(3000)],
            FABRIC_LOSS_BUDGET,
            "x",
            &mut report
        )
        .is_none());
        assert_eq!(report.lines().count(), 2);
        let mut report = String::new();
        let failure = judge_loss(
            &[loss(400), loss(3100)],
            FABRIC_LOSS_BUDGET,
            "router-down spine0",
            &mut report,
        )
        .expect("over budget");
        assert_eq!(
            failure.diagnosis.to_string(),
            "traffic lost: a -> b: 3100 ms without replies during router-down spine0 (budget 3000 ms)"
        );
        assert!(failure.diagnosis.is_data_path());
    }
}
