//! FRR's (and VyOS's) `show bgp summary json` and `show bgp ipv4 unicast json`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum FrrError {
    #[error("not FRR JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no {0} section in the output")]
    MissingSection(&'static str),
    #[error("unreadable {what}: {value:?}")]
    Field { what: &'static str, value: String },
}

fn field(what: &'static str, value: &str) -> FrrError {
    FrrError::Field {
        what,
        value: value.to_string(),
    }
}

// ---------------------------------------------------------------- summary

/// One neighbor of `show bgp summary json` (ipv4Unicast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    /// The neighbor as FRR names it: an address, or an interface for unnumbered peers.
    pub address: String,
    /// `Established`, `Active`, `Connect`, `Idle`, `Idle (Admin)`, `OpenSent`, ...
    pub state: String,
    pub remote_as: Option<u32>,
    pub local_as: Option<u32>,
    /// Prefixes received (accepted) from the peer.
    pub pfx_rcd: Option<u64>,
    /// Prefixes sent to the peer.
    pub pfx_snt: Option<u64>,
    /// The peer's host name (from its hostname capability).
    pub hostname: Option<String>,
    /// The neighbor's configured description.
    pub description: Option<String>,
    pub uptime_msec: Option<u64>,
}

impl BgpPeer {
    pub fn is_established(&self) -> bool {
        self.state == "Established"
    }
}

/// The ipv4Unicast part of `show bgp summary json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSummary {
    pub router_id: Option<Ipv4Addr>,
    pub local_as: Option<u32>,
    /// By neighbor address (as FRR prints it).
    pub peers: BTreeMap<String, BgpPeer>,
}

impl BgpSummary {
    /// The neighbor with this address.
    pub fn peer(&self, address: impl std::fmt::Display) -> Option<&BgpPeer> {
        self.peers.get(&address.to_string())
    }

    /// Neighbors whose session is Established.
    pub fn established(&self) -> impl Iterator<Item = &BgpPeer> {
        self.peers.values().filter(|p| p.is_established())
    }
}

#[derive(Deserialize)]
struct RawSummary {
    #[serde(rename = "ipv4Unicast")]
    ipv4_unicast: Option<RawAfiSummary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAfiSummary {
    router_id: Option<String>,
    #[serde(rename = "as")]
    local_as: Option<u32>,
    #[serde(default)]
    peers: BTreeMap<String, RawPeer>,
}

/// FRR prints AS numbers as numbers; accept text too (e.g. `external`).
#[derive(Deserialize)]
#[serde(untagged)]
enum AsNumber {
    Number(u32),
    Text(String),
}

impl AsNumber {
    fn number(self) -> Option<u32> {
        match self {
            AsNumber::Number(n) => Some(n),
            AsNumber::Text(s) => s.parse().ok(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPeer {
    state: String,
    remote_as: Option<AsNumber>,
    local_as: Option<AsNumber>,
    pfx_rcd: Option<u64>,
    pfx_snt: Option<u64>,
    hostname: Option<String>,
    desc: Option<String>,
    peer_uptime_msec: Option<u64>,
}

/// Parses `vtysh -c 'show bgp summary json'` (its ipv4Unicast section). FRR prints
/// `{}` when no neighbor is configured: that is an empty summary.
pub fn parse_bgp_summary(json: &str) -> Result<BgpSummary, FrrError> {
    let value: serde_json::Value = serde_json::from_str(json)?;
    if value.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(BgpSummary {
            router_id: None,
            local_as: None,
            peers: BTreeMap::new(),
        });
    }
    let raw: RawSummary = serde_json::from_value(value)?;
    let afi = raw
        .ipv4_unicast
        .ok_or(FrrError::MissingSection("ipv4Unicast"))?;
    let router_id = afi
        .router_id
        .map(|r| r.parse().map_err(|_| field("router id", &r)))
        .transpose()?;
    let peers = afi
        .peers
        .into_iter()
        .map(|(address, p)| {
            let peer = BgpPeer {
                address: address.clone(),
                state: p.state,
                remote_as: p.remote_as.and_then(AsNumber::number),
                local_as: p.local_as.and_then(AsNumber::number),
                pfx_rcd: p.pfx_rcd,
                pfx_snt: p.pfx_snt,
                hostname: p.hostname,
                description: p.desc,
                uptime_msec: p.peer_uptime_msec,
            };
            (address, peer)
        })
        .collect();
    Ok(BgpSummary {
        router_id,
        local_as: afi.local_as,
        peers,
    })
}

// ---------------------------------------------------------------- RIB

/// A next hop of a BGP path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNextHop {
    /// `0.0.0.0` for the router's own `network` routes.
    pub ip: IpAddr,
    pub hostname: Option<String>,
    pub used: bool,
}

/// One path to a prefix in FRR's BGP table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPath {
    pub valid: bool,
    /// The best path (`bestpath`).
    pub best: bool,
    /// Installed alongside the best path (`multipath`); the best path itself does not carry the flag.
    pub multipath: bool,
    /// `internal` or `external`.
    pub path_from: Option<String>,
    /// The peer the path came from; `None` for local routes (`(unspec)`).
    pub peer_id: Option<IpAddr>,
    /// As printed, e.g. `800 65008`; empty for local and iBGP-originated routes.
    pub as_path: String,
    /// The AS numbers of `as_path` in order (sets and confederation segments flattened).
    pub as_path_asns: Vec<u32>,
    pub origin: Option<String>,
    pub next_hops: Vec<BgpNextHop>,
    pub local_pref: Option<u32>,
    pub metric: Option<u32>,
    pub weight: Option<u32>,
}

impl BgpPath {
    /// Best or multipath: what the router installs.
    pub fn is_installed(&self) -> bool {
        self.valid && (self.best || self.multipath)
    }
}

/// `show bgp ipv4 unicast json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpTable {
    pub router_id: Option<Ipv4Addr>,
    pub local_as: Option<u32>,
    pub routes: BTreeMap<Ipv4Net, Vec<BgpPath>>,
}

impl BgpTable {
    /// The paths to `prefix` (empty when the table has none).
    pub fn paths(&self, prefix: &Ipv4Net) -> &[BgpPath] {
        self.routes.get(prefix).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The next hops of the best and multipath paths to `prefix`: what the router
    /// forwards to. Sorted, without duplicates; empty when the prefix is absent.
    pub fn installed_next_hops(&self, prefix: &Ipv4Net) -> Vec<IpAddr> {
        let mut hops: Vec<IpAddr> = self
            .paths(prefix)
            .iter()
            .filter(|p| p.is_installed())
            .flat_map(|p| p.next_hops.iter().map(|n| n.ip))
            .collect();
        hops.sort();
        hops.dedup();
        hops
    }

    /// The best path to `prefix`.
    pub fn best(&self, prefix: &Ipv4Net) -> Option<&BgpPath> {
        self.paths(prefix).iter().find(|p| p.best)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTable {
    router_id: Option<String>,
    #[serde(rename = "localAS")]
    local_as: Option<u32>,
    routes: BTreeMap<String, Vec<RawPath>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPath {
    #[serde(default)]
    valid: bool,
    #[serde(default)]
    bestpath: bool,
    #[serde(default)]
    multipath: bool,
    path_from: Option<String>,
    peer_id: Option<String>,
    path: Option<String>,
    origin: Option<String>,
    #[serde(default)]
    nexthops: Vec<RawNextHop>,
    loc_prf: Option<u32>,
    metric: Option<u32>,
    weight: Option<u32>,
}

#[derive(Deserialize)]
struct RawNextHop {
    ip: String,
    hostname: Option<String>,
    #[serde(default)]
    used: bool,
}

/// Parses `vtysh -c 'show bgp ipv4 unicast json'`.
pub fn parse_bgp_table(json: &str) -> Result<BgpTable, FrrError> {
    let raw: RawTable = serde_json::from_str(json)?;
    let router_id = raw
        .router_id
        .map(|r| r.parse().map_err(|_| field("router id", &r)))
        .transpose()?;
    let mut routes = BTreeMap::new();
    for (prefix, paths) in raw.routes {
        let net: Ipv4Net = prefix.parse().map_err(|_| field("prefix", &prefix))?;
        let paths = paths
            .into_iter()
            .map(convert_path)
            .collect::<Result<Vec<_>, _>>()?;
        routes.insert(net, paths);
    }
    Ok(BgpTable {
        router_id,
        local_as: raw.local_as,
        routes,
    })
}

fn convert_path(p: RawPath) -> Result<BgpPath, FrrError> {
    let peer_id = match p.peer_id.as_deref() {
        None | Some("(unspec)") => None,
        Some(id) => Some(id.parse().map_err(|_| field("peer id", id))?),
    };
    let as_path = p.path.unwrap_or_default();
    let as_path_asns = parse_as_path(&as_path)?;
    let next_hops = p
        .nexthops
        .into_iter()
        .map(|n| {
            Ok(BgpNextHop {
                ip: n.ip.parse().map_err(|_| field("next hop", &n.ip))?,
                hostname: n.hostname,
                used: n.used,
            })
        })
        .collect::<Result<Vec<_>, FrrError>>()?;
    Ok(BgpPath {
        valid: p.valid,
        best: p.bestpath,
        multipath: p.multipath,
        path_from: p.path_from,
        peer_id,
        as_path,
        as_path_asns,
        origin: p.origin,
        next_hops,
        local_pref: p.loc_prf,
        metric: p.metric,
        weight: p.weight,
    })
}

/// `500 65008`, `65001 {65002,65003}`, `(65010) 65020` -> the AS numbers in order.
pub fn parse_as_path(path: &str) -> Result<Vec<u32>, FrrError> {
    path.split(|c: char| c.is_whitespace() || matches!(c, ',' | '{' | '}' | '(' | ')' | '[' | ']'))
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<u32>().map_err(|_| field("AS path", path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_paths() {
        assert_eq!(parse_as_path("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_as_path("800 65008").unwrap(), [800, 65008]);
        assert_eq!(
            parse_as_path("(65010) 65020 {65001,65002}").unwrap(),
            [65010, 65020, 65001, 65002]
        );
        assert!(parse_as_path("800 x").is_err());
    }

    #[test]
    fn empty_summary() {
        let s = parse_bgp_summary("{}\n").unwrap();
        assert!(s.peers.is_empty());
        assert!(matches!(
            parse_bgp_summary("{\"ipv6Unicast\":{}}"),
            Err(FrrError::MissingSection("ipv4Unicast"))
        ));
    }

    #[test]
    fn bad_fields() {
        let bad_prefix = r#"{"routes":{"10.0.0.0/33":[]}}"#;
        assert!(matches!(
            parse_bgp_table(bad_prefix),
            Err(FrrError::Field { what: "prefix", .. })
        ));
        let bad_hop = r#"{"routes":{"10.0.0.0/24":[{"nexthops":[{"ip":"nope"}]}]}}"#;
        assert!(matches!(
            parse_bgp_table(bad_hop),
            Err(FrrError::Field {
                what: "next hop",
                ..
            })
        ));
        let no_state = r#"{"ipv4Unicast":{"peers":{"10.0.0.1":{"remoteAs":1}}}}"#;
        assert!(matches!(
            parse_bgp_summary(no_state),
            Err(FrrError::Json(_))
        ));
    }
}
