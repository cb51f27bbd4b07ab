//! Linux `traceroute` output (IPv4), with or without `-n`.
//!
//! ```text
//! traceroute to 10.244.0.192 (10.244.0.192), 30 hops max, 60 byte packets
//!  1  10.1.5.11  0.265 ms
//!  2  10.1.5.1  0.046 ms !N
//!  3  10.1.10.2  0.019 ms 10.1.12.2  0.012 ms *
//!  4  *
//! ```

use std::net::Ipv4Addr;

/// One line of the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub ttl: u8,
    /// The first address that answered at this TTL; `None` when every probe got `*`.
    pub address: Option<Ipv4Addr>,
    /// Every distinct address that answered at this TTL, in order (ECMP can show several).
    pub responders: Vec<Ipv4Addr>,
    /// Markers such as `!N` (network unreachable), `!H`, `!X`, `!<n>`.
    pub annotations: Vec<String>,
    /// Probes sent at this TTL that got no answer (`*`).
    pub lost: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TracerouteError {
    /// traceroute printed an error instead of a trace (`... Name or service not known`).
    #[error("traceroute failed: {0}")]
    Failed(String),
    #[error("no traceroute output")]
    Empty,
    #[error("line {line}: {reason}: {text:?}")]
    Malformed {
        line: usize,
        text: String,
        reason: String,
    },
}

/// Parses `traceroute` output into its hops, in order.
pub fn parse_traceroute(text: &str) -> Result<Vec<Hop>, TracerouteError> {
    let mut header = false;
    let mut hops = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("traceroute to ") {
            header = true;
            continue;
        }
        if !header {
            return Err(TracerouteError::Failed(line.to_string()));
        }
        let hop = parse_hop(line).map_err(|reason| TracerouteError::Malformed {
            line: i + 1,
            text: raw.to_string(),
            reason,
        })?;
        hops.push(hop);
    }
    if !header {
        return Err(TracerouteError::Empty);
    }
    Ok(hops)
}

/// The first responding address of every hop that answered, in hop order.
pub fn addresses(hops: &[Hop]) -> Vec<Ipv4Addr> {
    hops.iter().filter_map(|h| h.address).collect()
}

fn parse_hop(line: &str) -> Result<Hop, String> {
    let mut tokens = line.split_whitespace().peekable();
    let ttl = tokens
        .next()
        .and_then(|t| t.parse::<u8>().ok())
        .ok_or("no hop number")?;
    let mut hop = Hop {
        ttl,
        address: None,
        responders: Vec::new(),
        annotations: Vec::new(),
        lost: 0,
    };
    // A host name (without -n) waits for its "(address)".
    let mut pending_name: Option<&str> = None;
    while let Some(token) = tokens.next() {
        if let Some(name) = pending_name.take() {
            let addr = token
                .strip_prefix('(')
                .and_then(|t| t.strip_suffix(')'))
                .and_then(|t| t.parse::<Ipv4Addr>().ok())
                .ok_or_else(|| format!("host name {name:?} not followed by (address)"))?;
            hop.add_responder(addr);
            continue;
        }
        if token == "*" {
            hop.lost += 1;
        } else if token.starts_with('!') {
            hop.annotations.push(token.to_string());
        } else if let Ok(addr) = token.parse::<Ipv4Addr>() {
            hop.add_responder(addr);
        } else if token.parse::<f64>().is_ok() && tokens.peek() == Some(&"ms") {
            tokens.next();
        } else if token
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            pending_name = Some(token);
        } else {
            return Err(format!("unexpected {token:?}"));
        }
    }
    if let Some(name) = pending_name {
        return Err(format!("host name {name:?} not followed by (address)"));
    }
    if hop.responders.is_empty() && hop.lost == 0 {
        return Err("neither an address nor *".to_string());
    }
    Ok(hop)
}

impl Hop {
    fn add_responder(&mut self, addr: Ipv4Addr) {
        self.address.get_or_insert(addr);
        if !self.responders.contains(&addr) {
            self.responders.push(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "traceroute to 10.0.0.9 (10.0.0.9), 30 hops max, 60 byte packets\n";

    #[test]
    fn several_responders_in_one_hop() {
        let text = format!("{HEADER} 3  10.1.10.2  0.019 ms 10.1.12.2  0.012 ms *\n");
        let hops = parse_traceroute(&text).unwrap();
        assert_eq!(hops[0].address, Some(Ipv4Addr::new(10, 1, 10, 2)));
        assert_eq!(
            hops[0].responders,
            [Ipv4Addr::new(10, 1, 10, 2), Ipv4Addr::new(10, 1, 12, 2)]
        );
        assert_eq!(hops[0].lost, 1);
    }

    #[test]
    fn host_names_without_dash_n() {
        let text = format!("{HEADER} 1  leaf0 (10.1.5.1)  0.3 ms  0.2 ms\n 2  * * *\n");
        let hops = parse_traceroute(&text).unwrap();
        assert_eq!(addresses(&hops), [Ipv4Addr::new(10, 1, 5, 1)]);
        assert_eq!(hops[1].address, None);
        assert_eq!(hops[1].lost, 3);
    }

    #[test]
    fn name_without_address_is_an_error() {
        let text = format!("{HEADER} 1  leaf0  0.3 ms\n");
        assert!(matches!(
            parse_traceroute(&text),
            Err(TracerouteError::Malformed { line: 2, .. })
        ));
        let text = format!("{HEADER} x  10.1.5.1  0.3 ms\n");
        assert!(parse_traceroute(&text).is_err());
    }
}
