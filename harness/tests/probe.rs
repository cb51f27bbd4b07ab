//! The probe parsers against output captured from this project's own lab
//! (`fixtures/captures/`, see its README): seed topology, pods
//! calico-bgp-rr-<node>-pod1/2 with 10.244.0.0 (control-plane), .64 (worker),
//! .128 (worker2), .192 (worker3) blocks.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use calico_lab::probe::frr::parse_as_path;
use calico_lab::probe::{
    addresses, find_route, node_status, parse_bgp_summary, parse_bgp_table, parse_ip_routes,
    parse_ping, parse_show_protocols, parse_traceroute, render_table, BirdError, FrrError, PeerRow,
    PeerType, PingError, RouteError, RouteKind, Since, TracerouteError,
};
use ipnet::Ipv4Net;

fn capture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/captures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

// ------------------------------------------------------------------ ping

#[test]
fn ping_same_host_pod() {
    let r = parse_ping(&capture("ping-worker-pod1-to-worker-pod2-same-host.txt")).unwrap();
    assert_eq!(r.destination, Some("10.244.0.65".parse().unwrap()));
    assert_eq!((r.sent, r.received, r.errors), (3, 3, 0));
    assert_eq!(r.loss_percent, 0.0);
    assert!(r.all_received());
    let rtt = r.rtt.expect("rtt summary");
    assert_eq!(
        (rtt.min, rtt.avg, rtt.max, rtt.mdev),
        (0.061, 0.128, 0.244, 0.082)
    );
    // One routed hop: the node itself.
    assert!(r.replies.iter().all(|p| p.ttl == 63));
    assert_eq!(
        r.replies.iter().map(|p| p.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(r.replies[0].time_ms, Some(0.244));
}

#[test]
fn ping_cross_rack_pod() {
    let r = parse_ping(&capture("ping-worker-pod1-to-worker3-pod1-cross-rack.txt")).unwrap();
    assert!(r.all_received());
    assert_eq!(r.rtt.unwrap().max, 0.126);
    // Five routed hops: worker, leaf0, a spine, leaf1, worker3.
    assert!(r.replies.iter().all(|p| p.ttl == 64 - 5));
    assert!(r
        .replies
        .iter()
        .all(|p| p.from == IpAddr::V4(ip("10.244.0.192"))));
}

#[test]
fn ping_total_loss() {
    let r = parse_ping(&capture("ping-worker-pod1-to-unused-10.244.0.200-loss.txt")).unwrap();
    assert_eq!((r.sent, r.received), (3, 0));
    assert_eq!(r.loss_percent, 100.0);
    assert!(r.total_loss());
    assert_eq!(r.rtt, None);
    assert!(r.replies.is_empty() && r.icmp_errors.is_empty());
}

#[test]
fn ping_net_unreachable_from_leaf() {
    let r = parse_ping(&capture(
        "ping-worker-pod1-to-10.244.3.3-net-unreachable.txt",
    ))
    .unwrap();
    assert_eq!((r.sent, r.received, r.errors), (3, 0, 2));
    assert!(r.total_loss());
    assert_eq!(r.icmp_errors.len(), 2);
    for (e, seq) in r.icmp_errors.iter().zip(1..) {
        assert_eq!(e.from, IpAddr::V4(ip("10.1.5.1")));
        assert_eq!(e.seq, Some(seq));
        assert_eq!(e.message, "Destination Net Unreachable");
    }
}

#[test]
fn ping_that_cannot_send() {
    let e = parse_ping(&capture("ping-leaf0-to-192.0.2.1-no-route.txt")).unwrap_err();
    assert_eq!(
        e,
        PingError::Failed("connect: Network is unreachable".into())
    );
    let e = parse_ping(&capture(
        "ping-worker-node-to-10.244.0.100-own-blackhole.txt",
    ))
    .unwrap_err();
    assert_eq!(e, PingError::Failed("connect: Invalid argument".into()));
}

#[test]
fn ping_garbage() {
    assert!(matches!(
        parse_ping(""),
        Err(PingError::NoStatistics { .. })
    ));
    assert_eq!(
        parse_ping("hello\nworld\n"),
        Err(PingError::NoStatistics {
            first_line: "hello".into()
        })
    );
    assert!(matches!(
        parse_ping("PING nowhere\n"),
        Err(PingError::Malformed { line: 1, .. })
    ));
    assert!(matches!(
        parse_ping("64 bytes from 10.0.0.1: icmp_seq=x ttl=64 time=1 ms\n"),
        Err(PingError::Malformed { line: 1, .. })
    ));
}

// ------------------------------------------------------------------ traceroute

#[test]
fn traceroute_cross_rack_goes_through_a_spine() {
    let hops = parse_traceroute(&capture(
        "traceroute-worker-pod1-to-worker3-pod1-cross-rack.txt",
    ))
    .unwrap();
    assert_eq!(
        addresses(&hops),
        [
            ip("10.1.5.11"),    // worker (the pod's host)
            ip("10.1.5.1"),     // leaf0
            ip("10.1.10.2"),    // spine0
            ip("10.1.34.1"),    // leaf1
            ip("10.1.8.11"),    // worker3
            ip("10.244.0.192"), // the pod
        ]
    );
    assert_eq!(
        hops.iter().map(|h| h.ttl).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(hops.iter().all(|h| h.lost == 0 && h.annotations.is_empty()));
}

#[test]
fn traceroute_same_rack_skips_the_leaf() {
    let hops = parse_traceroute(&capture(
        "traceroute-worker-pod1-to-control-plane-pod1-same-rack.txt",
    ))
    .unwrap();
    assert_eq!(
        addresses(&hops),
        [ip("10.1.5.11"), ip("10.1.5.10"), ip("10.244.0.0")]
    );
    let hops = parse_traceroute(&capture(
        "traceroute-worker-pod1-to-worker-pod2-same-host.txt",
    ))
    .unwrap();
    assert_eq!(addresses(&hops), [ip("10.1.5.11"), ip("10.244.0.65")]);
}

#[test]
fn traceroute_stars_and_unreachable() {
    let hops = parse_traceroute(&capture(
        "traceroute-worker-pod1-to-unused-10.244.0.200-stars.txt",
    ))
    .unwrap();
    assert_eq!(hops.len(), 6);
    assert_eq!(
        addresses(&hops),
        [
            ip("10.1.5.11"),
            ip("10.1.5.1"),
            ip("10.1.12.2"),
            ip("10.1.11.1")
        ]
    );
    for h in &hops[4..] {
        assert_eq!((h.address, h.lost), (None, 1));
        assert!(h.responders.is_empty());
    }

    let hops = parse_traceroute(&capture(
        "traceroute-worker-pod1-to-10.244.3.3-net-unreachable.txt",
    ))
    .unwrap();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[1].address, Some(ip("10.1.5.1")));
    assert_eq!(hops[1].annotations, ["!N"]);

    let hops = parse_traceroute(&capture("traceroute-worker-pod1-to-worker3-pod1-q3.txt")).unwrap();
    assert_eq!(addresses(&hops).last(), Some(&ip("10.244.0.192")));
    assert_eq!((hops[5].lost, hops[5].responders.len()), (2, 1));
    assert!(hops[..5].iter().all(|h| h.lost == 0));
}

#[test]
fn traceroute_garbage() {
    assert_eq!(parse_traceroute(""), Err(TracerouteError::Empty));
    assert_eq!(
        parse_traceroute("nowhere: Name or service not known\nCannot handle \"host\" cmdline arg `nowhere' on position 1 (argc 3)\n"),
        Err(TracerouteError::Failed(
            "nowhere: Name or service not known".into()
        ))
    );
    let text = "traceroute to 10.0.0.1 (10.0.0.1), 30 hops max, 60 byte packets\n 1  10.1.5.11  0.1 ms\n what is this\n";
    assert!(matches!(
        parse_traceroute(text),
        Err(TracerouteError::Malformed { line: 3, .. })
    ));
    let text = "traceroute to 10.0.0.1 (10.0.0.1), 30 hops max, 60 byte packets\n 1\n";
    assert!(matches!(
        parse_traceroute(text),
        Err(TracerouteError::Malformed { line: 2, .. })
    ));
}

// ------------------------------------------------------------------ BIRD

#[test]
fn bird_show_protocols_established() {
    let sp = parse_show_protocols(&capture("bird-worker-show-protocols.txt")).unwrap();
    assert_eq!(sp.version.as_deref(), Some("1.6.8"));
    let names: Vec<_> = sp.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["static1", "kernel1", "device1", "direct1", "Node_10_1_5_1"]
    );
    for r in &sp.rows[..4] {
        assert_eq!((r.table.as_str(), r.state.as_str()), ("master", "up"));
        assert_eq!(
            (r.info.as_str(), &r.info_state, &r.info_error),
            ("", &None, &None)
        );
    }
    let bgp = sp.get("Node_10_1_5_1").unwrap();
    assert_eq!(
        (bgp.proto.as_str(), bgp.state.as_str(), bgp.since.as_str()),
        ("BGP", "up", "07:34:35")
    );
    assert_eq!(
        bgp.since_parsed,
        Since::Time {
            hour: 7,
            minute: 34,
            second: 35
        }
    );
    assert_eq!(bgp.info, "Established");
    assert_eq!(bgp.info_state.as_deref(), Some("Established"));
    assert_eq!(bgp.info_error, None);
    assert!(bgp.is_established());

    let cp = parse_show_protocols(&capture("bird-control-plane-show-protocols.txt")).unwrap();
    assert!(cp.get("Node_10_1_5_1").unwrap().is_established());
}

#[test]
fn bird_show_protocols_all_has_the_same_rows() {
    let short = parse_show_protocols(&capture("bird-worker-show-protocols.txt")).unwrap();
    let all = parse_show_protocols(&capture("bird-worker-show-protocols-all.txt")).unwrap();
    assert_eq!(short, all);

    let one = parse_show_protocols(&capture(
        "bird-worker-show-protocols-all-leaf-neighbor-shutdown.txt",
    ))
    .unwrap();
    assert_eq!(one.rows.len(), 1);
    assert_eq!(
        one.rows[0].info_error.as_deref(),
        Some("Socket: Connection reset by peer")
    );
}

#[test]
fn bird_session_down_with_error_text() {
    let sp = parse_show_protocols(&capture(
        "bird-worker-show-protocols-leaf-neighbor-shutdown.txt",
    ))
    .unwrap();
    let r = sp.get("Node_10_1_5_1").unwrap();
    assert_eq!(r.state, "start");
    assert_eq!(r.info_state.as_deref(), Some("Active"));
    assert_eq!(
        r.info_error.as_deref(),
        Some("Socket: Connection reset by peer")
    );
    assert!(!r.is_established());

    let sp = parse_show_protocols(&capture(
        "bird-worker-show-protocols-leaf-neighbor-shutdown-just-after.txt",
    ))
    .unwrap();
    let r = sp.get("Node_10_1_5_1").unwrap();
    assert_eq!(r.info_state.as_deref(), Some("Active"));
    assert_eq!(
        r.info_error.as_deref(),
        Some("Received: Administrative shutdown")
    );

    let sp = parse_show_protocols(&capture(
        "bird-worker-show-protocols-node-protocol-disabled.txt",
    ))
    .unwrap();
    let r = sp.get("Node_10_1_5_1").unwrap();
    assert_eq!(r.state, "down");
    assert_eq!(
        (r.info.as_str(), &r.info_state, &r.info_error),
        ("", &None, &None)
    );
}

#[test]
fn bird_calico_node_banner_and_dates() {
    let sp = parse_show_protocols(&capture("bird-calico-node-birdcl-sample.txt")).unwrap();
    assert_eq!(sp.version.as_deref(), Some("v0.3.3+birdv1.6.8"));
    assert_eq!(sp.rows.len(), 8);
    assert_eq!(
        sp.rows[0].since_parsed,
        Since::Date {
            year: 2025,
            month: 11,
            day: 20
        }
    );
    let peers = node_status(&sp.rows);
    let view: Vec<_> = peers
        .iter()
        .map(|p| {
            (
                p.address.as_str(),
                p.port,
                p.peer_type,
                p.state.as_str(),
                p.since.as_str(),
                p.info.as_str(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            (
                "10.1.5.1",
                None,
                PeerType::NodeSpecific,
                "up",
                "2025-11-20",
                "Established"
            ),
            (
                "10.1.5.10",
                None,
                PeerType::Mesh,
                "up",
                "09:12:41",
                "Established"
            ),
            (
                "10.1.10.2",
                Some(1790),
                PeerType::Global,
                "start",
                "2025-11-21",
                "Active Socket: Connection refused"
            ),
            (
                "10.1.8.1",
                None,
                PeerType::NodeSpecific,
                "start",
                "2025-11-21",
                "Idle BGP Error: Bad peer AS"
            ),
        ]
    );
    assert_eq!(sp.rows[7].info_state.as_deref(), Some("Idle"));
    assert_eq!(
        sp.rows[7].info_error.as_deref(),
        Some("BGP Error: Bad peer AS")
    );
    assert_eq!(
        render_table(&peers),
        "\
+----------------+-------------------+-------+------------+-----------------------------+
|  PEER ADDRESS  |     PEER TYPE     | STATE |   SINCE    |            INFO             |
+----------------+-------------------+-------+------------+-----------------------------+
| 10.1.5.1       | node specific     | up    | 2025-11-20 | Established                 |
| 10.1.5.10      | node-to-node mesh | up    | 09:12:41   | Established                 |
| 10.1.10.2:1790 | global            | start | 2025-11-21 | Active Socket: Connection   |
|                |                   |       |            | refused                     |
| 10.1.8.1       | node specific     | start | 2025-11-21 | Idle BGP Error: Bad peer AS |
+----------------+-------------------+-------+------------+-----------------------------+
"
    );
}

#[test]
fn calicoctl_node_status_from_the_lab() {
    let sp = parse_show_protocols(&capture("bird-worker-show-protocols.txt")).unwrap();
    let peers = node_status(&sp.rows);
    assert_eq!(
        peers,
        [PeerRow {
            address: "10.1.5.1".into(),
            port: None,
            peer_type: PeerType::NodeSpecific,
            state: "up".into(),
            since: "07:34:35".into(),
            info: "Established".into(),
        }]
    );
    assert!(peers[0].is_established());
    assert_eq!(
        render_table(&peers),
        "\
+--------------+---------------+-------+----------+-------------+
| PEER ADDRESS |   PEER TYPE   | STATE |  SINCE   |    INFO     |
+--------------+---------------+-------+----------+-------------+
| 10.1.5.1     | node specific | up    | 07:34:35 | Established |
+--------------+---------------+-------+----------+-------------+
"
    );

    let down = parse_show_protocols(&capture(
        "bird-worker-show-protocols-leaf-neighbor-shutdown.txt",
    ))
    .unwrap();
    assert_eq!(
        render_table(&node_status(&down.rows)),
        "\
+--------------+---------------+-------+----------+---------------------------+
| PEER ADDRESS |   PEER TYPE   | STATE |  SINCE   |           INFO            |
+--------------+---------------+-------+----------+---------------------------+
| 10.1.5.1     | node specific | start | 07:35:32 | Active Socket: Connection |
|              |               |       |          | reset by peer             |
+--------------+---------------+-------+----------+---------------------------+
"
    );
}

/// The layout of a table calicoctl printed, as published in a public write-up
/// (mesh peers still connecting, one node-specific peer up).
#[test]
fn render_table_matches_calicoctl_layout() {
    let row = |address: &str, peer_type, state: &str, since: &str, info: &str| PeerRow {
        address: address.into(),
        port: None,
        peer_type,
        state: state.into(),
        since: since.into(),
        info: info.into(),
    };
    let peers = [
        row(
            "10.250.12.185",
            PeerType::Mesh,
            "start",
            "17:37:59",
            "Connect",
        ),
        row(
            "10.250.12.186",
            PeerType::Mesh,
            "start",
            "17:37:59",
            "Connect",
        ),
        row(
            "10.250.12.1",
            PeerType::NodeSpecific,
            "up",
            "17:38:13",
            "Established",
        ),
    ];
    assert_eq!(
        render_table(&peers),
        "\
+---------------+-------------------+-------+----------+-------------+
| PEER ADDRESS  |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+---------------+-------------------+-------+----------+-------------+
| 10.250.12.185 | node-to-node mesh | start | 17:37:59 | Connect     |
| 10.250.12.186 | node-to-node mesh | start | 17:37:59 | Connect     |
| 10.250.12.1   | node specific     | up    | 17:38:13 | Established |
+---------------+-------------------+-------+----------+-------------+
"
    );
    assert_eq!(
        render_table(&[]),
        "\
+--------------+-----------+-------+-------+------+
| PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO |
+--------------+-----------+-------+-------+------+
+--------------+-----------+-------+-------+------+
"
    );
}

#[test]
fn bird_garbage() {
    assert!(matches!(
        parse_show_protocols(""),
        Err(BirdError::NotATable(_))
    ));
    assert_eq!(
        parse_show_protocols(
            "Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory\n"
        ),
        Err(BirdError::NotATable(
            "Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory".into()
        ))
    );
    // The banner alone: BIRD answered, but not with a protocol table.
    assert!(matches!(
        parse_show_protocols("BIRD 1.6.8 ready.\nsyntax error, unexpected END, expecting ...\n"),
        Err(BirdError::NotATable(_))
    ));
    let header = "BIRD 1.6.8 ready.\nname     proto    table    state  since       info\n";
    assert!(matches!(
        parse_show_protocols(&format!(
            "{header}Node_10_1_5_1 BGP master up yesterday Established\n"
        )),
        Err(BirdError::Malformed { line: 3, .. })
    ));
    assert!(matches!(
        parse_show_protocols(&format!("{header}kernel1 Kernel master\n")),
        Err(BirdError::Malformed { line: 3, .. })
    ));
    // A header with no rows is an empty table.
    assert!(parse_show_protocols(header).unwrap().rows.is_empty());
}

// ------------------------------------------------------------------ FRR

#[test]
fn frr_summary_leaf0_all_established() {
    let s = parse_bgp_summary(&capture("frr-leaf0-show-bgp-summary-established.json")).unwrap();
    assert_eq!(s.router_id, Some(ip("10.1.5.1")));
    assert_eq!(s.local_as, Some(65005));
    assert_eq!(s.peers.len(), 4);
    assert_eq!(s.established().count(), 4);
    let spine0 = s.peer(ip("10.1.10.2")).unwrap();
    assert_eq!(
        (
            spine0.remote_as,
            spine0.hostname.as_deref(),
            spine0.pfx_rcd,
            spine0.pfx_snt
        ),
        (Some(500), Some("spine0"), Some(6), Some(10))
    );
    assert_eq!(s.peer("10.1.12.2").unwrap().remote_as, Some(800));
    for node in ["10.1.5.10", "10.1.5.11"] {
        let p = s.peer(node).unwrap();
        // iBGP route-reflector clients: one /26 block each.
        assert_eq!(
            (p.remote_as, p.local_as, p.pfx_rcd),
            (Some(65005), Some(65005), Some(1))
        );
    }
    assert_eq!(
        s.peer("10.1.5.11").unwrap().description.as_deref(),
        Some("calico-bgp-rr-worker")
    );
}

#[test]
fn frr_summary_with_sessions_down() {
    let s = parse_bgp_summary(&capture("frr-leaf0-show-bgp-summary.json")).unwrap();
    assert_eq!(s.peer("10.1.5.10").unwrap().state, "Active");
    assert_eq!(s.peer("10.1.5.11").unwrap().state, "Active");
    assert_eq!(s.peer("10.1.5.11").unwrap().pfx_rcd, Some(0));
    assert!(s.peer("10.1.10.2").unwrap().is_established());

    let s = parse_bgp_summary(&capture(
        "frr-leaf0-show-bgp-summary-worker-neighbor-shutdown.json",
    ))
    .unwrap();
    let worker = s.peer("10.1.5.11").unwrap();
    assert_eq!(worker.state, "Idle (Admin)");
    assert!(!worker.is_established());
    assert_eq!(s.established().count(), 3);
}

#[test]
fn frr_summary_spine0() {
    let s = parse_bgp_summary(&capture("frr-spine0-show-bgp-summary-established.json")).unwrap();
    assert_eq!(
        (s.router_id, s.local_as),
        (Some(ip("10.1.10.2")), Some(500))
    );
    let view: Vec<_> = s
        .peers
        .values()
        .map(|p| {
            (
                p.address.as_str(),
                p.remote_as,
                p.hostname.as_deref(),
                p.state.as_str(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("10.1.10.1", Some(65005), Some("leaf0"), "Established"),
            ("10.1.34.1", Some(65008), Some("leaf1"), "Established"),
        ]
    );
}

#[test]
fn frr_leaf0_reaches_the_other_rack_through_both_spines() {
    let t = parse_bgp_table(&capture("frr-leaf0-show-bgp-ipv4-unicast.json")).unwrap();
    assert_eq!(
        (t.router_id, t.local_as),
        (Some(ip("10.1.5.1")), Some(65005))
    );
    let spines: Vec<IpAddr> = vec![ip("10.1.10.2").into(), ip("10.1.12.2").into()];
    for block in ["10.244.0.128/26", "10.244.0.192/26", "10.1.8.0/24"] {
        let prefix = net(block);
        assert_eq!(t.installed_next_hops(&prefix), spines, "{block}");
        let paths = t.paths(&prefix);
        assert_eq!(paths.len(), 2);
        let best = t.best(&prefix).unwrap();
        assert_eq!(best.peer_id, Some(ip("10.1.10.2").into()));
        assert_eq!(best.as_path, "500 65008");
        assert_eq!(best.as_path_asns, [500, 65008]);
        assert!(!best.multipath);
        let other = paths.iter().find(|p| !p.best).unwrap();
        assert!(other.multipath && other.valid);
        assert_eq!(other.as_path_asns, [800, 65008]);
        assert_eq!(other.next_hops[0].hostname.as_deref(), Some("spine1"));
        assert_eq!(best.path_from.as_deref(), Some("external"));
    }
}

#[test]
fn frr_leaf0_own_rack_blocks_keep_the_node_as_next_hop() {
    let t = parse_bgp_table(&capture("frr-leaf0-show-bgp-ipv4-unicast.json")).unwrap();
    for (block, node) in [
        ("10.244.0.0/26", "10.1.5.10"),
        ("10.244.0.64/26", "10.1.5.11"),
    ] {
        let paths = t.paths(&net(block));
        assert_eq!(paths.len(), 1);
        let p = &paths[0];
        assert!(p.best && p.valid);
        assert_eq!(p.path_from.as_deref(), Some("internal"));
        assert_eq!(p.as_path, "");
        assert!(p.as_path_asns.is_empty());
        assert_eq!(p.local_pref, Some(100));
        assert_eq!(p.peer_id, Some(ip(node).into()));
        assert_eq!(t.installed_next_hops(&net(block)), [IpAddr::from(ip(node))]);
    }
    // The leaf's own network statement: next hop 0.0.0.0, no peer.
    let local = t.best(&net("10.1.5.0/24")).unwrap();
    assert_eq!(local.peer_id, None);
    assert_eq!(local.weight, Some(32768));
    assert_eq!(local.next_hops[0].ip, IpAddr::from(Ipv4Addr::UNSPECIFIED));
    // Only single-path winners elsewhere.
    assert_eq!(
        t.installed_next_hops(&net("10.1.34.0/24")),
        [IpAddr::from(ip("10.1.10.2"))]
    );
    assert!(t.installed_next_hops(&net("192.0.2.0/24")).is_empty());
    assert_eq!(t.routes.len(), 10);
}

#[test]
fn frr_spine0_reaches_each_rack_through_its_leaf() {
    let t = parse_bgp_table(&capture("frr-spine0-show-bgp-ipv4-unicast.json")).unwrap();
    assert_eq!(t.local_as, Some(500));
    for (block, leaf, asn) in [
        ("10.244.0.0/26", "10.1.10.1", 65005),
        ("10.244.0.64/26", "10.1.10.1", 65005),
        ("10.244.0.128/26", "10.1.34.1", 65008),
        ("10.244.0.192/26", "10.1.34.1", 65008),
    ] {
        assert_eq!(t.installed_next_hops(&net(block)), [IpAddr::from(ip(leaf))]);
        assert_eq!(t.best(&net(block)).unwrap().as_path_asns, [asn]);
    }
    // A path through the other spine is kept but not installed.
    let via_spine1 = t
        .paths(&net("10.1.11.0/24"))
        .iter()
        .find(|p| p.as_path_asns == [65005, 800])
        .unwrap();
    assert!(via_spine1.valid && !via_spine1.is_installed());
}

#[test]
fn frr_garbage() {
    assert!(matches!(
        parse_bgp_summary("% Unknown command: show bgp summry json\n"),
        Err(FrrError::Json(_))
    ));
    assert!(matches!(parse_bgp_summary(""), Err(FrrError::Json(_))));
    assert!(matches!(parse_bgp_summary("[]"), Err(FrrError::Json(_))));
    assert!(matches!(
        parse_bgp_summary(r#"{"ipv4Unicast":{"routerId":"not-an-ip","peers":{}}}"#),
        Err(FrrError::Field {
            what: "router id",
            ..
        })
    ));
    assert!(matches!(parse_bgp_table("{}"), Err(FrrError::Json(_))));
    assert!(matches!(
        parse_bgp_table(r#"{"routes":{"10.0.0.0/8":[{"path":"500 x"}]}}"#),
        Err(FrrError::Field {
            what: "AS path",
            ..
        })
    ));
    assert!(parse_as_path("65001 {65002,65003}").is_ok());
    // The summary is not the table.
    assert!(parse_bgp_table(&capture("frr-leaf0-show-bgp-summary-established.json")).is_err());
}

// ------------------------------------------------------------------ ip -j route

#[test]
fn node_routes() {
    let routes = parse_ip_routes(&capture("iproute-worker-ip-j-route.json")).unwrap();
    assert_eq!(
        routes,
        parse_ip_routes(&capture("iproute-worker-ip-j-4-route.json")).unwrap()
    );
    assert_eq!(routes.len(), 13);

    let own = find_route(&routes, &net("10.244.0.64/26")).unwrap();
    assert_eq!(own.dst, "10.244.0.64/26");
    assert_eq!(own.kind, RouteKind::Blackhole);
    assert_eq!(own.protocol.as_deref(), Some("bird"));
    assert!(own.gateways.is_empty() && own.dev.is_none());

    for pod in ["10.244.0.64", "10.244.0.65"] {
        let r = routes.iter().find(|r| r.dst == pod).unwrap();
        assert_eq!(r.kind, RouteKind::Unicast);
        assert_eq!(r.scope.as_deref(), Some("link"));
        assert!(r.dev.as_deref().unwrap().starts_with("cali"));
        assert_eq!(r.dev.as_deref().unwrap().len(), 15);
        assert_eq!(r.protocol, None);
        assert_eq!(r.prefix(), Some(net(&format!("{pod}/32"))));
    }

    // Same-rack block: straight to the node; other rack: via the leaf.
    let same_rack = find_route(&routes, &net("10.244.0.0/26")).unwrap();
    assert_eq!(same_rack.gateways, [ip("10.1.5.10")]);
    for block in ["10.244.0.128/26", "10.244.0.192/26"] {
        let r = find_route(&routes, &net(block)).unwrap();
        assert_eq!(r.gateways, [ip("10.1.5.1")]);
        assert_eq!(
            (r.protocol.as_deref(), r.dev.as_deref()),
            (Some("bird"), Some("net0"))
        );
        assert_eq!(r.scope, None);
    }

    let default = &routes[0];
    assert_eq!(default.dst, "default");
    assert_eq!(default.prefix(), Some(net("0.0.0.0/0")));
    assert_eq!(default.gateways, [ip("10.1.5.1")]);
    let connected = find_route(&routes, &net("10.1.5.0/24")).unwrap();
    assert_eq!(connected.prefsrc, Some(ip("10.1.5.11")));
    assert_eq!(connected.protocol.as_deref(), Some("kernel"));
}

#[test]
fn leaf_routes_are_ecmp_over_both_spines() {
    let routes = parse_ip_routes(&capture("iproute-leaf0-ip-j-route.json")).unwrap();
    assert_eq!(
        routes,
        parse_ip_routes(&capture("iproute-leaf0-ip-j-4-route.json")).unwrap()
    );
    let table = parse_bgp_table(&capture("frr-leaf0-show-bgp-ipv4-unicast.json")).unwrap();
    for block in ["10.244.0.128/26", "10.244.0.192/26", "10.1.8.0/24"] {
        let r = find_route(&routes, &net(block)).unwrap();
        assert_eq!(r.gateways, [ip("10.1.12.2"), ip("10.1.10.2")]);
        assert_eq!(r.dev, None);
        assert_eq!((r.protocol.as_deref(), r.metric), (Some("bgp"), Some(20)));
        // The kernel holds what BGP installed.
        let mut kernel: Vec<IpAddr> = r.gateways.iter().map(|&g| g.into()).collect();
        kernel.sort();
        assert_eq!(kernel, table.installed_next_hops(&net(block)));
    }
    let worker_block = find_route(&routes, &net("10.244.0.64/26")).unwrap();
    assert_eq!(worker_block.gateways, [ip("10.1.5.11")]);
    assert_eq!(worker_block.dev.as_deref(), Some("eth3"));
    assert!(routes.iter().all(|r| r.kind == RouteKind::Unicast));
}

#[test]
fn pod_routes() {
    let routes = parse_ip_routes(&capture("iproute-worker-pod1-ip-j-route.json")).unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].gateways, [ip("169.254.1.1")]);
    assert_eq!(routes[0].dev.as_deref(), Some("eth0"));
    assert_eq!(routes[1].dst, "169.254.1.1");
    assert_eq!(routes[1].scope.as_deref(), Some("link"));
}

#[test]
fn routes_garbage() {
    assert!(matches!(parse_ip_routes(""), Err(RouteError::Json(_))));
    assert!(matches!(
        parse_ip_routes("Error: any valid prefix is expected rather than \"x\".\n"),
        Err(RouteError::Json(_))
    ));
    assert!(matches!(
        parse_ip_routes(r#"{"dst":"default"}"#),
        Err(RouteError::Json(_))
    ));
    assert!(matches!(
        parse_ip_routes(r#"[{"gateway":"10.0.0.1"}]"#),
        Err(RouteError::Json(_))
    ));
    assert!(matches!(
        parse_ip_routes(r#"[{"dst":"10.0.0.0/8","gateway":"10.0.0.300"}]"#),
        Err(RouteError::Field {
            index: 0,
            what: "gateway",
            ..
        })
    ));
    assert!(parse_ip_routes("[]").unwrap().is_empty());
}
