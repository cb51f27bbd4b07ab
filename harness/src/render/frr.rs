//! FRR `frr.conf` for a router of the emulated flavor.

use crate::topology::Topology;

/// The complete `frr.conf` of `router` (empty for an unknown router). Interfaces
/// come from the wiring, so only BGP is configured here.
///
/// Rack nodes are explicit neighbors rather than a `bgp listen range`: explicit
/// neighbors appear in `show bgp summary` even while down, so a node that never
/// connects shows up as a missing session instead of being invisible, and the
/// config reads like the VyOS one of the kind flavor.
pub fn frr_conf(t: &Topology, router: &str) -> String {
    let Some((role, r)) = t.router(router) else {
        return String::new();
    };
    let mut neighbors = t.bgp_neighbors(router);
    neighbors.sort_by_key(|n| n.address);
    let racks = super::served_racks(t, router);
    let mut lines = vec![
        format!(
            "! {} {}: rendered by calico-lab from topology '{}'",
            role.as_str(),
            r.name,
            t.name
        ),
        "frr version 8.4".into(),
        "frr defaults datacenter".into(),
        format!("hostname {}", r.name),
        "log file /var/log/frr/frr.log informational".into(),
        "service integrated-vtysh-config".into(),
        "!".into(),
        "ip forwarding".into(),
        // Routes carry their next hops themselves, not kernel nexthop groups: when a
        // link goes down the kernel shrinks a group zebra still believes whole, and
        // after the link returns zebra never restores it (one path where ECMP is due).
        "no zebra nexthop kernel enable".into(),
        "!".into(),
        format!("router bgp {}", r.asn),
        format!(" bgp router-id {}", r.router_id),
        " bgp log-neighbor-changes".into(),
        // Updates leave as soon as a session is up, not after FRR's one-second
        // coalescing of update groups: the same routes, every bring-up and repair
        // a second sooner (the seed: every route 2.3 s after its start, not 3.6 s).
        " coalesce-time 0".into(),
        " no bgp ebgp-requires-policy".into(),
        // The spines have different AS numbers: without this there is no ECMP.
        " bgp bestpath as-path multipath-relax".into(),
    ];
    if racks.len() > 1 {
        // Reflected routes keep their next hop unless outbound policy may change it.
        lines.push(" bgp route-reflector allow-outbound-policy".into());
    }
    for n in &neighbors {
        lines.push(format!(" neighbor {} remote-as {}", n.address, n.asn));
        lines.push(format!(" neighbor {} description {}", n.address, n.device));
    }
    lines.push(" !".into());
    lines.push(" address-family ipv4 unicast".into());
    for net in t.announced_networks(router) {
        lines.push(format!("  network {net}"));
    }
    for n in neighbors.iter().filter(|n| n.rr_client) {
        lines.push(format!("  neighbor {} route-reflector-client", n.address));
        lines.push(format!("  neighbor {} next-hop-self", n.address));
        if racks.len() > 1 {
            if let Some((i, _)) = super::rack_of_node(t, &n.device) {
                lines.push(format!(
                    "  neighbor {} route-map {} out",
                    n.address,
                    super::rack_route_map(i)
                ));
            }
        }
    }
    lines.extend([
        "  maximum-paths 16".into(),
        "  maximum-paths ibgp 16".into(),
        " exit-address-family".into(),
        "exit".into(),
        "!".into(),
    ]);
    // A leaf serving several racks: routes whose next hop is on the client's own rack
    // subnet go unchanged (same-rack traffic stays on the bridge); any other next hop
    // (another rack's node, a spine) becomes the leaf's address on the client's rack.
    if racks.len() > 1 {
        for (i, rack) in &racks {
            let list = super::rack_prefix_list(*i);
            lines.push(format!(
                "ip prefix-list {list} seq 5 permit {} le 32",
                rack.subnet.trunc()
            ));
            let map = super::rack_route_map(*i);
            lines.extend([
                format!("route-map {map} permit 10"),
                format!(" match ip next-hop prefix-list {list}"),
                "exit".into(),
                format!("route-map {map} permit 20"),
                " set ip next-hop peer-address".into(),
                "exit".into(),
                "!".into(),
            ]);
        }
    }
    lines.join("\n") + "\n"
}
