//! BIRD 1.6 `show protocols` (as `birdc`/`birdcl` print it) and the
//! `calicoctl node status` peer table derived from it.
//!
//! ```text
//! BIRD 1.6.8 ready.
//! name     proto    table    state  since       info
//! static1  Static   master   up     07:34:35
//! Node_10_1_5_1 BGP      master   start  07:35:32    Active        Socket: Connection reset by peer
//! ```
//! calico-node's BIRD fork prints the same table under the banner
//! `BIRD v0.3.3+birdv1.6.8 ready.`. `since` is `HH:MM:SS` within 20 hours, else
//! `YYYY-MM-DD`. For BGP, `info` is the session state (padded to 14 columns) and
//! the last error, if any; a protocol in state `down` shows only the error.
//! `show protocols all` parses too: its indented detail lines are skipped.

use std::fmt;

/// The session states BIRD 1.6 prints at the start of a BGP protocol's info.
pub const BGP_STATES: [&str; 8] = [
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
    "Close",
    "Passive",
];

/// The `since` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// `HH:MM:SS`: today, within the last 20 hours.
    Time { hour: u8, minute: u8, second: u8 },
    /// `YYYY-MM-DD`: longer ago.
    Date { year: u16, month: u8, day: u8 },
}

impl Since {
    pub fn parse(s: &str) -> Option<Since> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b[r.clone()]
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| s[r].parse::<u16>().ok())
                .flatten()
        };
        if b.len() == 8 && b[2] == b':' && b[5] == b':' {
            let (hour, minute, second) = (digits(0..2)?, digits(3..5)?, digits(6..8)?);
            (hour < 24 && minute < 60 && second < 61).then_some(Since::Time {
                hour: hour as u8,
                minute: minute as u8,
                second: second as u8,
            })
        } else if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
            ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Since::Date {
                year,
                month: month as u8,
                day: day as u8,
            })
        } else {
            None
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolRow {
    pub name: String,
    /// `BGP`, `Kernel`, `Device`, `Direct`, `Static`, ...
    pub proto: String,
    pub table: String,
    /// `down|start|up|wait|feed|stop|flush`.
    pub state: String,
    /// As printed.
    pub since: String,
    pub since_parsed: Since,
    /// The whole info column as printed (trimmed).
    pub info: String,
    /// The BGP session state word at the start of `info` (one of [`BGP_STATES`]).
    pub info_state: Option<String>,
    /// For BGP: the error text after the state word (or the whole info when there
    /// is no state word, as for a protocol that is `down`).
    pub info_error: Option<String>,
}

impl ProtocolRow {
    pub fn is_bgp(&self) -> bool {
        self.proto == "BGP"
    }

    /// A BGP session in state Established.
    pub fn is_established(&self) -> bool {
        self.info_state.as_deref() == Some("Established")
    }
}

/// The parsed output of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowProtocols {
    /// From the banner: `1.6.8` (Debian's BIRD) or `v0.3.3+birdv1.6.8` (calico-node).
    pub version: Option<String>,
    pub rows: Vec<ProtocolRow>,
}

impl ShowProtocols {
    pub fn get(&self, name: &str) -> Option<&ProtocolRow> {
        self.rows.iter().find(|r| r.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BirdError {
    /// The output is not a protocol table (birdc error, wrong command, empty).
    #[error("not a BIRD protocol table: {0:?}")]
    NotATable(String),
    #[error("line {line}: {reason}: {text:?}")]
    Malformed {
        line: usize,
        text: String,
        reason: String,
    },
}

const HEADINGS: [&str; 6] = ["name", "proto", "table", "state", "since", "info"];

/// Parses `birdc show protocols` (or `show protocols all`) output.
pub fn parse_show_protocols(text: &str) -> Result<ShowProtocols, BirdError> {
    let mut version = None;
    let mut header = false;
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if !header {
            let line = raw.trim();
            if let Some(v) = line
                .strip_prefix("BIRD ")
                .and_then(|rest| rest.strip_suffix(" ready."))
            {
                version = Some(v.to_string());
            } else if line.split_whitespace().eq(HEADINGS) {
                header = true;
            } else {
                return Err(BirdError::NotATable(line.to_string()));
            }
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            // Detail lines of `show protocols all`.
            continue;
        }
        rows.push(parse_row(raw).map_err(|reason| BirdError::Malformed {
            line: i + 1,
            text: raw.to_string(),
            reason,
        })?);
    }
    if !header {
        return Err(BirdError::NotATable(
            text.lines().next().unwrap_or_default().to_string(),
        ));
    }
    Ok(ShowProtocols { version, rows })
}

/// Splits off the first whitespace-separated token.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn parse_row(line: &str) -> Result<ProtocolRow, String> {
    let mut rest = line;
    let mut fields = [""; 5];
    for (slot, heading) in fields.iter_mut().zip(HEADINGS) {
        let (token, after) = next_token(rest).ok_or_else(|| format!("no {heading} column"))?;
        *slot = token;
        rest = after;
    }
    let [name, proto, table, state, since] = fields;
    let since_parsed = Since::parse(since)
        .ok_or_else(|| format!("since {since:?} is neither HH:MM:SS nor YYYY-MM-DD"))?;
    let info = rest.trim().to_string();
    let (info_state, info_error) = match next_token(&info) {
        Some((word, after)) if BGP_STATES.contains(&word) => {
            let error = after.trim();
            (
                Some(word.to_string()),
                (!error.is_empty()).then(|| error.to_string()),
            )
        }
        Some(_) if proto == "BGP" => (None, Some(info.clone())),
        _ => (None, None),
    };
    Ok(ProtocolRow {
        name: name.to_string(),
        proto: proto.to_string(),
        table: table.to_string(),
        state: state.to_string(),
        since: since.to_string(),
        since_parsed,
        info,
        info_state,
        info_error,
    })
}

/// calicoctl's PEER TYPE, from the protocol name's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerType {
    /// `Global_<ip>`: a BGPPeer with neither node nor nodeSelector.
    Global,
    /// `Node_<ip>`: a BGPPeer with node or nodeSelector.
    NodeSpecific,
    /// `Mesh_<ip>`: the node-to-node mesh.
    Mesh,
}

impl PeerType {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Global => "global",
            PeerType::NodeSpecific => "node specific",
            PeerType::Mesh => "node-to-node mesh",
        }
    }
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `calicoctl node status`'s IPv4 BGP table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// The peer address from the protocol name, `_` turned back into `.`.
    pub address: String,
    /// From a `_port_<n>` suffix of the protocol name.
    pub port: Option<u16>,
    pub peer_type: PeerType,
    /// The protocol state (`up`, `start`, ...).
    pub state: String,
    pub since: String,
    /// The BGP state and error, words joined by single spaces.
    pub info: String,
}

impl PeerRow {
    /// The PEER ADDRESS cell: the address, or `address:port` (`[address]:port`
    /// for IPv6) when the protocol name carries a port.
    pub fn address_cell(&self) -> String {
        match self.port {
            None => self.address.clone(),
            Some(port) if self.address.contains(':') => format!("[{}]:{port}", self.address),
            Some(port) => format!("{}:{port}", self.address),
        }
    }

    pub fn is_established(&self) -> bool {
        self.info.split_whitespace().next() == Some("Established")
    }
}

/// The rows `calicoctl node status` shows for IPv4: protocols whose proto is `BGP`
/// and whose name matches `^(Global|Node|Mesh)_(.+)$`, in BIRD's order.
///
/// Unlike calicoctl, a BGP row with an empty info column (a protocol disabled in
/// BIRD) is kept, with an empty `info`; calicoctl drops such rows because it
/// wants at least six columns.
pub fn node_status(rows: &[ProtocolRow]) -> Vec<PeerRow> {
    rows.iter()
        .filter(|r| r.is_bgp())
        .filter_map(|r| {
            let (prefix, rest) = r.name.split_once('_')?;
            let peer_type = match prefix {
                "Global" => PeerType::Global,
                "Node" => PeerType::NodeSpecific,
                "Mesh" => PeerType::Mesh,
                _ => return None,
            };
            if rest.is_empty() {
                return None;
            }
            let (addr, port) = match rest.rsplit_once("_port_") {
                Some((addr, port)) if !addr.is_empty() => match port.parse::<u16>() {
                    Ok(port) => (addr, Some(port)),
                    Err(_) => (rest, None),
                },
                _ => (rest, None),
            };
            Some(PeerRow {
                address: addr.replace('_', "."),
                port,
                peer_type,
                state: r.state.clone(),
                since: r.since.clone(),
                info: r.info.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// Widest a cell grows before its text wraps (tablewriter's default).
const MAX_CELL_WIDTH: usize = 30;

/// Renders the peers the way `calicoctl node status` prints them (tablewriter's
/// defaults): upper-case centred headings, `+---+` borders, cells left-aligned
/// (right-aligned when numeric), cells longer than 30 characters wrapped on
/// spaces into the fewest-ragged lines.
pub fn render_table(peers: &[PeerRow]) -> String {
    const HEADERS: [&str; 5] = ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"];
    let mut widths = HEADERS.map(str::len);
    let cells: Vec<[Vec<String>; 5]> = peers
        .iter()
        .map(|p| {
            let row = [
                p.address_cell(),
                p.peer_type.to_string(),
                p.state.clone(),
                p.since.clone(),
                p.info.clone(),
            ];
            let wrapped = row.map(|cell| wrap(&cell, cell.chars().count().min(MAX_CELL_WIDTH)));
            for (width, lines) in widths.iter_mut().zip(&wrapped) {
                for line in lines {
                    *width = (*width).max(line.chars().count());
                }
            }
            wrapped
        })
        .collect();

    let border = {
        let mut s = String::from("+");
        for w in widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = border.clone();
    out.push('|');
    for (h, w) in HEADERS.iter().zip(widths) {
        let gap = w - h.len();
        let left = gap / 2;
        out.push_str(&format!(
            " {}{h}{} |",
            " ".repeat(left),
            " ".repeat(gap - left)
        ));
    }
    out.push('\n');
    out.push_str(&border);
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            out.push('|');
            for (lines, w) in row.iter().zip(widths) {
                let text = lines.get(i).map(String::as_str).unwrap_or("");
                if is_numeric(text) {
                    out.push_str(&format!(" {text:>w$} |"));
                } else {
                    out.push_str(&format!(" {text:<w$} |"));
                }
            }
            out.push('\n');
        }
    }
    out.push_str(&border);
    out
}

/// tablewriter right-aligns numbers (`-12`, `3.5`) and percentages.
fn is_numeric(s: &str) -> bool {
    let s = s.strip_suffix('%').unwrap_or(s);
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Splits `text` on single spaces into lines of at most `limit` characters (more
/// when one word is longer), choosing the breaks that minimise the sum of squared
/// shortfalls of every line but the last, as tablewriter does.
fn wrap(text: &str, limit: usize) -> Vec<String> {
    const TOO_LONG_PENALTY: u64 = 100_000;
    let words: Vec<&str> = text.split(' ').collect();
    let n = words.len();
    let widths: Vec<usize> = words.iter().map(|w| w.chars().count()).collect();
    let limit = widths.iter().copied().fold(limit, usize::max);
    // Width of words[i..j] joined by single spaces (j > i).
    let span = |i: usize, j: usize| widths[i..j].iter().sum::<usize>() + (j - i - 1);

    let mut cost = vec![u64::MAX; n + 1];
    let mut next_break = vec![n; n + 1];
    cost[n] = 0;
    for i in (0..n).rev() {
        if span(i, n) <= limit {
            cost[i] = 0;
            next_break[i] = n;
            continue;
        }
        for j in i + 1..n {
            let line = span(i, j);
            let short = limit.abs_diff(line) as u64;
            let mut c = short * short + cost[j];
            if line > limit {
                c += TOO_LONG_PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                next_break[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let j = next_break[i];
        lines.push(words[i..j].join(" "));
        i = j;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(
            Since::parse("07:34:35"),
            Some(Since::Time {
                hour: 7,
                minute: 34,
                second: 35
            })
        );
        assert_eq!(
            Since::parse("2025-11-20"),
            Some(Since::Date {
                year: 2025,
                month: 11,
                day: 20
            })
        );
        for bad in [
            "7:34:35",
            "25:00:00",
            "2025-13-01",
            "2025/11/20",
            "07:34:3x",
            "",
        ] {
            assert_eq!(Since::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn wrap_picks_least_ragged_breaks() {
        assert_eq!(
            wrap("Active Socket: Connection reset by peer", 30),
            ["Active Socket: Connection", "reset by peer"]
        );
        assert_eq!(wrap("Established", 11), ["Established"]);
        assert_eq!(wrap("", 0), [""]);
        // One word longer than the limit widens it.
        assert_eq!(wrap("aaaa bbbbbbbbbb c", 5), ["aaaa", "bbbbbbbbbb", "c"]);
    }

    #[test]
    fn port_suffix_and_other_names() {
        let text = "BIRD 1.6.8 ready.\n\
                    name     proto    table    state  since       info\n\
                    Global_10_1_8_1_port_1790 BGP      master   start  10:00:00    Connect\n\
                    Local_Workload_10_244_0_1 BGP      master   up     10:00:00    Established\n\
                    Mesh_fd80_24e2__2_port_x BGP      master   up     10:00:00    Established\n\
                    Node_ BGP      master   up     10:00:00    Established\n\
                    Node_10_1_5_1 Static   master   up     10:00:00\n";
        let rows = parse_show_protocols(text).unwrap().rows;
        let peers = node_status(&rows);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].address, "10.1.8.1");
        assert_eq!(peers[0].port, Some(1790));
        assert_eq!(peers[0].address_cell(), "10.1.8.1:1790");
        assert_eq!(peers[0].peer_type, PeerType::Global);
        assert_eq!(peers[1].address, "fd80.24e2..2.port.x");
        assert_eq!(peers[1].port, None);
    }

    #[test]
    fn numeric_cells() {
        assert!(is_numeric("12"));
        assert!(is_numeric("-3.5"));
        assert!(is_numeric("50%"));
        assert!(!is_numeric("10.1.5.1"));
        assert!(!is_numeric("07:34:35"));
        assert!(!is_numeric(""));
    }
}
