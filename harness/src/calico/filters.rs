//! BGPFilters as confd writes them for BIRD (IPv4): one function per filter and
//! direction, and the calls with which a peer's import and export filters run them.

use sha2::{Digest, Sha256};

use super::resources::{
    BgpFilterSpec, FilterAction, FilterRule, FilterSource, MatchOperator, PeerKind, Resources,
};
use super::version::CalicoVersion;

/// The largest value of BIRD's `int`; priorities and LOCAL_PREF mirror around it.
const BIRD_INT_MAX: u64 = 2_147_483_647;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }

    fn rules(self, f: &BgpFilterSpec) -> &[FilterRule] {
        match self {
            Direction::Import => &f.import_v4,
            Direction::Export => &f.export_v4,
        }
    }
}

/// `'bgp_<name>_importFilterV4'`: BIRD symbols hold 64 characters, so a long name is
/// cut and ends in 16 hex digits of its SHA-256.
pub fn function_name(filter: &str, direction: Direction) -> String {
    let fixed = format!("bgp__{}FilterV4", direction.word());
    let room = 64 - fixed.len();
    let name = if filter.len() <= room {
        filter.to_string()
    } else {
        let hash = hex::encode_upper(Sha256::digest(filter.as_bytes()));
        // confd cuts bytes; Kubernetes names are ASCII, and a name that is not is
        // cut at the character boundary below, never inside a character.
        let mut keep = room - 17;
        while !filter.is_char_boundary(keep) {
            keep -= 1;
        }
        format!("{}_{}", &filter[..keep], &hash[..16])
    };
    format!("'bgp_{name}_{}FilterV4'", direction.word())
}

/// The "BGP Filters" section: every filter with IPv4 rules, in name order.
pub fn functions(resources: &Resources, version: CalicoVersion) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, f) in &resources.bgp_filters {
        if f.import_v4.is_empty() && f.export_v4.is_empty() {
            continue;
        }
        lines.push(format!("# v4 BGPFilter {name}"));
        for direction in [Direction::Import, Direction::Export] {
            let rules = direction.rules(f);
            if rules.is_empty() {
                continue;
            }
            let by_peer_type = rules.iter().any(|r| r.peer_type.is_some());
            let params = if by_peer_type { "bool is_same_as" } else { "" };
            lines.push(format!(
                "function {}({params}) {{",
                function_name(name, direction)
            ));
            for rule in rules {
                let statement = statement(rule, version);
                lines.push(match rule.peer_type {
                    Some(PeerKind::Ibgp) => format!("  if (is_same_as) then {{ {statement} }}"),
                    Some(PeerKind::Ebgp) => format!("  if (!is_same_as) then {{ {statement} }}"),
                    None => format!("  {statement}"),
                });
            }
            lines.push("}".into());
        }
    }
    if lines.is_empty() {
        lines.push("# No v4 BGPFilters configured".into());
    }
    lines
}

/// The calls a peer's filter block makes, in the order of its `filters`: each filter
/// that exists and has rules in that direction (`same_as` goes to one that
/// distinguishes iBGP from eBGP).
pub fn calls(
    resources: &Resources,
    filters: &[String],
    direction: Direction,
    same_as: bool,
) -> Vec<String> {
    filters
        .iter()
        .filter_map(|name| {
            let f = resources.bgp_filters.get(name)?;
            let rules = direction.rules(f);
            if rules.is_empty() {
                return None;
            }
            let arg = if rules.iter().any(|r| r.peer_type.is_some()) {
                same_as.to_string()
            } else {
                String::new()
            };
            Some(format!("{}({arg});", function_name(name, direction)))
        })
        .collect()
}

/// One rule as a BIRD statement.
fn statement(rule: &FilterRule, version: CalicoVersion) -> String {
    let action = match rule.action {
        FilterAction::Accept => "accept;",
        FilterAction::Reject => "reject;",
    };
    let operator = rule.match_operator.map(|op| match op {
        MatchOperator::Equal => "=",
        MatchOperator::NotEqual => "!=",
        MatchOperator::In => "~",
        MatchOperator::NotIn => "!~",
    });
    if !version.filter_conditions() {
        // v3.26: every rule matches a CIDR.
        let cidr = rule.cidr.map(|c| c.to_string()).unwrap_or_default();
        return format!(
            "if ( net {} {cidr} ) then {{ {action} }}",
            operator.unwrap_or("~")
        );
    }
    let mut conditions = Vec::new();
    if let (Some(cidr), Some(op)) = (rule.cidr, operator) {
        let target = match rule.prefix_length {
            Some(p) => format!(
                "[ {cidr}{{{},{}}} ]",
                p.min
                    .map_or(cidr.prefix_len(), |m| m.max(cidr.prefix_len())),
                p.max
                    .map_or(cidr.max_prefix_len(), |m| m.min(cidr.max_prefix_len()))
            ),
            None => cidr.to_string(),
        };
        conditions.push(format!("(net {op} {target})"));
    }
    if rule.source == Some(FilterSource::RemotePeers) {
        conditions.push("((defined(source))&&(source ~ [ RTS_BGP ]))".into());
    }
    if let Some(iface) = &rule.interface {
        conditions.push(format!("((defined(ifname))&&(ifname ~ \"{iface}\"))"));
    }
    if let Some(value) = rule.communities.as_ref().and_then(|c| c.values.first()) {
        conditions.push(match community_parts(value)[..] {
            [a, b] => format!("(({a}, {b}) ~ bgp_community)"),
            [a, b, c] => format!("(({a}, {b}, {c}) ~ bgp_large_community)"),
            _ => String::new(),
        });
    }
    if !rule.as_path_prefix.is_empty() {
        let path: Vec<String> = rule.as_path_prefix.iter().map(|a| a.to_string()).collect();
        conditions.push(format!("(bgp_path ~ [= {} * =])", path.join(" ")));
    }
    if let Some(p) = rule.priority {
        conditions.push(format!(
            "(defined(bgp_local_pref)&&(bgp_local_pref = {}))",
            BIRD_INT_MAX.saturating_sub(u64::from(p))
        ));
    }
    let mut body: Vec<String> = Vec::new();
    for op in &rule.operations {
        if let Some(c) = &op.add_community {
            body.push(match community_parts(&c.value)[..] {
                [a, b] => format!("bgp_community.add(({a}, {b}));"),
                [a, b, c] => format!("bgp_large_community.add(({a}, {b}, {c}));"),
                _ => String::new(),
            });
        } else if let Some(p) = &op.prepend_as_path {
            // BIRD prepends one AS at a time: the last one prepended comes first.
            body.extend(
                p.prefix
                    .iter()
                    .rev()
                    .map(|a| format!("bgp_path.prepend({a});")),
            );
        } else if let Some(p) = &op.set_priority {
            body.push(format!(
                "bgp_local_pref = {};",
                BIRD_INT_MAX.saturating_sub(u64::from(p.value))
            ));
        }
    }
    body.push(action.into());
    let body = body.join(" ");
    if conditions.is_empty() {
        body
    } else {
        format!("if ({}) then {{ {body} }}", conditions.join("&&"))
    }
}

fn community_parts(value: &str) -> Vec<&str> {
    value.split(':').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_filter_names_are_cut_and_hashed_to_fit_birds_symbols() {
        assert_eq!(
            function_name("my-filter", Direction::Import),
            "'bgp_my-filter_importFilterV4'"
        );
        // 28 characters of the name, `_`, 16 hex digits of its SHA-256: 64 in all.
        assert_eq!(
            function_name(&"a".repeat(80), Direction::Export),
            "'bgp_aaaaaaaaaaaaaaaaaaaaaaaaaaaa_0F45E858FBC4176C_exportFilterV4'"
        );
        // A name that is not ASCII is cut between characters, not inside one.
        let name = function_name(&"é".repeat(40), Direction::Import);
        assert!(name.starts_with("'bgp_éééééééééééééé_"), "{name}");
    }
}
