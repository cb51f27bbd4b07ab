//! Commands run on lab members and parsers for what they print.
//!
//! Every parser is a pure function from the text a daemon or tool printed to a
//! typed value, and returns an error (never panics) on text it cannot read. Each is
//! tested against output captured from this project's own lab
//! (`fixtures/captures/`).
//!
//! | module | reads |
//! |---|---|
//! | [`ping`] | iputils `ping` |
//! | [`traceroute`] | `traceroute` (Linux, Dmitry Butskoy's) |
//! | [`bird`] | BIRD 1.6 `show protocols` (Debian's and calico-node's), and the `calicoctl node status` table derived from it |
//! | [`frr`] | FRR `show bgp summary json` and `show bgp ipv4 unicast json` (FRR and VyOS) |
//! | [`routes`] | iproute2 `ip -j route` |

pub mod bird;
pub mod frr;
pub mod ping;
pub mod routes;
pub mod traceroute;

pub use bird::{
    node_status, parse_show_protocols, render_table, BirdError, PeerRow, PeerType, ProtocolRow,
    ShowProtocols, Since,
};
pub use frr::{
    parse_bgp_summary, parse_bgp_table, BgpNextHop, BgpPath, BgpPeer, BgpSummary, BgpTable,
    FrrError,
};
pub use ping::{parse_ping, IcmpError, PingError, PingResult, Rtt};
pub use routes::{find_route, parse_ip_routes, Route, RouteError, RouteKind};
pub use traceroute::{addresses, parse_traceroute, Hop, TracerouteError};

/// Any probe parser's error.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Ping(#[from] PingError),
    #[error(transparent)]
    Traceroute(#[from] TracerouteError),
    #[error(transparent)]
    Bird(#[from] BirdError),
    #[error(transparent)]
    Frr(#[from] FrrError),
    #[error(transparent)]
    Route(#[from] RouteError),
}
