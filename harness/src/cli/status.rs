//! `calico-lab status`: members and their states, each node's BGP table as
//! `calicoctl node status` prints it, each router's sessions, what is missing. A
//! member that does not answer is shown as such; the rest are still shown.

use std::process::ExitCode;

use calico_lab::backend::Target;
use calico_lab::check::{self, Strictness};
use calico_lab::diagnosis::Diagnosis;
use calico_lab::observe::Snapshot;
use calico_lab::{expect, probe, Lab};
use serde_json::json;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let lab = args.lab.attach().await?;
    let (text, value) = status(&lab).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(lab: &Lab) -> anyhow::Result<(String, serde_json::Value)> {
    let t = lab.topology();
    let mut text = format!("lab {} (topology {})\n", lab.name(), t.name);
    let mut members = Vec::new();
    for (m, state) in lab.member_states().await? {
        text += &format!(
            "  {:<36} {:<30} {:<7} {state}\n",
            m.container,
            m.device,
            m.role.as_str()
        );
        members.push(json!({"device": m.device, "container": m.container, "role": m.role.as_str(), "state": state}));
    }
    let mut nodes = serde_json::Map::new();
    for (_, node) in t.nodes() {
        let out = lab.birdc(&node.name, &["show", "protocols"]).await;
        let rows = match out.map(|o| probe::parse_show_protocols(&o.stdout)) {
            Ok(Ok(table)) => table.rows,
            Ok(Err(e)) => {
                text += &format!("\n{}: BIRD's answer is unreadable: {e}\n", node.name);
                nodes.insert(node.name.clone(), json!({"error": e.to_string()}));
                continue;
            }
            Err(e) => {
                text += &format!("\n{}: calico-node does not answer: {e}\n", node.name);
                nodes.insert(node.name.clone(), json!({"error": e.to_string()}));
                continue;
            }
        };
        let peers = probe::node_status(&rows);
        text += &format!(
            "\n{} (calicoctl node status):\n{}",
            node.name,
            probe::render_table(&peers)
        );
        nodes.insert(node.name.clone(), json!(peers.iter().map(|p| json!({
            "peer_address": p.address_cell(), "peer_type": p.peer_type.as_str(), "state": p.state, "since": p.since, "info": p.info
        })).collect::<Vec<_>>()));
    }
    let mut routers = serde_json::Map::new();
    for (_, router) in t.routers() {
        let target = Target::Router(router.name.clone());
        let out = lab
            .exec(&target, &["vtysh", "-c", "show bgp summary json"])
            .await;
        let summary = match out.map(|o| probe::parse_bgp_summary(&o.stdout)) {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                text += &format!(
                    "\n{} (AS {}): unreadable answer: {e}\n",
                    router.name, router.asn
                );
                routers.insert(router.name.clone(), json!({"error": e.to_string()}));
                continue;
            }
            Err(e) => {
                text += &format!(
                    "\n{} (AS {}): does not answer: {e}\n",
                    router.name, router.asn
                );
                routers.insert(router.name.clone(), json!({"error": e.to_string()}));
                continue;
            }
        };
        text += &format!("\n{} (AS {}):\n", router.name, router.asn);
        let mut list = Vec::new();
        for peer in summary.peers.values() {
            text += &format!(
                "  {:<16} {:<12} received {:>4} sent {:>4}\n",
                peer.address,
                peer.state,
                peer.pfx_rcd.unwrap_or(0),
                peer.pfx_snt.unwrap_or(0)
            );
            list.push(json!({"peer": peer.address, "state": peer.state, "prefixes_received": peer.pfx_rcd, "prefixes_sent": peer.pfx_snt}));
        }
        routers.insert(router.name.clone(), json!(list));
    }
    let missing = missing_sessions(lab, &lab.snapshot().await);
    text += &format!(
        "\nmissing sessions: {}\n",
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        }
    );
    let value = json!({"lab": lab.name(), "topology": t.name, "members": members, "nodes": nodes, "routers": routers, "missing": missing});
    Ok((text, value))
}

/// Every expected session not Established, as `device: session (peer)`; a device
/// that does not answer has all its sessions missing.
fn missing_sessions(lab: &Lab, snapshot: &Snapshot) -> Vec<String> {
    let t = lab.topology();
    let expected = expect::sessions(t, lab.calico());
    let mut out = Vec::new();
    for d in check::sessions(t, &expected, &snapshot.sessions, Strictness::Converged) {
        match d {
            Diagnosis::NoSession {
                device,
                session,
                peer,
                state,
            } => {
                let is_node = t.nodes().any(|(_, n)| n.name == device);
                let state = state.unwrap_or_else(|| "absent".into());
                out.push(match (is_node, peer) {
                    (false, Some(peer)) => format!("{device}: {session} ({peer}) {state}"),
                    _ => format!("{device}: {session} {state}"),
                });
            }
            Diagnosis::ObservationFailed(e) => {
                for s in expected.get(&e.device).into_iter().flatten() {
                    out.push(format!(
                        "{}: {} (not answering)",
                        e.device,
                        check::session_id(s)
                    ));
                }
            }
            _ => {}
        }
    }
    out
}
