//! What the scenarios observe on a running lab, through the probes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::calico::emulated::Pod;
use crate::lab::Lab;
use crate::probe::{self, RouteKind};

/// A device's BGP sessions: BIRD protocol name (nodes) or peer address (routers), and
/// the session state. A device that cannot be asked has none.
pub async fn sessions(lab: &Lab, device: &str) -> BTreeMap<String, String> {
    let is_node = lab.topology().nodes().any(|(_, n)| n.name == device);
    if is_node {
        lab.bird_protocols(device)
            .await
            .unwrap_or_default()
            .into_values()
            .filter(|r| r.is_bgp())
            .map(|r| {
                let state = r.info_state.clone().unwrap_or_else(|| r.state.clone());
                (r.name, state)
            })
            .collect()
    } else {
        lab.router_sessions(device)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(peer, state)| (peer.to_string(), state))
            .collect()
    }
}

/// A kernel route as the scenarios compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub blackhole: bool,
    pub gateways: BTreeSet<Ipv4Addr>,
}

/// The device's IPv4 kernel routes by destination (`ip -j -4 route`).
pub async fn routes(lab: &Lab, device: &str) -> Result<BTreeMap<String, Route>, String> {
    let out = lab
        .exec(device, &["ip", "-j", "-4", "route"])
        .await
        .map_err(|e| e.to_string())?;
    let routes = probe::parse_ip_routes(&out.stdout).map_err(|e| e.to_string())?;
    Ok(routes
        .into_iter()
        .map(|r| {
            let route = Route {
                blackhole: r.kind == RouteKind::Blackhole,
                gateways: r.gateways.iter().copied().collect(),
            };
            (r.dst, route)
        })
        .collect())
}

/// One ping between pods, judged exactly: every packet answered.
pub struct Ping {
    pub ok: bool,
    pub summary: String,
    pub text: String,
}

pub async fn ping(lab: &Lab, from: &Pod, to: &Pod) -> Ping {
    let ip = to.ip.to_string();
    let cmd = ["ping", "-c", "3", "-i", "0.2", "-W", "1", ip.as_str()];
    let text = match lab.pod_exec(&from.name, &cmd).await {
        Ok(out) => format!("{}{}", out.stdout, out.stderr),
        Err(e) => {
            return Ping {
                ok: false,
                summary: e.to_string(),
                text: String::new(),
            }
        }
    };
    match probe::parse_ping(&text) {
        Ok(r) => Ping {
            ok: r.all_received(),
            summary: format!("{}/{} received", r.received, r.sent),
            text,
        },
        Err(e) => Ping {
            ok: false,
            summary: e.to_string(),
            text,
        },
    }
}

/// Every pod pings every other pod once; one exec per source pod.
pub async fn ping_all(lab: &Lab) -> BTreeMap<(String, String), bool> {
    let pods = lab.pods();
    let mut out = BTreeMap::new();
    for a in pods {
        let targets: Vec<&Pod> = pods.iter().filter(|b| b.name != a.name).collect();
        let script: String = targets
            .iter()
            .map(|b| format!("echo '@@ {}'; ping -c 1 -W 1 {} 2>&1; ", b.name, b.ip))
            .collect();
        let text = lab
            .pod_exec(&a.name, &["sh", "-c", &script])
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        for chunk in text.split("@@ ").skip(1) {
            let (name, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let ok = probe::parse_ping(body).is_ok_and(|r| r.all_received());
            out.insert((a.name.clone(), name.trim().to_string()), ok);
        }
    }
    out
}

/// The hop addresses traceroute shows from one pod to another (`None`: no answer).
pub async fn trace(lab: &Lab, from: &Pod, to: &Pod) -> Vec<Option<Ipv4Addr>> {
    let ip = to.ip.to_string();
    let cmd = [
        "traceroute",
        "-n",
        "-w",
        "1",
        "-q",
        "1",
        "-m",
        "10",
        ip.as_str(),
    ];
    let Ok(out) = lab.pod_exec(&from.name, &cmd).await else {
        return Vec::new();
    };
    probe::parse_traceroute(&out.stdout)
        .map(|hops| hops.into_iter().map(|h| h.address).collect())
        .unwrap_or_default()
}

/// The peers a router has a BGP path for `prefix` from.
pub async fn bgp_paths_from(lab: &Lab, router: &str, prefix: &Ipv4Net) -> BTreeSet<Ipv4Addr> {
    let Ok(out) = lab
        .exec(router, &["vtysh", "-c", "show bgp ipv4 unicast json"])
        .await
    else {
        return BTreeSet::new();
    };
    let Ok(table) = probe::parse_bgp_table(&out.stdout) else {
        return BTreeSet::new();
    };
    table
        .paths(prefix)
        .iter()
        .filter_map(|p| match p.peer_id {
            Some(std::net::IpAddr::V4(ip)) => Some(ip),
            _ => None,
        })
        .collect()
}

/// The first broken link of the control plane, in the order traffic depends on it:
/// sessions, then routes on leafs, spines and nodes. `None` when all hold.
pub async fn diagnose(lab: &Lab) -> Option<String> {
    if let Err(f) = super::bgp_neighbors_match_topology(lab).await {
        return Some(f.diagnosis);
    }
    if let Err(f) = super::routes_match_topology(lab).await {
        return Some(f.diagnosis);
    }
    None
}
