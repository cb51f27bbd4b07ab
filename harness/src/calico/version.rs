//! The Calico versions the emulated calico-node renders (v3.23.x to v3.32.x), and what
//! changed in confd's BIRD output from one minor version to the next: the one place
//! where versions differ, read as a changelog.

use std::fmt;
use std::str::FromStr;

/// The oldest and newest minor versions rendered.
pub const OLDEST_MINOR: u16 = 23;
pub const NEWEST_MINOR: u16 = 32;

/// How the supported range reads in messages.
pub const SUPPORTED: &str = "v3.23.0 to v3.32.x";

/// A Calico release, `v3.<minor>.<patch>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalicoVersion {
    pub minor: u16,
    pub patch: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("'{0}' is not a Calico version (vMAJOR.MINOR.PATCH); supported: {SUPPORTED}")]
    Unreadable(String),
    #[error("Calico {0} is not supported; supported: {SUPPORTED}")]
    Unsupported(String),
}

impl CalicoVersion {
    /// The seed lab's version, and `calico-lab confd`'s default.
    pub const SEED: CalicoVersion = CalicoVersion {
        minor: 23,
        patch: 2,
    };

    /// The newest release the harness is checked against (the upgrade scenario's
    /// default target).
    pub const NEWEST: CalicoVersion = CalicoVersion {
        minor: NEWEST_MINOR,
        patch: 1,
    };

    fn at_least(self, minor: u16) -> bool {
        self.minor >= minor
    }

    // What changed, version by version. Each method names the first minor version
    // that behaves so; the renderer asks these, never the number.

    /// v3.24: a block whose affinity is still `pending` is left out entirely (v3.23
    /// writes its blackhole route and a "pending" comment).
    pub fn skips_pending_blocks(self) -> bool {
        self.at_least(24)
    }

    /// v3.25: `multihop` moves from the BGP template into each peer, with GTSM:
    /// `ttl security off; multihop;`, or `ttl security on; multihop <ttlSecurity>;`
    /// (mesh peers: `multihop; ttl security off;`).
    pub fn ttl_security_per_peer(self) -> bool {
        self.at_least(25)
    }

    /// v3.26: BGPFilters. Import and export move from the BGP template into each
    /// peer (mesh: `import all` and an export filter calling
    /// `calico_export_to_bgp_peers()`; other peers: inline import and export filters),
    /// `calico_export_to_bgp_peers` becomes a function without its final `reject`, a
    /// "BGP Filters" section follows the template, and mesh peers lose the v3.25
    /// `multihop; ttl security off;`.
    pub fn per_peer_filters(self) -> bool {
        self.at_least(26)
    }

    /// v3.27: `calico_export_to_bgp_peers(bool internal_peer)` rejects the routes of
    /// Felix's tunnel devices (`reject_tunnel_routes`) towards peers in the node's
    /// own AS; each export filter passes whether its peer is one.
    pub fn tunnel_route_filter(self) -> bool {
        self.at_least(27)
    }

    /// v3.28: `reject_local_routes()` keeps routes of the eBPF data plane's
    /// `bpf*.cali` devices from leaving the node.
    pub fn local_route_filter(self) -> bool {
        self.at_least(28)
    }

    /// v3.32: routes carry their priority between nodes. Every peer's export filter
    /// sets LOCAL_PREF to `2147483647 - krt_metric` (metric 1024 by default, so
    /// 2147482623) and its import filter prefers better routes; the kernel filter
    /// sets the metric back from LOCAL_PREF; `calico_aggr` also exports routes inside
    /// a block with a metric below 1024. confd's peer logic moved into Go: one
    /// "BGP Protocol Configurations" list, pool filters on one line each, no
    /// `reject_disabled_pools()`.
    pub fn metric_local_pref(self) -> bool {
        self.at_least(32)
    }

    /// v3.25: a single-address (/32) `serviceLoadBalancerIPs` entry is advertised per
    /// Service (from nodes that qualify), not from every node; a Cluster-policy
    /// LoadBalancer with such an address is advertised from every node.
    pub fn single_load_balancer_ips(self) -> bool {
        self.at_least(25)
    }

    /// v3.30: single-address `serviceExternalIPs` entries likewise.
    pub fn single_service_ips(self) -> bool {
        self.at_least(30)
    }

    /// v3.31: EndpointSlices instead of Endpoints, every `clusterIPs` address, and
    /// `serviceLoadBalancerAggregation`: when Disabled, LoadBalancer ranges go per
    /// Service and Cluster-policy Services are advertised where they have endpoints.
    pub fn endpoint_slices(self) -> bool {
        self.at_least(31)
    }

    /// v3.27: BGPFilter rules match on conditions joined by `&&` (`(net ~ cidr)`,
    /// source, interface) and a rule without any is a bare action.
    pub fn filter_conditions(self) -> bool {
        self.at_least(27)
    }

    /// v3.24: the reverse of a BGPPeer by address runs over that address's family
    /// only (v3.23 also peers a node found by its IPv6 address over IPv4).
    pub fn reverse_peering_by_family(self) -> bool {
        self.at_least(24)
    }

    /// v3.25: `CALICO_ROUTER_ID=hash` keeps the router id below 224.0.0.0.
    pub fn router_id_below_multicast(self) -> bool {
        self.at_least(25)
    }

    /// v3.30: BGPPeer `nextHopMode` (Auto, Self, Keep) overrides
    /// `keepOriginalNextHop`, and peers chosen by selector carry either.
    pub fn next_hop_modes(self) -> bool {
        self.at_least(30)
    }

    /// v3.31: BGPPeer `localASNumber`: the AS the node presents to that peer.
    pub fn local_as_numbers(self) -> bool {
        self.at_least(31)
    }

    /// v3.32: BGPPeer `keepaliveTime`.
    pub fn keepalive_times(self) -> bool {
        self.at_least(32)
    }

    /// The metric Felix gives a workload's route on its node: from v3.32 the normal
    /// route priority, 1024 (the value `calico_aggr` compares with); before, none.
    pub fn workload_route_metric(self) -> Option<u32> {
        self.metric_local_pref().then_some(1024)
    }
}

/// The BGP resource fields each minor version added (Calico's API at each tag): a
/// resource that sets one is refused for an older version.
const ADDED: &[(&str, &str, u16)] = &[
    ("BGPPeer", "ttlSecurity", 25),
    ("BGPPeer", "reachableBy", 25),
    ("BGPConfiguration", "ignoredInterfaces", 25),
    ("BGPPeer", "filters", 26),
    ("BGPFilter", "BGPFilter", 26),
    ("BGPFilter", "source", 27),
    ("BGPFilter", "interface", 27),
    ("BGPFilter", "a rule without cidr", 27),
    ("BGPFilter", "prefixLength", 29),
    ("BGPFilter", "peerType", 32),
    ("BGPFilter", "communities", 32),
    ("BGPFilter", "asPathPrefix", 32),
    ("BGPFilter", "priority", 32),
    ("BGPFilter", "operations", 32),
    ("BGPPeer", "localWorkloadSelector", 30),
    ("BGPPeer", "nextHopMode", 30),
    ("BGPPeer", "reversePeering", 30),
    ("BGPConfiguration", "localWorkloadPeeringIPV4", 30),
    ("BGPConfiguration", "localWorkloadPeeringIPV6", 30),
    ("BGPPeer", "localASNumber", 31),
    ("BGPConfiguration", "serviceLoadBalancerAggregation", 31),
    ("BGPPeer", "keepaliveTime", 32),
    ("BGPConfiguration", "ipv4NormalRoutePriority", 32),
    ("BGPConfiguration", "ipv6NormalRoutePriority", 32),
    ("BGPConfiguration", "programClusterRoutes", 32),
];

/// Fields the emulated calico-node parses but does not render yet: refused rather
/// than silently ignored.
const NOT_EMULATED: &[(&str, &str)] = &[("BGPConfiguration", "ipv4NormalRoutePriority")];

/// Refuses a resource that sets a field `version` does not have, or one the
/// emulation does not render.
pub fn check_fields(
    resources: &super::Resources,
    version: CalicoVersion,
) -> Result<(), super::confd::ConfdError> {
    for (kind, name, field) in resources.fields_set() {
        if let Some((_, _, since)) = ADDED.iter().find(|(k, f, _)| *k == kind && *f == field) {
            if version.minor < *since {
                return Err(super::confd::ConfdError::TooNew {
                    kind,
                    name: name.to_string(),
                    field,
                    since: *since,
                    version,
                });
            }
        }
        if NOT_EMULATED.contains(&(kind, field)) {
            return Err(super::confd::ConfdError::NotEmulated {
                kind,
                name: name.to_string(),
                field,
            });
        }
    }
    Ok(())
}

impl FromStr for CalicoVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, VersionError> {
        let unreadable = || VersionError::Unreadable(s.to_string());
        let digits = s.strip_prefix('v').unwrap_or(s);
        let parts: Vec<&str> = digits.split('.').collect();
        let [major, minor, patch] = parts[..] else {
            return Err(unreadable());
        };
        let number = |p: &str| {
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .ok_or_else(unreadable)
        };
        let (major, minor, patch) = (number(major)?, number(minor)?, number(patch)?);
        if major != 3 || !(OLDEST_MINOR..=NEWEST_MINOR).contains(&minor) {
            return Err(VersionError::Unsupported(s.to_string()));
        }
        Ok(CalicoVersion { minor, patch })
    }
}

impl fmt::Display for CalicoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v3.{}.{}", self.minor, self.patch)
    }
}

impl Default for CalicoVersion {
    fn default() -> Self {
        CalicoVersion::SEED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_range_parse_and_others_are_refused_naming_the_range() {
        assert_eq!(
            "v3.23.2".parse::<CalicoVersion>().unwrap(),
            CalicoVersion::SEED
        );
        assert_eq!(
            "3.32.1".parse::<CalicoVersion>().unwrap().to_string(),
            "v3.32.1"
        );
        for bad in ["v3.22.0", "v4.0.0", "v3.33.0", "v2.23.1"] {
            let e = bad.parse::<CalicoVersion>().unwrap_err();
            assert_eq!(e, VersionError::Unsupported(bad.into()));
            assert!(e.to_string().contains(SUPPORTED), "{e}");
        }
        for bad in ["latest", "v3.23", "v3.23.x", "", "v3..1", "v3.23.2-rc1"] {
            let e = bad.parse::<CalicoVersion>().unwrap_err();
            assert_eq!(e, VersionError::Unreadable(bad.into()));
            assert!(e.to_string().contains(SUPPORTED), "{e}");
        }
    }
}
