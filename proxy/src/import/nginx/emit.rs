//! Small helpers writing TOML values and converting nginx units to vigie's.

/// A TOML basic string.
pub(crate) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML list of strings.
pub(crate) fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// A TOML inline table of string values.
pub(crate) fn str_table(pairs: &[(String, String)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", q(k), q(v)))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

/// nginx size (`20M`, `512k`, `1g`, `1048576`) → vigie size (`"20MiB"`, or bytes).
pub(crate) fn size(s: &str) -> Option<String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "" => n.to_string(),
        "k" | "K" => q(&format!("{n}KiB")),
        "m" | "M" => q(&format!("{n}MiB")),
        "g" | "G" => q(&format!("{n}GiB")),
        _ => return None,
    })
}

/// nginx time (`30`, `30s`, `10m`, `1h`, `500ms`, `1d`) → vigie duration string.
pub(crate) fn duration(s: &str) -> Option<String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let unit = match unit {
        "" | "s" => "s",
        "ms" => "ms",
        "m" => "m",
        "h" => "h",
        "d" => "d",
        _ => return None,
    };
    Some(format!("{n}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(size("20M").as_deref(), Some("\"20MiB\""));
        assert_eq!(size("100").as_deref(), Some("100"));
        assert_eq!(size("2x"), None);
        assert_eq!(duration("75").as_deref(), Some("75s"));
        assert_eq!(duration("10m").as_deref(), Some("10m"));
        assert_eq!(duration("1M"), None);
        assert_eq!(q("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
