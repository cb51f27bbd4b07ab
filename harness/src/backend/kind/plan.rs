//! The kind flavor's bring-up as data: every step in the seed's order, derived from
//! the topology, so that the real run and `--dry-run` walk the same list.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::manifest::ManifestSource;
use super::objects;
use crate::backend::RouterKind;
use crate::render::{frr_conf, kind_config, vyos_config_boot};
use crate::topology::{NodeRole, Topology};
use crate::wiring::{WiringPlan, FABRIC_DEVICE};

/// The taint kubeadm puts on control-plane nodes; the seed removes it so pods run
/// on every node.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// What the plan is derived from besides the topology.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lab: String,
    pub routers: RouterKind,
    pub router_image: String,
    /// The harness's own image: it holds the rack bridges and runs the wiring.
    pub helper_image: String,
    pub manifest: ManifestSource,
    /// Where the kind config and the lab's kubeconfig live.
    pub state_dir: PathBuf,
}

impl Settings {
    pub fn kubeconfig(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }

    pub fn kind_config_path(&self) -> PathBuf {
        self.state_dir.join("kind.yaml")
    }

    /// A member's container name: `<lab>-<device>` (kind names its node containers
    /// after the nodes themselves).
    pub fn container(&self, device: &str) -> String {
        format!("{}-{device}", self.lab)
    }

    /// The container holding a VyOS router's network namespace: VyOS applies its
    /// `config.boot` at boot, so its interfaces must exist before it starts.
    pub fn netns_holder(&self, router: &str) -> String {
        format!("{}-{router}-netns", self.lab)
    }
}

/// A file written into a container before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub contents: String,
}

/// A router or helper container of the kind flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub device: String,
    pub name: String,
    pub image: String,
    /// `None`: the image's own command.
    pub cmd: Option<Vec<String>>,
    /// VyOS runs systemd and loads kernel modules: it needs a privileged container.
    pub privileged: bool,
    pub binds: Vec<String>,
    pub files: Vec<File>,
    /// Joins this container's network namespace (a VyOS router joins the holder
    /// the wiring put its interfaces in, so it boots with them present).
    pub network_of: Option<String>,
}

/// What a step waits for, with its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Each router's running configuration holds `router bgp <asn>`: its boot
    /// configuration is committed (VyOS answers the CLI before that).
    RoutersConfigured(Vec<(String, u32)>),
    /// The Kubernetes API answers and every node is registered.
    NodesRegistered(Vec<String>),
    /// These CustomResourceDefinitions are Established.
    CrdsEstablished(Vec<String>),
    /// A DaemonSet or Deployment rolled out (kubectl's rollout status logic).
    Rollout {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// These pods are Running with an address.
    PodsRunning {
        namespace: String,
        names: Vec<String>,
    },
    NodesReady(Vec<String>),
}

/// One step of bring-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create and start a container (files written before it starts).
    Container(ContainerPlan),
    /// Run the `kind` binary.
    Kind {
        args: Vec<String>,
        /// A file the command reads, written first.
        writes: Option<(PathBuf, String)>,
    },
    /// The shared wiring plan: veths, rack bridges, addresses, default routes.
    Wire(WiringPlan),
    Untaint {
        node: String,
        key: String,
    },
    /// Lift the ICMP error limits in these node containers' namespace, as the
    /// emulated nodes are (every hop answers however many traceroutes run at once).
    IcmpUnlimited {
        nodes: Vec<String>,
    },
    /// Download the Calico manifest (once, cached, sha256 recorded) and patch it
    /// for the topology; it is applied later.
    FetchManifest(ManifestSource),
    /// Put the images of the patched manifest and `extra` into every node
    /// (pulled on the host where absent, then `kind load docker-image`): once wired,
    /// the nodes reach nothing outside the lab.
    LoadImages {
        extra: Vec<String>,
    },
    /// Server-side apply of the patched manifest.
    ApplyManifest,
    /// Server-side apply of these objects.
    Apply {
        what: String,
        objects: Vec<Value>,
    },
    Wait {
        what: Wait,
        budget: Duration,
    },
}

/// The whole bring-up of a kind lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// The Calico CRDs the harness writes to.
pub const CALICO_CRDS: &[&str] = &[
    "bgpconfigurations.crd.projectcalico.org",
    "bgppeers.crd.projectcalico.org",
    "ippools.crd.projectcalico.org",
];

impl Plan {
    /// Bring-up in the seed's order: cluster, routers, wiring, Calico, peers, pods.
    /// `calico` holds the Calico objects to apply once the CRDs exist (see
    /// [`objects::cluster_objects`]).
    pub fn new(t: &Topology, s: &Settings, calico: Vec<Value>) -> Plan {
        let mut steps = Vec::new();
        // The fabric container first: its name is the lab's claim (as on the
        // emulated flavor), so two runs never build one lab.
        steps.push(Step::Container(ContainerPlan {
            device: FABRIC_DEVICE.into(),
            name: s.container(FABRIC_DEVICE),
            image: s.helper_image.clone(),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            privileged: false,
            binds: vec![],
            files: vec![],
            network_of: None,
        }));
        steps.push(Step::FetchManifest(s.manifest.clone()));
        steps.push(Step::Kind {
            args: [
                "create",
                "cluster",
                "--name",
                &t.name,
                "--config",
                &s.kind_config_path().display().to_string(),
                "--kubeconfig",
                &s.kubeconfig().display().to_string(),
                "--wait",
                "0s",
            ]
            .map(String::from)
            .to_vec(),
            writes: Some((s.kind_config_path(), kind_config(t))),
        });
        let nodes: Vec<String> = t.nodes().map(|(_, n)| n.name.clone()).collect();
        steps.push(Step::Wait {
            what: Wait::NodesRegistered(nodes.clone()),
            budget: Duration::from_secs(120),
        });
        for node in t.nodes().filter(|(_, n)| n.role == NodeRole::ControlPlane) {
            steps.push(Step::Untaint {
                node: node.1.name.clone(),
                key: CONTROL_PLANE_TAINT.into(),
            });
        }
        steps.push(Step::LoadImages {
            extra: vec![t.kubernetes.pod_image.clone()],
        });
        steps.push(Step::IcmpUnlimited {
            nodes: t.nodes().map(|(_, n)| n.name.clone()).collect(),
        });
        let mut wiring = WiringPlan::new(t);
        match s.routers {
            RouterKind::Frr => {
                // FRR takes interfaces as they come: start it, then wire.
                for (_, router) in t.routers() {
                    steps.push(Step::Container(router_container(t, s, &router.name)));
                }
                steps.push(Step::Wire(wiring));
            }
            RouterKind::Vyos => {
                // Wire empty namespaces first; VyOS then boots inside them with
                // every interface present, and addresses and raises them itself.
                for (_, router) in t.routers() {
                    steps.push(Step::Container(ContainerPlan {
                        device: router.name.clone(),
                        name: s.netns_holder(&router.name),
                        image: s.helper_image.clone(),
                        cmd: Some(vec!["sleep".into(), "infinity".into()]),
                        privileged: false,
                        binds: vec![],
                        files: vec![],
                        network_of: None,
                    }));
                }
                wiring.setup.retain(|device, _| t.router(device).is_none());
                steps.push(Step::Wire(wiring));
                for (_, router) in t.routers() {
                    steps.push(Step::Container(router_container(t, s, &router.name)));
                }
            }
        }
        steps.push(Step::Wait {
            what: Wait::RoutersConfigured(
                t.routers().map(|(_, r)| (r.name.clone(), r.asn)).collect(),
            ),
            budget: Duration::from_secs(180),
        });
        steps.push(Step::ApplyManifest);
        steps.push(Step::Wait {
            what: Wait::CrdsEstablished(CALICO_CRDS.iter().map(|c| c.to_string()).collect()),
            budget: Duration::from_secs(120),
        });
        steps.push(Step::Apply {
            what: "the topology's Calico objects (as CRDs) and node annotations".into(),
            objects: calico,
        });
        steps.push(Step::Wait {
            what: Wait::Rollout {
                kind: "DaemonSet",
                namespace: "kube-system".into(),
                name: "calico-node".into(),
            },
            budget: Duration::from_secs(300),
        });
        steps.push(Step::Wait {
            what: Wait::NodesReady(nodes),
            budget: Duration::from_secs(180),
        });
        steps.push(Step::Apply {
            what: "test pods".into(),
            objects: objects::test_pods(t, &s.lab),
        });
        steps.push(Step::Wait {
            what: Wait::PodsRunning {
                namespace: objects::POD_NAMESPACE.into(),
                names: t.nodes().flat_map(|(_, n)| n.pod_names()).collect(),
            },
            budget: Duration::from_secs(180),
        });
        Plan { steps }
    }

    /// Every step as `--dry-run` prints it: commands, containers with their files,
    /// every object as YAML, every wait with its budget.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, step) in self.steps.iter().enumerate() {
            let _ = write!(out, "step {}: ", i + 1);
            out += &describe_step(step);
            out.push('\n');
        }
        out
    }
}

/// A router's container: VyOS boots `/sbin/init` on its rendered `config.boot`;
/// FRR runs the image's own start script on the rendered `frr.conf`.
fn router_container(t: &Topology, s: &Settings, router: &str) -> ContainerPlan {
    let (cmd, privileged, binds, files) = match s.routers {
        RouterKind::Vyos => (
            Some(vec!["/sbin/init".to_string()]),
            true,
            vec!["/lib/modules:/lib/modules:ro".to_string()],
            vec![File {
                path: "/opt/vyatta/etc/config/config.boot".into(),
                contents: vyos_config_boot(t, router),
            }],
        ),
        RouterKind::Frr => (
            None,
            false,
            vec![],
            vec![
                File {
                    path: "/etc/frr/frr.conf".into(),
                    contents: frr_conf(t, router),
                },
                File {
                    path: "/etc/frr/daemons".into(),
                    contents: crate::backend::image::FRR_DAEMONS.into(),
                },
            ],
        ),
    };
    ContainerPlan {
        device: router.into(),
        name: s.container(router),
        image: s.router_image.clone(),
        cmd,
        privileged,
        binds,
        files,
        network_of: (s.routers == RouterKind::Vyos).then(|| s.netns_holder(router)),
    }
}

fn describe_step(step: &Step) -> String {
    match step {
        Step::Container(c) => {
            let network = c
                .network_of
                .as_ref()
                .map_or_else(|| "network none".to_string(), |n| format!("network of {n}"));
            let mut out = format!(
                "create container {} (device {}, image {}, {network}, {}",
                c.name,
                c.device,
                c.image,
                if c.privileged {
                    "privileged"
                } else {
                    "NET_ADMIN, NET_RAW, SYS_ADMIN"
                }
            );
            match &c.cmd {
                Some(cmd) => {
                    let _ = write!(out, ", command {}", cmd.join(" "));
                }
                None => out += ", the image's command",
            }
            for bind in &c.binds {
                let _ = write!(out, ", bind {bind}");
            }
            out += ")";
            for f in &c.files {
                let _ = write!(
                    out,
                    "\n  write {} before start:\n{}",
                    f.path,
                    indent(&f.contents)
                );
            }
            out
        }
        Step::Kind { args, writes } => {
            let mut out = String::new();
            if let Some((path, text)) = writes {
                let _ = writeln!(out, "write {}:\n{}", path.display(), indent(text));
                out += "        ";
            }
            let _ = write!(out, "run: kind {}", args.join(" "));
            out
        }
        Step::Wire(plan) => {
            let mut out = String::from("wire (a helper container that sees host PIDs):");
            for (a, b) in &plan.veths {
                let _ = write!(
                    out,
                    "\n  veth {}:{} <-> {}:{}",
                    a.device, a.interface, b.device, b.interface
                );
            }
            for (device, lines) in &plan.setup {
                let _ = write!(out, "\n  in {device}: ip -batch");
                for line in lines {
                    let _ = write!(out, "\n    {line}");
                }
            }
            out
        }
        Step::Untaint { node, key } => format!("remove taint {key} from node {node}"),
        Step::IcmpUnlimited { nodes } => format!(
            "in each node container ({}): sysctl -w {}",
            nodes.join(", "),
            crate::backend::docker::icmp_unlimited_args().join(" ")
        ),
        Step::FetchManifest(m) => m.describe(),
        Step::LoadImages { extra } => format!(
            "pull on the host where absent, then `kind load docker-image --name <lab>`: the patched manifest's images and {}",
            extra.join(", ")
        ),
        Step::ApplyManifest => {
            "server-side apply every object of the patched manifest (field manager calico-lab)".into()
        }
        Step::Apply { what, objects } => {
            let mut out = format!("server-side apply {what} (field manager calico-lab):");
            for o in objects {
                let _ = write!(out, "\n---\n{}", objects::to_yaml(o).trim_end());
            }
            out
        }
        Step::Wait { what, budget } => {
            let what = match what {
                Wait::RoutersConfigured(r) => format!(
                    "routers' running configuration holds their BGP instance: {}",
                    r.iter()
                        .map(|(n, asn)| format!("{n} (router bgp {asn})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Wait::NodesRegistered(n) => format!("nodes registered: {}", n.join(", ")),
                Wait::CrdsEstablished(c) => format!("CRDs Established: {}", c.join(", ")),
                Wait::Rollout {
                    kind,
                    namespace,
                    name,
                } => format!("{kind} {namespace}/{name} rolled out (calico-node goes Ready only with its BGP sessions up)"),
                Wait::PodsRunning { namespace, names } => {
                    format!("pods Running with an address in {namespace}: {}", names.join(", "))
                }
                Wait::NodesReady(n) => format!("nodes Ready: {}", n.join(", ")),
            };
            format!("wait up to {} s: {what}", budget.as_secs())
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
