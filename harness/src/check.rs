//! Compares the state a design calls for with what a snapshot saw: pure functions
//! from expectations and observations to diagnoses, shared by the convergence waits,
//! the scenarios and `status`.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;

use crate::calico::Resources;
use crate::diagnosis::{Diagnosis, Role};
use crate::expect::{self, ExpectedRoute, Session, Via};
use crate::observe::{Observed, Route, Routes, Sessions, Snapshot};
use crate::topology::Topology;

/// How much a check demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Everything the design calls for is there (what the waits poll for).
    Converged,
    /// That, and nothing else: no unexpected session, no extra pod-block route (what
    /// the scenarios assert).
    Exact,
}

/// A device's role in diagnoses.
pub fn role(t: &Topology, device: &str) -> Role {
    if t.leafs.iter().any(|l| l.name == device) {
        Role::Leaf
    } else if t.spines.iter().any(|s| s.name == device) {
        Role::Spine
    } else {
        Role::Node
    }
}

/// Devices in the order traffic leans on their sessions: nodes, leafs, spines.
fn session_order(t: &Topology) -> Vec<String> {
    t.nodes()
        .map(|(_, n)| n.name.clone())
        .chain(t.leafs.iter().map(|r| r.name.clone()))
        .chain(t.spines.iter().map(|r| r.name.clone()))
        .collect()
}

/// How a session is named on both sides of the comparison.
pub fn session_id(s: &Session) -> String {
    match s {
        Session::Bird { protocol, .. } => protocol.clone(),
        Session::Frr { peer, .. } => peer.to_string(),
    }
}

fn session_peer(s: &Session) -> Option<String> {
    match s {
        Session::Bird { peer, .. } => Some(peer.to_string()),
        Session::Frr { device, .. } => Some(device.clone()),
    }
}

/// Every expected session Established; with `Exact`, no other session either.
pub fn sessions(
    t: &Topology,
    expected: &BTreeMap<String, BTreeSet<Session>>,
    seen: &BTreeMap<String, Observed<Sessions>>,
    strictness: Strictness,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for device in session_order(t) {
        let Some(want) = expected.get(&device) else {
            continue;
        };
        let Some(seen) = observed(seen, &device, "BGP sessions", &mut out) else {
            continue;
        };
        for s in want {
            let id = session_id(s);
            match seen.get(&id).map(String::as_str) {
                Some("Established") => {}
                state => out.push(Diagnosis::NoSession {
                    device: device.clone(),
                    session: id,
                    peer: session_peer(s),
                    state: state.map(String::from),
                }),
            }
        }
        if strictness == Strictness::Exact {
            let ids: BTreeSet<String> = want.iter().map(session_id).collect();
            for (id, state) in seen.iter().filter(|(id, _)| !ids.contains(*id)) {
                out.push(Diagnosis::UnexpectedSession {
                    device: device.clone(),
                    session: id.clone(),
                    state: state.clone(),
                });
            }
        }
    }
    out
}

/// What `device` showed, or `None` with the reason pushed as a diagnosis: a device
/// that could not be asked is a failure, never an empty observation.
fn observed<'a, T>(
    seen: &'a BTreeMap<String, Observed<T>>,
    device: &str,
    what: &str,
    out: &mut Vec<Diagnosis>,
) -> Option<&'a T> {
    match seen.get(device) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            out.push(Diagnosis::ObservationFailed(e.clone()));
            None
        }
        None => {
            out.push(not_observed(device, what));
            None
        }
    }
}

fn not_observed(device: &str, what: &str) -> Diagnosis {
    Diagnosis::ObservationFailed(crate::observe::ObservationError {
        device: device.to_string(),
        target: device.to_string(),
        command: String::new(),
        problem: format!("its {what} were not observed"),
    })
}

/// Whether a route goes where the design says.
pub fn route_ok(want: &Via, got: Option<&Route>) -> bool {
    let Some(got) = got else { return false };
    match want {
        Via::Blackhole => got.blackhole,
        Via::Hop(hop) => !got.blackhole && got.gateways == BTreeSet::from([*hop]),
        Via::Ecmp(set) => !got.blackhole && !set.is_empty() && &got.gateways == set,
    }
}

pub fn describe_via(via: &Via) -> String {
    match via {
        Via::Blackhole => "as blackhole".into(),
        Via::Hop(h) => format!("via {h}"),
        Via::Ecmp(set) if set.is_empty() => "via (no neighbor leads there)".into(),
        Via::Ecmp(set) => format!(
            "via {}",
            set.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

pub fn describe_route(got: Option<&Route>) -> String {
    match got {
        None => "no route".into(),
        Some(r) if r.blackhole => "a blackhole".into(),
        Some(r) if r.gateways.is_empty() => "a direct route".into(),
        Some(r) => format!(
            "via {}",
            r.gateways
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Devices in the order traffic leans on their routes: leafs, spines, nodes.
fn route_order(t: &Topology) -> Vec<String> {
    t.leafs
        .iter()
        .chain(&t.spines)
        .map(|r| r.name.clone())
        .chain(t.nodes().map(|(_, n)| n.name.clone()))
        .collect()
}

/// Every expected block route with exactly its next hops; with `Exact`, no other
/// route to a pod block (a prefix inside one of `pools`, shorter than /32: the /32s
/// are the CNI's routes to local pods).
pub fn routes(
    t: &Topology,
    expected: &BTreeMap<String, Vec<ExpectedRoute>>,
    seen: &BTreeMap<String, Observed<Routes>>,
    pools: &[Ipv4Net],
    strictness: Strictness,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for device in route_order(t) {
        let want = expected.get(&device).map_or(&[][..], Vec::as_slice);
        let Some(seen) = observed(seen, &device, "routes", &mut out) else {
            continue;
        };
        for route in want {
            let got = seen.get(&route.prefix.to_string());
            if !route_ok(&route.via, got) {
                out.push(Diagnosis::RouteMissing {
                    role: role(t, &device),
                    device: device.clone(),
                    prefix: route.prefix,
                    of: format!("{}'s block", route.owner),
                    want: describe_via(&route.via),
                    found: describe_route(got),
                });
            }
        }
        if strictness == Strictness::Exact {
            let wanted: BTreeSet<Ipv4Net> = want.iter().map(|r| r.prefix).collect();
            for (dst, got) in seen {
                let Ok(prefix) = dst.parse::<Ipv4Net>() else {
                    continue;
                };
                let pod_block =
                    prefix.prefix_len() < 32 && pools.iter().any(|p| p.contains(&prefix));
                if pod_block && !wanted.contains(&prefix) {
                    out.push(Diagnosis::ExtraRoute {
                        role: role(t, &device),
                        device: device.clone(),
                        prefix,
                        found: describe_route(Some(got)),
                    });
                }
            }
        }
    }
    out
}

/// The IPv4 pools of the cluster.
pub fn pools(calico: &Resources) -> Vec<Ipv4Net> {
    calico
        .ip_pools
        .values()
        .filter_map(|p| match p.cidr {
            ipnet::IpNet::V4(net) => Some(net),
            ipnet::IpNet::V6(_) => None,
        })
        .collect()
}

/// Sessions, then routes: the control plane's diagnoses in the order traffic
/// depends on them.
pub fn control_plane(
    t: &Topology,
    calico: &Resources,
    snapshot: &Snapshot,
    strictness: Strictness,
) -> Vec<Diagnosis> {
    let mut out = sessions(
        t,
        &expect::sessions(t, calico),
        &snapshot.sessions,
        strictness,
    );
    out.extend(routes(
        t,
        &expect::routes(t, calico),
        &snapshot.routes,
        &pools(calico),
        strictness,
    ));
    out
}

/// The fabric alone: every router-to-router session Established and every fabric
/// subnet in every router's kernel table (what must hold before calico-node can).
pub fn fabric(t: &Topology, snapshot: &Snapshot) -> Vec<Diagnosis> {
    let routers: BTreeMap<String, BTreeSet<Session>> = expect::sessions(t, &Resources::default())
        .into_iter()
        .filter(|(device, _)| t.router(device).is_some())
        .map(|(device, set)| {
            let fabric = set
                .into_iter()
                .filter(|s| matches!(s, Session::Frr { device, .. } if t.router(device).is_some()))
                .collect();
            (device, fabric)
        })
        .collect();
    let mut out = sessions(t, &routers, &snapshot.sessions, Strictness::Converged);
    let subnets: BTreeSet<Ipv4Net> = t
        .routers()
        .flat_map(|(_, r)| t.announced_networks(&r.name))
        .collect();
    for (_, router) in t.routers() {
        let Some(seen) = observed(&snapshot.routes, &router.name, "routes", &mut out) else {
            continue;
        };
        for subnet in subnets
            .iter()
            .filter(|s| !seen.contains_key(&s.to_string()))
        {
            out.push(Diagnosis::RouteMissing {
                role: role(t, &router.name),
                device: router.name.clone(),
                prefix: *subnet,
                of: "fabric subnet".into(),
                want: "installed".into(),
                found: "no route".into(),
            });
        }
    }
    out
}
