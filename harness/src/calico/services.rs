//! Which Service addresses a node advertises over BGP and keeps out of its kernel, as
//! calico-node's route generator decides from BGPConfiguration `default` and the
//! cluster's Services and endpoints (IPv4 only).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::peers::Cluster;
use super::resources::{Cidr, EndpointsOf, ServiceSpec};
use super::version::CalicoVersion;

/// The label that takes a node out of service advertisement.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// A node's service routes, as `a.b.c.d/len`, in confd's key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRoutes {
    /// Blackhole routes BIRD exports (`/staticroutes`).
    pub advertised: Vec<String>,
    /// Ranges learned routes must not be programmed for (`/rejectcidrs`).
    pub rejected: Vec<String>,
}

/// confd keys a route `<net>-<len>` and lists keys in string order.
fn keyed(set: BTreeSet<String>) -> Vec<String> {
    set.into_iter().map(|k| k.replacen('-', "/", 1)).collect()
}

fn key(net: IpNet) -> Option<String> {
    match net.trunc() {
        IpNet::V4(n) => Some(format!("{}-{}", n.network(), n.prefix_len())),
        IpNet::V6(_) => None,
    }
}

fn nets(cidrs: &[Cidr]) -> Vec<IpNet> {
    cidrs.iter().filter_map(|c| c.cidr).collect()
}

fn single(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

/// The node's service routes.
pub fn routes(cluster: &Cluster, node: &str, version: CalicoVersion) -> ServiceRoutes {
    let Some(g) = cluster.global() else {
        return ServiceRoutes::default();
    };
    let excluded = cluster
        .nodes
        .get(node)
        .and_then(|n| n.labels.get(EXCLUDE_LABEL))
        .is_some_and(|v| v == "true");
    let cluster_cidrs = nets(&g.service_cluster_ips);
    let external = nets(&g.service_external_ips);
    let load_balancer = nets(&g.service_load_balancer_ips);

    // Ranges every node advertises: single addresses go per service instead
    // (load balancer from v3.25, external from v3.30), and from v3.31 load balancer
    // ranges only while aggregation is on (the default).
    let aggregate = g
        .service_load_balancer_aggregation
        .as_deref()
        .is_none_or(|a| a != "Disabled");
    let global: Vec<IpNet> = cluster_cidrs
        .iter()
        .copied()
        .chain(
            external
                .iter()
                .filter(|n| !(version.single_service_ips() && single(n)))
                .copied(),
        )
        .chain(
            load_balancer
                .iter()
                .filter(|n| !(version.single_load_balancer_ips() && single(n)))
                .filter(|_| aggregate || !version.endpoint_slices())
                .copied(),
        )
        .collect();
    let rejected: BTreeSet<String> = global.iter().filter_map(|n| key(*n)).collect();
    let mut advertised: BTreeSet<String> = if excluded {
        BTreeSet::new()
    } else {
        rejected.clone()
    };
    if !excluded {
        for (id, svc) in &cluster.resources.services {
            let endpoints: Vec<&EndpointsOf> = cluster
                .resources
                .endpoints
                .iter()
                .filter(|((e, _), of)| {
                    // v3.31 reads EndpointSlices, which Kubernetes mirrors from the
                    // Endpoints of a Service without a selector.
                    let read = if version.endpoint_slices() {
                        of.slice || svc.selector.is_none()
                    } else {
                        !of.slice
                    };
                    e.namespace == id.namespace && of.service == id.name && read
                })
                .map(|(_, of)| of)
                .collect();
            let ctx = Advertising {
                node,
                version,
                external: &external,
                load_balancer: &load_balancer,
                aggregate,
            };
            if ctx.advertises(svc, &endpoints) {
                let mut addresses: Vec<String> = Vec::new();
                if !cluster_cidrs.is_empty() {
                    if version.endpoint_slices() {
                        addresses.extend(cluster_ips(svc));
                    } else {
                        addresses.extend(svc.cluster_ip.clone());
                    }
                }
                addresses.extend(
                    svc.external_ips
                        .iter()
                        .filter(|ip| within(ip, &external))
                        .cloned(),
                );
                advertised.extend(
                    addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .filter_map(|ip| key(IpNet::from(ip))),
                );
            }
        }
    }
    ServiceRoutes {
        advertised: keyed(advertised),
        rejected: keyed(rejected),
    }
}

/// What one node's route generator weighs for a Service.
struct Advertising<'a> {
    node: &'a str,
    version: CalicoVersion,
    external: &'a [IpNet],
    load_balancer: &'a [IpNet],
    aggregate: bool,
}

impl Advertising<'_> {
    /// Whether this node advertises the Service's addresses: a local endpoint under
    /// the Local traffic policy; under Cluster, a single load balancer (v3.25) or
    /// external (v3.30) address, or any endpoint once aggregation is off (v3.31).
    fn advertises(&self, svc: &ServiceSpec, endpoints: &[&EndpointsOf]) -> bool {
        let kind = svc.kind.as_deref().unwrap_or("ClusterIP");
        if !["ClusterIP", "NodePort", "LoadBalancer"].contains(&kind) {
            return false;
        }
        match svc.cluster_ip.as_deref() {
            None | Some("") | Some("None") => return false,
            Some(_) => {}
        }
        // The API server's default for the policy of NodePort and LoadBalancer.
        let policy = svc
            .external_traffic_policy
            .as_deref()
            .or((kind != "ClusterIP").then_some("Cluster"))
            .unwrap_or("");
        let local = policy == "Local";
        if policy == "Cluster" && self.version.single_load_balancer_ips() {
            let single_lb = |ip: &String| {
                self.load_balancer
                    .iter()
                    .any(|n| single(n) && ip.parse::<IpAddr>().is_ok_and(|ip| n.contains(&ip)))
            };
            if kind == "LoadBalancer" && svc.load_balancer_ip.as_ref().is_some_and(single_lb) {
                return true;
            }
            if self.version.single_service_ips()
                && svc.external_ips.iter().any(|ip| {
                    self.external
                        .iter()
                        .any(|n| single(n) && ip.parse::<IpAddr>().is_ok_and(|ip| n.contains(&ip)))
                })
            {
                return true;
            }
        }
        if !local && (!self.version.endpoint_slices() || self.aggregate) {
            return false;
        }
        let families: Vec<bool> = if self.version.endpoint_slices() {
            cluster_ips(svc).iter().map(|ip| ip.contains(':')).collect()
        } else {
            vec![svc.cluster_ip.as_deref().unwrap_or_default().contains(':')]
        };
        endpoints.iter().flat_map(|e| &e.endpoints).any(|ep| {
            families.contains(&ep.ipv6)
                && ep.ready
                && (!local || ep.node.as_deref() == Some(self.node))
        })
    }
}

/// `clusterIPs`, which the API server fills from `clusterIP` when left out.
fn cluster_ips(svc: &ServiceSpec) -> Vec<String> {
    if svc.cluster_ips.is_empty() {
        svc.cluster_ip.iter().cloned().collect()
    } else {
        svc.cluster_ips.clone()
    }
}

fn within(ip: &str, nets: &[IpNet]) -> bool {
    ip.parse::<IpAddr>()
        .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip)))
}
