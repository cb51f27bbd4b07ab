//! iputils `ping` output: replies, ICMP errors, the statistics and rtt summary.
//!
//! ```text
//! PING 10.244.0.192 (10.244.0.192) 56(84) bytes of data.
//! 64 bytes from 10.244.0.192: icmp_seq=1 ttl=59 time=0.112 ms
//! From 10.1.5.1 icmp_seq=1 Destination Net Unreachable
//!
//! --- 10.244.0.192 ping statistics ---
//! 3 packets transmitted, 3 received, 0% packet loss, time 405ms
//! rtt min/avg/max/mdev = 0.111/0.116/0.126/0.006 ms
//! ```
//! When ping cannot send at all it prints only `ping: <reason>` (e.g.
//! `ping: connect: Network is unreachable`) and exits 2: that is
//! [`PingError::Failed`].

use std::net::IpAddr;

/// Round-trip times in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub mdev: f64,
}

/// One echo reply (`64 bytes from ...: icmp_seq=1 ttl=59 time=0.112 ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub from: IpAddr,
    pub seq: u32,
    pub ttl: u8,
    /// Absent when the packet carried no timestamp.
    pub time_ms: Option<f64>,
    /// Marked `(DUP!)`.
    pub duplicate: bool,
}

/// An ICMP error a router sent back (`From 10.1.5.1 icmp_seq=1 Destination Net Unreachable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpError {
    pub from: IpAddr,
    pub seq: Option<u32>,
    pub message: String,
}

/// What one `ping` run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// The address pinged (from the `PING host (addr)` line).
    pub destination: Option<IpAddr>,
    pub sent: u32,
    pub received: u32,
    /// `+N duplicates` in the statistics line.
    pub duplicates: u32,
    /// `+N errors` in the statistics line (ICMP errors received).
    pub errors: u32,
    pub loss_percent: f64,
    /// Present when at least one reply came back.
    pub rtt: Option<Rtt>,
    pub replies: Vec<Reply>,
    pub icmp_errors: Vec<IcmpError>,
}

impl PingResult {
    /// Every packet sent was answered.
    pub fn all_received(&self) -> bool {
        self.sent > 0 && self.received >= self.sent
    }

    /// No packet was answered.
    pub fn total_loss(&self) -> bool {
        self.received == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// ping could not run the probe (`ping: connect: Network is unreachable`).
    #[error("ping failed: {0}")]
    Failed(String),
    #[error("no ping statistics in the output (first line: {first_line:?})")]
    NoStatistics { first_line: String },
    #[error("line {line}: {reason}: {text:?}")]
    Malformed {
        line: usize,
        text: String,
        reason: &'static str,
    },
}

/// Parses iputils `ping` output (stdout, or stdout and stderr together).
pub fn parse_ping(text: &str) -> Result<PingResult, PingError> {
    let mut destination = None;
    let mut replies = Vec::new();
    let mut icmp_errors = Vec::new();
    let mut stats: Option<Stats> = None;
    let mut rtt = None;
    let mut failure = None;

    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let malformed = |reason| PingError::Malformed {
            line: i + 1,
            text: raw.to_string(),
            reason,
        };
        if let Some(rest) = line.strip_prefix("PING ") {
            destination = Some(header_address(rest).ok_or_else(|| malformed("no address"))?);
        } else if line.contains(" bytes from ") {
            replies.push(parse_reply(line).ok_or_else(|| malformed("unreadable reply"))?);
        } else if let Some(rest) = line.strip_prefix("From ") {
            icmp_errors
                .push(parse_icmp_error(rest).ok_or_else(|| malformed("unreadable ICMP error"))?);
        } else if line.contains(" packets transmitted, ") {
            stats = Some(parse_stats(line).ok_or_else(|| malformed("unreadable statistics"))?);
        } else if let Some(rest) = line.strip_prefix("rtt ") {
            rtt = Some(parse_rtt(rest).ok_or_else(|| malformed("unreadable rtt summary"))?);
        } else if let Some(rest) = line.strip_prefix("ping: ") {
            failure.get_or_insert_with(|| rest.to_string());
        }
    }

    let Some(stats) = stats else {
        if let Some(message) = failure {
            return Err(PingError::Failed(message));
        }
        let first_line = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        return Err(PingError::NoStatistics { first_line });
    };
    Ok(PingResult {
        destination,
        sent: stats.sent,
        received: stats.received,
        duplicates: stats.duplicates,
        errors: stats.errors,
        loss_percent: stats.loss_percent,
        rtt,
        replies,
        icmp_errors,
    })
}

struct Stats {
    sent: u32,
    received: u32,
    duplicates: u32,
    errors: u32,
    loss_percent: f64,
}

/// `10.244.0.65 (10.244.0.65) 56(84) bytes of data.` -> the address in parentheses.
fn header_address(rest: &str) -> Option<IpAddr> {
    let open = rest.find('(')?;
    let close = open + rest[open..].find(')')?;
    rest[open + 1..close].parse().ok()
}

/// `a.b.c.d` or `name (a.b.c.d)`, optionally followed by `:`.
fn source_address(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_end_matches(':');
    if let Some(open) = s.find('(') {
        let close = open + s[open..].find(')')?;
        return s[open + 1..close].parse().ok();
    }
    s.parse().ok()
}

fn parse_reply(line: &str) -> Option<Reply> {
    let (_, rest) = line.split_once(" bytes from ")?;
    let (from, fields) = rest.split_once(": ")?;
    let from = source_address(from)?;
    let (mut seq, mut ttl, mut time_ms) = (None, None, None);
    let mut duplicate = false;
    for token in fields.split_whitespace() {
        if let Some(v) = token.strip_prefix("icmp_seq=") {
            seq = Some(v.parse().ok()?);
        } else if let Some(v) = token.strip_prefix("ttl=") {
            ttl = Some(v.parse().ok()?);
        } else if let Some(v) = token.strip_prefix("time=") {
            time_ms = Some(v.parse().ok()?);
        } else if token == "(DUP!)" {
            duplicate = true;
        }
    }
    Some(Reply {
        from,
        seq: seq?,
        ttl: ttl?,
        time_ms,
        duplicate,
    })
}

/// `10.1.5.1 icmp_seq=1 Destination Net Unreachable`
fn parse_icmp_error(rest: &str) -> Option<IcmpError> {
    let (from, after) = match rest.find(" icmp_seq=") {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => rest.split_once(' ')?,
    };
    let from = source_address(from)?;
    let (seq, message) = match after.strip_prefix("icmp_seq=") {
        Some(v) => {
            let (n, message) = v.split_once(' ').unwrap_or((v, ""));
            (Some(n.parse().ok()?), message)
        }
        None => (None, after),
    };
    Some(IcmpError {
        from,
        seq,
        message: message.trim().to_string(),
    })
}

/// `3 packets transmitted, 0 received, +2 errors, 100% packet loss, time 405ms`
fn parse_stats(line: &str) -> Option<Stats> {
    let mut stats = Stats {
        sent: 0,
        received: 0,
        duplicates: 0,
        errors: 0,
        loss_percent: f64::NAN,
    };
    let mut seen_sent = false;
    let mut seen_received = false;
    for part in line.split(',').map(str::trim) {
        if let Some(n) = part.strip_suffix(" packets transmitted") {
            stats.sent = n.parse().ok()?;
            seen_sent = true;
        } else if let Some(n) = part.strip_suffix(" received") {
            stats.received = n.parse().ok()?;
            seen_received = true;
        } else if let Some(n) = part.strip_suffix(" duplicates") {
            stats.duplicates = n.trim_start_matches('+').parse().ok()?;
        } else if let Some(n) = part.strip_suffix(" errors") {
            stats.errors = n.trim_start_matches('+').parse().ok()?;
        } else if let Some(n) = part.strip_suffix("% packet loss") {
            stats.loss_percent = n.parse().ok()?;
        }
    }
    (seen_sent && seen_received && stats.loss_percent.is_finite()).then_some(stats)
}

/// `min/avg/max/mdev = 0.111/0.116/0.126/0.006 ms`
fn parse_rtt(rest: &str) -> Option<Rtt> {
    let (names, values) = rest.split_once(" = ")?;
    if names.trim() != "min/avg/max/mdev" {
        return None;
    }
    // iputils appends `, pipe N` when probes were outstanding at once (and `, ipg/ewma
    // ...` when flooding): the four figures come first, in ms.
    let values = values.split(',').next()?.trim().strip_suffix("ms")?.trim();
    let v = values
        .split('/')
        .map(|x| x.parse::<f64>().ok())
        .collect::<Option<Vec<_>>>()?;
    match v[..] {
        [min, avg, max, mdev] => Some(Rtt {
            min,
            avg,
            max,
            mdev,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_hostnames() {
        let text = "PING pod (10.0.0.2) 56(84) bytes of data.\n\
                    64 bytes from pod (10.0.0.2): icmp_seq=1 ttl=64 time=1.5 ms\n\
                    64 bytes from pod (10.0.0.2): icmp_seq=1 ttl=64 time=1.6 ms (DUP!)\n\
                    \n--- pod ping statistics ---\n\
                    1 packets transmitted, 1 received, +1 duplicates, 0% packet loss, time 0ms\n\
                    rtt min/avg/max/mdev = 1.500/1.550/1.600/0.050 ms\n";
        let r = parse_ping(text).unwrap();
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.replies.len(), 2);
        assert!(r.replies[1].duplicate);
        assert_eq!(r.destination, Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn outstanding_probes_add_a_pipe_to_the_rtt_summary() {
        // What a continuous ping printed across a fault (seen in CI).
        let r = parse_rtt("min/avg/max/mdev = 0.030/0.069/0.101/0.023 ms, pipe 2").unwrap();
        assert_eq!((r.min, r.max), (0.030, 0.101));
        let r = parse_rtt("min/avg/max/mdev = 0.010/0.020/0.030/0.005 ms, ipg/ewma 0.100/0.020 ms")
            .unwrap();
        assert_eq!(r.avg, 0.020);
        assert!(parse_rtt("min/avg/max/mdev = 0.030/0.069 ms, pipe 2").is_none());
    }

    #[test]
    fn fractional_loss() {
        let text = "3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n";
        let r = parse_ping(text).unwrap();
        assert!((r.loss_percent - 33.3333).abs() < 1e-9);
        assert_eq!(r.rtt, None);
    }

    #[test]
    fn garbled_statistics_is_an_error() {
        let text = "x packets transmitted, 1 received, 0% packet loss\n";
        assert!(matches!(
            parse_ping(text),
            Err(PingError::Malformed { line: 1, .. })
        ));
        let text =
            "1 packets transmitted, 1 received, 0% packet loss\nrtt min/avg/max/mdev = 1/2 ms\n";
        assert!(matches!(
            parse_ping(text),
            Err(PingError::Malformed { line: 2, .. })
        ));
    }
}
