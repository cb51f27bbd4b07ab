//! Faults on a running lab: what each one runs on which member to break the fabric,
//! and what undoes it, derived from the topology (the lab runs them through its
//! backend, so every flavor whose members answer the same commands gets them).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Serialize;

use crate::backend::Target;
use crate::calico::bird::{CONFIG_DIR, CONTROL_SOCKET};
use crate::error::{Error, Result};
use crate::topology::Topology;

/// One way to break a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// A router stops: every one of its links loses carrier at once, as when it
    /// powers off (its peers see the sessions go at once).
    RouterDown { router: String },
    /// calico-node restarts on a node: BIRD dies without a word (SIGKILL), so peers
    /// keep its routes as graceful restart allows, and starts again.
    BirdDown { node: String },
    /// A link between two routers is cut at both ends.
    LinkDown { a: String, b: String },
    /// One BGP session is dropped without touching the link: TCP port 179 between
    /// `device` and `peer` is blocked in `device`.
    SessionBlocked { device: String, peer: Ipv4Addr },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::RouterDown { router } => write!(f, "router-down {router}"),
            Fault::BirdDown { node } => write!(f, "bird-down {node}"),
            Fault::LinkDown { a, b } => write!(f, "link-down {a} {b}"),
            Fault::SessionBlocked { device, peer } => write!(f, "session-blocked {device} {peer}"),
        }
    }
}

/// The words of a fault, as the CLI takes them: `router-down ROUTER`,
/// `bird-down NODE`, `link-down A B`, `session-blocked DEVICE PEER_IP`.
impl FromStr for Fault {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = || Error::InvalidOption {
            option: "fault",
            value: s.to_string(),
            expected:
                "router-down ROUTER, bird-down NODE, link-down A B, session-blocked DEVICE PEER_IP",
        };
        Ok(match words.as_slice() {
            ["router-down", router] => Fault::RouterDown {
                router: router.to_string(),
            },
            ["bird-down", node] => Fault::BirdDown {
                node: node.to_string(),
            },
            ["link-down", a, b] => Fault::LinkDown {
                a: a.to_string(),
                b: b.to_string(),
            },
            ["session-blocked", device, peer] => Fault::SessionBlocked {
                device: device.to_string(),
                peer: peer.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }
}

/// A command on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub target: Target,
    /// Run by `sh -c`.
    pub script: String,
    /// It starts a daemon that outlives it: run by the member itself
    /// ([`crate::backend::Backend::start_in`]).
    pub starts_daemon: bool,
}

/// What breaks the lab and what mends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    pub inject: Vec<Step>,
    pub restore: Vec<Step>,
}

fn step(target: Target, script: String) -> Step {
    Step {
        target,
        script,
        starts_daemon: false,
    }
}

/// `ip link set` of each interface, in one batch.
fn links(interfaces: &[String], state: &str) -> String {
    interfaces
        .iter()
        .map(|i| format!("ip link set {i} {state}"))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The iptables rules that drop TCP 179 to and from `peer`.
fn bgp_rules(peer: Ipv4Addr) -> [String; 4] {
    [
        format!("INPUT -p tcp -s {peer} --dport 179 -j DROP"),
        format!("INPUT -p tcp -s {peer} --sport 179 -j DROP"),
        format!("OUTPUT -p tcp -d {peer} --dport 179 -j DROP"),
        format!("OUTPUT -p tcp -d {peer} --sport 179 -j DROP"),
    ]
}

/// Adds each rule once (injecting twice does not stack them).
fn block(peer: Ipv4Addr) -> String {
    bgp_rules(peer)
        .iter()
        .map(|r| format!("{{ iptables -C {r} 2>/dev/null || iptables -I {r}; }}"))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Removes every copy of each rule.
fn unblock(peer: Ipv4Addr) -> String {
    bgp_rules(peer)
        .iter()
        .map(|r| format!("while iptables -C {r} 2>/dev/null; do iptables -D {r} || exit 1; done"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Fault {
    /// The commands that inject and undo this fault on a lab of `t`; a device,
    /// link or address the topology does not have is an error.
    pub fn plan(&self, t: &Topology) -> Result<FaultPlan> {
        let unknown = |what: &'static str, name: String| Error::NoSuchTarget {
            lab: t.name.clone(),
            what,
            name,
        };
        Ok(match self {
            Fault::RouterDown { router } => {
                t.router(router)
                    .ok_or_else(|| unknown("router", router.clone()))?;
                let names: Vec<String> = t.interfaces(router).into_iter().map(|i| i.name).collect();
                if names.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "router-down {router}: {router} has no link to take down"
                    )));
                }
                let target = Target::Router(router.clone());
                FaultPlan {
                    inject: vec![step(target.clone(), links(&names, "down"))],
                    restore: vec![step(target, links(&names, "up"))],
                }
            }
            Fault::BirdDown { node } => {
                if !t.nodes().any(|(_, n)| &n.name == node) {
                    return Err(unknown("node", node.clone()));
                }
                let target = Target::CalicoNode(node.clone());
                // A killed BIRD may stay a zombie a while (the member's first process
                // reaps only while it runs a script): wait for its socket to stop
                // answering, not for the process.
                // pkill exits 1 when no BIRD runs: then there is nothing to kill.
                let stop = format!(
                    "pkill -KILL -x bird || exit 1; client=$(command -v birdcl || command -v birdc) || exit 127; for i in $(seq 100); do \"$client\" -s {CONTROL_SOCKET} show status >/dev/null 2>&1 || exit 0; sleep 0.05; done; exit 1"
                );
                let start = format!("cd {CONFIG_DIR} && bird -c bird.cfg -s {CONTROL_SOCKET}");
                FaultPlan {
                    inject: vec![step(target.clone(), stop)],
                    restore: vec![Step {
                        starts_daemon: true,
                        ..step(target, start)
                    }],
                }
            }
            Fault::LinkDown { a, b } => {
                let link = t
                    .links
                    .iter()
                    .find(|l| {
                        let [x, y] = &l.endpoints;
                        (&x.device == a && &y.device == b) || (&x.device == b && &y.device == a)
                    })
                    .ok_or_else(|| unknown("link", format!("{a} - {b}")))?;
                let (mut inject, mut restore) = (Vec::new(), Vec::new());
                for end in &link.endpoints {
                    let target = Target::Router(end.device.clone());
                    let name = std::slice::from_ref(&end.interface);
                    inject.push(step(target.clone(), links(name, "down")));
                    restore.push(step(target, links(name, "up")));
                }
                FaultPlan { inject, restore }
            }
            Fault::SessionBlocked { device, peer } => {
                // Only a session the device can have: anything else would block nothing.
                let (target, peers): (Target, Vec<Ipv4Addr>) = if t.router(device).is_some() {
                    let peers = t.bgp_neighbors(device).iter().map(|n| n.address).collect();
                    (Target::Router(device.clone()), peers)
                } else if let Some((rack, _)) = t.nodes().find(|(_, n)| &n.name == device) {
                    // calico-node peers with its BGPPeers and, in a mesh, every node.
                    let mut peers: Vec<Ipv4Addr> =
                        t.calico.bgp_peers.iter().map(|p| p.peer_ip).collect();
                    peers.push(rack.gateway);
                    peers.extend(t.nodes().map(|(_, n)| n.address));
                    (Target::Node(device.clone()), peers)
                } else {
                    return Err(unknown("device", device.clone()));
                };
                if !peers.contains(peer) {
                    return Err(unknown("BGP peer", format!("{peer} (of {device})")));
                }
                FaultPlan {
                    inject: vec![step(target.clone(), block(*peer))],
                    restore: vec![step(target, unblock(*peer))],
                }
            }
        })
    }
}

impl Fault {
    /// The fabric as it stands while a router or link fault is in force: the
    /// topology without that router (and its links) or that link, from which the
    /// routes the survivors must hold are derived. `None` for other faults.
    pub fn degraded(&self, t: &Topology) -> Option<Topology> {
        let mut d = t.clone();
        match self {
            Fault::RouterDown { router } if t.spines.iter().any(|s| &s.name == router) => {
                d.spines.retain(|s| &s.name != router);
                d.links
                    .retain(|l| l.endpoints.iter().all(|e| &e.device != router));
            }
            Fault::LinkDown { a, b } => d.links.retain(|l| {
                let [x, y] = &l.endpoints;
                !((&x.device == a && &y.device == b) || (&x.device == b && &y.device == a))
            }),
            _ => return None,
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Topology {
        Topology::seed()
    }

    #[test]
    fn faults_read_as_the_cli_writes_them() {
        for text in [
            "router-down spine0",
            "bird-down calico-bgp-rr-worker",
            "link-down leaf0 spine1",
            "session-blocked leaf0 10.1.5.10",
        ] {
            assert_eq!(text.parse::<Fault>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "router-down",
            "explode spine0",
            "session-blocked leaf0 nowhere",
        ] {
            assert_eq!(bad.parse::<Fault>().unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn a_router_down_takes_every_link_of_it_down_and_back() {
        let plan = Fault::RouterDown {
            router: "leaf0".into(),
        }
        .plan(&seed())
        .unwrap();
        assert_eq!(plan.inject[0].target, Target::Router("leaf0".into()));
        assert_eq!(
            plan.inject[0].script,
            "ip link set eth1 down && ip link set eth2 down && ip link set eth3 down"
        );
        assert_eq!(plan.restore[0].script.matches(" up").count(), 3);
    }

    #[test]
    fn a_link_is_cut_at_both_ends_whichever_way_it_is_named() {
        let t = seed();
        let one = Fault::LinkDown {
            a: "leaf0".into(),
            b: "spine1".into(),
        }
        .plan(&t)
        .unwrap();
        let other = Fault::LinkDown {
            a: "spine1".into(),
            b: "leaf0".into(),
        }
        .plan(&t)
        .unwrap();
        assert_eq!(one, other);
        let ends: Vec<_> = one
            .inject
            .iter()
            .map(|s| (s.target.clone(), s.script.clone()))
            .collect();
        assert_eq!(
            ends,
            [
                (
                    Target::Router("leaf0".into()),
                    "ip link set eth2 down".into()
                ),
                (
                    Target::Router("spine1".into()),
                    "ip link set eth1 down".into()
                ),
            ]
        );
    }

    #[test]
    fn a_session_is_blocked_on_tcp_179_only_and_unblocked_by_the_same_rules() {
        let plan = Fault::SessionBlocked {
            device: "leaf0".into(),
            peer: "10.1.5.10".parse().unwrap(),
        }
        .plan(&seed())
        .unwrap();
        let inject = &plan.inject[0].script;
        assert_eq!(inject.matches("iptables -I ").count(), 4);
        assert_eq!(inject.matches("iptables -C ").count(), 4, "never stacked");
        assert!(inject.contains("179") && inject.contains("10.1.5.10"));
        assert_eq!(plan.restore[0].script.matches("iptables -D ").count(), 4);
        // A peer the device has no session with would block nothing.
        let err = Fault::SessionBlocked {
            device: "leaf0".into(),
            peer: "10.9.9.9".parse().unwrap(),
        }
        .plan(&seed())
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    #[test]
    fn the_degraded_fabric_lacks_exactly_the_broken_part() {
        let t = seed();
        let d = Fault::RouterDown {
            router: "spine0".into(),
        }
        .degraded(&t)
        .unwrap();
        assert_eq!(d.spines.len(), 1);
        assert_eq!(d.links.len(), 2);
        assert!(d
            .links
            .iter()
            .all(|l| l.endpoints.iter().all(|e| e.device != "spine0")));
        let d = Fault::LinkDown {
            a: "spine1".into(),
            b: "leaf0".into(),
        }
        .degraded(&t)
        .unwrap();
        assert_eq!((d.spines.len(), d.links.len()), (2, 3));
        assert!(Fault::RouterDown {
            router: "leaf0".into()
        }
        .degraded(&t)
        .is_none());
    }

    #[test]
    fn what_the_topology_lacks_is_refused() {
        let t = seed();
        for fault in [
            Fault::RouterDown {
                router: "spine9".into(),
            },
            Fault::BirdDown {
                node: "leaf0".into(),
            },
            Fault::LinkDown {
                a: "leaf0".into(),
                b: "leaf1".into(),
            },
            Fault::SessionBlocked {
                device: "nobody".into(),
                peer: "10.1.5.10".parse().unwrap(),
            },
        ] {
            let err = fault.plan(&t).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{fault}: {err}");
        }
    }
}
