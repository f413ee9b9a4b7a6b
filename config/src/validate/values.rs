//! Parsers of string values: durations, sizes, rates, addresses, CIDRs and host names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::model::{HostPattern, Rate, ServerAddr};

const DURATION_EXPECTED: &str = "expected a number and a unit, like \"30s\", \"5m\", \"1h\"";
pub(super) const SIZE_EXPECTED: &str =
    "expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like \"20MiB\"";
const RATE_EXPECTED: &str = "expected COUNT/UNIT with UNIT s, m or h, like \"100/m\"";
const LISTEN_EXPECTED: &str = "expected IP:PORT, like \"0.0.0.0:443\" or \"[::]:443\"";

/// Units humantime knows, case-sensitive.
const DURATION_UNITS: &[&str] = &[
    "nsec", "ns", "usec", "us", "msec", "ms", "seconds", "second", "secs", "sec", "s", "minutes",
    "minute", "mins", "min", "m", "hours", "hour", "hrs", "hr", "h", "days", "day", "d", "weeks",
    "week", "w", "months", "month", "M", "years", "year", "y",
];

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Some(problem) = duration_unit_problem(s) {
        return Err(format!("invalid duration \"{s}\": {problem}"));
    }
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|_| !s.trim().is_empty())
        .ok_or_else(|| format!("invalid duration \"{s}\": {DURATION_EXPECTED}"))
}

/// A unit humantime would read otherwise than a reader may mean: `M` is months (`m` is
/// minutes), and a unit in another case (`5S`, `1H`) is refused with the right spelling.
fn duration_unit_problem(s: &str) -> Option<String> {
    let mut rest = s.trim();
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| c.is_alphabetic()).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let n = number.trim();
        let n = if n.is_empty() { "N" } else { n };
        if unit == "M" {
            let days = n
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(30))
                .map_or_else(|| "N×30".to_owned(), |d| d.to_string());
            return Some(format!(
                "ambiguous unit \"M\" (months); write \"{n}m\" for minutes, or days like \
                 \"{days}d\""
            ));
        }
        if !unit.is_empty() && !DURATION_UNITS.contains(&unit) {
            let lower = unit.to_ascii_lowercase();
            if DURATION_UNITS.contains(&lower.as_str()) {
                return Some(format!(
                    "unknown unit \"{unit}\": duration units are lower-case; write \"{n}{lower}\""
                ));
            }
        }
        rest = next;
    }
    None
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size \"{s}\": {SIZE_EXPECTED}");
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(bad());
    }
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(size_unit_hint(s, number, other).unwrap_or_else(bad)),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("invalid size \"{s}\": too large, expected at most 16 EiB"))
}

/// For a size unit in the wrong case or without its `B` (`"5m"`, `"20M"`, `"1kb"`): which
/// two units it may have meant.
fn size_unit_hint(s: &str, number: &str, unit: &str) -> Option<String> {
    let lower = unit.to_ascii_lowercase();
    let (prefix, binary, decimal) = match lower.as_str() {
        "b" => {
            return Some(format!(
                "invalid size \"{s}\": unknown unit \"{unit}\"; write \"{number}B\" for bytes \
                 (size units are case-sensitive)"
            ))
        }
        "k" | "kb" | "ki" | "kib" => ("K", "kibibytes, 1024", "kilobytes, 1000"),
        "m" | "mb" | "mi" | "mib" => ("M", "mebibytes, 1024²", "megabytes, 1000²"),
        "g" | "gb" | "gi" | "gib" => ("G", "gibibytes, 1024³", "gigabytes, 1000³"),
        _ => return None,
    };
    Some(format!(
        "invalid size \"{s}\": ambiguous unit \"{unit}\"; write \"{number}{prefix}iB\" \
         ({binary} bytes) or \"{number}{prefix}B\" ({decimal} bytes); size units are B, \
         KiB, MiB, GiB, KB, MB and GB, case-sensitive"
    ))
}

pub(crate) fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("invalid rate \"{s}\": {RATE_EXPECTED}");
    let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let count = count.trim();
    let count = count.strip_suffix('r').unwrap_or(count);
    let count: u32 = count.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(format!(
            "invalid rate \"{s}\": expected a count of at least 1, like \"100/m\""
        ));
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok(Rate { count, per })
}

pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid listen address \"{s}\": {LISTEN_EXPECTED}"))
}

pub(crate) fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "invalid CIDR \"{s}\": expected an address range like \"10.0.0.0/8\" or \
                 \"fd00::/8\", or an IP like \"127.0.0.1\""
            )
        })
}

/// A DNS name: labels of letters, digits, `-` and `_`, not starting or ending with `-`, at
/// most 63 bytes each and 253 in all; the last label is not all digits.
pub(crate) fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels_ok = s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    labels_ok
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn parse_host_pattern(s: &str) -> Result<HostPattern, String> {
    let lower = s.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if let Some(suffix) = name.strip_prefix("*.") {
        if is_dns_name(suffix) {
            return Ok(HostPattern::Wildcard(suffix.to_owned()));
        }
    } else if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Ok(HostPattern::Exact(format!("[{ip}]")));
        }
    } else if let Ok(ip) = name.parse::<Ipv6Addr>() {
        return Ok(HostPattern::Exact(format!("[{ip}]")));
    } else if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Exact(ip.to_string()));
    } else if is_dns_name(name) {
        return Ok(HostPattern::Exact(name.to_owned()));
    }
    Err(format!(
        "invalid host name \"{s}\": expected a name like \"example.com\", a wildcard like \
         \"*.example.com\", or an IP address"
    ))
}

pub(crate) fn parse_server_addr(s: &str) -> Result<ServerAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(ServerAddr::Ip(addr));
    }
    s.rsplit_once(':')
        .filter(|(host, _)| is_dns_name(host))
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok().filter(|p| *p != 0)?)))
        .map(|(host, port)| ServerAddr::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
        .ok_or_else(|| {
            format!(
                "invalid server address \"{s}\": expected IP:PORT or HOST:PORT, like \
                 \"127.0.0.1:8080\" or \"backend:8080\""
            )
        })
}
