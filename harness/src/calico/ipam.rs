//! Calico IPAM, deterministically: one block per node from the pool, pod addresses
//! from the node's block.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use super::resources::{BlockAffinitySpec, Resource, Resources};

/// An IPAM block affine to a node, with its affinity state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cidr: Ipv4Net,
    /// `""` (implicitly confirmed), `confirmed`, `pending`, `pendingDeletion`.
    pub state: String,
}

impl Block {
    /// confd's key for the block (`10.244.0.0-26`); blocks are written in its order.
    pub fn key(&self) -> String {
        format!("{}-{}", self.cidr.addr(), self.cidr.prefix_len())
    }
}

/// The node's IPv4 blocks, in confd's order; deleted affinities are gone.
pub fn node_blocks(resources: &Resources, node: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = resources
        .block_affinities
        .values()
        .filter(|a| a.node == node && a.deleted != "true")
        .filter_map(|a| match a.cidr {
            IpNet::V4(cidr) => Some(Block {
                cidr,
                state: a.state.clone(),
            }),
            IpNet::V6(_) => None,
        })
        .collect();
    blocks.sort_by_key(Block::key);
    blocks.dedup();
    blocks
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IpamError {
    #[error("no enabled IPv4 IPPool to allocate blocks from")]
    NoPool,
    #[error("IPPool {pool}: no free /{size} block left for node {node}")]
    Exhausted {
        pool: String,
        size: u8,
        node: String,
    },
}

/// Gives every node in `nodes` without a block the lowest free block of the first
/// enabled IPv4 pool (by name), confirmed, as BlockAffinity objects to apply. The same
/// nodes in the same order always get the same blocks.
pub fn allocate(resources: &Resources, nodes: &[&str]) -> Result<Vec<Resource>, IpamError> {
    let (pool_name, pool) = resources
        .ip_pools
        .iter()
        .find(|(_, p)| !p.disabled && p.cidr.addr().is_ipv4())
        .ok_or(IpamError::NoPool)?;
    let IpNet::V4(cidr) = pool.cidr else {
        return Err(IpamError::NoPool);
    };
    let size = pool.block_size();
    let mut taken: BTreeSet<Ipv4Net> = resources
        .block_affinities
        .values()
        .filter_map(|a| match a.cidr {
            IpNet::V4(c) => Some(c),
            IpNet::V6(_) => None,
        })
        .collect();
    let mut out = Vec::new();
    for node in nodes {
        if !node_blocks(resources, node).is_empty() {
            continue;
        }
        let exhausted = || IpamError::Exhausted {
            pool: pool_name.clone(),
            size,
            node: node.to_string(),
        };
        let block = cidr
            .subnets(size)
            .map_err(|_| exhausted())?
            .find(|b| !taken.iter().any(|t| t.contains(b) || b.contains(t)))
            .ok_or_else(exhausted)?;
        taken.insert(block);
        let name = format!(
            "{node}-{}-{}",
            block.addr().to_string().replace('.', "-"),
            block.prefix_len()
        );
        out.push(Resource::BlockAffinity(
            name,
            BlockAffinitySpec {
                node: node.to_string(),
                cidr: IpNet::V4(block),
                state: "confirmed".into(),
                deleted: String::new(),
                kind: "host".into(),
            },
        ));
    }
    Ok(out)
}

/// The `ordinal`-th address of a block, as Calico hands them out in a fresh block
/// (ordinal 0 is the block's first address, which Calico does use).
pub fn pod_address(block: Ipv4Net, ordinal: usize) -> Option<Ipv4Addr> {
    let size = 1u64 << (32 - u32::from(block.prefix_len()));
    let ordinal = u64::try_from(ordinal).ok().filter(|o| *o < size)?;
    let base = u64::from(u32::from(block.network()));
    u32::try_from(base + ordinal).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calico::resources::parse;

    fn pool(cidr: &str, block: u8) -> Resources {
        let mut r = Resources::default();
        let yaml = format!(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: {cidr}, blockSize: {block}}}\n"
        );
        r.apply(parse(&yaml, "t").unwrap()).unwrap();
        r
    }

    fn cidrs(objects: &[Resource]) -> Vec<String> {
        objects
            .iter()
            .map(|o| match o {
                Resource::BlockAffinity(_, s) => format!("{}={}", s.node, s.cidr),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn one_block_per_node_in_order_and_repeatable() {
        let r = pool("10.244.0.0/16", 26);
        let a = allocate(&r, &["n1", "n2", "n3"]).unwrap();
        assert_eq!(
            cidrs(&a),
            [
                "n1=10.244.0.0/26",
                "n2=10.244.0.64/26",
                "n3=10.244.0.128/26"
            ]
        );
        assert_eq!(a, allocate(&r, &["n1", "n2", "n3"]).unwrap());
    }

    #[test]
    fn existing_blocks_are_kept_and_skipped() {
        let mut r = pool("10.244.0.0/16", 26);
        r.apply(allocate(&r, &["n2"]).unwrap()).unwrap();
        let a = allocate(&r, &["n1", "n2"]).unwrap();
        assert_eq!(cidrs(&a), ["n1=10.244.0.64/26"]);
    }

    #[test]
    fn exhaustion_and_no_pool_are_errors() {
        let r = pool("10.0.0.0/25", 26);
        assert!(matches!(
            allocate(&r, &["a", "b", "c"]),
            Err(IpamError::Exhausted { .. })
        ));
        assert_eq!(
            allocate(&Resources::default(), &["a"]),
            Err(IpamError::NoPool)
        );
    }

    #[test]
    fn pod_addresses_come_from_the_block() {
        let b: Ipv4Net = "10.244.0.64/26".parse().unwrap();
        assert_eq!(pod_address(b, 0), Some("10.244.0.64".parse().unwrap()));
        assert_eq!(pod_address(b, 63), Some("10.244.0.127".parse().unwrap()));
        assert_eq!(pod_address(b, 64), None);
    }
}
