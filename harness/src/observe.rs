//! Reads a lab's state through its backend into typed values: sessions, kernel
//! routes, BGP tables, pings and traceroutes. A command that cannot run, fails or
//! prints what its parser cannot read is an [`ObservationError`], never an empty
//! result.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::backend::{ExecOutput, Pod, Target};
use crate::lab::{birdc, Lab};
use crate::probe::{self, BgpTable, PingResult, RouteKind};

/// Why a device could not be observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{target}: `{command}`: {problem}")]
pub struct ObservationError {
    /// The device (or pod) asked.
    pub device: String,
    /// How it was asked (`router leaf0`, `calico-node on worker`).
    pub target: String,
    pub command: String,
    pub problem: String,
}

pub type Observed<T> = Result<T, ObservationError>;

/// A device's BGP sessions: BIRD protocol name (nodes) or peer address (routers), and
/// the state it reports (`Established`, `Idle`, `Active`, ...).
pub type Sessions = BTreeMap<String, String>;

/// A kernel route as the checks compare it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub blackhole: bool,
    pub gateways: BTreeSet<Ipv4Addr>,
}

/// A device's IPv4 kernel routes by destination (`10.244.0.0/26`, `default`).
pub type Routes = BTreeMap<String, Route>;

/// What every device showed at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub sessions: BTreeMap<String, Observed<Sessions>>,
    pub routes: BTreeMap<String, Observed<Routes>>,
}

/// Runs `cmd` on `target`; an exec that fails or exits non-zero is an error.
async fn run(lab: &Lab, target: &Target, cmd: &[&str]) -> Observed<ExecOutput> {
    checked(target, cmd, lab.exec(target, cmd).await)
}

/// An exec's result as an observation: failing or exiting non-zero is an error.
fn checked(
    target: &Target,
    cmd: &[&str],
    out: crate::error::Result<ExecOutput>,
) -> Observed<ExecOutput> {
    let error = |problem: String| ObservationError {
        device: target.name().to_string(),
        target: target.to_string(),
        command: cmd.join(" "),
        problem,
    };
    let out = out.map_err(|e| error(e.to_string()))?;
    if out.success() {
        Ok(out)
    } else {
        Err(error(format!(
            "exited {}: {}{}",
            out.exit_code,
            out.stdout.trim(),
            out.stderr.trim()
        )))
    }
}

fn unreadable(target: &Target, cmd: &[&str], e: impl std::fmt::Display) -> ObservationError {
    ObservationError {
        device: target.name().to_string(),
        target: target.to_string(),
        command: cmd.join(" "),
        problem: format!("unreadable output: {e}"),
    }
}

/// What is asked of a device, and how its answer is read.
struct Question {
    target: Target,
    cmd: Vec<&'static str>,
}

impl Question {
    fn argv(&self) -> Vec<String> {
        self.cmd.iter().map(|s| s.to_string()).collect()
    }
}

/// How a device's sessions are asked for: BIRD's protocols on a node, FRR's
/// summary on a router.
fn sessions_question(lab: &Lab, device: &str) -> Question {
    if lab.topology().nodes().any(|(_, n)| n.name == device) {
        Question {
            target: Target::CalicoNode(device.to_string()),
            cmd: birdc(&["show", "protocols"]),
        }
    } else {
        Question {
            target: Target::Router(device.to_string()),
            cmd: vec!["vtysh", "-c", "show bgp summary json"],
        }
    }
}

fn read_sessions(q: &Question, out: crate::error::Result<ExecOutput>) -> Observed<Sessions> {
    let out = checked(&q.target, &q.cmd, out)?;
    let unreadable = |e: String| unreadable(&q.target, &q.cmd, e);
    if matches!(q.target, Target::CalicoNode(_)) {
        let table =
            probe::parse_show_protocols(&out.stdout).map_err(|e| unreadable(e.to_string()))?;
        Ok(table
            .rows
            .into_iter()
            .filter(|r| r.is_bgp())
            .map(|r| {
                let state = r.info_state.clone().unwrap_or_else(|| r.state.clone());
                (r.name, state)
            })
            .collect())
    } else {
        let summary =
            probe::parse_bgp_summary(&out.stdout).map_err(|e| unreadable(e.to_string()))?;
        Ok(summary
            .peers
            .into_values()
            .map(|p| (p.address, p.state))
            .collect())
    }
}

/// How a device's IPv4 kernel routes are asked for (`ip -j -4 route`).
fn routes_question(lab: &Lab, device: &str) -> Question {
    let target = if lab.topology().router(device).is_some() {
        Target::Router(device.to_string())
    } else {
        Target::Node(device.to_string())
    };
    Question {
        target,
        cmd: vec!["ip", "-j", "-4", "route"],
    }
}

fn read_routes(q: &Question, out: crate::error::Result<ExecOutput>) -> Observed<Routes> {
    let out = checked(&q.target, &q.cmd, out)?;
    let routes =
        probe::parse_ip_routes(&out.stdout).map_err(|e| unreadable(&q.target, &q.cmd, e))?;
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

/// The BGP sessions a node's BIRD or a router's FRR reports.
pub async fn sessions(lab: &Lab, device: &str) -> Observed<Sessions> {
    let q = sessions_question(lab, device);
    read_sessions(&q, lab.exec(&q.target, &q.cmd).await)
}

/// The device's IPv4 kernel routes (`ip -j -4 route`).
pub async fn routes(lab: &Lab, device: &str) -> Observed<Routes> {
    let q = routes_question(lab, device);
    read_routes(&q, lab.exec(&q.target, &q.cmd).await)
}

/// A router's BGP table (`show bgp ipv4 unicast json`).
pub async fn bgp_table(lab: &Lab, router: &str) -> Observed<BgpTable> {
    let target = Target::Router(router.to_string());
    let cmd = ["vtysh", "-c", "show bgp ipv4 unicast json"];
    let out = run(lab, &target, &cmd).await?;
    probe::parse_bgp_table(&out.stdout).map_err(|e| unreadable(&target, &cmd, e))
}

/// Every device's sessions and routes, read concurrently.
pub async fn snapshot(lab: &Lab) -> Snapshot {
    let t = lab.topology();
    let devices: Vec<String> = t
        .routers()
        .map(|(_, r)| r.name.clone())
        .chain(t.nodes().map(|(_, n)| n.name.clone()))
        .collect();
    snapshot_of(lab, devices).await
}

/// These devices' sessions and routes, read at once (one batch where the flavor
/// can).
pub async fn snapshot_of(lab: &Lab, devices: Vec<String>) -> Snapshot {
    let questions: Vec<(Question, Question)> = devices
        .iter()
        .map(|d| (sessions_question(lab, d), routes_question(lab, d)))
        .collect();
    let commands: Vec<(Target, Vec<String>)> = questions
        .iter()
        .flat_map(|(s, r)| [(s.target.clone(), s.argv()), (r.target.clone(), r.argv())])
        .collect();
    let mut answers = lab.exec_all(&commands).await.into_iter();
    let mut snapshot = Snapshot::default();
    for (device, (s, r)) in devices.into_iter().zip(&questions) {
        let lost = || {
            Err(crate::Error::Lab {
                lab: lab.name().to_string(),
                message: "no answer from the batch".into(),
            })
        };
        let (a, b) = (
            answers.next().unwrap_or_else(lost),
            answers.next().unwrap_or_else(lost),
        );
        snapshot
            .sessions
            .insert(device.clone(), read_sessions(s, a));
        snapshot.routes.insert(device, read_routes(r, b));
    }
    snapshot
}

/// The ping command from one pod to another on `lab`: three, 50 ms apart where
/// the pods are the harness's own namespaces (root); 200 ms, the shortest ping
/// allows any other user, in a kind pod whose image may not run as root.
fn ping_command(lab: &Lab) -> impl Fn(&Pod) -> Vec<String> {
    let interval = match lab.flavor().nodes {
        crate::backend::NodeKind::Emulated => "0.05",
        crate::backend::NodeKind::Kind => "0.2",
    };
    move |to: &Pod| {
        let ip = to.ip.to_string();
        ["ping", "-c", "3", "-i", interval, "-W", "1", ip.as_str()]
            .map(String::from)
            .to_vec()
    }
}

/// A ping's answer read: loss is a result, not an error; a ping that cannot run
/// or prints nothing readable is an error.
fn read_ping(
    from: &Pod,
    cmd: &[String],
    out: crate::error::Result<ExecOutput>,
) -> Observed<(PingResult, String)> {
    let target = Target::Pod(from.name.clone());
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = out.map_err(|e| ObservationError {
        device: from.name.clone(),
        target: target.to_string(),
        command: cmd.join(" "),
        problem: e.to_string(),
    })?;
    let text = format!("{}{}", out.stdout, out.stderr);
    let result = probe::parse_ping(&text).map_err(|e| unreadable(&target, &cmd, e))?;
    Ok((result, text))
}

/// Three pings from one pod to another, with ping's own output.
pub async fn ping(lab: &Lab, from: &Pod, to: &Pod) -> Observed<(PingResult, String)> {
    one_pair(lab, from, to, ping_command(lab), read_ping).await
}

/// [`ping`] for every pair, in order: a bounded group at once, each group one
/// batch where the flavor can.
pub async fn pings(lab: &Lab, pairs: &[(Pod, Pod)]) -> Vec<Observed<(PingResult, String)>> {
    per_pair(lab, pairs, ping_command(lab), read_ping).await
}

/// One command from `from` to `to`, as one exec; its answer read.
async fn one_pair<T>(
    lab: &Lab,
    from: &Pod,
    to: &Pod,
    command: impl Fn(&Pod) -> Vec<String>,
    read: impl Fn(&Pod, &[String], crate::error::Result<ExecOutput>) -> Observed<T>,
) -> Observed<T> {
    let cmd = command(to);
    let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = lab.exec(&Target::Pod(from.name.clone()), &argv).await;
    read(from, &cmd, out)
}

/// One command per pair from its first pod to its second, in groups run at once (four times
/// [`parallelism`](crate::backend::parallelism): probes mostly wait for replies);
/// each answer read.
async fn per_pair<T>(
    lab: &Lab,
    pairs: &[(Pod, Pod)],
    command: impl Fn(&Pod) -> Vec<String>,
    read: impl Fn(&Pod, &[String], crate::error::Result<ExecOutput>) -> Observed<T>,
) -> Vec<Observed<T>> {
    let mut out = Vec::with_capacity(pairs.len());
    for group in pairs.chunks(crate::backend::parallelism() * 4) {
        let commands: Vec<(Target, Vec<String>)> = group
            .iter()
            .map(|(a, b)| (Target::Pod(a.name.clone()), command(b)))
            .collect();
        let answers = lab.exec_all(&commands).await;
        for (((a, _), (_, cmd)), answer) in group.iter().zip(&commands).zip(answers) {
            out.push(read(a, cmd, answer));
        }
    }
    out
}

/// Each pair's first pod pings its second once; `true` where the reply came. One
/// command per source pod, all of them at once (one batch where the flavor can).
pub async fn ping_pairs(
    lab: &Lab,
    pairs: &[(Pod, Pod)],
) -> Observed<BTreeMap<(String, String), bool>> {
    let mut by_source: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for (a, b) in pairs {
        by_source.entry(a.name.as_str()).or_default().push(b);
    }
    let commands: Vec<(Target, Vec<String>)> = by_source
        .iter()
        .map(|(a, targets)| {
            let script: String = targets
                .iter()
                .map(|b| format!("echo '@@ {}'; ping -c 1 -W 1 {} 2>&1; ", b.name, b.ip))
                .collect();
            (
                Target::Pod(a.to_string()),
                vec!["sh".into(), "-c".into(), script],
            )
        })
        .collect();
    let answers = lab.exec_all(&commands).await;
    let mut out = BTreeMap::new();
    for (((a, targets), (target, _)), answer) in by_source.iter().zip(&commands).zip(answers) {
        let text = answer
            .map_err(|e| ObservationError {
                device: a.to_string(),
                target: target.to_string(),
                command: "ping its pair(s)".into(),
                problem: e.to_string(),
            })?
            .stdout;
        for chunk in text.split("@@ ").skip(1) {
            let (name, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let ok = probe::parse_ping(body).is_ok_and(|r| r.all_received());
            out.insert((a.to_string(), name.trim().to_string()), ok);
        }
        for b in targets {
            if !out.contains_key(&(a.to_string(), b.name.clone())) {
                return Err(unreadable(
                    target,
                    &["ping", &b.ip.to_string()],
                    "no result",
                ));
            }
        }
    }
    Ok(out)
}

/// The traceroute command from one pod to another.
fn traceroute_command(to: &Pod) -> Vec<String> {
    let ip = to.ip.to_string();
    [
        "traceroute",
        "-n",
        "-w",
        "1",
        "-q",
        "1",
        "-m",
        "10",
        ip.as_str(),
    ]
    .map(String::from)
    .to_vec()
}

/// A traceroute's answer read: failing, exiting non-zero or printing what the
/// parser cannot read is an error.
fn read_traceroute(
    from: &Pod,
    cmd: &[String],
    out: crate::error::Result<ExecOutput>,
) -> Observed<Vec<Option<Ipv4Addr>>> {
    let target = Target::Pod(from.name.clone());
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = checked(&target, &cmd, out)?;
    let hops = probe::parse_traceroute(&out.stdout).map_err(|e| unreadable(&target, &cmd, e))?;
    Ok(hops.into_iter().map(|h| h.address).collect())
}

/// The hop addresses traceroute shows from one pod to another (`None`: no answer).
pub async fn traceroute(lab: &Lab, from: &Pod, to: &Pod) -> Observed<Vec<Option<Ipv4Addr>>> {
    one_pair(lab, from, to, traceroute_command, read_traceroute).await
}

/// [`traceroute`] for every pair, in order, as [`pings`] runs them.
pub async fn traceroutes(lab: &Lab, pairs: &[(Pod, Pod)]) -> Vec<Observed<Vec<Option<Ipv4Addr>>>> {
    per_pair(lab, pairs, traceroute_command, read_traceroute).await
}

/// A route's attributes as an upgrade compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouteAttributes {
    /// Where the route goes (BGP next hops on routers, gateways on nodes).
    pub next_hops: Vec<String>,
    pub as_path: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// The kernel route's metric (nodes).
    pub metric: Option<u32>,
}

/// Every device's routes with their attributes: the installed BGP paths of routers,
/// the kernel routes of nodes, by destination.
pub type RoutingState = BTreeMap<String, BTreeMap<String, Vec<RouteAttributes>>>;

/// Reads every device's routes with their attributes.
pub async fn routing_state(lab: &Lab) -> Observed<RoutingState> {
    let t = lab.topology();
    let mut out = RoutingState::new();
    for (_, router) in t.routers() {
        let table = bgp_table(lab, &router.name).await?;
        let routes = table
            .routes
            .iter()
            .map(|(prefix, paths)| {
                let mut installed: Vec<RouteAttributes> = paths
                    .iter()
                    .filter(|p| p.is_installed())
                    .map(|p| RouteAttributes {
                        next_hops: p.next_hops.iter().map(|h| h.ip.to_string()).collect(),
                        as_path: p.as_path.clone(),
                        local_pref: p.local_pref,
                        med: p.metric,
                        metric: None,
                    })
                    .collect();
                installed.sort();
                (prefix.to_string(), installed)
            })
            .collect();
        out.insert(router.name.clone(), routes);
    }
    for (_, node) in t.nodes() {
        let target = Target::Node(node.name.clone());
        let cmd = ["ip", "-j", "-4", "route"];
        let text = run(lab, &target, &cmd).await?;
        let routes =
            probe::parse_ip_routes(&text.stdout).map_err(|e| unreadable(&target, &cmd, e))?;
        let routes = routes
            .into_iter()
            .map(|r| {
                let attributes = RouteAttributes {
                    next_hops: r.gateways.iter().map(|g| g.to_string()).collect(),
                    as_path: String::new(),
                    local_pref: None,
                    med: None,
                    metric: r.metric,
                };
                (r.dst, vec![attributes])
            })
            .collect();
        out.insert(node.name.clone(), routes);
    }
    Ok(out)
}
