//! The adaptation of calico-node's BIRD files for upstream BIRD 1.6 (Debian's `bird`).
//!
//! Calico's BIRD fork adds the `krt_tunnel` route attribute (which tunnel device the
//! kernel route uses); upstream BIRD rejects it. The emulated flavor has no IPIP data
//! plane, so the assignments go and everything else stays as calico-node wrote it.

use super::confd::BirdFiles;

/// Where calico-node keeps its BIRD files and control socket; the emulated nodes use
/// the same paths so commands work the same on both flavors.
pub const CONFIG_DIR: &str = "/etc/calico/confd/config";
pub const CONTROL_SOCKET: &str = "/var/run/calico/bird.ctl";

pub fn upstream(files: &BirdFiles) -> BirdFiles {
    BirdFiles {
        bird: without_krt_tunnel(&files.bird),
        aggr: without_krt_tunnel(&files.aggr),
        ipam: without_krt_tunnel(&files.ipam),
    }
}

/// The text without `krt_tunnel` assignments: a cross-subnet choice
/// (`if <next hop on our subnet> then krt_tunnel = ""; else krt_tunnel = "tunl0";`)
/// goes whole, any other assignment alone. Every other byte stays.
fn without_krt_tunnel(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("krt_tunnel") {
        // The statement ends at the `;` after the assignment.
        let end = rest[at..].find(';').map_or(rest.len(), |i| at + i + 1);
        // A choice between two assignments starts at its `if` and ends at the
        // second assignment's `;`.
        let head = &rest[..at];
        let choice = head
            .rfind("if")
            .filter(|&i| head[i..].contains("bgp_next_hop") && !head[i..].contains(';'))
            .filter(|_| rest[end..].trim_start().starts_with("else"));
        match choice {
            Some(start) => {
                out.push_str(&rest[..start]);
                let after_else = end + rest[end..].find("else").unwrap_or(0) + 4;
                let second = rest[after_else..]
                    .find(';')
                    .map_or(rest.len(), |i| after_else + i + 1);
                rest = &rest[second..];
            }
            None => {
                out.push_str(&rest[..at]);
                rest = &rest[end..];
            }
        }
    }
    out.push_str(rest);
    // Lines left empty by a removal go too.
    out.lines()
        .filter(|l| !l.trim().is_empty() || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_krt_tunnel_goes() {
        let files = BirdFiles {
            bird: "router id 1.2.3.4;\n".into(),
            aggr: String::new(),
            ipam:
                "  if ( net ~ 10.0.0.0/8 ) then {\n    krt_tunnel = \"tunl0\";\n    accept;\n  }\n"
                    .into(),
        };
        let up = upstream(&files);
        assert_eq!(up.bird, files.bird);
        assert_eq!(
            up.ipam,
            "  if ( net ~ 10.0.0.0/8 ) then {\n    accept;\n  }\n"
        );
    }

    #[test]
    fn a_cross_subnet_choice_goes_whole_in_both_layouts() {
        let lines = "  if ( net ~ 10.0.0.0/8 ) then {\n    if defined(bgp_next_hop) && ( bgp_next_hop ~ 10.1.0.0/16 ) then\n      krt_tunnel = \"\";\n    else\n      krt_tunnel = \"tunl0\";\n    accept;\n  }\n";
        let one_line = "  if (net ~ 10.0.0.0/8) then { if (defined(bgp_next_hop)&&(bgp_next_hop ~ 10.1.0.0/16)) then krt_tunnel=\"\"; else krt_tunnel=\"tunl0\"; accept; }\n  if (net ~ 10.2.0.0/16) then { krt_tunnel=\"tunl0\"; accept; }\n";
        let adapt = |ipam: &str| {
            upstream(&BirdFiles {
                bird: String::new(),
                aggr: String::new(),
                ipam: ipam.into(),
            })
            .ipam
        };
        assert_eq!(
            adapt(lines),
            "  if ( net ~ 10.0.0.0/8 ) then {\n    accept;\n  }\n"
        );
        assert_eq!(
            adapt(one_line),
            "  if (net ~ 10.0.0.0/8) then {  accept; }\n  if (net ~ 10.2.0.0/16) then {  accept; }\n"
        );
    }
}
