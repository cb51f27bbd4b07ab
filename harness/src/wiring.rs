//! The wiring plan: every veth between container namespaces and every address,
//! bridge and route, derived from the topology and run by one helper container.

use std::collections::BTreeMap;

use crate::topology::{bridge_port_name, Topology};

/// The device name of the lab-owned container that holds the rack bridges.
pub const FABRIC_DEVICE: &str = "fabric";

/// The most neighbour (ARP) entries a lab's namespaces can hold at once: both
/// directions of every pair on a rack's segment, both ends of every link, and
/// each pod with its node. (Linux keeps one table for all namespaces of a host.)
pub fn neighbour_entries(t: &Topology, pods: usize) -> usize {
    let segments: usize = t
        .racks
        .iter()
        .map(|r| (r.nodes.len() + 1) * r.nodes.len())
        .sum();
    segments + 2 * t.links.len() + 2 * pods
}

/// One end of a veth pair: an interface in a device's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub device: String,
    pub interface: String,
}

/// What the helper does, before it knows any PID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WiringPlan {
    pub veths: Vec<(End, End)>,
    /// `ip -batch` commands per device, run inside that device's namespace.
    pub setup: BTreeMap<String, Vec<String>>,
}

fn end(device: &str, interface: &str) -> End {
    End {
        device: device.to_string(),
        interface: interface.to_string(),
    }
}

impl WiringPlan {
    pub fn new(t: &Topology) -> Self {
        let mut plan = WiringPlan::default();
        let mut cmd = |device: &str, line: String| {
            plan.setup.entry(device.to_string()).or_default().push(line)
        };
        for (_, router) in t.routers() {
            cmd(&router.name, "link set lo up".into());
            for i in t.interfaces(&router.name) {
                cmd(
                    &router.name,
                    format!("addr add {} dev {}", i.address, i.name),
                );
                cmd(
                    &router.name,
                    format!("link set {} mtu {} up", i.name, i.mtu),
                );
            }
        }
        cmd(FABRIC_DEVICE, "link set lo up".into());
        let mut veths = Vec::new();
        for rack in &t.racks {
            cmd(
                FABRIC_DEVICE,
                format!("link add {} type bridge", rack.bridge),
            );
            cmd(FABRIC_DEVICE, format!("link set {} up", rack.bridge));
            // Nodes take the first ports, the leaf the last, as in the seed lab.
            let members = rack
                .nodes
                .iter()
                .map(|n| end(&n.name, &n.interface))
                .chain([end(&rack.leaf, &rack.leaf_interface)]);
            for (index, member) in members.enumerate() {
                let port = bridge_port_name(&rack.bridge, index);
                cmd(
                    FABRIC_DEVICE,
                    format!("link set {port} master {}", rack.bridge),
                );
                cmd(FABRIC_DEVICE, format!("link set {port} up"));
                veths.push((end(FABRIC_DEVICE, &port), member));
            }
            for node in &rack.nodes {
                cmd(&node.name, "link set lo up".into());
                cmd(
                    &node.name,
                    format!(
                        "addr add {}/{} dev {}",
                        node.address,
                        rack.subnet.prefix_len(),
                        node.interface
                    ),
                );
                cmd(&node.name, format!("link set {} up", node.interface));
                cmd(
                    &node.name,
                    format!(
                        "route replace default via {} dev {}",
                        rack.gateway, node.interface
                    ),
                );
            }
        }
        for link in &t.links {
            let [a, b] = &link.endpoints;
            veths.push((end(&a.device, &a.interface), end(&b.device, &b.interface)));
        }
        plan.veths = veths;
        plan
    }

    /// Every device the plan touches.
    pub fn devices(&self) -> impl Iterator<Item = &String> {
        self.setup.keys()
    }

    /// The helper's shell script, given each device's container PID. The helper
    /// sees host PIDs; each veth is created with both ends already in place.
    pub fn script(&self, pids: &BTreeMap<String, u32>) -> Result<String, String> {
        let pid = |device: &str| {
            pids.get(device)
                .map(|p| p.to_string())
                .ok_or_else(|| format!("no container for device '{device}'"))
        };
        self.render(pid, |pid| format!("nsenter -t {pid} -n ip"))
    }

    /// The same wiring between plain network namespaces named as the devices (the
    /// baseline `calico-lab bench` compares with).
    pub fn netns_script(&self) -> String {
        let name = |device: &str| Ok::<_, String>(device.to_string());
        // Names never fail to resolve.
        self.render(name, |ns| format!("ip -n {ns}"))
            .unwrap_or_default()
    }

    fn render(
        &self,
        namespace: impl Fn(&str) -> Result<String, String>,
        ip_in: impl Fn(&str) -> String,
    ) -> Result<String, String> {
        let mut s = String::from("set -eu\n");
        for (a, b) in &self.veths {
            s += &format!(
                "ip link add name {} netns {} type veth peer name {} netns {}\n",
                a.interface,
                namespace(&a.device)?,
                b.interface,
                namespace(&b.device)?
            );
        }
        for (device, lines) in &self.setup {
            s += &format!(
                "{} -batch - <<'EOF'\n{}\nEOF\n",
                ip_in(&namespace(device)?),
                lines.join("\n")
            );
        }
        Ok(s)
    }
}
