//! iproute2's `ip -j route` / `ip -j -4 route` (IPv4 tables).
//!
//! A node holds `blackhole 10.244.0.64/26 proto bird` for its own block, remote
//! blocks `via <next hop> proto bird`, and its pods as `10.244.0.64 dev caliX
//! scope link`; a leaf holds ECMP routes whose next hops are in `nexthops`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

/// The route type (`type` in the JSON; absent means unicast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Throw,
    Nat,
    Other(String),
}

impl RouteKind {
    fn from_type(t: Option<&str>) -> RouteKind {
        match t {
            None | Some("unicast") => RouteKind::Unicast,
            Some("blackhole") => RouteKind::Blackhole,
            Some("unreachable") => RouteKind::Unreachable,
            Some("prohibit") => RouteKind::Prohibit,
            Some("local") => RouteKind::Local,
            Some("broadcast") => RouteKind::Broadcast,
            Some("anycast") => RouteKind::Anycast,
            Some("multicast") => RouteKind::Multicast,
            Some("throw") => RouteKind::Throw,
            Some("nat") => RouteKind::Nat,
            Some(other) => RouteKind::Other(other.to_string()),
        }
    }
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// As printed: `default`, `10.1.5.0/24`, or a bare address for a /32.
    pub dst: String,
    pub kind: RouteKind,
    /// The `gateway`, or every `nexthops[].gateway` of a multipath route, in order.
    pub gateways: Vec<Ipv4Addr>,
    /// The output device (absent on multipath and blackhole routes).
    pub dev: Option<String>,
    /// `kernel`, `bird`, `bgp`, `static`, ... (absent for `boot`, ip's default).
    pub protocol: Option<String>,
    /// `link`, `host`, ...; absent means global (universe).
    pub scope: Option<String>,
    pub metric: Option<u32>,
    pub prefsrc: Option<Ipv4Addr>,
}

impl Route {
    /// The destination as a prefix: `default` is 0.0.0.0/0, a bare address a /32.
    pub fn prefix(&self) -> Option<Ipv4Net> {
        if self.dst == "default" {
            return Some(Ipv4Net::default());
        }
        self.dst
            .parse::<Ipv4Net>()
            .ok()
            .or_else(|| self.dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
    }
}

/// The route to exactly `prefix` (`default`, `a.b.c.d/n`, or a bare address for a /32).
pub fn find_route<'a>(routes: &'a [Route], prefix: &Ipv4Net) -> Option<&'a Route> {
    routes.iter().find(|r| r.prefix().as_ref() == Some(prefix))
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("not ip -j route output: {0}")]
    Json(#[from] serde_json::Error),
    #[error("route {index} ({dst}): unreadable {what}: {value:?}")]
    Field {
        index: usize,
        dst: String,
        what: &'static str,
        value: String,
    },
}

#[derive(Deserialize)]
struct RawRoute {
    #[serde(rename = "type")]
    kind: Option<String>,
    dst: String,
    gateway: Option<String>,
    dev: Option<String>,
    protocol: Option<String>,
    scope: Option<String>,
    metric: Option<u32>,
    prefsrc: Option<String>,
    #[serde(default)]
    nexthops: Vec<RawNextHop>,
}

#[derive(Deserialize)]
struct RawNextHop {
    gateway: Option<String>,
}

/// Parses `ip -j route` output (IPv4 tables; an IPv6 gateway is an error).
pub fn parse_ip_routes(json: &str) -> Result<Vec<Route>, RouteError> {
    let raw: Vec<RawRoute> = serde_json::from_str(json)?;
    raw.into_iter()
        .enumerate()
        .map(|(index, r)| {
            let err = |what, value: &str| RouteError::Field {
                index,
                dst: r.dst.clone(),
                what,
                value: value.to_string(),
            };
            let addr = |what, s: &str| s.parse::<Ipv4Addr>().map_err(|_| err(what, s));
            let gateways = r
                .gateway
                .iter()
                .chain(r.nexthops.iter().filter_map(|n| n.gateway.as_ref()))
                .map(|g| addr("gateway", g))
                .collect::<Result<Vec<_>, _>>()?;
            let prefsrc = r
                .prefsrc
                .as_deref()
                .map(|s| addr("prefsrc", s))
                .transpose()?;
            Ok(Route {
                kind: RouteKind::from_type(r.kind.as_deref()),
                gateways,
                dev: r.dev.clone(),
                protocol: r.protocol.clone(),
                scope: r.scope.clone(),
                metric: r.metric,
                prefsrc,
                dst: r.dst.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let json = r#"[{"dst":"default","gateway":"10.1.5.1","dev":"net0","flags":[]},
                       {"dst":"10.244.0.64","dev":"cali1","scope":"link","flags":[]},
                       {"type":"unreachable","dst":"10.9.0.0/16","flags":[]}]"#;
        let routes = parse_ip_routes(json).unwrap();
        assert_eq!(routes[0].prefix(), Some("0.0.0.0/0".parse().unwrap()));
        assert_eq!(routes[1].prefix(), Some("10.244.0.64/32".parse().unwrap()));
        assert_eq!(routes[2].kind, RouteKind::Unreachable);
        assert_eq!(
            find_route(&routes, &"10.244.0.64/32".parse().unwrap()).map(|r| r.dev.as_deref()),
            Some(Some("cali1"))
        );
    }

    #[test]
    fn ipv6_gateway_is_an_error() {
        let json = r#"[{"dst":"default","gateway":"fe80::1","dev":"eth0"}]"#;
        assert!(matches!(
            parse_ip_routes(json),
            Err(RouteError::Field {
                what: "gateway",
                ..
            })
        ));
    }
}
