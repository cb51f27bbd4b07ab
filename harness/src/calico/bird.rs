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
    let strip = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.contains("krt_tunnel"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    BirdFiles {
        bird: strip(&files.bird),
        aggr: strip(&files.aggr),
        ipam: strip(&files.ipam),
    }
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
}
