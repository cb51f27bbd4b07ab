//! VyOS 1.4 `config.boot` for a router of the kind flavor.

use super::natural_key;
use crate::topology::Topology;

/// The default `vyos` user's password hash, as VyOS images ship it.
const VYOS_PASSWORD_HASH: &str = "$6$QxPS.uk6mfo$9QBSo8u1FkH16gMyAVhus6fU3LOzvLR9Z9.82m3tiHFAxTtIkhaZSWssSgzt4v4dGAL8rhVQxTg0oAG9/q11h/";

/// Without this footer VyOS runs config migrations at boot and may rewrite the config.
const VERSION_FOOTER: &str = r#"// Warning: Do not remove the following line.
// vyos-config-version: "bgp@4:broadcast-relay@1:cluster@1:config-management@1:conntrack@3:conntrack-sync@2:container@1:dhcp-relay@2:dhcp-server@6:dhcpv6-server@1:dns-dynamic@1:dns-forwarding@4:firewall@10:flow-accounting@1:https@4:ids@1:interfaces@29:ipoe-server@1:ipsec@12:isis@3:l2tp@4:lldp@1:mdns@1:monitoring@1:nat@5:nat66@1:ntp@2:openconnect@2:ospf@2:policy@5:pppoe-server@6:pptp@2:qos@2:quagga@11:rip@1:rpki@1:salt@1:snmp@3:ssh@2:sstp@4:system@26:vrf@3:vrrp@3:vyos-accel-ppp@2:wanloadbalance@3:webproxy@2"
// Release version: 1.4-rolling-202307070317
"#;

/// The complete, bootable `config.boot` of `router` (empty for an unknown router).
///
/// Unlike the original lab there is no source NAT out of eth0: lab traffic never
/// leaves the lab.
pub fn vyos_config_boot(t: &Topology, router: &str) -> String {
    let Some((_, r)) = t.router(router) else {
        return String::new();
    };
    let mut interfaces = t.interfaces(router);
    interfaces.sort_by_key(|i| natural_key(&i.name));
    let mut neighbors = t.bgp_neighbors(router);
    neighbors.sort_by_key(|n| n.address);
    let racks = super::served_racks(t, router);

    let mut c = String::from("interfaces {\n");
    for i in &interfaces {
        c += &format!(
            "    ethernet {} {{\n        address \"{}\"\n        duplex \"auto\"\n        mtu \"{}\"\n        speed \"auto\"\n    }}\n",
            i.name, i.address, i.mtu
        );
    }
    c += "    loopback lo {\n    }\n}\n";
    // A leaf serving several racks rewrites next hops from outside a client's rack
    // subnet to itself (see the FRR render).
    if racks.len() > 1 {
        c += "policy {\n";
        for (i, rack) in &racks {
            c += &format!(
                "    prefix-list {} {{\n        rule 5 {{\n            action \"permit\"\n            le \"32\"\n            prefix \"{}\"\n        }}\n    }}\n",
                super::rack_prefix_list(*i),
                rack.subnet.trunc()
            );
        }
        for (i, _) in &racks {
            c += &format!(
                "    route-map {} {{\n        rule 10 {{\n            action \"permit\"\n            match {{\n                ip {{\n                    nexthop {{\n                        prefix-list \"{}\"\n                    }}\n                }}\n            }}\n        }}\n        rule 20 {{\n            action \"permit\"\n            set {{\n                ip-next-hop \"peer-address\"\n            }}\n        }}\n    }}\n",
                super::rack_route_map(*i),
                super::rack_prefix_list(*i)
            );
        }
        c += "}\n";
    }
    c += "protocols {\n    bgp {\n        address-family {\n            ipv4-unicast {\n";
    for net in t.announced_networks(router) {
        c += &format!("                network {net} {{\n                }}\n");
    }
    c += "            }\n        }\n";
    for n in &neighbors {
        c += &format!(
            "        neighbor {} {{\n            address-family {{\n",
            n.address
        );
        if n.rr_client {
            c += "                ipv4-unicast {\n                    nexthop-self\n";
            if let Some((i, _)) = super::rack_of_node(t, &n.device).filter(|_| racks.len() > 1) {
                c += &format!(
                    "                    route-map {{\n                        export \"{}\"\n                    }}\n",
                    super::rack_route_map(i)
                );
            }
            c += "                    route-reflector-client\n                }\n";
        } else {
            c += "                ipv4-unicast\n";
        }
        c += &format!(
            "            }}\n            remote-as \"{}\"\n        }}\n",
            n.asn
        );
    }
    c += "        parameters {\n            bestpath {\n                as-path {\n                    multipath-relax\n                }\n            }\n";
    if racks.len() > 1 {
        c += "            route-reflector-allow-outbound-policy\n";
    }
    c += &format!("            router-id \"{}\"\n        }}\n", r.router_id);
    c += &format!("        system-as \"{}\"\n    }}\n}}\n", r.asn);
    c += "system {\n    config-management {\n        commit-revisions \"100\"\n    }\n";
    c += "    console {\n        device ttyS0 {\n            speed \"9600\"\n        }\n    }\n";
    c += &format!("    host-name \"{}\"\n", r.name);
    c += &format!(
        "    login {{\n        user vyos {{\n            authentication {{\n                encrypted-password \"{VYOS_PASSWORD_HASH}\"\n                plaintext-password \"\"\n            }}\n        }}\n    }}\n"
    );
    c += "    time-zone \"UTC\"\n}\n\n";
    c += VERSION_FOOTER;
    c
}
